// Semantic segmentation scores exactly as MMSegmentation 0.x computes them (mmseg/core/evaluation/metrics.py:
// `intersect_and_union`, `total_intersect_and_union`, `total_area_to_metrics`; the dataset's `evaluate` takes
// `np.nanmean` of the per-class values). Tests: SegmentationMetricsTests, against hand-computed cases and
// golden values from scripts/reference/make_segmentation_metric_fixtures.py.
import Tensors

/// The per-class areas of a set of images, accumulated image by image; mergeable, so shards of a set can be
/// evaluated apart and summed (mmseg sums the per-image histograms the same way, in float64).
///
/// Per image, as `intersect_and_union`: pixels whose label equals `ignoreIndex` are dropped from both maps; of
/// the rest, `torch.histc(·, bins: classCount, min: 0, max: classCount − 1)` counts the labels, the predictions
/// and the predictions equal to their label. histc drops values outside `0…classCount − 1`, so a label that is
/// neither a class nor the ignore index (say 21 with 21 classes) counts nowhere, while the prediction at that
/// pixel still counts for its class; a prediction outside the classes (an `Int32` map may hold one; argmax
/// cannot produce one) counts nowhere either, but its label still does. Counts are exact integers: histc's
/// float32 bins are exact below 2²⁴ pixels an image, and mmseg's float64 sums of them are exact below 2⁵³.
public struct SegmentationConfusion: Sendable, Equatable, Codable {
  public let classCount: Int
  public let ignoreIndex: Int
  /// mmseg's `reduce_zero_label` (ADE20K-style masks whose 0 means "other"): applied to each label before the
  /// ignore mask: 0 → 255, k → k − 1 for 1…254, 255 stays 255 (uint8 arithmetic, as mmseg does it). The VOC and
  /// Cityscapes configs leave it off. Apply it once: mmseg's LoadAnnotations can apply it too.
  public let reducesZeroLabel: Bool
  /// Per class: pixels predicted as the class whose label is the class (`area_intersect`).
  public private(set) var intersection: [Int64]
  /// Per class: pixels predicted as the class (`area_pred_label`).
  public private(set) var predicted: [Int64]
  /// Per class: pixels labelled with the class (`area_label`).
  public private(set) var labelled: [Int64]
  /// Images added (merges add up).
  public private(set) var imageCount: Int = 0

  /// - Precondition: `classCount` ≥ 2 (with one class `torch.histc(min: 0, max: 0)` bins the data's own range,
  ///   which is not a segmentation metric).
  public init(classCount: Int, ignoreIndex: Int = 255, reducesZeroLabel: Bool = false) {
    precondition(classCount >= 2, "SegmentationConfusion needs at least 2 classes, got \(classCount).")
    self.classCount = classCount
    self.ignoreIndex = ignoreIndex
    self.reducesZeroLabel = reducesZeroLabel
    intersection = Array(repeating: 0, count: classCount)
    predicted = Array(repeating: 0, count: classCount)
    labelled = Array(repeating: 0, count: classCount)
  }

  /// Per class: `predicted + labelled − intersection` (`area_union`).
  public var union: [Int64] { (0..<classCount).map { predicted[$0] + labelled[$0] - intersection[$0] } }

  /// Adds one image: `prediction` and `label` are the same row-major `h × w` map.
  public mutating func add(prediction: [UInt8], label: [UInt8]) {
    precondition(prediction.count == label.count,
                 "A prediction of \(prediction.count) pixels cannot be scored against a label of \(label.count).")
    prediction.withUnsafeBufferPointer { predictions in accumulate(predictions, label: label) }
  }

  /// Adds one image whose predicted classes are `Int32` (values outside the classes count nowhere, as histc).
  public mutating func add(prediction: [Int32], label: [UInt8]) {
    precondition(prediction.count == label.count,
                 "A prediction of \(prediction.count) pixels cannot be scored against a label of \(label.count).")
    prediction.withUnsafeBufferPointer { predictions in accumulate(predictions, label: label) }
  }

  /// Adds the areas of `other`, which must count the same classes with the same ignore rule.
  public mutating func merge(_ other: SegmentationConfusion) {
    precondition(other.classCount == classCount && other.ignoreIndex == ignoreIndex
                   && other.reducesZeroLabel == reducesZeroLabel,
                 "Cannot merge a confusion of \(other.classCount) classes (ignore \(other.ignoreIndex), reduce zero "
                   + "\(other.reducesZeroLabel)) into one of \(classCount) (ignore \(ignoreIndex), reduce zero "
                   + "\(reducesZeroLabel)).")
    for c in 0..<classCount {
      intersection[c] += other.intersection[c]
      predicted[c] += other.predicted[c]
      labelled[c] += other.labelled[c]
    }
    imageCount += other.imageCount
  }

  /// The scores of everything added so far (`total_area_to_metrics` with metrics ['mIoU'], then nanmean).
  public var result: SegmentationScores {
    SegmentationScores(intersection: intersection, union: union, labelled: labelled)
  }

  /// The label mmseg scores for a stored label value (`reduce_zero_label` applied when set).
  @inline(__always)
  private func effectiveLabel(_ stored: UInt8) -> Int {
    guard reducesZeroLabel else { return Int(stored) }
    return stored == 0 || stored == 255 ? 255 : Int(stored) - 1
  }

  private mutating func accumulate<Class: BinaryInteger>(_ prediction: UnsafeBufferPointer<Class>, label: [UInt8]) {
    let classes = classCount
    var intersection = [Int64](repeating: 0, count: classes)
    var predicted = [Int64](repeating: 0, count: classes)
    var labelled = [Int64](repeating: 0, count: classes)
    label.withUnsafeBufferPointer { labels in
      for pixel in 0..<labels.count {
        let truth = effectiveLabel(labels[pixel])
        if truth == ignoreIndex { continue }
        let guess = Int(prediction[pixel])
        let guessIsClass = guess >= 0 && guess < classes
        if guessIsClass { predicted[guess] += 1 }
        if truth < classes {
          labelled[truth] += 1
          if guess == truth { intersection[truth] += 1 }
        }
      }
    }
    for c in 0..<classes {
      self.intersection[c] += intersection[c]
      self.predicted[c] += predicted[c]
      self.labelled[c] += labelled[c]
    }
    imageCount += 1
  }
}

/// mmseg's mIoU metrics of a set: per-class IoU and accuracy (NaN for a class with no pixel in either map, or
/// no labelled pixel for the accuracy), their NaN-skipping means, and the overall pixel accuracy.
public struct SegmentationScores: Sendable {
  /// `IoU_c = I_c / U_c` (`ret_metrics['IoU']`); NaN when `U_c` = 0.
  public var perClassIoU: [Double]
  /// `Acc_c = I_c / area_label_c` (`ret_metrics['Acc']`); NaN when the class is never labelled.
  public var perClassAccuracy: [Double]
  /// aAcc = `ΣI / Σarea_label`; NaN when nothing was labelled.
  public var overallAccuracy: Double
  /// `np.nanmean(IoU)` (bit for bit, numpy's pairwise sum): classes with NaN are skipped; NaN when every class is
  /// NaN. mmseg reports `np.round(100 · mIoU, 2)`; rounding for display is the caller's.
  public var meanIoU: Double
  /// `np.nanmean(Acc)`.
  public var meanAccuracy: Double

  public init(intersection: [Int64], union: [Int64], labelled: [Int64]) {
    precondition(intersection.count == union.count && union.count == labelled.count,
                 "SegmentationScores needs equal per-class counts, got \(intersection.count), \(union.count), "
                   + "\(labelled.count).")
    perClassIoU = zip(intersection, union).map { Double($0) / Double($1) }
    perClassAccuracy = zip(intersection, labelled).map { Double($0) / Double($1) }
    overallAccuracy = Double(intersection.reduce(0, +)) / Double(labelled.reduce(0, +))
    meanIoU = nanMean(perClassIoU)
    meanAccuracy = nanMean(perClassAccuracy)
  }
}

/// `np.nanmean` of a 1-d float64 array, to the bit: NaNs replaced by 0, the array summed by numpy's pairwise
/// summation, divided by the number of non-NaN values; NaN when there is none.
func nanMean(_ values: [Double]) -> Double {
  let kept = values.count(where: { !$0.isNaN })
  guard kept > 0 else { return .nan }
  return numpyPairwiseSum(values.map { $0.isNaN ? 0 : $0 }[...]) / Double(kept)
}

/// numpy's `pairwise_sum` (numpy/_core/src/umath/loops_utils.h.src), which `np.add.reduce` uses on a contiguous
/// float64 array: fewer than 8 values in order; up to 128 in 8 interleaved partial sums combined as
/// ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the remainder in order; more split in two halves at a
/// multiple of 8.
func numpyPairwiseSum(_ values: ArraySlice<Double>) -> Double {
  let n = values.count, start = values.startIndex
  if n < 8 {
    var sum = 0.0  // numpy starts from -0.0 here, which gives the same value (only the sign of an all-zero sum)
    for value in values { sum += value }
    return sum
  }
  if n <= 128 {
    var partial = Array(values[start..<(start + 8)])
    var index = 8
    while index < n - n % 8 {
      for lane in 0..<8 { partial[lane] += values[start + index + lane] }
      index += 8
    }
    var sum = ((partial[0] + partial[1]) + (partial[2] + partial[3]))
      + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
    while index < n {
      sum += values[start + index]
      index += 1
    }
    return sum
  }
  var half = n / 2
  half -= half % 8
  return numpyPairwiseSum(values[start..<(start + half)]) + numpyPairwiseSum(values[(start + half)...])
}

/// The class of each pixel of `logits` (`[h, w, C]` or `[1, h, w, C]`, NHWC): `torch.argmax` over the class axis,
/// the first of equal maxima, a NaN counting as the maximum (as torch). Row-major `h × w`.
///
/// mmseg takes the argmax of `softmax(logits)`; softmax is monotonic, so the two differ only where float32
/// rounding makes two probabilities equal whose logits are not.
public func argmaxLabels(logits: Tensor) -> [UInt8] {
  precondition((logits.rank == 3 || (logits.rank == 4 && logits.shape[0] == 1)) && logits.shape.last! >= 1,
               "argmaxLabels expects [h, w, C] or [1, h, w, C] logits, got \(logits.shape).")
  let classes = logits.shape.last!
  precondition(classes <= 256, "argmaxLabels writes UInt8 classes; \(classes) classes do not fit.")
  let pixels = logits.count / classes
  var labels = [UInt8](repeating: 0, count: pixels)
  logits.scalars.withUnsafeBufferPointer { source in
    labels.withUnsafeMutableBufferPointer { target in
      let (scores, classOf) = (source.baseAddress!, target.baseAddress!)
      parallelFor(0..<pixels, minimumChunk: max(1, 65_536 / classes)) { range in
        for pixel in range {
          let row = scores + pixel * classes
          var best = row[0], bestClass = 0
          if !best.isNaN {
            for c in 1..<classes {
              let value = row[c]
              if value.isNaN || value > best {
                best = value
                bestClass = c
                if value.isNaN { break }
              }
            }
          }
          classOf[pixel] = UInt8(bestClass)
        }
      }
    }
  }
  return labels
}
