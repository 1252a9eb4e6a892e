// mmseg 0.x test-time inference (SegmentationInference: slide windows, crop averaging, rescale, argmax) against
// hand-computed cases and torch's EncoderDecoder.slide_inference / whole_inference re-run by
// scripts/reference/make_segmentation_metric_fixtures.py (inference.json).
import Foundation
import Tensors
import Testing
@testable import Evaluation

struct SegmentationInferenceGolden: Decodable {
  struct Case: Decodable {
    var name: String
    var height: Int, width: Int, classCount: Int
    var originalHeight: Int, originalWidth: Int
    var alignCorners: Bool
    /// NHWC `[1, height, width, 3]`.
    var image: [Float]
    /// The analytic model: `[C, 3]` weight, `[C]` bias, `[C, 3]` weight of the crop's channel means.
    var weight: [Float], bias: [Float], context: [Float]
    var crop: [Int]?, stride: [Int]?
    /// `[y1, y2, x1, x2]` per crop, in order.
    var windows: [[Int]]?
    /// torch's logits of each crop (NHWC), for the cases without a final resize.
    var cropLogits: [[Float]]?
    /// NHWC `[1, originalHeight, originalWidth, C]`.
    var logits: [Float]
    var labels: [UInt8]
  }
  var cases: [Case]
  var cityscapesWindows: [[Int]]

  static func load() throws -> SegmentationInferenceGolden {
    let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/segmentation/inference.json")
    return try JSONDecoder().decode(SegmentationInferenceGolden.self, from: Data(contentsOf: url))
  }
}

extension SegmentationInferenceGolden.Case {
  /// The fixture script's `encode_decode`: logits_c = W_c · x + b_c + V_c · mean(crop) per pixel.
  func model(_ crop: Tensor) -> Tensor {
    let (h, w, classes) = (crop.shape[1], crop.shape[2], classCount)
    var means = [Double](repeating: 0, count: 3)
    for pixel in 0..<(h * w) { for k in 0..<3 { means[k] += Double(crop.scalars[pixel * 3 + k]) } }
    let mean = means.map { Float($0 / Double(h * w)) }
    let shift = (0..<classes).map { c in (0..<3).reduce(Float(0)) { $0 + context[c * 3 + $1] * mean[$1] } }
    var logits = [Float](repeating: 0, count: h * w * classes)
    for pixel in 0..<(h * w) {
      for c in 0..<classes {
        var value = bias[c]
        for k in 0..<3 { value += weight[c * 3 + k] * crop.scalars[pixel * 3 + k] }
        logits[pixel * classes + c] = value + shift[c]
      }
    }
    return Tensor(shape: [1, h, w, classes], scalars: logits)
  }

  var mode: SegmentationTestMode {
    guard let crop, let stride else { return .whole }
    return .slide(cropHeight: crop[0], cropWidth: crop[1], strideHeight: stride[0], strideWidth: stride[1])
  }
}

@Suite struct SegmentationInferenceTests {
  // MARK: - By hand

  /// 10 × 7, crop 4, stride 3: rows max(10 − 4 + 2, 0)/3 + 1 = 3 → [0,4) [3,7) [6,10); columns
  /// max(7 − 4 + 2, 0)/3 + 1 = 2 → [0,4) [3,7) (the second moved back from [3,7) — it already ends at 7).
  @Test func slideWindowsByHand() {
    let windows = SegmentationInference.slideWindows(height: 10, width: 7, cropHeight: 4, cropWidth: 4,
                                                     strideHeight: 3, strideWidth: 3)
    let expected = [(0..<4, 0..<4), (0..<4, 3..<7), (3..<7, 0..<4), (3..<7, 3..<7), (6..<10, 0..<4), (6..<10, 3..<7)]
    #expect(windows == expected.map { SlideWindow(y: $0.0, x: $0.1) })
    // 12 wide, crop 5, stride 4: max(12 − 5 + 3, 0)/4 + 1 = 3 → starts 0, 4, 8 → the last [8,13) is cut to
    // [8,12) and moved back to [7,12).
    #expect(SegmentationInference.slideWindows(height: 1, width: 12, cropHeight: 1, cropWidth: 5, strideHeight: 1,
                                               strideWidth: 4).map(\.x) == [0..<5, 4..<9, 7..<12])
    // An image smaller than the crop: one window, the whole image.
    #expect(SegmentationInference.slideWindows(height: 3, width: 2, cropHeight: 769, cropWidth: 769,
                                               strideHeight: 513, strideWidth: 513)
      == [SlideWindow(y: 0..<3, x: 0..<2)])
  }

  /// Cityscapes at full size (1024 × 2048, crop 769, stride 513): rows (1024 − 769 + 512)/513 + 1 = 2,
  /// columns (2048 − 769 + 512)/513 + 1 = 4; the last row starts at 1024 − 769 = 255, the last column at
  /// 2048 − 769 = 1279. Also the torch reproduction's list.
  @Test func cityscapesWindows() throws {
    let windows = SegmentationInference.slideWindows(height: 1024, width: 2048, cropHeight: 769, cropWidth: 769,
                                                     strideHeight: 513, strideWidth: 513)
    let rows = [0..<769, 255..<1024], columns = [0..<769, 513..<1282, 1026..<1795, 1279..<2048]
    #expect(windows == rows.flatMap { y in columns.map { SlideWindow(y: y, x: $0) } })
    let golden = try SegmentationInferenceGolden.load().cityscapesWindows
    #expect(windows.map { [$0.y.lowerBound, $0.y.upperBound, $0.x.lowerBound, $0.x.upperBound] } == golden)
    guard case let .slide(cropHeight, cropWidth, strideHeight, strideWidth) = SegmentationTestMode.cityscapes769
    else { Issue.record("cityscapes769 is not a slide mode"); return }
    #expect([cropHeight, cropWidth, strideHeight, strideWidth] as [Int] == [769, 769, 513, 513])
  }

  /// A model whose logits tell where the crop is: channel 0 = y1 + 100·x1 of the crop (read from an image whose
  /// channels hold the absolute row and column), channel 1 = the pixel's own row. Windows as in
  /// `slideWindowsByHand`; a pixel's channel 0 is the mean of y1 + 100·x1 over the crops covering it.
  @Test func slideAveragesOverlappingCropsByHand() {
    let (height, width) = (10, 7)
    var scalars: [Float] = []
    for y in 0..<height { for x in 0..<width { scalars += [Float(y), Float(x), 0] } }
    let image = Tensor(shape: [1, height, width, 3], scalars: scalars)
    var calls = 0
    let logits = SegmentationInference.slide(
      image: image, cropHeight: 4, cropWidth: 4, strideHeight: 3, strideWidth: 3, originalHeight: height,
      originalWidth: width, alignCorners: false
    ) { crop in
      calls += 1
      let (y1, x1) = (crop.scalars[0], crop.scalars[1])
      let pixels = crop.shape[1] * crop.shape[2]
      return Tensor(shape: [1, crop.shape[1], crop.shape[2], 2],
                    scalars: (0..<pixels).flatMap { [y1 + 100 * x1, crop.scalars[$0 * 3]] })
    }
    #expect(calls == 6)
    #expect(logits.shape == [1, 10, 7, 2])
    func at(_ y: Int, _ x: Int, _ c: Int) -> Float { logits.scalars[(y * width + x) * 2 + c] }
    #expect(at(0, 0, 0) == 0)  // crop (0, 0) only
    #expect(at(3, 3, 0) == 151.5)  // crops (0,0) (0,3) (3,0) (3,3): (0 + 300 + 3 + 303) / 4
    #expect(at(6, 5, 0) == 304.5)  // crops (3,3) (6,3): (303 + 306) / 2
    #expect(at(9, 6, 0) == 306)  // crop (6, 3) only
    #expect(at(4, 1, 0) == 3)  // crop (3, 0) only
    for y in 0..<height { for x in 0..<width { #expect(at(y, x, 1) == Float(y)) } }
  }

  /// Whole mode at the original size is the model's logits untouched; the labels are their argmax.
  @Test func wholeWithoutRescaleIsTheModel() throws {
    let image = Tensor(shape: [1, 2, 3, 3], scalars: (0..<18).map { Float($0) })
    let model: SegmentationLogits = { crop in
      Tensor(shape: [1, 2, 3, 2], scalars: (0..<6).flatMap { [crop.scalars[$0 * 3], 8 - crop.scalars[$0 * 3]] })
    }
    let logits = try SegmentationInference.logits(image: image, mode: .whole, originalHeight: 2, originalWidth: 3,
                                                  alignCorners: false, model: model)
    #expect(logits == (try model(image)))
    // Channel 0 is 0, 3, 6, …, 15 and channel 1 is 8 − that: class 1 for the first two pixels.
    let labels = try SegmentationInference.labels(image: image, mode: .whole, originalHeight: 2, originalWidth: 3,
                                                  alignCorners: false, model: model)
    #expect(labels == [1, 1, 0, 0, 0, 0])
  }

  // MARK: - Against torch

  /// Fed torch's own logits crop by crop, the averaged logits are torch's to the bit (float32 sums in crop order,
  /// one division), and so are the labels.
  @Test func slideSumsAndDividesLikeTorchToTheBit() throws {
    let golden = try SegmentationInferenceGolden.load()
    let testCase = try #require(golden.cases.first { $0.cropLogits != nil })
    let cropLogits = try #require(testCase.cropLogits)
    let image = Tensor(shape: [1, testCase.height, testCase.width, 3], scalars: testCase.image)
    var next = 0
    let logits = SegmentationInference.logits(
      image: image, mode: testCase.mode, originalHeight: testCase.originalHeight,
      originalWidth: testCase.originalWidth, alignCorners: testCase.alignCorners
    ) { crop in
      defer { next += 1 }
      return Tensor(shape: [1, crop.shape[1], crop.shape[2], testCase.classCount], scalars: cropLogits[next])
    }
    #expect(next == cropLogits.count)
    #expect(logits.scalars.map(\.bitPattern) == testCase.logits.map(\.bitPattern))
    #expect(argmaxLabels(logits: logits) == testCase.labels)
  }

  @Test func goldenCasesMatchTorch() throws {
    let golden = try SegmentationInferenceGolden.load()
    #expect(golden.cases.count == 5)
    for testCase in golden.cases {
      let image = Tensor(shape: [1, testCase.height, testCase.width, 3], scalars: testCase.image)
      if let windows = testCase.windows, let crop = testCase.crop, let stride = testCase.stride {
        let ours = SegmentationInference.slideWindows(height: testCase.height, width: testCase.width,
                                                      cropHeight: crop[0], cropWidth: crop[1],
                                                      strideHeight: stride[0], strideWidth: stride[1])
        #expect(ours.map { [$0.y.lowerBound, $0.y.upperBound, $0.x.lowerBound, $0.x.upperBound] } == windows,
                "\(testCase.name)")
      }
      let logits = SegmentationInference.logits(
        image: image, mode: testCase.mode, originalHeight: testCase.originalHeight,
        originalWidth: testCase.originalWidth, alignCorners: testCase.alignCorners, model: testCase.model)
      #expect(logits.shape == [1, testCase.originalHeight, testCase.originalWidth, testCase.classCount])
      let scale = max(1, testCase.logits.map(abs).max() ?? 1)
      let error = zip(logits.scalars, testCase.logits).map { abs($0 - $1) }.max() ?? .infinity
      #expect(error <= 1e-5 * scale, "\(testCase.name): max error \(error)")
      #expect(argmaxLabels(logits: logits) == testCase.labels, "\(testCase.name)")
      #expect(SegmentationInference.labels(
        image: image, mode: testCase.mode, originalHeight: testCase.originalHeight,
        originalWidth: testCase.originalWidth, alignCorners: testCase.alignCorners, model: testCase.model)
        == testCase.labels, "\(testCase.name)")
    }
  }
}
