// The evaluator's ground truth from the detection dataset (Datasets cannot name Evaluation's types).
import Datasets

extension GroundTruthObject {
  /// The dataset's object as the evaluator takes it: same box frame, class index and difficult flag.
  public init(_ object: DetectionObject) {
    self.init(box: DetectionBox(object.x1, object.y1, object.x2, object.y2), classIndex: object.classIndex,
              isDifficult: object.isDifficult)
  }
}

extension DetectionDataset {
  /// `groundTruth` as `VOCDetectionEvaluator.add(detections:groundTruth:)` takes it, one list per sample.
  public var evaluatorGroundTruth: [[GroundTruthObject]] { groundTruth.map { $0.map(GroundTruthObject.init) } }
}
