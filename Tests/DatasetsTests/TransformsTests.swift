// Transforms against Pillow: Tests/DatasetsTests/Fixtures/transforms/transforms.json is written by
// scripts/reference/make_transform_fixtures.py (Pillow 13 through torchvision's PIL code paths, re-implemented
// there because torchvision is not installed). Each case fixes the random parameters; the test runs the same
// deterministic op and compares every byte.
import Foundation
import Testing
import Datasets
import Tensors
import TestSupport

struct EncodedImage: Decodable {
  var width: Int
  var height: Int
  var channels: Int
  var pixels: Data  // base64 in the JSON

  var image: Image { Image(width: width, height: height, channels: channels, pixels: [UInt8](pixels)) }
}

struct TransformCase: Decodable {
  var op: String
  var input: String
  var width: Int?
  var height: Int?
  var size: Int?
  var x: Int?
  var y: Int?
  var outputWidth: Int?
  var outputHeight: Int?
  var factor: Float?
  var radius: Float?
  var order: [Int]?
  var brightness: Float?
  var contrast: Float?
  var saturation: Float?
  var hue: Float?
  var alpha: [Float]?
  var expected: EncodedImage?
  var tensor: [Float]?

  var jitter: ColorJitterParameters {
    ColorJitterParameters(order: order!, brightness: brightness, contrast: contrast, saturation: saturation, hue: hue)
  }
  var label: String {
    "\(op)(\(input)) w=\(width ?? -1) h=\(height ?? -1) factor=\(factor ?? .nan) radius=\(radius ?? .nan)"
  }
}

struct TransformFixtures: Decodable {
  /// The Pillow version that wrote the file (resize-rule fixtures only).
  var pillow: String?
  var inputs: [String: EncodedImage]
  var cases: [TransformCase]

  /// Fixtures/transforms/`name`.json (transforms.json, or resize_rule_pillow9 / resize_rule_pillow13.json).
  static func load(_ name: String = "transforms") throws -> TransformFixtures {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "json",
                                             subdirectory: "Fixtures/transforms"))
    return try JSONDecoder().decode(TransformFixtures.self, from: Data(contentsOf: url))
  }

  func input(_ testCase: TransformCase) -> Image { inputs[testCase.input]!.image }

  /// Runs `body` on every case of `op` and checks it against Pillow: same size, every byte within `tolerance`.
  /// Returns the largest difference seen.
  @discardableResult
  func check(_ op: String, tolerance: Int, _ body: (Image, TransformCase) -> Image) -> Int {
    let selected = cases.filter { $0.op == op }
    #expect(!selected.isEmpty, "no fixture cases for \(op)")
    var worst = 0
    for testCase in selected {
      let expected = testCase.expected!.image
      let actual = body(input(testCase), testCase)
      #expect(actual.width == expected.width && actual.height == expected.height
                && actual.channels == expected.channels,
              "\(testCase.label): got \(actual.width)×\(actual.height)×\(actual.channels), Pillow \(expected.width)×\(expected.height)×\(expected.channels)")
      guard actual.pixels.count == expected.pixels.count else { continue }
      let differences = zip(actual.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }
      let largest = differences.max() ?? 0
      let off = differences.filter { $0 > 0 }.count
      worst = max(worst, largest)
      #expect(largest <= tolerance,
              "\(testCase.label): \(off) of \(differences.count) bytes differ from Pillow, by up to \(largest)")
    }
    return worst
  }
}

@Suite struct TransformsTests {
  let fixtures: TransformFixtures

  init() throws { fixtures = try TransformFixtures.load() }

  // MARK: Geometry

  @Test func resizeMatchesPillowBilinear() {
    fixtures.check("resize", tolerance: 0) { image, c in image.resized(width: c.width!, height: c.height!) }
  }

  @Test func shortSideResizeMatchesTorchvision() {
    fixtures.check("resizeShortSide", tolerance: 0) { image, c in image.resizedShortSide(to: c.size!) }
    // int(256 · long / short): 500×375 → 341×256, 375×500 → 256×341, 256×256 unchanged.
    #expect(Image.shortSideSize(width: 500, height: 375, size: 256) == (341, 256))
    #expect(Image.shortSideSize(width: 375, height: 500, size: 256) == (256, 341))
    #expect(Image.shortSideSize(width: 333, height: 500, size: 256) == (256, 384))
  }

  @Test func cropPadsWithZeros() {
    fixtures.check("crop", tolerance: 0) { image, c in image.cropped(x: c.x!, y: c.y!, width: c.width!, height: c.height!) }
  }

  @Test func centerCropRoundsLikeTorchvision() {
    fixtures.check("centerCrop", tolerance: 0) { image, c in image.centerCropped(width: c.width!, height: c.height!) }
  }

  @Test func horizontalFlip() {
    fixtures.check("flip", tolerance: 0) { image, _ in image.flippedHorizontally() }
    let image = Image(width: 3, height: 1, channels: 1, pixels: [1, 2, 3])
    #expect(image.flippedHorizontally().pixels == [3, 2, 1])
  }

  @Test func resizedCropMatchesTorchvision() {
    fixtures.check("resizedCrop", tolerance: 0) { image, c in
      resizedCrop(image, x: c.x!, y: c.y!, width: c.width!, height: c.height!,
                  outputWidth: c.outputWidth!, outputHeight: c.outputHeight!)
    }
  }

  // MARK: Colour

  @Test func brightnessContrastSaturation() {
    fixtures.check("brightness", tolerance: 0) { image, c in adjustBrightness(image, factor: c.factor!) }
    fixtures.check("contrast", tolerance: 0) { image, c in adjustContrast(image, factor: c.factor!) }
    fixtures.check("saturation", tolerance: 0) { image, c in adjustSaturation(image, factor: c.factor!) }
  }

  @Test func hueMatchesPillowHSVRoundTrip() {
    fixtures.check("hue", tolerance: 0) { image, c in adjustHue(image, factor: c.factor!) }
  }

  @Test func grayscale() {
    fixtures.check("grayscale", tolerance: 0) { image, _ in rgbToGrayscale(image) }
  }

  @Test func colorJitterInGivenOrder() {
    fixtures.check("colorJitter", tolerance: 0) { image, c in colorJitter(image, c.jitter) }
  }

  @Test func gaussianBlurMatchesPillow() {
    fixtures.check("gaussianBlur", tolerance: 0) { image, c in gaussianBlur(image, radius: c.radius!) }
  }

  // MARK: Whole view and tensors

  @Test func simSiamViewWithFixedParameters() {
    let augmentation = SimSiamAugmentation(size: 32)
    fixtures.check("simsiamView", tolerance: 0) { image, c in
      let parameters = SimSiamAugmentation.Parameters(
        crop: CropBox(x: c.x!, y: c.y!, width: c.width!, height: c.height!), colorJitter: c.jitter,
        grayscale: true, blurRadius: c.radius!, flip: true)
      return augmentation.augmentedImage(image, parameters: parameters)
    }
  }

  @Test func toTensorNormalizesLikeTorchvision() throws {
    for op in ["toTensor", "toTensorLighting"] {
      let c = try #require(fixtures.cases.first { $0.op == op })
      let image = fixtures.input(c)
      let offsets = c.alpha.map { Lighting.offsets(alpha: $0) } ?? []
      let tensor = image.toTensor(normalization: .imagenet, offsets: offsets)
      #expect(tensor.shape == [image.height, image.width, 3])
      expectClose(tensor, Tensor(shape: tensor.shape, scalars: c.tensor!), rtol: 1e-6, atol: 1e-6)
    }
    // By hand: 255 in the red channel → (1 − 0.485) / 0.229.
    let white = Image(width: 1, height: 1, channels: 3, value: 255).toTensor()
    #expect(abs(white.scalars[0] - (1 - 0.485) / 0.229) < 1e-6)
  }

  @Test func collateStacksNHWC() {
    let a = Image(width: 2, height: 1, channels: 1, pixels: [0, 255])
    let b = Image(width: 2, height: 1, channels: 1, pixels: [51, 102])
    let unit = Normalization.unit(channels: 1)
    let batch = collate([a, b], normalization: unit)
    #expect(batch.shape == [2, 1, 2, 1])
    #expect(batch.scalars == [0, 1, 0.2, 0.4])
    #expect(collate([a.toTensor(normalization: unit), b.toTensor(normalization: unit)]) == batch)
  }
}
