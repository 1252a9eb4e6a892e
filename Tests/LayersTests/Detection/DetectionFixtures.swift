// The golden values of scripts/reference/make_detection_fixtures.py (Fixtures/detection/ops.json): torch / numpy
// re-implementations of torchvision's, detectron2's and mmdet's detection ops, run once by the script.
import Foundation
import Testing
import Tensors

struct DetectionOpsGolden: Decodable {
  struct AnchorCase: Decodable {
    var convention: String, offset: Float, sizes: [Float], ratios: [Float], stride: Int, height: Int, width: Int
    var anchors: [Float]
  }
  struct BoxCodingCase: Decodable {
    var weights: [Float], sources: [Float], targets: [Float], encoded: [Float], deltas: [Float], groups: Int
    var decoded: [Float]
  }
  struct IoUCase: Decodable { var a: [Float], b: [Float], iou: [Float] }
  struct NMSCase: Decodable {
    var boxes: [Float], scores: [Float], classes: [Int], threshold: Double, keep: [Int], batchedKeep: [Int]
  }
  struct MatcherCase: Decodable {
    var name: String, gts: Int, anchors: Int, quality: [Float], matches: [Int], labels: [Int]
  }
  struct SamplerCase: Decodable {
    var labels: [Int], batch: Int, fraction: Double, background: Int, permPositive: [Int], permNegative: [Int]
    var positive: [Int], negative: [Int]
  }
  struct ROIAlignCase: Decodable {
    var outputHeight: Int, outputWidth: Int, samplingRatio: Int, aligned: Bool, spatialScale: Float
    var featureShape: [Int], features: [Float], rois: [Float], output: [Float], outputGradient: [Float]
    var featureGradient: [Float]
  }
  struct LossCases: Decodable {
    struct Regression: Decodable { var x: [Float], target: [Float], loss: Float, gradient: [Float] }
    struct Binary: Decodable { var logits: [Float], targets: [Float], weights: [Float], loss: Float, gradient: [Float] }
    struct Softmax: Decodable { var logits: [Float], labels: [Int], loss: Float, gradient: [Float] }
    var images: Int, l1: Regression, bce: Binary, ce: Softmax
  }
  var anchors: [AnchorCase]
  var boxCoding: [BoxCodingCase]
  var iou: IoUCase
  var nms: [NMSCase]
  var matcher: [MatcherCase]
  var sampler: [SamplerCase]
  var roiAlign: [ROIAlignCase]
  var losses: LossCases

  static let shared: DetectionOpsGolden = {
    let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/detection/ops.json")
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(DetectionOpsGolden.self, from: Data(contentsOf: url)) } catch {
      fatalError("Fixtures/detection/ops.json does not load (rerun make_detection_fixtures.py): \(error)")
    }
  }()
}

/// Every |ours − reference| ≤ tolerance · max(|reference|, 1).
func expectClose(_ ours: [Float], _ reference: [Float], tolerance: Float = 1e-5, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(ours.count == reference.count, "\(what): \(ours.count) values, reference has \(reference.count)",
          sourceLocation: sourceLocation)
  guard ours.count == reference.count else { return }
  var worst = (index: -1, error: Float(0))
  for (i, (a, b)) in zip(ours, reference).enumerated() {
    let error = abs(a - b) / max(abs(b), 1)
    if !(error <= worst.error) { worst = (i, error.isNaN ? .infinity : error) }
  }
  let (mine, theirs) = worst.index >= 0 ? (ours[worst.index], reference[worst.index]) : (0, 0)
  let message = "\(what): value \(worst.index) is \(mine), reference \(theirs) (scaled error \(worst.error))"
  #expect(worst.error <= tolerance, Comment(rawValue: message), sourceLocation: sourceLocation)
}

func boxes(_ scalars: [Float]) -> Tensor { Tensor(shape: [scalars.count / 4, 4], scalars: scalars) }
