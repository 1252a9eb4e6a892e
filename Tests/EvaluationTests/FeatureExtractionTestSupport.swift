// Image sources and fixtures shared by the feature extraction and feature cache tests.
import Foundation
import Testing
import Tensors
import Datasets
import Models
import Checkpoints
@testable import Evaluation

/// Image files read with our decoders; failures become the `DatasetError` naming the file, as real sources do.
struct FileListSource: EvaluationImageSource {
  let urls: [URL]
  var count: Int { urls.count }
  var fingerprint: String { "files:" + urls.map(\.lastPathComponent).joined(separator: ",") }

  func image(at index: Int, channels: Int) throws -> Image {
    do {
      return convertChannels(try Image(contentsOf: urls[index]), to: channels)
    } catch {
      throw DatasetError.unreadableFile(path: urls[index].path, reason: "\(error)")
    }
  }

  func location(of index: Int) -> String { urls[index].path }
}

/// Deterministic in-memory images of random sizes; image `failingIndex` throws like an unreadable file.
struct SyntheticSource: EvaluationImageSource {
  let count: Int
  var channels = 3
  var failingIndex: Int? = nil
  var seed: UInt64 = 3
  var fingerprint: String { "synthetic:\(count):\(channels):\(seed)" }

  func image(at index: Int, channels requested: Int) throws -> Image {
    if index == failingIndex {
      throw DatasetError.unreadableFile(path: location(of: index), reason: "synthetic failure")
    }
    var generator = SplitMix64.derived(seed, UInt64(index), 0)
    let width = Int.random(in: 20...48, using: &generator), height = Int.random(in: 20...48, using: &generator)
    let pixels = (0..<(width * height * channels)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    return convertChannels(Image(width: width, height: height, channels: channels, pixels: pixels), to: requested)
  }

  func location(of index: Int) -> String { "synthetic[\(index)]" }
}

enum FeatureFixtures {
  static func folder() throws -> URL {
    try #require(Bundle.module.url(forResource: "features", withExtension: nil, subdirectory: "Fixtures"))
  }

  /// The three fixture images, in the order of expected.safetensors' rows.
  static func images() throws -> FileListSource {
    let folder = try folder().appendingPathComponent("images")
    let expected = try SafeTensors(contentsOf: folder.deletingLastPathComponent()
      .appendingPathComponent("expected.safetensors"))
    let names = try JSONDecoder().decode([String].self, from: Data(try #require(expected.metadata["images"]).utf8))
    return FileListSource(urls: names.map { folder.appendingPathComponent($0) })
  }

  static func expected() throws -> SafeTensors {
    try SafeTensors(contentsOf: try folder().appendingPathComponent("expected.safetensors"))
  }

  /// A backbone loaded (strictly) from a fixture's torch-named safetensors weights.
  static func backbone(_ file: String, _ config: ResNetConfig) throws -> ResNet {
    var generator = SplitMix64(seed: 99)
    let model = ResNet(config, using: &generator)
    let url = try folder().appendingPathComponent(file)
    let report = try BackboneLoader.load(CheckpointContents(try SafeTensors(contentsOf: url), source: url.path),
                                         into: model)
    #expect(report.isComplete)
    return model
  }

  /// ResNet-50 width 1/32, ImageNet stem (MMSelfSup's 224 protocol).
  static func resNet50() throws -> ResNet {
    try backbone("resnet50_w32.safetensors", ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32))
  }

  /// ResNet-18 width 1/32, CIFAR stem (the adaptive-pooling rule at 32 × 32).
  static func cifarResNet18() throws -> ResNet {
    try backbone("resnet18_w32_cifar.safetensors", ResNetConfig(depth: 18, widthMultiplier: 1.0 / 32, cifarStem: true))
  }
}

extension FeatureMatrix {
  var tensor: Tensor { withUnsafeBufferPointer { Tensor(shape: [rows, columns], scalars: Array($0)) } }
}

/// A fresh empty directory under the temporary directory.
func makeTemporaryDirectory(_ name: String = #function) throws -> URL {
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("simsiam-features-\(name.filter(\.isLetter))-\(UInt32.random(in: 0...UInt32.max))")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}
