// Bilinear resizing of NHWC activations (PyTorch `F.interpolate(mode='bilinear', size=…)`, upsample_bilinear2d).
import Tensors

/// For one axis: the two source indices and their weights of each destination index.
private struct LinearTaps {
  var lower: [Int], upper: [Int]
  var lowerWeight: [Float], upperWeight: [Float]

  /// PyTorch `area_pixel_compute_source_index`: with align_corners the corners map onto each other
  /// (scale (in−1)/(out−1)); without, pixel centres do (src = (dst + 0.5)·in/out − 0.5, clamped at 0).
  init(inputSize: Int, outputSize: Int, alignCorners: Bool) {
    let scale: Float = alignCorners
      ? (outputSize > 1 ? Float(inputSize - 1) / Float(outputSize - 1) : 0)
      : Float(inputSize) / Float(outputSize)
    lower = []; upper = []; lowerWeight = []; upperWeight = []
    for destination in 0..<outputSize {
      let source = alignCorners ? scale * Float(destination) : max(scale * (Float(destination) + 0.5) - 0.5, 0)
      let index = min(Int(source), inputSize - 1)
      let fraction = source - Float(index)
      lower.append(index)
      upper.append(index < inputSize - 1 ? index + 1 : index)
      lowerWeight.append(1 - fraction)
      upperWeight.append(fraction)
    }
  }
}

/// Resizes `[n, h, w, c]` to `[n, height, width, c]` by bilinear interpolation, matching
/// `F.interpolate(x, size=(height, width), mode='bilinear', align_corners=alignCorners)`.
public func bilinearResize(_ x: Tensor, height: Int, width: Int, alignCorners: Bool) -> Tensor {
  precondition(x.rank == 4 && x.shape[1] >= 1 && x.shape[2] >= 1 && height >= 1 && width >= 1,
               "bilinearResize expects a non-empty NHWC input and output, got \(x.shape) → \(height)×\(width).")
  let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
  let rowTaps = LinearTaps(inputSize: h, outputSize: height, alignCorners: alignCorners)
  let columnTaps = LinearTaps(inputSize: w, outputSize: width, alignCorners: alignCorners)
  return Tensor(uninitializedShape: [n, height, width, c]) { yBuffer in
    x.scalars.withUnsafeBufferPointer { xb in
      let (xp, yp) = (xb.baseAddress!, yBuffer.baseAddress!)
      parallelFor(0..<(n * height), minimumChunk: max(1, 16_384 / max(1, width * c))) { outputRows in
        for outputRow in outputRows {
          let image = outputRow / height, oy = outputRow - image * height
          let top = xp + (image * h + rowTaps.lower[oy]) * w * c
          let bottom = xp + (image * h + rowTaps.upper[oy]) * w * c
          let (wTop, wBottom) = (rowTaps.lowerWeight[oy], rowTaps.upperWeight[oy])
          for ox in 0..<width {
            let (left, right) = (columnTaps.lower[ox] * c, columnTaps.upper[ox] * c)
            let (wLeft, wRight) = (columnTaps.lowerWeight[ox], columnTaps.upperWeight[ox])
            let target = yp + (outputRow * width + ox) * c
            for channel in 0..<c {
              target[channel] = wTop * (wLeft * top[left + channel] + wRight * top[right + channel])
                + wBottom * (wLeft * bottom[left + channel] + wRight * bottom[right + channel])
            }
          }
        }
      }
    }
  }
}

/// ∂L/∂x of `bilinearResize`: each output gradient scatter-added to its four source pixels with the same weights.
/// `dy` is `[n, height, width, c]`; `inputShape` is `[n, h, w, c]`.
public func bilinearResizeBackward(_ dy: Tensor, inputShape: [Int], alignCorners: Bool) -> Tensor {
  precondition(inputShape.count == 4 && dy.rank == 4 && dy.shape[0] == inputShape[0] && dy.shape[3] == inputShape[3],
               "bilinearResizeBackward got dy \(dy.shape) for input \(inputShape).")
  let (n, h, w, c) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
  let (height, width) = (dy.shape[1], dy.shape[2])
  let rowTaps = LinearTaps(inputSize: h, outputSize: height, alignCorners: alignCorners)
  let columnTaps = LinearTaps(inputSize: w, outputSize: width, alignCorners: alignCorners)
  var dx = Tensor.zeros(inputShape)
  dy.scalars.withUnsafeBufferPointer { db in
    dx.scalars.withUnsafeMutableBufferPointer { xb in
      let (dyp, dxp) = (db.baseAddress!, xb.baseAddress!)
      // Neighbouring outputs share source pixels, so each image is scattered by one thread.
      parallelFor(0..<n, minimumChunk: max(1, 16_384 / max(1, height * width * c))) { images in
        for image in images {
          for oy in 0..<height {
            let top = dxp + (image * h + rowTaps.lower[oy]) * w * c
            let bottom = dxp + (image * h + rowTaps.upper[oy]) * w * c
            let (wTop, wBottom) = (rowTaps.lowerWeight[oy], rowTaps.upperWeight[oy])
            for ox in 0..<width {
              let (left, right) = (columnTaps.lower[ox] * c, columnTaps.upper[ox] * c)
              let (wLeft, wRight) = (columnTaps.lowerWeight[ox], columnTaps.upperWeight[ox])
              let gradient = dyp + ((image * height + oy) * width + ox) * c
              for channel in 0..<c {
                let g = gradient[channel]
                top[left + channel] += wTop * wLeft * g
                top[right + channel] += wTop * wRight * g
                bottom[left + channel] += wBottom * wLeft * g
                bottom[right + channel] += wBottom * wRight * g
              }
            }
          }
        }
      }
    }
  }
  return dx
}
