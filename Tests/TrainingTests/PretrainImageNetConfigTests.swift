import Foundation
import Testing
import Tensors
import Datasets
import Checkpoints
@testable import Training

/// The two MMSelfSup ImageNet configs start on an ImageNet-layout folder (root/train/<wnid>/*.JPEG and
/// root/val/<wnid>/*.JPEG), generated here: parse, build the ResNet-50 SimSiam (width-reduced by override), train one
/// iteration, write a checkpoint whose metadata still carries the config's own schedule.
@Suite(.serialized) struct PretrainImageNetConfigTests {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// Two classes × `perClass` RGB JPEGs of 40×36 (not square, not the training size) per split.
  static func makeImageNetFolder(perClass: Int) throws -> URL {
    let root = try temporaryFolder()
    var rng = SplitMix64(seed: 11)
    for split in ["train", "val"] {
      for (label, wnid) in ["n01440764", "n01443537"].enumerated() {
        let folder = root.appendingPathComponent("\(split)/\(wnid)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for index in 0..<perClass {
          let (width, height) = (40, 36)
          let pixels = (0..<(width * height * 3)).map { i -> UInt8 in
            UInt8(clamping: (label == 0 ? (i / 3) % width * 6 : (i / 3) / width * 7) + Int(rng.nextUniform() * 40))
          }
          try Image(width: width, height: height, channels: 3, pixels: pixels)
            .write(to: folder.appendingPathComponent("\(wnid)_\(index).JPEG"), format: .jpeg, jpegQuality: 90)
        }
      }
    }
    return root
  }

  @Test(arguments: ["simsiam_resnet50_8xb32-coslr-100e_in1k", "simsiam_resnet50_8xb32-coslr-200e_in1k"])
  func startsOnAnImageNetLayoutFolder(_ name: String) throws {
    let root = try Self.makeImageNetFolder(perClass: 3)
    defer { try? FileManager.default.removeItem(at: root) }
    let file = Self.repository.appendingPathComponent("configs/pretrain/\(name).yaml")
    let text = try String(contentsOf: file, encoding: .utf8)
    let config = try PretrainConfig.load(yaml: text, source: file.path, overrides: [
      "data.path=\(root.appendingPathComponent("train").path)", "data.limit=4", "data.image_size=32",
      "schedule.batch_size=4", "model.width_multiplier=0.03125", "model.projector_hidden=32", "model.features=32",
      "model.predictor_hidden=8", "data.workers=1",
    ])
    // What the file itself says (PROTOCOLS §1) survives the overrides.
    #expect(config.model.depth == 50 && config.data.kind == "image-folder" && config.model.zeroInitResidual)
    #expect(config.optimizer.lr == 0.05 && config.optimizer.weightDecay == 1e-4 && config.optimizer.fixPredictorLR)
    #expect(config.schedule.epochs == (name.contains("100e") ? 100 : 200))
    #expect(config.data.grayscaleProbability == 0.2 && config.data.blurProbability == 0.5)

    let dataset = try PretrainDataset.open(config.data, channels: config.model.inChannels)
    #expect(dataset.count == 4)
    let validation = try PretrainDataset.open(config.data, channels: 3, split: .test)  // the sibling val folder
    #expect(validation.count == 4 && Set((0..<4).map(validation.label(at:))) == [0, 1])  // data.limit applies

    let work = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: work) }
    let trainer = try Pretrainer(config: config, dataset: dataset, workDirectory: work, codeVersion: "test")
    #expect(trainer.iterationsPerEpoch == 1)
    #expect(trainer.model.backbone.outChannels == 64)  // 2048 × 1/32: the Bottleneck ResNet-50
    var losses: [Float] = []
    let summary = try trainer.train(stopAfterEpochs: 1, onIteration: { losses.append($0.loss) })
    #expect(losses.count == 1 && losses[0].isFinite)
    #expect(summary.completedEpochs == 1 && summary.iteration == 1)

    let checkpoint = try #require(Pretrainer.latestCheckpoint(in: work))
    #expect(checkpoint.lastPathComponent == "epoch_1.safetensors")
    let saved = try SafeTensors(contentsOf: checkpoint)
    #expect(saved.tensors["backbone.layer4.2.conv3.weight"] != nil)  // Bottleneck blocks: conv3 exists
    let stored = try JSONDecoder().decode(PretrainConfig.self, from: Data(try #require(saved.metadata["config"]).utf8))
    #expect(stored == config)
  }
}
