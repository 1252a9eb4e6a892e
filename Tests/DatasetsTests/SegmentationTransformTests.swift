// mmseg 0.x's segmentation transforms against OpenCV: Tests/DatasetsTests/Fixtures/segmentation/
// segmentation_transforms.json is written by scripts/reference/make_segmentation_transform_fixtures.py (cv2 5.1
// called as mmcv 1.x calls it; mmseg's transform code re-implemented there with the random draws fixed). Every
// comparison is exact: bytes equal, floats bit-equal.
import Foundation
import Testing
import Datasets
import Tensors

struct SegmentationPhotometricJSON: Decodable {
  var brightness: Double?
  var contrastFirst: Bool
  var contrast: Double?
  var saturation: Double?
  var hue: Int?

  var parameters: PhotoMetricDistortion.Parameters {
    .init(brightness: brightness, contrastFirst: contrastFirst, contrast: contrast, saturation: saturation, hue: hue)
  }
}

struct SegmentationDecisionsJSON: Decodable {
  var ratio: Double?
  var candidates: [[Int]]
  var flip: Bool
  var photometric: SegmentationPhotometricJSON
}

struct SegmentationTransformCase: Decodable {
  var op: String
  var input: String?
  var image: String?
  var label: String?
  var width: Int?
  var height: Int?
  var scale: [Int]?
  var ratio: Double?
  var target: [Int]?
  var crop: [Int]?
  var candidates: [[Int]]?
  var accepts: [Bool]?
  var used: Int?
  var value: Double?
  var parameters: SegmentationPhotometricJSON?
  var decisions: SegmentationDecisionsJSON?
  var resized: [Int]?
  var shape: [Int]?
  var expected: AnyExpected?
  var tensor: [Float]?
  var expected_label: EncodedImage?

  /// `expected` is an image for most ops and a [w, h] pair for rescale_size.
  enum AnyExpected: Decodable {
    case image(EncodedImage), size([Int])
    init(from decoder: Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let size = try? container.decode([Int].self) { self = .size(size) } else {
        self = .image(try container.decode(EncodedImage.self))
      }
    }
    var image: Image? { if case let .image(encoded) = self { encoded.image } else { nil } }
    var size: [Int]? { if case let .size(size) = self { size } else { nil } }
  }
}

struct SegmentationTransformFixtures: Decodable {
  var images: [String: EncodedImage]
  var cases: [SegmentationTransformCase]

  static let shared: SegmentationTransformFixtures = {
    let url = Bundle.module.url(forResource: "segmentation_transforms", withExtension: "json",
                                subdirectory: "Fixtures/segmentation")!
    return try! JSONDecoder().decode(SegmentationTransformFixtures.self, from: Data(contentsOf: url))
  }()

  func image(_ name: String?) -> Image { images[name!]!.image }
  func cases(_ op: String) -> [SegmentationTransformCase] { cases.filter { $0.op == op } }
}

/// The number of bytes that differ, and the largest difference.
private func differences(_ a: Image, _ b: Image) -> (count: Int, largest: Int) {
  guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return (Int.max, Int.max) }
  let d = zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }
  return (d.count { $0 > 0 }, d.max() ?? 0)
}

@Suite struct SegmentationTransformTests {
  let fixtures = SegmentationTransformFixtures.shared

  func expectSame(_ actual: Image, _ expected: Image, _ label: String) {
    let (count, largest) = differences(actual, expected)
    #expect(count == 0, "\(label): \(actual.width)×\(actual.height) vs \(expected.width)×\(expected.height); \(count) bytes differ, by up to \(largest)")
  }

  @Test func rescaleSizeMatchesMMCV() {
    let cases = fixtures.cases("rescale_size")
    #expect(cases.count >= 6)
    for c in cases {
      let resize = SegmentationResize(scale: (c.scale![0], c.scale![1]))
      let target = resize.targetScale(ratio: c.ratio)
      #expect([target.0, target.1] == c.target!, "ratio \(String(describing: c.ratio))")
      let size = SegmentationResize.rescaledSize(width: c.width!, height: c.height!, scale: target)
      #expect([size.width, size.height] == c.expected!.size!, "\(c.width!)×\(c.height!) to \(target)")
    }
  }

  @Test func bilinearResizeMatchesOpenCVInterLinear() {
    let cases = fixtures.cases("resize_linear")
    #expect(cases.count >= 10)
    for c in cases {
      let actual = fixtures.image(c.input).resizedLikeOpenCVLinear(width: c.width!, height: c.height!)
      expectSame(actual, c.expected!.image!, "INTER_LINEAR \(c.input!) → \(c.width!)×\(c.height!)")
    }
  }

  @Test func nearestResizeMatchesOpenCVInterNearest() {
    let cases = fixtures.cases("resize_nearest")
    #expect(cases.count >= 3)
    for c in cases {
      let actual = fixtures.image(c.input).resizedLikeOpenCVNearest(width: c.width!, height: c.height!)
      expectSame(actual, c.expected!.image!, "INTER_NEAREST → \(c.width!)×\(c.height!)")
    }
  }

  @Test func randomCropAcceptsAndChoosesAsMMSeg() {
    let cases = fixtures.cases("random_crop")
    #expect(cases.count >= 3)
    for c in cases {
      let crop = SegmentationRandomCrop(height: c.crop![0], width: c.crop![1], catMaxRatio: 0.75)
      let label = fixtures.image(c.input)
      let candidates = c.candidates!.map { CropOffset(y: $0[0], x: $0[1]) }
      #expect(candidates.map { crop.accepts(label: label, offset: $0) } == c.accepts!)
      var drawn = 0
      let chosen = crop.chooseOffset(label: label) {
        defer { drawn += 1 }
        return candidates[min(drawn, candidates.count - 1)]
      }
      #expect(chosen == candidates[c.used!], "candidates \(c.candidates!)")
      #expect(drawn <= SegmentationRandomCrop.maximumCandidates)
    }
  }

  @Test func hsvConversionsMatchOpenCV() {
    let toHSV = fixtures.cases("rgb_to_hsv")[0], toRGB = fixtures.cases("hsv_to_rgb")[0]
    expectSame(openCVRGBToHSV(fixtures.image(toHSV.input)), toHSV.expected!.image!, "RGB2HSV")
    expectSame(openCVHSVToRGB(fixtures.image(toRGB.input)), toRGB.expected!.image!, "HSV2RGB")
  }

  @Test func photometricStepsMatchMMSeg() {
    var checked = 0
    for c in fixtures.cases("brightness") + fixtures.cases("contrast") + fixtures.cases("saturation")
      + fixtures.cases("hue") {
      let input = fixtures.image(c.input)
      let actual = switch c.op {
      case "brightness": PhotoMetricDistortion.convert(input, alpha: 1, beta: c.value!)
      case "contrast": PhotoMetricDistortion.convert(input, alpha: c.value!, beta: 0)
      case "saturation": PhotoMetricDistortion.saturated(input, alpha: c.value!)
      default: PhotoMetricDistortion.hueShifted(input, delta: Int(c.value!))
      }
      expectSame(actual, c.expected!.image!, "\(c.op) \(c.value!)")
      checked += 1
    }
    #expect(checked >= 14)
    for c in fixtures.cases("photometric") {
      let actual = PhotoMetricDistortion().apply(fixtures.image(c.input), parameters: c.parameters!.parameters)
      expectSame(actual, c.expected!.image!, "photometric \(c.parameters!.parameters)")
    }
  }

  @Test func normalizeAndPadMatchMMCV() throws {
    let normalize = try #require(fixtures.cases("normalize").first)
    let input = fixtures.image(normalize.input)
    #expect(SegmentationNormalization.imagenet.tensor(input).scalars == normalize.tensor!)
    let padded = try #require(fixtures.cases("normalize_pad").first)
    let tensor = SegmentationNormalization.imagenet.tensor(input, paddedHeight: padded.height!, paddedWidth: padded.width!)
    #expect(tensor.shape == [padded.height!, padded.width!, 3])
    #expect(tensor.scalars == padded.tensor!)
    let label = try #require(fixtures.cases("pad_label").first)
    let bytes = paddedLabel(fixtures.image(label.input), height: label.height!, width: label.width!)
    #expect(bytes == label.expected!.image!.pixels)
  }

  @Test func trainPipelineMatchesMMSegForFixedDecisions() {
    let cases = fixtures.cases("train_pipeline")
    #expect(cases.count >= 2)
    for c in cases {
      let d = c.decisions!
      let pipeline = SegmentationTrainPipeline(scale: (c.scale![0], c.scale![1]), cropSize: (c.crop![0], c.crop![1]))
      let pair = SegmentationPair(image: fixtures.image(c.image), label: fixtures.image(c.label))
      let decisions = SegmentationTrainPipeline.Decisions(
        ratio: d.ratio, cropCandidates: d.candidates.map { CropOffset(y: $0[0], x: $0[1]) }, flip: d.flip,
        photometric: d.photometric.parameters)
      let example = pipeline(pair, decisions: decisions)
      #expect(example.image.shape == [c.crop![0], c.crop![1], 3])
      #expect(example.image.scalars == c.tensor!, "train pipeline ratio \(String(describing: d.ratio))")
      #expect(example.label == c.expected_label!.image.pixels)
    }
  }

  @Test func testPipelineMatchesMMSeg() throws {
    let c = try #require(fixtures.cases("test_pipeline").first)
    let tensor = SegmentationTestPipeline(scale: (c.scale![0], c.scale![1]))(fixtures.image(c.image))
    #expect(tensor.shape == c.shape!)
    #expect(tensor.scalars == c.tensor!)
  }

  @Test func randomTrainPipelineGivesCropSizedExamplesAndValidLabels() {
    let c = fixtures.cases("train_pipeline")[0]
    let pair = SegmentationPair(image: fixtures.image(c.image), label: fixtures.image(c.label))
    let pipeline = SegmentationTrainPipeline(scale: (96, 48), cropSize: (32, 40))
    var generator = SplitMix64(seed: 11)
    let allowed = Set(pair.label.pixels)
    for _ in 0..<8 {
      let example = pipeline(pair, using: &generator)
      #expect(example.image.shape == [32, 40, 3])
      #expect(example.label.count == 32 * 40)
      #expect(Set(example.label).isSubset(of: allowed.union([255])))
    }
  }

  @Test func photometricDrawsStayInMMSegRanges() {
    var generator = SplitMix64(seed: 3)
    let distortion = PhotoMetricDistortion()
    var sawHue = Set<Int>()
    for _ in 0..<400 {
      let p = distortion.parameters(using: &generator)
      if let b = p.brightness { #expect(b >= -32 && b < 32) }
      if let a = p.contrast { #expect(a >= 0.5 && a < 1.5) }
      if let a = p.saturation { #expect(a >= 0.5 && a < 1.5) }
      if let h = p.hue { #expect(h >= -18 && h < 18); sawHue.insert(h) }
    }
    #expect(sawHue.contains(-18) && !sawHue.contains(18))  // numpy randint(-18, 18) excludes 18
  }
}
