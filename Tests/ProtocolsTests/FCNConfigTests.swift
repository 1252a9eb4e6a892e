import Foundation
import Support
import Testing
@testable import Protocols

/// The FCN config: defaults = PROTOCOLS §5.3 (voc12aug), the files equal the embedded presets, the Cityscapes file
/// is §5.4, every numeric key is range-checked, and departures become protocol-variant facets.
@Suite struct FCNConfigTests {
  static var configFolder: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("configs/benchmarks/mmsegmentation")
  }

  @Test func defaultsAreTheVOC12AugProtocol() {
    let config = FCNBenchmarkConfig()
    // §5.3: strides (1,2,1,1), dilations (1,1,2,4), contract_dilation; FCNHead 512 × 2 convs + concat; aux 256, 0.4.
    #expect(config.model.strides == [1, 2, 1, 1] && config.model.dilations == [1, 1, 2, 4])
    #expect(config.model.contractDilation && config.model.concatInput && !config.model.alignCorners)
    #expect(config.model.decodeChannels == 512 && config.model.decodeConvs == 2)
    #expect(config.model.auxiliaryChannels == 256 && config.model.auxiliaryWeight == 0.4 && config.model.dropout == 0.1)
    // Resize((2048, 512), 0.5–2.0) → RandomCrop 512 (0.75) → flip 0.5 → photometric; 16 images; test (2048, 512).
    #expect(config.data.imageScale == [2048, 512] && config.data.ratioRange == [0.5, 2.0])
    #expect(config.data.cropSize == [512, 512] && config.data.catMaxRatio == 0.75 && config.data.flipProbability == 0.5)
    #expect(config.data.testScale == [2048, 512] && config.testMode == .whole && config.data.batchSize == 16)
    #expect(config.data.trainSplit == "train+aug" && config.data.testSplit == "val")
    // SGD 0.01, momentum 0.9, wd 5e-4; poly 0.9 to 1e-4 over 20k iterations; evaluation every 2000.
    #expect(config.optimizer.lr == 0.01 && config.optimizer.momentum == 0.9 && config.optimizer.weightDecay == 5e-4)
    #expect(config.schedule.iterations == 20_000 && config.schedule.power == 0.9 && config.schedule.minLr == 1e-4)
    #expect(config.schedule.evaluationInterval == 2000)
  }

  @Test func theFilesAreThePresetsAndTheVOCFileIsTheDefaults() throws {
    for (preset, file) in FCNPresets.all {
      let text = try String(contentsOf: Self.configFolder.appendingPathComponent(file), encoding: .utf8)
      #expect(text == preset.yaml + "\n", "\(file) differs from FCNPresets.\(preset.name)")
      #expect(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent == preset.name)
      _ = try FCNBenchmarkConfig.load(yaml: preset.yaml, source: file)
    }
    #expect(try FCNBenchmarkConfig.load(yaml: FCNPresets.voc12Aug.yaml, source: "voc") == FCNBenchmarkConfig())
  }

  @Test func theCityscapesConfigIsSection5Point4() throws {
    let config = try FCNBenchmarkConfig.load(yaml: FCNPresets.cityscapes.yaml, source: "cityscapes")
    #expect(config.model.alignCorners && config.data.cropSize == [769, 769] && config.data.imageScale == [2049, 1025])
    #expect(config.testMode == .slide && config.data.slideCrop == [769, 769] && config.data.slideStride == [513, 513])
    #expect(config.schedule.iterations == 40_000 && config.data.batchSize == 8)
  }

  @Test(arguments: [
    ("model.strides=[1,2,1]", "model.strides"), ("model.dilations=[1,1,2,0]", "model.dilations"),
    ("model.decode_channels=0", "model.decode_channels"), ("model.auxiliary_weight=-1", "model.auxiliary_weight"),
    ("model.dropout=1", "model.dropout"), ("data.crop_size=[0,512]", "data.crop_size"),
    ("data.ratio_range=[2.0,0.5]", "data.ratio_range"), ("data.cat_max_ratio=0", "data.cat_max_ratio"),
    ("data.flip_prob=5", "data.flip_prob"), ("data.batch_size=0", "data.batch_size"),
    ("data.test_mode=tiles", "data.test_mode"), ("data.mean=[1,2]", "data.mean"),
    ("optimizer.lr=-0.1", "optimizer.lr"), ("optimizer.momentum=-1", "optimizer.momentum"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay"), ("schedule.iterations=0", "schedule.iterations"),
    ("schedule.min_lr=0.5", "schedule.min_lr"), ("schedule.power=0", "schedule.power"),
    ("data.test_limit=-1", "data.test_limit"),
  ])
  func everyNumericKeyIsRangeChecked(override: String, key: String) {
    do {
      _ = try FCNBenchmarkConfig.load(yaml: nil, source: "defaults", overrides: [override])
      Issue.record("\(override) was accepted")
    } catch let error as ConfigError {
      guard case let .invalidValue(reported, _) = error else {
        Issue.record("\(override): \(error)")
        return
      }
      #expect(reported == key)
    } catch {
      Issue.record("\(override): \(error)")
    }
  }

  @Test func departuresFromTheReferenceAreVariantFacets() throws {
    let reference = FCNBenchmarkConfig()
    #expect(reference.variant(isRandomInit: false, layout: .voc2012).isEmpty)
    let scenes = try FCNBenchmarkConfig.load(yaml: FCNPresets.scenesQuick.yaml, source: "scenes")
    let variant = scenes.variant(isRandomInit: true, layout: .vocDevkit)
    #expect(variant["data.crop_size"] == "64,64")
    #expect(variant["schedule.iterations"] == "1600")
    #expect(variant["model.decode_channels"] == "128")
    #expect(variant["model.strides"] == "1,2,2,2")
    #expect(variant["data.path"] == nil && variant["seed"] == nil)
    #expect(variant["dataset"] != nil && variant["random-init"] == "true")
    // Cityscapes is its own reference.
    let cityscapes = try FCNBenchmarkConfig.load(yaml: FCNPresets.cityscapes.yaml, source: "cityscapes")
    #expect(cityscapes.variant(isRandomInit: false, layout: .cityscapes).isEmpty)
  }
}
