// Proposals of the multi-level RPN for one image: mmdet 2.x `RPNHead._get_bboxes` (mmdet/models/dense_heads/
// rpn_head.py) — per level the `nms_pre` best anchors by sigmoid score, all levels concatenated, decoded
// (`delta2bbox`, max_shape = the image), boxes with w or h ≤ min_bbox_size dropped, mmcv `batched_nms` with the level
// as the class (NMS within each level), the first `max_per_img` by score. No gradient flows through it.
import Tensors
import Layers

/// Per level l: objectness logits `[K_l]`, deltas `[K_l · 4]` and anchors `[K_l, 4]` of one image → its proposals,
/// best first. `settings.preNMSTopK` applies to each level, `postNMSTopK` to the image.
///
/// As `generateRPNProposals`: the per-level sort is on the logits (σ is monotone) with ties by anchor index; dw, dh
/// are clamped to ±log(1000/16); NMS compares IoU > threshold in Float (mmcv's nms_cpu) and the final order is by
/// score, equal scores in candidate order (level, then rank).
public func generateMultiLevelRPNProposals(objectness: [ArraySlice<Float>], deltas: [ArraySlice<Float>],
                                           anchors: [Tensor], height: Int, width: Int,
                                           settings: RPNProposalSettings) -> RPNProposals {
  precondition(objectness.count == anchors.count && deltas.count == anchors.count,
               "generateMultiLevelRPNProposals: \(objectness.count) logit and \(deltas.count) delta levels for "
                 + "\(anchors.count) anchor levels.")
  var candidateLogits = [Float](), candidateDeltas = [Float](), candidateAnchors = [Float](), levels = [Int]()
  let clamp = BoxCoder.defaultScaleClamp
  for level in anchors.indices {
    let count = anchors[level].shape[0]
    precondition(anchors[level].rank == 2 && anchors[level].shape[1] == 4 && objectness[level].count == count
                   && deltas[level].count == 4 * count,
                 "generateMultiLevelRPNProposals: level \(level) has \(objectness[level].count) logits and "
                   + "\(deltas[level].count / 4) deltas for anchors \(anchors[level].shape).")
    let logits = Array(objectness[level]), levelDeltas = Array(deltas[level]), boxes = anchors[level].scalars
    var order = Array(0..<count)
    order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
    for index in order.prefix(settings.preNMSTopK) {
      candidateLogits.append(logits[index])
      candidateDeltas += [levelDeltas[4 * index], levelDeltas[4 * index + 1],
                          max(levelDeltas[4 * index + 2], -clamp), max(levelDeltas[4 * index + 3], -clamp)]
      candidateAnchors += boxes[(4 * index)..<(4 * index + 4)]
      levels.append(level)
    }
  }
  let candidates = candidateLogits.count
  let decoded = BoxCoder.rpn.decode(deltas: Tensor(shape: [candidates, 4], scalars: candidateDeltas),
                                    boxes: Tensor(shape: [candidates, 4], scalars: candidateAnchors))
  var boxes = clipBoxes(decoded, height: height, width: width)
  var scores = candidateLogits.map(sigmoid)
  if settings.minBoxSize >= 0 {
    let valid = nonEmptyBoxIndices(boxes, threshold: settings.minBoxSize)
    if valid.count != candidates {
      boxes = gatherRows(boxes, valid)
      scores = valid.map { scores[$0] }
      levels = valid.map { levels[$0] }
    }
  }
  // mmcv's nms_cpu takes the threshold as a C++ float and compares `ovr > iou_threshold` in float.
  let kept = batchedNonMaximumSuppression(boxes: boxes, scores: scores, classes: levels,
                                          iouThreshold: Double(Float(settings.nmsThreshold)))
    .prefix(settings.postNMSTopK)
  return RPNProposals(boxes: gatherRows(boxes, Array(kept)), scores: kept.map { scores[$0] })
}
