// Mask R-CNN's training targets and loss. References: mmdet 2.x core/mask/mask_target.py (`mask_target_single`),
// core/mask/structures.py (`BitmapMasks.crop_and_resize`: mmcv RoIAlign(out, spatial_scale 1.0, sampling_ratio 0,
// 'avg', aligned=True) of each ROI's GT bitmap, then `>= 0.5` when binarize), losses/cross_entropy_loss.py
// (`mask_cross_entropy`: BCE-with-logits on each ROI's GT-class channel, mean over all k·28·28 values).
import Tensors
import Layers

/// The ground-truth instance masks of one training image, as mmdet's `BitmapMasks` holds them after the pipeline:
/// one bitmap per GT box (same order as the GT boxes), each `height × width` row-major (index y·width + x), nonzero =
/// inside the instance. They are bitmaps of the resized (and flipped) image at its unpadded size; the padding mmdet's
/// `Pad` adds (zeros up to the image's own `pad_shape`) is given separately to `maskTargets`.
public struct GroundTruthMasks: Sendable, Equatable {
  public let height: Int
  public let width: Int
  /// `[instances][height·width]`, row-major.
  public var masks: [[UInt8]]

  public init(height: Int, width: Int, masks: [[UInt8]]) {
    precondition(height >= 1 && width >= 1, "GroundTruthMasks needs a positive size, got \(height)×\(width).")
    for (index, mask) in masks.enumerated() {
      precondition(mask.count == height * width,
                   "GroundTruthMasks: mask \(index) has \(mask.count) pixels, expected \(height)×\(width) = \(height * width).")
    }
    self.height = height
    self.width = width
    self.masks = masks
  }

  public var count: Int { masks.count }
}

/// mmdet 2.x `mask_target_single`: the `[p, maskSize, maskSize]` targets of one image's p positive ROIs.
///
/// - `positiveBoxes`: `[p, 4]` (x1, y1, x2, y2) in the resized image's pixels (the sampled positives' boxes,
///   `pos_bboxes`), clipped here to the padded mask size (`np.clip(…, 0, maxw / maxh)`).
/// - `assignedGroundTruth`: for each positive, the index of its GT instance (`pos_assigned_gt_inds`).
/// - `paddedHeight`, `paddedWidth`: the image's own `pad_shape` — its resized size rounded up to the size divisor (32),
///   which mmdet's `Pad._pad_masks` pads the masks to — NOT the batch tensor's size (collate pads images further, but
///   not the `BitmapMasks`). ≥ the bitmaps' size; the extra rows and columns are 0. The boxes are clipped to it.
/// - `binarize`: `>= 0.5` (mmdet's default); false gives mmdet's `soft_mask_target` values.
///
/// Each ROI samples its GT's bitmap with `ROIAlign(maskSize, maskSize, spatialScale 1, samplingRatio 0, aligned)`:
/// the same kernel as mmcv's CPU RoIAlign, in Float32.
public func maskTargets(positiveBoxes: Tensor, assignedGroundTruth: [Int], groundTruthMasks: GroundTruthMasks,
                        paddedHeight: Int, paddedWidth: Int, maskSize: Int = 28, binarize: Bool = true) -> Tensor {
  let p = assignedGroundTruth.count
  precondition(positiveBoxes.shape == [p, 4],
               "maskTargets: positive boxes \(positiveBoxes.shape) should be [\(p), 4], one per assigned GT index.")
  precondition(paddedHeight >= groundTruthMasks.height && paddedWidth >= groundTruthMasks.width,
               "maskTargets: the padded size \(paddedHeight)×\(paddedWidth) is smaller than the masks' "
                 + "\(groundTruthMasks.height)×\(groundTruthMasks.width).")
  precondition(maskSize >= 1, "maskTargets needs a positive mask size, got \(maskSize).")
  for (roi, gt) in assignedGroundTruth.enumerated() {
    precondition(gt >= 0 && gt < groundTruthMasks.count,
                 "maskTargets: positive \(roi) is assigned to GT \(gt) of \(groundTruthMasks.count) instance masks.")
  }
  let bins = maskSize * maskSize
  var targets = [Float](repeating: 0, count: p * bins)
  guard p > 0 else { return Tensor(shape: [0, maskSize, maskSize], scalars: []) }
  let align = ROIAlign(outputHeight: maskSize, outputWidth: maskSize, spatialScale: 1, samplingRatio: 0, aligned: true)
  let (maxWidth, maxHeight) = (Float(paddedWidth), Float(paddedHeight))
  // One GT at a time: its bitmap as a zero-padded Float map [1, H, W, 1], sampled by all the ROIs assigned to it.
  for gt in Set(assignedGroundTruth).sorted() {
    let members = assignedGroundTruth.indices.filter { assignedGroundTruth[$0] == gt }
    var rois = [Float]()
    rois.reserveCapacity(5 * members.count)
    for roi in members {
      let box = positiveBoxes.scalars[(4 * roi)..<(4 * roi + 4)].map { $0 }
      rois += [0, min(max(box[0], 0), maxWidth), min(max(box[1], 0), maxHeight),
               min(max(box[2], 0), maxWidth), min(max(box[3], 0), maxHeight)]
    }
    let pooled = align.forward(features: paddedMaskMap(groundTruthMasks, instance: gt, height: paddedHeight,
                                                       width: paddedWidth),
                               rois: Tensor(shape: [members.count, 5], scalars: rois))  // [m, S, S, 1]
    for (row, roi) in members.enumerated() {
      for bin in 0..<bins {
        let value = pooled.scalars[row * bins + bin]
        targets[roi * bins + bin] = binarize ? (value >= 0.5 ? 1 : 0) : value
      }
    }
  }
  return Tensor(shape: [p, maskSize, maskSize], scalars: targets)
}

/// Instance `instance` as a `[1, height, width, 1]` map of 0s and 1s, zero beyond the bitmap's own size.
private func paddedMaskMap(_ masks: GroundTruthMasks, instance: Int, height: Int, width: Int) -> Tensor {
  let mask = masks.masks[instance]
  return Tensor(uninitializedShape: [1, height, width, 1]) { out in
    out.update(repeating: 0)
    for y in 0..<masks.height {
      let source = y * masks.width, target = y * width
      for x in 0..<masks.width where mask[source + x] != 0 { out[target + x] = 1 }
    }
  }
}

/// mmdet 2.x `FCNMaskHead.loss` with `CrossEntropyLoss(use_mask=True, loss_weight)` (`mask_cross_entropy`): the
/// logits `[k, S, S, classCount]`, the targets `[k, S, S]` (from `maskTargets`, images concatenated in ROI order) and
/// each ROI's GT class (0-based, `pos_labels`) give BCE-with-logits on the class's channel, averaged over all k·S·S
/// values, times `lossWeight`. Returns the loss and ∂loss/∂logits (nonzero only on the labelled channels).
/// With no ROIs the loss is 0 (`mask_pred.sum() * 0`) and the gradient empty.
public func maskCrossEntropyLoss(logits: Tensor, targets: Tensor, labels: [Int], lossWeight: Float = 1)
  -> (loss: Float, logitGradient: Tensor) {
  precondition(logits.rank == 4 && targets.rank == 3 && labels.count == logits.shape[0]
                 && targets.shape == Array(logits.shape.prefix(3)),
               "maskCrossEntropyLoss expects logits [k, S, S, classes], targets [k, S, S] and k labels, got "
                 + "\(logits.shape), \(targets.shape) and \(labels.count) labels.")
  let (k, classes) = (logits.shape[0], logits.shape[3])
  guard k > 0 else { return (0, logits) }
  let pixels = logits.shape[1] * logits.shape[2]
  for (roi, label) in labels.enumerated() {
    precondition(label >= 0 && label < classes, "maskCrossEntropyLoss: ROI \(roi) has label \(label) of \(classes) classes.")
  }
  // pred[range(k), labels]: each ROI's own channel, [k, S, S]
  let selected = Tensor(uninitializedShape: targets.shape) { out in
    for roi in 0..<k {
      let base = roi * pixels
      for pixel in 0..<pixels { out[base + pixel] = logits.scalars[(base + pixel) * classes + labels[roi]] }
    }
  }
  let (loss, selectedGradient) = binaryCrossEntropyWithLogits(selected, targets: targets, reduction: .mean)
  var gradient = Tensor.zeros(logits.shape)
  for roi in 0..<k {
    let base = roi * pixels
    for pixel in 0..<pixels {
      gradient.scalars[(base + pixel) * classes + labels[roi]] = lossWeight * selectedGradient.scalars[base + pixel]
    }
  }
  return (lossWeight * loss, gradient)
}
