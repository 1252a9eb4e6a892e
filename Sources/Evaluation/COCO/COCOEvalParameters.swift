// pycocotools' default detection parameters (cocoeval.py Params.setDetParams), with its numpy values bit for bit.

/// What a box or mask evaluation compares.
public enum COCOIoUType: String, Sendable, CaseIterable {
  /// Box IoU (`bbIou`) on [x, y, w, h].
  case bbox
  /// Mask IoU (`rleIou`) on run-length-encoded masks; polygons are rasterised as `rleFrPoly` does.
  case segm
}

/// The evaluation grid: T IoU thresholds × R recall points × A area ranges × M detection caps.
public struct COCOEvalParameters: Sendable, Equatable {
  /// IoU thresholds .50:.05:.95 (T = 10), as `np.linspace(.5, 0.95, 10)`.
  public var iouThresholds: [Double]
  /// Recall points 0:.01:1 (R = 101), as `np.linspace(.0, 1.00, 101)`.
  public var recallThresholds: [Double]
  /// Detections per image counted, ascending (pycocotools sorts them): [1, 10, 100].
  public var maxDetections: [Int]
  /// Object area ranges in pixels², both ends included: all [0, 1e10], small [0, 32²], medium [32², 96²],
  /// large [96², 1e10].
  public var areaRanges: [(lower: Double, upper: Double)]
  public var areaLabels: [String]

  public init() {
    iouThresholds = Self.linspace(0.5, 0.95, count: 10)
    recallThresholds = Self.linspace(0.0, 1.0, count: 101)
    maxDetections = [1, 10, 100]
    areaRanges = [(0, 1e10), (0, 1024), (1024, 9216), (9216, 1e10)]
    areaLabels = ["all", "small", "medium", "large"]
  }

  /// `np.linspace(start, stop, count)` with numpy's arithmetic: i · ((stop − start) / (count − 1)) + start, the
  /// last value set to `stop` exactly (so 0.75 in the thresholds is the double that `np.where(.75 == iouThrs)`
  /// finds).
  public static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    precondition(count >= 2, "linspace needs at least 2 points, got \(count)")
    let step = (stop - start) / Double(count - 1)
    var values = (0..<count).map { Double($0) * step + start }
    values[count - 1] = stop
    return values
  }

  public static func == (a: COCOEvalParameters, b: COCOEvalParameters) -> Bool {
    a.iouThresholds == b.iouThresholds && a.recallThresholds == b.recallThresholds
      && a.maxDetections == b.maxDetections && a.areaLabels == b.areaLabels
      && a.areaRanges.map(\.lower) == b.areaRanges.map(\.lower)
      && a.areaRanges.map(\.upper) == b.areaRanges.map(\.upper)
  }
}
