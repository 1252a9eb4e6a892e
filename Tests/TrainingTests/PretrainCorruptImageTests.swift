import Foundation
import Testing
import Tensors
import Datasets
import TestSupport
@testable import Training

/// An image folder with one corrupt JPEG: the run stops naming the file, unless `data.skip_corrupt` is set, which
/// replaces the image by the next readable one and reports it.
@Suite struct PretrainCorruptImageTests {
  private func makeFolder() throws -> URL {
    let root = try temporaryFolder()
    var rng = SplitMix64(seed: 9)
    for (classIndex, name) in ["a", "b"].enumerated() {
      let folder = root.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      for i in 0..<8 {
        let pixels = (0..<(20 * 20 * 3)).map { _ in UInt8(truncatingIfNeeded: Int(rng.next() % 256) / (classIndex + 1)) }
        try Image(width: 20, height: 20, channels: 3, pixels: pixels)
          .write(to: folder.appendingPathComponent("img\(i).jpg"))
      }
    }
    // Starts like a JPEG, then stops: a truncated file.
    try Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]).write(to: root.appendingPathComponent("b/broken.jpg"))
    return root
  }

  private func config(_ root: URL, _ extra: [String]) throws -> PretrainConfig {
    try PretrainConfig.load(yaml: nil, source: "corrupt", overrides: [
      "model.width_multiplier=0.125", "model.in_channels=3", "model.projector_hidden=16", "model.features=16",
      "model.predictor_hidden=4", "data.kind=image-folder", "data.path=\(root.path)", "data.image_size=16",
      "data.mean=[0.5, 0.5, 0.5]", "data.std=[0.25, 0.25, 0.25]", "data.workers=1",
      "schedule.batch_size=17", "schedule.epochs=1", "schedule.max_minutes=0", "monitor.knn_at_end=false",
    ] + extra)
  }

  @Test func aCorruptImageStopsTheRunNamingTheFile() throws {
    let root = try makeFolder()
    defer { try? FileManager.default.removeItem(at: root) }
    let trainer = try makeTinyPretrainer(try config(root, []), workDirectory: nil)
    #expect {
      try trainer.train()
    } throws: { error in
      "\(error)".contains("broken.jpg")
    }
  }

  @Test func skipCorruptReplacesAndReportsIt() throws {
    let root = try makeFolder()
    defer { try? FileManager.default.removeItem(at: root) }
    let trainer = try makeTinyPretrainer(try config(root, ["data.skip_corrupt=true"]), workDirectory: nil)
    let summary = try trainer.train()
    #expect(summary.completedEpochs == 1)
    #expect(summary.skippedImages.count == 1)
    #expect(summary.skippedImages.values.first?.contains("broken.jpg") == true)
  }
}
