// Pascal VOC detection AP, exactly as the two reference pipelines compute it:
// - mmdet 2.x core/evaluation/mean_ap.py `eval_map` + `tpfp_default` + `average_precision`, with
//   `use_legacy_coordinate=True` as `VOCDataset.evaluate` passes it (the seed's AP50 column), and
// - detectron2 evaluation/pascal_voc_evaluation.py `PascalVOCDetectionEvaluator` + `voc_eval` + `voc_ap` (AP over IoU
//   0.50:0.05:0.95, AP50, AP75; the paper's columns).
// PROTOCOLS §5.5 lists the differences that matter (IoU ≥ vs >, difficult ordering, which classes enter the mean).
import Foundation

/// A box (x1, y1, x2, y2) in image pixels.
public struct DetectionBox: Sendable, Equatable {
  public var x1: Float, y1: Float, x2: Float, y2: Float
  public init(_ x1: Float, _ y1: Float, _ x2: Float, _ y2: Float) {
    (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
  }
}

/// One detection of some class.
public struct ScoredBox: Sendable, Equatable {
  public var box: DetectionBox
  public var score: Float
  public init(box: DetectionBox, score: Float) {
    self.box = box
    self.score = score
  }
}

/// One annotated object. `isDifficult` objects are neither counted nor penalised.
public struct GroundTruthObject: Sendable, Equatable {
  public var box: DetectionBox
  public var classIndex: Int
  public var isDifficult: Bool
  public init(box: DetectionBox, classIndex: Int, isDifficult: Bool) {
    self.box = box
    self.classIndex = classIndex
    self.isDifficult = isDifficult
  }
}

/// mmdet `eval_map`'s answer. APs are fractions in [0, 1] as mmdet returns them.
public struct MMDetMAPResult: Sendable, Equatable {
  /// Mean of the per-class APs over the classes with at least one non-difficult ground truth (0 if none has).
  public var mAP: Double
  public var perClassAP: [Double]
  /// Non-difficult ground truths per class (mmdet's `num_gts`).
  public var groundTruthCounts: [Int]
}

/// detectron2 `PascalVOCDetectionEvaluator.evaluate()`'s answer, in percent as detectron2 reports it.
public struct Detectron2VOCResult: Sendable, Equatable {
  /// Mean over the IoU thresholds 0.50, 0.55, …, 0.95 of the mean-over-classes AP.
  public var ap: Double
  public var ap50: Double
  public var ap75: Double
  /// `perClassAP[t][c]`: threshold index t (0.50 + 0.05·t), class c; every class counts in the means (AP 0 if empty).
  public var perClassAP: [[Double]]
  public static let iouThresholdsPercent = Array(stride(from: 50, to: 100, by: 5))
}

/// Collects detections and ground truths image by image, then scores them either way.
///
/// Boxes of detections and ground truths are in the same frame (the model's: detectron2's loader subtracts 1 from
/// the XML's xmin/ymin, mmdet 2.x keeps them; pass whatever the data layer produced for both).
public struct VOCDetectionEvaluator: Sendable {
  public let classCount: Int
  private var detections: [[[ScoredBox]]] = []  // [image][class][k]
  private var groundTruths: [[GroundTruthObject]] = []

  public init(classCount: Int) {
    precondition(classCount > 0, "VOCDetectionEvaluator needs at least one class, got \(classCount).")
    self.classCount = classCount
  }

  public var imageCount: Int { detections.count }

  /// Adds one image: `detections[c]` are its detections of class c (any order), `groundTruth` its objects.
  public mutating func add(detections perClass: [[ScoredBox]], groundTruth: [GroundTruthObject]) {
    precondition(perClass.count == classCount,
                 "VOCDetectionEvaluator.add: \(perClass.count) detection lists for \(classCount) classes.")
    for object in groundTruth {
      precondition(object.classIndex >= 0 && object.classIndex < classCount,
                   "VOCDetectionEvaluator.add: ground-truth class \(object.classIndex) is outside 0..<\(classCount).")
    }
    detections.append(perClass)
    groundTruths.append(groundTruth)
  }

  // MARK: - mmdet

  /// mmdet 2.x `eval_map(…, iou_thr, dataset='voc07' → 11 points, use_legacy_coordinate=True)`.
  ///
  /// Per image and class: IoU with +1 widths in Float32 against the non-difficult then the difficult ground truths;
  /// detections visited by decreasing score take their argmax ground truth when IoU ≥ `iouThreshold`: a difficult one
  /// makes them neither TP nor FP, an already matched one makes them FP. All images' detections are then sorted by
  /// score (stable: equal scores stay in image order, then in their order within the image), recall = TP/#GT,
  /// precision = TP/max(TP + FP, ε). `use11Points`: the mean over t = 0, 0.1, …, 1 of the maximal precision at
  /// recall ≥ t; otherwise the area under the monotone precision envelope (mmdet 'area').
  public func mmdetMAP(iouThreshold: Float = 0.5, use11Points: Bool = true) -> MMDetMAPResult {
    var perClassAP = [Double](), counts = [Int]()
    for classIndex in 0..<classCount {
      var scores = [Float](), truePositive = [Bool](), falsePositive = [Bool]()
      var groundTruthCount = 0
      for image in 0..<imageCount {
        let dets = detections[image][classIndex]
        let objects = groundTruths[image].filter { $0.classIndex == classIndex }
        // vstack(gt_bboxes, gt_bboxes_ignore): non-difficult first, then difficult.
        let ordered = objects.filter { !$0.isDifficult } + objects.filter(\.isDifficult)
        groundTruthCount += objects.count { !$0.isDifficult }
        let (tp, fp) = mmdetTPFP(dets, ordered, iouThreshold: iouThreshold)
        scores += dets.map(\.score)
        truePositive += tp
        falsePositive += fp
      }
      let order = stableOrderByDecreasingScore(scores)
      let recallDenominator = max(Double(groundTruthCount), Double(Float.ulpOfOne))
      var recalls = [Double](), precisions = [Float]()
      var tpSum: Float = 0, fpSum: Float = 0
      for index in order {
        tpSum += truePositive[index] ? 1 : 0
        fpSum += falsePositive[index] ? 1 : 0
        recalls.append(Double(tpSum) / recallDenominator)
        precisions.append(tpSum / max(tpSum + fpSum, Float.ulpOfOne))
      }
      let ap = use11Points ? elevenPointAPFloat(recalls: recalls, precisions: precisions)
        : Double(Float(areaAP(recalls: recalls, precisions: precisions.map(Double.init))))
      perClassAP.append(ap)
      counts.append(groundTruthCount)
    }
    let counted = zip(perClassAP, counts).filter { $0.1 > 0 }.map { Float($0.0) }
    let mean = counted.isEmpty ? 0 : Double(counted.reduce(0, +) / Float(counted.count))
    return MMDetMAPResult(mAP: mean, perClassAP: perClassAP, groundTruthCounts: counts)
  }

  /// `tpfp_default` for one image and class, `area_ranges=None`, legacy coordinates.
  private func mmdetTPFP(_ dets: [ScoredBox], _ objects: [GroundTruthObject],
                         iouThreshold: Float) -> (tp: [Bool], fp: [Bool]) {
    var tp = [Bool](repeating: false, count: dets.count), fp = tp
    if objects.isEmpty { return (tp, [Bool](repeating: true, count: dets.count)) }
    var covered = [Bool](repeating: false, count: objects.count)
    for i in stableOrderByDecreasingScore(dets.map(\.score)) {
      var best: Float = -.infinity, bestIndex = 0
      for (j, object) in objects.enumerated() {
        let iou = mmdetLegacyIoU(dets[i].box, object.box)
        if iou > best { (best, bestIndex) = (iou, j) }
      }
      if best >= iouThreshold {
        if !objects[bestIndex].isDifficult {
          if covered[bestIndex] { fp[i] = true } else { covered[bestIndex] = true; tp[i] = true }
        }
      } else {
        fp[i] = true
      }
    }
    return (tp, fp)
  }

  // MARK: - detectron2

  /// detectron2 `PascalVOCDetectionEvaluator` (`use07Metric` = the dataset is VOC2007: 11-point AP; otherwise the
  /// all-point area). It reproduces the result-file round trip: each detection is written as
  /// `f"{score:.3f} {x1 + 1:.1f} {y1 + 1:.1f} {x2:.1f} {y2:.1f}"` and the ground truth read back with the same +1 on
  /// x1/y1, so scores are compared at 3 decimals and coordinates at 0.1 pixel. Per threshold t: detections sorted by
  /// score (stable), each takes its image's argmax ground truth (IoU with +1 widths, Float64) when IoU > t; difficult
  /// → neither, already matched → FP.
  public func detectron2(use07Metric: Bool = true) -> Detectron2VOCResult {
    var perThreshold = [[Double]]()
    // The per-class files: (image, rounded score, rounded box), in image order then the given order.
    let written: [[(image: Int, score: Double, box: [Double])]] = (0..<classCount).map { classIndex in
      (0..<imageCount).flatMap { image in
        detections[image][classIndex].map { det in
          (image, roundedText(Double(det.score), decimals: 3),
           [roundedText(Double(det.box.x1 + 1), decimals: 1), roundedText(Double(det.box.y1 + 1), decimals: 1),
            roundedText(Double(det.box.x2), decimals: 1), roundedText(Double(det.box.y2), decimals: 1)])
        }
      }
    }
    for percent in Detectron2VOCResult.iouThresholdsPercent {
      let threshold = Double(percent) / 100
      perThreshold.append((0..<classCount).map { classIndex in
        100 * detectron2ClassAP(written[classIndex], classIndex: classIndex, threshold: threshold,
                                use07Metric: use07Metric)
      })
    }
    let means = perThreshold.map { $0.reduce(0, +) / Double(classCount) }
    return Detectron2VOCResult(ap: means.reduce(0, +) / Double(means.count), ap50: means[0], ap75: means[5],
                               perClassAP: perThreshold)
  }

  /// `voc_eval` for one class at one threshold.
  private func detectron2ClassAP(_ dets: [(image: Int, score: Double, box: [Double])], classIndex: Int,
                                 threshold: Double, use07Metric: Bool) -> Double {
    // class_recs: this class's objects per image in annotation order, their boxes as parse_rec reads them (+1).
    let objects: [[GroundTruthObject]] = groundTruths.map { $0.filter { $0.classIndex == classIndex } }
    let positives = objects.reduce(0) { $0 + $1.count { !$0.isDifficult } }
    var matched = objects.map { [Bool](repeating: false, count: $0.count) }
    let order = stableOrderByDecreasingScore(dets.map(\.score))
    var tp = [Double](), fp = [Double]()
    var tpSum = 0.0, fpSum = 0.0
    for d in order {
      let (image, bb) = (dets[d].image, dets[d].box)
      var overlapMax = -Double.infinity, jMax = 0
      for (j, object) in objects[image].enumerated() {
        let g = [Double(object.box.x1 + 1), Double(object.box.y1 + 1), Double(object.box.x2), Double(object.box.y2)]
        let iw = max(min(g[2], bb[2]) - max(g[0], bb[0]) + 1, 0)
        let ih = max(min(g[3], bb[3]) - max(g[1], bb[1]) + 1, 0)
        let intersection = iw * ih
        let union = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - intersection
        let overlap = intersection / union
        if overlap > overlapMax { (overlapMax, jMax) = (overlap, j) }
      }
      if overlapMax > threshold {
        if !objects[image][jMax].isDifficult {
          if matched[image][jMax] { fpSum += 1 } else { tpSum += 1; matched[image][jMax] = true }
        }
      } else {
        fpSum += 1
      }
      tp.append(tpSum)
      fp.append(fpSum)
    }
    // rec = tp / npos (NaN for 0/0, ∞ for x/0: both fail every rec ≥ t), prec = tp / max(tp + fp, ε64).
    let recalls = tp.map { $0 / Double(positives) }
    let precisions = zip(tp, fp).map { $0 / max($0 + $1, Double.ulpOfOne) }
    if use07Metric {
      var ap = 0.0
      for i in 0...10 {
        let t = Double(i) * 0.1  // np.arange(0.0, 1.1, 0.1)
        let p = zip(recalls, precisions).filter { $0.0 >= t }.map(\.1).max() ?? 0
        ap += p / 11
      }
      return ap
    }
    return areaAP(recalls: recalls, precisions: precisions)
  }
}

// MARK: - Shared pieces

/// mmdet `bbox_overlaps(…, use_legacy_coordinate=True)` for one pair, in Float32: widths x2 − x1 + 1,
/// union clamped at 1e-6.
func mmdetLegacyIoU(_ a: DetectionBox, _ b: DetectionBox) -> Float {
  let areaA = (a.x2 - a.x1 + 1) * (a.y2 - a.y1 + 1)
  let areaB = (b.x2 - b.x1 + 1) * (b.y2 - b.y1 + 1)
  let w = max(min(a.x2, b.x2) - max(a.x1, b.x1) + 1, 0)
  let h = max(min(a.y2, b.y2) - max(a.y1, b.y1) + 1, 0)
  let overlap = w * h
  return overlap / max(areaA + areaB - overlap, Float(1e-6))
}

/// mmdet `average_precision(mode='11points')`: Float32 sum of the 11 maxima, / 11. The thresholds are
/// `np.arange(0, 1 + 1e-3, 0.1)` = i · 0.1 in double (0.30000000000000004, …), compared with recalls in double.
func elevenPointAPFloat(recalls: [Double], precisions: [Float]) -> Double {
  var ap: Float = 0
  for i in 0...10 {
    let t = Double(i) * 0.1
    ap += zip(recalls, precisions).filter { $0.0 >= t }.map(\.1).max() ?? 0
  }
  return Double(ap / 11)
}

/// The all-point VOC AP (VOC2010+): sentinels (0, 0) and (1, 0), precision made monotone from the right, summed over
/// the recall steps (mmdet 'area', detectron2 `use_07_metric=False`).
func areaAP(recalls: [Double], precisions: [Double]) -> Double {
  let mrec = [0] + recalls + [1]
  var mpre = [0] + precisions + [0]
  for i in stride(from: mpre.count - 1, to: 0, by: -1) { mpre[i - 1] = max(mpre[i - 1], mpre[i]) }
  var ap = 0.0
  for i in 0..<(mrec.count - 1) where mrec[i + 1] != mrec[i] { ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1] }
  return ap
}

/// Indices by decreasing score; equal scores keep their order. The references call numpy's default argsort
/// (introsort, not stable) whose order among exactly equal scores is unspecified; stable is its small-array result.
func stableOrderByDecreasingScore<S: BinaryFloatingPoint>(_ scores: [S]) -> [Int] {
  scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
}

/// `float(f"{value:.{decimals}f}")`: C's correctly rounded formatting of the exact binary value, parsed back.
func roundedText(_ value: Double, decimals: Int) -> Double {
  Double(String(format: "%.\(decimals)f", value)) ?? value
}
