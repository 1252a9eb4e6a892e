import Foundation
import Testing
@testable import Training
import Support

@Suite struct ConfigYAMLTests {
  static let configsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("configs/pretrain")

  @Test func embeddedDefaultIsTheQuickConfigFile() throws {
    let file = Self.configsFolder.appendingPathComponent(PretrainConfig.quickDefaultName + ".yaml")
    #expect(try String(contentsOf: file, encoding: .utf8) == PretrainConfig.quickDefaultYAML)
    let config = try PretrainConfig.load(yaml: nil, source: "default")
    #expect(config.model.widthMultiplier == 0.25 && config.model.inChannels == 1 && config.model.cifarStem)
    #expect(config.model.features == 512 && config.model.predictorHiddenFeatures == 128)
    #expect(config.optimizer.lr == 0.06 && config.optimizer.weightDecay == 5e-4)
    #expect(config.schedule.batchSize == 256 && config.model.zeroInitResidual)
  }

  @Test func everyShippedConfigParses() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: Self.configsFolder.path)
      .filter { $0.hasSuffix(".yaml") }
    #expect(names.count == 4)
    for name in names {
      let text = try String(contentsOf: Self.configsFolder.appendingPathComponent(name), encoding: .utf8)
      _ = try PretrainConfig.load(yaml: text, source: name)
    }
  }

  @Test func imageNetConfigsFollowProtocolSection1() throws {
    for epochs in [100, 200] {
      let name = "simsiam_resnet50_8xb32-coslr-\(epochs)e_in1k.yaml"
      let text = try String(contentsOf: Self.configsFolder.appendingPathComponent(name), encoding: .utf8)
      let config = try PretrainConfig.load(yaml: text, source: name)
      #expect(config.schedule.epochs == epochs && config.schedule.batchSize == 256)
      #expect(config.optimizer.lr == 0.05 && config.optimizer.momentum == 0.9 && config.optimizer.weightDecay == 1e-4)
      #expect(config.optimizer.fixPredictorLR && config.model.zeroInitResidual && config.model.depth == 50)
      #expect(config.data.imageSize == 224 && config.data.blurProbability == 0.5 && config.data.grayscaleProbability == 0.2)
      #expect(config.scaledLearningRate == 0.05)
    }
  }

  @Test func dottedOverridesReplaceValues() throws {
    let config = try PretrainConfig.load(yaml: nil, source: "default",
                                         overrides: ["optimizer.lr=0.1", "schedule.epochs=7", "data.mean=[0.5]",
                                                     "data.kind=synthetic", "seed=42"])
    #expect(config.optimizer.lr == 0.1)
    #expect(config.schedule.epochs == 7)
    #expect(config.data.mean == [0.5])
    #expect(config.data.kind == "synthetic")
    #expect(config.seed == 42)
  }

  @Test func unknownKeySuggestsTheClosest() {
    #expect(throws: ConfigError.unknownKey(key: "optimizer.lrr", suggestion: "optimizer.lr", source: "--set")) {
      try PretrainConfig.load(yaml: nil, source: "default", overrides: ["optimizer.lrr=0.1"])
    }
    #expect(throws: ConfigError.unknownKey(key: "schedule.epoch", suggestion: "schedule.epochs", source: "f.yaml")) {
      try PretrainConfig.load(yaml: "schedule:\n  epoch: 3\n", source: "f.yaml")
    }
    let message = String(describing: ConfigError.unknownKey(key: "optimizer.lrr", suggestion: "optimizer.lr",
                                                             source: "--set"))
    #expect(message.contains("'optimizer.lrr'") && message.contains("Did you mean 'optimizer.lr'?"))
  }

  @Test func wrongTypesAndBadValuesNameTheKey() {
    #expect {
      try PretrainConfig.load(yaml: nil, source: "default", overrides: ["schedule.epochs=many"])
    } throws: { error in
      guard case let ConfigError.invalidValue(key, _) = error else { return false }
      return key == "schedule.epochs"
    }
    #expect(throws: ConfigError.malformedOverride("optimizer.lr")) {
      try PretrainConfig.load(yaml: nil, source: "default", overrides: ["optimizer.lr"])
    }
    #expect(throws: ConfigError.self) {
      try PretrainConfig.load(yaml: nil, source: "default", overrides: ["model.depth=19"])
    }
  }
}
