// Test-time post-processing of the C4 ROI head: mmdet 2.x bbox_heads/bbox_head.py `get_bboxes` (softmax, class-
// specific decode clipped to the image) and core/post_processing/bbox_nms.py `multiclass_nms` (score > score_thr,
// NMS per class, the best `max_per_img` by score).
import Foundation
import Tensors
import Layers

extension ROIHeadConfig {
  /// One image's detections from its rois' `classLogits` `[k, classCount + 1]`, `boxDeltas` `[k, 4·classCount]` and
  /// `proposals` `[k, 4]`, for an image of `imageHeight` × `imageWidth` input pixels (boxes are clipped to it).
  ///
  /// mmcv's `batched_nms` offsets each class's boxes by label·(max coordinate + 1) and runs one NMS; ours runs NMS
  /// per class (`batchedNonMaximumSuppression`, torchvision's): the same boxes survive unless an IoU sits within a
  /// rounding error of the threshold. Equal scores are kept in (roi, class) order.
  public func detections(classLogits: Tensor, boxDeltas: Tensor, proposals: Tensor, imageHeight: Int,
                         imageWidth: Int) -> Detections {
    let k = proposals.shape[0]
    precondition(proposals.rank == 2 && proposals.shape[1] == 4 && classLogits.shape == [k, classCount + 1]
                   && boxDeltas.shape == [k, 4 * classCount],
                 "ROI detections need proposals [k, 4], logits [k, \(classCount + 1)] and deltas "
                   + "[k, \(4 * classCount)], got \(proposals.shape), \(classLogits.shape), \(boxDeltas.shape).")
    let probabilities = softmaxRows(classLogits)
    let boxes = decodeROIHeadDeltas(boxDeltas, proposals: proposals, imageHeight: imageHeight, imageWidth: imageWidth)
    // multiclass_nms: every (roi, foreground class) with score > score_thr, in row-major (roi, class) order.
    var candidateBoxes = [Float](), scores = [Float](), labels = [Int]()
    for roi in 0..<k {
      for label in 0..<classCount {
        let score = probabilities[roi * (classCount + 1) + label]
        guard score > scoreThreshold else { continue }
        let o = roi * 4 * classCount + 4 * label
        candidateBoxes += boxes.scalars[o..<(o + 4)]
        scores.append(score)
        labels.append(label)
      }
    }
    guard !scores.isEmpty else { return .empty }
    let candidates = Tensor(shape: [scores.count, 4], scalars: candidateBoxes)
    let kept = batchedNonMaximumSuppression(boxes: candidates, scores: scores, classes: labels,
                                            iouThreshold: nmsThreshold).prefix(detectionsPerImage)
    return Detections(boxes: gatherRows(candidates, Array(kept)), scores: kept.map { scores[$0] },
                      labels: kept.map { labels[$0] })
  }
}

/// Softmax over each row of `[k, m]` logits (F.softmax(dim=-1)), with the row max subtracted.
func softmaxRows(_ logits: Tensor) -> [Float] {
  let m = logits.shape[1]
  var result = logits.scalars
  for row in 0..<logits.shape[0] {
    let range = (row * m)..<((row + 1) * m)
    let largest = result[range].max()!
    var total: Float = 0
    for i in range {
      result[i] = Foundation.exp(result[i] - largest)
      total += result[i]
    }
    for i in range { result[i] /= total }
  }
  return result
}

/// mmdet 2.x `delta2bbox` with the ROI head's stds (0.1, 0.1, 0.2, 0.2), means 0, `wh_ratio_clip` 16/1000 and
/// `max_shape` = the image: `deltas` `[k, 4j]` applied to `proposals` `[k, 4]`, each box clipped to [0, width] ×
/// [0, height]. Unlike detectron2's `apply_deltas` (BoxCoder), dw and dh are clamped on BOTH sides at
/// ±log(1000/16), and the centre is (x1 + x2)·0.5 — mmdet's order of operations.
func decodeROIHeadDeltas(_ deltas: Tensor, proposals: Tensor, imageHeight: Int, imageWidth: Int) -> Tensor {
  let groups = deltas.shape[1] / 4
  let stds: (Float, Float, Float, Float) = (0.1, 0.1, 0.2, 0.2)
  let maxRatio = Float(abs(Foundation.log(16.0 / 1000.0)))
  let (width, height) = (Float(imageWidth), Float(imageHeight))
  let d = deltas.scalars, p = proposals.scalars
  return Tensor(uninitializedShape: deltas.shape) { out in
    for roi in 0..<proposals.shape[0] {
      let (x1, y1, x2, y2) = (p[4 * roi], p[4 * roi + 1], p[4 * roi + 2], p[4 * roi + 3])
      let px = (x1 + x2) * 0.5, py = (y1 + y2) * 0.5
      let pw = x2 - x1, ph = y2 - y1
      for group in 0..<groups {
        let o = roi * 4 * groups + 4 * group
        let dx = d[o] * stds.0, dy = d[o + 1] * stds.1
        let dw = min(max(d[o + 2] * stds.2, -maxRatio), maxRatio)
        let dh = min(max(d[o + 3] * stds.3, -maxRatio), maxRatio)
        let gw = pw * Foundation.exp(dw), gh = ph * Foundation.exp(dh)
        let gx = px + pw * dx, gy = py + ph * dy
        out[o] = min(max(gx - gw * 0.5, 0), width)
        out[o + 1] = min(max(gy - gh * 0.5, 0), height)
        out[o + 2] = min(max(gx + gw * 0.5, 0), width)
        out[o + 3] = min(max(gy + gh * 0.5, 0), height)
      }
    }
  }
}
