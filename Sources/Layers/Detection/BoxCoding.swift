// Box regression coding (dx, dy, dw, dh) and the box clean-up the proposal path needs.
// Reference: detectron2 modeling/box_regression.py `Box2BoxTransform.get_deltas` / `apply_deltas`
// (mmdet 2.x `DeltaXYWHBBoxCoder` with means 0 and stds s is the same transform with weights 1/s), and
// detectron2 structures/boxes.py `Boxes.clip` / `nonempty`. Boxes are `[k, 4]` tensors (x1, y1, x2, y2), no +1.
import Foundation
import Tensors

/// Encodes target boxes relative to source boxes and decodes deltas back, as detectron2's `Box2BoxTransform`.
public struct BoxCoder: Sendable, Equatable {
  /// (wx, wy, ww, wh): (1, 1, 1, 1) for the RPN, (10, 10, 5, 5) for the ROI head (mmdet stds 0.1, 0.1, 0.2, 0.2).
  public var weights: (x: Float, y: Float, w: Float, h: Float)
  /// dw and dh (after dividing by the weights) are clamped to at most this before exp: log(1000/16).
  public var scaleClamp: Float

  /// detectron2's `_DEFAULT_SCALE_CLAMP` = log(1000/16).
  public static let defaultScaleClamp = Float(Foundation.log(1000.0 / 16.0))
  public static let rpn = BoxCoder(weights: (1, 1, 1, 1))
  public static let roiHead = BoxCoder(weights: (10, 10, 5, 5))

  public init(weights: (x: Float, y: Float, w: Float, h: Float), scaleClamp: Float = BoxCoder.defaultScaleClamp) {
    self.weights = weights
    self.scaleClamp = scaleClamp
  }

  public static func == (a: BoxCoder, b: BoxCoder) -> Bool {
    a.weights == b.weights && a.scaleClamp == b.scaleClamp
  }

  /// Deltas `[k, 4]` that turn `sources[i]` into `targets[i]` (`get_deltas`). Source widths and heights must be > 0.
  public func encode(sources: Tensor, targets: Tensor) -> Tensor {
    precondition(sources.rank == 2 && sources.shape[1] == 4 && targets.shape == sources.shape,
                 "BoxCoder.encode expects two [k, 4] box sets, got \(sources.shape) and \(targets.shape).")
    let s = sources.scalars, t = targets.scalars
    return Tensor(uninitializedShape: sources.shape) { out in
      for i in 0..<sources.shape[0] {
        let b = 4 * i
        let sw = s[b + 2] - s[b], sh = s[b + 3] - s[b + 1]
        precondition(sw > 0 && sh > 0, "BoxCoder.encode: source box \(i) has width \(sw), height \(sh); both must be > 0.")
        let sx = s[b] + 0.5 * sw, sy = s[b + 1] + 0.5 * sh
        let tw = t[b + 2] - t[b], th = t[b + 3] - t[b + 1]
        let tx = t[b] + 0.5 * tw, ty = t[b + 1] + 0.5 * th
        out[b] = weights.x * (tx - sx) / sw
        out[b + 1] = weights.y * (ty - sy) / sh
        out[b + 2] = weights.w * Foundation.log(tw / sw)
        out[b + 3] = weights.h * Foundation.log(th / sh)
      }
    }
  }

  /// Boxes from `deltas` `[k, 4·j]` applied to `boxes` `[k, 4]` (`apply_deltas`): `[k, 4·j]`, one box per
  /// group of four (j = 1 for the RPN, j = classes for class-specific ROI regression).
  public func decode(deltas: Tensor, boxes: Tensor) -> Tensor {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4 && deltas.rank == 2 && deltas.shape[0] == boxes.shape[0]
                   && deltas.shape[1] % 4 == 0 && deltas.shape[1] > 0,
                 "BoxCoder.decode expects deltas [k, 4j] and boxes [k, 4], got \(deltas.shape) and \(boxes.shape).")
    let groups = deltas.shape[1] / 4
    let d = deltas.scalars, bx = boxes.scalars
    return Tensor(uninitializedShape: deltas.shape) { out in
      for i in 0..<boxes.shape[0] {
        let width = bx[4 * i + 2] - bx[4 * i], height = bx[4 * i + 3] - bx[4 * i + 1]
        let centerX = bx[4 * i] + 0.5 * width, centerY = bx[4 * i + 1] + 0.5 * height
        for g in 0..<groups {
          let o = i * 4 * groups + 4 * g
          let dx = d[o] / weights.x, dy = d[o + 1] / weights.y
          let dw = min(d[o + 2] / weights.w, scaleClamp), dh = min(d[o + 3] / weights.h, scaleClamp)
          let predX = dx * width + centerX, predY = dy * height + centerY
          let predW = Foundation.exp(dw) * width, predH = Foundation.exp(dh) * height
          out[o] = predX - 0.5 * predW
          out[o + 1] = predY - 0.5 * predH
          out[o + 2] = predX + 0.5 * predW
          out[o + 3] = predY + 0.5 * predH
        }
      }
    }
  }
}

/// Boxes `[k, 4]` clipped to an image of `height` × `width` pixels: x to [0, width], y to [0, height]
/// (detectron2 `Boxes.clip`, mmdet `max_shape` clamp).
public func clipBoxes(_ boxes: Tensor, height: Int, width: Int) -> Tensor {
  precondition(boxes.rank == 2 && boxes.shape[1] == 4, "clipBoxes expects [k, 4] boxes, got \(boxes.shape).")
  let (w, h) = (Float(width), Float(height))
  var result = boxes
  result.scalars.withUnsafeMutableBufferPointer { p in
    for i in 0..<boxes.shape[0] {
      p[4 * i] = min(max(p[4 * i], 0), w)
      p[4 * i + 1] = min(max(p[4 * i + 1], 0), h)
      p[4 * i + 2] = min(max(p[4 * i + 2], 0), w)
      p[4 * i + 3] = min(max(p[4 * i + 3], 0), h)
    }
  }
  return result
}

/// Indices of the boxes whose width and height both exceed `threshold` (detectron2 `Boxes.nonempty(threshold=0)`).
public func nonEmptyBoxIndices(_ boxes: Tensor, threshold: Float = 0) -> [Int] {
  precondition(boxes.rank == 2 && boxes.shape[1] == 4, "nonEmptyBoxIndices expects [k, 4] boxes, got \(boxes.shape).")
  let b = boxes.scalars
  return (0..<boxes.shape[0]).filter { b[4 * $0 + 2] - b[4 * $0] > threshold && b[4 * $0 + 3] - b[4 * $0 + 1] > threshold }
}

/// The rows `indices` of a `[k, 4]` (or any `[k, m]`) tensor, in that order.
public func gatherRows(_ tensor: Tensor, _ indices: [Int]) -> Tensor {
  precondition(tensor.rank == 2, "gatherRows expects a [k, m] tensor, got \(tensor.shape).")
  let m = tensor.shape[1]
  var scalars = [Float]()
  scalars.reserveCapacity(indices.count * m)
  for i in indices {
    precondition(i >= 0 && i < tensor.shape[0], "gatherRows: row \(i) is outside 0..<\(tensor.shape[0]).")
    scalars += tensor.scalars[(i * m)..<((i + 1) * m)]
  }
  return Tensor(shape: [indices.count, m], scalars: scalars)
}
