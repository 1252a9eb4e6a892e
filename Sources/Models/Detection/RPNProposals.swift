// Proposal generation from the RPN's outputs: mmdet 2.x `RPNHead._get_bboxes` / `_get_bboxes_single`
// (mmdet/models/dense_heads/rpn_head.py) for one feature level, with `DeltaXYWHBBoxCoder.decode` (`delta2bbox`,
// core/bbox/coder/delta_xywh_bbox_coder.py) and mmcv's `batched_nms` / `nms_cpu`. No gradient flows through it.
import Foundation
import Tensors
import Layers

/// One phase's proposal settings (`train_cfg.rpn_proposal` or `test_cfg.rpn`).
public struct RPNProposalSettings: Sendable, Equatable {
  /// `nms_pre`: the highest-scoring anchors kept before decoding (12000 training, 6000 testing).
  public var preNMSTopK: Int
  /// `max_per_img`: proposals kept after NMS (2000 training, 1000 testing).
  public var postNMSTopK: Int
  /// `nms.iou_threshold` (0.7).
  public var nmsThreshold: Double
  /// `min_bbox_size` (0): boxes with width or height ≤ this are dropped; negative keeps every box.
  public var minBoxSize: Float

  public init(preNMSTopK: Int, postNMSTopK: Int, nmsThreshold: Double, minBoxSize: Float) {
    precondition(preNMSTopK >= 0 && postNMSTopK >= 0 && nmsThreshold >= 0,
                 "RPNProposalSettings needs non-negative top-k sizes and threshold, got \(preNMSTopK), \(postNMSTopK), \(nmsThreshold).")
    self.preNMSTopK = preNMSTopK
    self.postNMSTopK = postNMSTopK
    self.nmsThreshold = nmsThreshold
    self.minBoxSize = minBoxSize
  }
}

/// One image's proposals, in decreasing score order.
public struct RPNProposals: Sendable, Equatable {
  /// `[k, 4]` (x1, y1, x2, y2) in input pixels, inside the image.
  public var boxes: Tensor
  /// σ(objectness) of each box.
  public var scores: [Float]
}

/// mmdet 2.x `_get_bboxes` for one image: objectness logits `[K]` and deltas `[K, 4]` of `anchors` `[K, 4]` → the
/// `preNMSTopK` best by score → decoded (`delta2bbox`, max_shape = the image) → boxes with width or height
/// ≤ `minBoxSize` dropped → NMS (IoU > threshold suppresses, no +1 in areas) → the first `postNMSTopK`.
///
/// Departures that cannot change the result where mmdet's is defined: mmdet sorts σ(logit) with an unstable sort, so
/// equal scores come out in an unspecified order; we sort the logits (σ is monotone; logits above ~17 all give
/// σ = 1 in Float32) and break ties by anchor index, and NMS keeps that order among equal scores. mmdet's
/// `delta2bbox` clamps dw, dh to ±log(1000/16); `BoxCoder.decode` clamps only above, so the lower clamp is applied
/// here first. Its centre (x1 + x2)·0.5 against our x1 + 0.5·w differs by at most an ulp.
public func generateRPNProposals(objectness: ArraySlice<Float>, deltas: ArraySlice<Float>, anchors: Tensor,
                                 height: Int, width: Int, settings: RPNProposalSettings) -> RPNProposals {
  let count = anchors.shape[0]
  precondition(anchors.rank == 2 && anchors.shape[1] == 4 && objectness.count == count && deltas.count == 4 * count,
               "generateRPNProposals: \(objectness.count) logits and \(deltas.count / 4) deltas for anchors \(anchors.shape).")
  let logits = Array(objectness), allDeltas = Array(deltas)
  // Top-k by score (mmdet: scores.sort(descending=True)[:nms_pre]).
  var order = Array(0..<count)
  order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
  let top = Array(order.prefix(settings.preNMSTopK))
  let clamp = BoxCoder.defaultScaleClamp
  var topDeltas = [Float](repeating: 0, count: 4 * top.count)
  for (row, index) in top.enumerated() {
    topDeltas[4 * row] = allDeltas[4 * index]
    topDeltas[4 * row + 1] = allDeltas[4 * index + 1]
    topDeltas[4 * row + 2] = max(allDeltas[4 * index + 2], -clamp)  // mmdet clamps dw, dh below too
    topDeltas[4 * row + 3] = max(allDeltas[4 * index + 3], -clamp)
  }
  let decoded = BoxCoder.rpn.decode(deltas: Tensor(shape: [top.count, 4], scalars: topDeltas),
                                    boxes: gatherRows(anchors, top))
  var boxes = clipBoxes(decoded, height: height, width: width)
  var scores = top.map { sigmoid(logits[$0]) }
  if settings.minBoxSize >= 0 {
    let valid = nonEmptyBoxIndices(boxes, threshold: settings.minBoxSize)
    if valid.count != top.count {
      boxes = gatherRows(boxes, valid)
      scores = valid.map { scores[$0] }
    }
  }
  // mmcv's nms_cpu takes the threshold as a C++ float and compares `ovr > iou_threshold` in float.
  let kept = nonMaximumSuppression(boxes: boxes, scores: scores, iouThreshold: Double(Float(settings.nmsThreshold)),
                                   limit: settings.postNMSTopK)
  return RPNProposals(boxes: gatherRows(boxes, kept), scores: kept.map { scores[$0] })
}

/// torch.sigmoid in Float32: 1 / (1 + e^(−x)).
@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
