// cocoeval.py summarize(): the 12 numbers of a box / mask evaluation and the lines pycocotools prints for them.
import Foundation

public enum COCOSummary {
  /// One summary number: AP (precision) or AR (recall), at one IoU threshold or all, one area range, one cap.
  public struct Metric: Sendable, Equatable {
    public var averagePrecision: Bool
    public var iouThreshold: Double?
    public var area: String
    public var maxDetections: Int
  }

  /// The 12 metrics in cocoeval's `_summarizeDets` order (stats[0] … stats[11]).
  public static func metrics(_ parameters: COCOEvalParameters) -> [Metric] {
    let caps = parameters.maxDetections
    precondition(caps.count == 3, "the COCO summary needs 3 detection caps, got \(caps)")
    return [
      Metric(averagePrecision: true, iouThreshold: nil, area: "all", maxDetections: 100),
      Metric(averagePrecision: true, iouThreshold: 0.5, area: "all", maxDetections: caps[2]),
      Metric(averagePrecision: true, iouThreshold: 0.75, area: "all", maxDetections: caps[2]),
      Metric(averagePrecision: true, iouThreshold: nil, area: "small", maxDetections: caps[2]),
      Metric(averagePrecision: true, iouThreshold: nil, area: "medium", maxDetections: caps[2]),
      Metric(averagePrecision: true, iouThreshold: nil, area: "large", maxDetections: caps[2]),
      Metric(averagePrecision: false, iouThreshold: nil, area: "all", maxDetections: caps[0]),
      Metric(averagePrecision: false, iouThreshold: nil, area: "all", maxDetections: caps[1]),
      Metric(averagePrecision: false, iouThreshold: nil, area: "all", maxDetections: caps[2]),
      Metric(averagePrecision: false, iouThreshold: nil, area: "small", maxDetections: caps[2]),
      Metric(averagePrecision: false, iouThreshold: nil, area: "medium", maxDetections: caps[2]),
      Metric(averagePrecision: false, iouThreshold: nil, area: "large", maxDetections: caps[2]),
    ]
  }

  /// The 12 numbers: the mean of the selected precision (or recall) entries that are not −1, in numpy's C order
  /// and with numpy's pairwise summation (so the mean is bit-identical to `np.mean(s[s > -1])`); −1 if none.
  public static func stats(_ result: COCOEvaluationResult) -> [Double] {
    metrics(result.parameters).map { value(of: $0, in: result) }
  }

  static func value(of metric: Metric, in result: COCOEvaluationResult) -> Double {
    let p = result.parameters
    let T = p.iouThresholds.count, R = p.recallThresholds.count, K = result.categoryIDs.count
    let A = p.areaRanges.count, M = p.maxDetections.count
    let thresholds = metric.iouThreshold.map { threshold in p.iouThresholds.indices.filter { p.iouThresholds[$0] == threshold } }
      ?? Array(0..<T)
    let areas = p.areaLabels.indices.filter { p.areaLabels[$0] == metric.area }
    let caps = p.maxDetections.indices.filter { p.maxDetections[$0] == metric.maxDetections }
    var selected: [Double] = []
    // s[t][r][k][a][m] (precision) or s[t][k][a][m] (recall), C order over the selected indices.
    for t in thresholds {
      for r in 0..<(metric.averagePrecision ? R : 1) {
        for k in 0..<K {
          for a in areas {
            for m in caps {
              let value = metric.averagePrecision
                ? result.precision[(((t * R + r) * K + k) * A + a) * M + m]
                : result.recall[((t * K + k) * A + a) * M + m]
              if value > -1 { selected.append(value) }
            }
          }
        }
      }
    }
    return selected.isEmpty ? -1 : pairwiseSum(selected[...]) / Double(selected.count)
  }

  /// numpy's pairwise summation (`pairwise_sum` in loops_utils.h): 8 accumulators up to 128 values, halves above.
  static func pairwiseSum(_ values: ArraySlice<Double>) -> Double {
    let n = values.count, start = values.startIndex
    if n < 8 {
      return values.reduce(0.0, +)
    } else if n <= 128 {
      var lanes = Array(values[start..<(start + 8)])
      var i = 8
      while i < n - n % 8 {
        for j in 0..<8 { lanes[j] += values[start + i + j] }
        i += 8
      }
      var sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
      while i < n {
        sum += values[start + i]
        i += 1
      }
      return sum
    } else {
      var half = n / 2
      half -= half % 8
      return pairwiseSum(values[start..<(start + half)]) + pairwiseSum(values[(start + half)...])
    }
  }

  /// pycocotools' line for one metric:
  /// ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.378`.
  public static func line(_ metric: Metric, value: Double, parameters: COCOEvalParameters) -> String {
    let title = metric.averagePrecision ? "Average Precision" : "Average Recall"
    let kind = metric.averagePrecision ? "(AP)" : "(AR)"
    let iou = metric.iouThreshold.map { String(format: "%0.2f", $0) }
      ?? String(format: "%0.2f:%0.2f", parameters.iouThresholds.first!, parameters.iouThresholds.last!)
    let padded = { (text: String, width: Int, left: Bool) -> String in
      let fill = String(repeating: " ", count: max(0, width - text.count))
      return left ? text + fill : fill + text
    }
    return " \(padded(title, 18, true)) \(kind) @[ IoU=\(padded(iou, 9, true)) | area=\(padded(metric.area, 6, false))"
      + " | maxDets=\(padded(String(metric.maxDetections), 3, false)) ] = \(String(format: "%0.3f", value))"
  }

  /// The 12 lines, as `COCOeval.summarize()` prints them.
  public static func lines(_ result: COCOEvaluationResult) -> [String] {
    let values = stats(result)
    return zip(metrics(result.parameters), values).map { line($0, value: $1, parameters: result.parameters) }
  }

  /// The stats as a json object: iou type, metric names and full-precision values (round-trip doubles).
  public static func json(_ result: COCOEvaluationResult) -> Data {
    let names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    let values = stats(result)
    var text = "{\n  \"iou_type\": \"\(result.iouType.rawValue)\",\n  \"stats\": ["
    text += values.map { "\($0)" }.joined(separator: ", ") + "],\n"
    text += zip(names, values).map { "  \"\($0)\": \($1)" }.joined(separator: ",\n") + "\n}\n"
    return Data(text.utf8)
  }
}
