import Foundation
import Testing
import Tensors
import Datasets
import Models
@testable import Evaluation

/// Our extractor against PyTorch on the whole path image file → features (fixtures from
/// scripts/reference/make_feature_fixtures.py): PIL decoding and `convert('RGB')`, torchvision's Resize(256) and
/// Resize((224, 224)), ToTensor + Normalize, `model.eval()`, MMSelfSup's `nn.AvgPool2d` kernels with
/// count_include_pad and `.view(n, -1)`; and at 32 × 32 with the CIFAR stem, `F.adaptive_avg_pool2d` to 12/6/4/3/2.
@Suite struct FeatureExtractorTests {
  static let allLayers = FeatureLayer.allCases

  func expectParity(_ features: ExtractedFeatures, case name: String) throws {
    let expected = try FeatureFixtures.expected()
    for layer in Self.allLayers {
      let reference = try #require(expected.tensors["\(name).\(layer.rawValue)"]).value
      let matrix = try #require(features.matrices[layer])
      #expect([matrix.rows, matrix.columns] == reference.shape, "\(name) \(layer.rawValue)")
      guard [matrix.rows, matrix.columns] == reference.shape else { continue }
      let error = matrix.tensor.scaledError(to: reference)
      #expect(error <= 1e-4, "\(name) \(layer.rawValue): scaled error \(error)")
    }
  }

  @Test func svmPipelineAt224MatchesPyTorch() throws {
    let extractor = FeatureExtractor(backbone: try FeatureFixtures.resNet50())
    let request = FeatureExtractionRequest(checkpointSHA256: "fixture", source: try FeatureFixtures.images(),
                                           transform: .svm, layers: Self.allLayers, batchSize: 2)
    let features = try extractor.extract(request)
    #expect(features.pooling == .specified)
    #expect(features.computedLayers == Self.allLayers)
    try expectParity(features, case: "svm224")
  }

  @Test func cifarStemAt32UsesAdaptivePoolingAndMatchesPyTorch() throws {
    let extractor = FeatureExtractor(backbone: try FeatureFixtures.cifarResNet18())
    let transform = EvaluationTransform(resize: 32, size: 32, mode: .squash)
    let request = FeatureExtractionRequest(checkpointSHA256: "fixture", source: try FeatureFixtures.images(),
                                           transform: transform, layers: Self.allLayers, batchSize: 3)
    let features = try extractor.extract(request)
    #expect(features.pooling == .adaptive)
    try expectParity(features, case: "cifar32")
  }

  /// The parity check can fail: the other case's pooling rule on the same features misses the reference.
  @Test func parityCheckDetectsTheWrongPoolingRule() throws {
    let backbone = try FeatureFixtures.resNet50()
    let source = try FeatureFixtures.images()
    let batch = try FeatureExtractor.makeBatch(Array(0..<source.count), source: source, transform: .svm, channels: 3)
    let feature1 = backbone.inferFeatures(batch, upTo: 1)[0]
    let wrong = FeaturePooling.adaptive.pooledFlat(feature1, layer: .feature1)
    let reference = try #require(try FeatureFixtures.expected().tensors["svm224.feature1"]).value
    #expect(wrong.scaledError(to: reference) > 1e-2)
    #expect(FeaturePooling.specified.pooledFlat(feature1, layer: .feature1).scaledError(to: reference) <= 1e-4)
  }

  @Test func streamingMatchesBatchSizeOne() throws {
    var generator = SplitMix64(seed: 21)
    let extractor = FeatureExtractor(backbone: ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16),
                                                      using: &generator))
    let source = SyntheticSource(count: 7)
    let transform = EvaluationTransform(resize: 40, size: 32, mode: .centerCrop)
    let layers: [FeatureLayer] = [.feature5, .feature2, .avgpool]
    let single = try extractor.extract(FeatureExtractionRequest(
      checkpointSHA256: "x", source: source, transform: transform, layers: layers, batchSize: 1, loaderThreads: 1))
    var calls: [(Int, Int)] = []
    let streamed = try extractor.extract(FeatureExtractionRequest(
      checkpointSHA256: "x", source: source, transform: transform, layers: layers, batchSize: 3, loaderThreads: 3)
    ) { done, total in calls.append((done, total)) }
    #expect(calls.map(\.0) == [3, 6, 7] && calls.allSatisfy { $0.1 == 7 })
    for layer in layers {
      let a = try #require(single.matrices[layer]), b = try #require(streamed.matrices[layer])
      #expect(a.rows == 7 && b.rows == 7 && a.columns == extractor.dimension(of: layer))
      #expect(b.tensor.scaledError(to: a.tensor) <= 1e-5, "\(layer.rawValue)")
    }
    // Rows are images in order: row 4 alone equals row 4 of the whole list.
    let alone = try extractor.extract(FeatureExtractionRequest(
      checkpointSHA256: "x", source: SubsetSource(base: source, indices: [4]), transform: transform,
      layers: [.feature5]))
    #expect(try #require(alone.matrices[.feature5]).tensor.scaledError(
      to: Tensor(shape: [1, single.matrices[.feature5]!.columns], scalars: single.matrices[.feature5]!.row(4))) <= 1e-5)
  }

  @Test func anUnreadableImageFailsWithTheErrorNamingIt() throws {
    var generator = SplitMix64(seed: 4)
    let extractor = FeatureExtractor(backbone: ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16),
                                                      using: &generator))
    let request = FeatureExtractionRequest(
      checkpointSHA256: "x", source: SyntheticSource(count: 9, failingIndex: 5),
      transform: EvaluationTransform(resize: 32, size: 32, mode: .squash), layers: [.feature3], batchSize: 2)
    #expect(throws: DatasetError.unreadableFile(path: "synthetic[5]", reason: "synthetic failure")) {
      try extractor.extract(request)
    }
  }

  @Test func aCorruptImageFileIsNamed() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let images = try FeatureFixtures.images()
    let broken = directory.appendingPathComponent("broken.png")
    let bytes = try Data(contentsOf: images.urls[0])
    try bytes.prefix(bytes.count / 2).write(to: broken)
    let extractor = FeatureExtractor(backbone: try FeatureFixtures.cifarResNet18())
    let request = FeatureExtractionRequest(
      checkpointSHA256: "x", source: FileListSource(urls: [images.urls[1], broken]),
      transform: EvaluationTransform(resize: 32, size: 32, mode: .squash), layers: [.feature5])
    do {
      _ = try extractor.extract(request)
      Issue.record("A truncated PNG was read without error.")
    } catch let error as DatasetError {
      #expect("\(error)".contains(broken.path))
    }
  }
}

/// `base`'s images `indices`, in that order.
struct SubsetSource: EvaluationImageSource {
  let base: any EvaluationImageSource
  let indices: [Int]
  var count: Int { indices.count }
  var fingerprint: String { base.fingerprint + ":" + indices.map(String.init).joined(separator: ",") }
  func image(at index: Int, channels: Int) throws -> Image { try base.image(at: indices[index], channels: channels) }
  func location(of index: Int) -> String { base.location(of: indices[index]) }
}
