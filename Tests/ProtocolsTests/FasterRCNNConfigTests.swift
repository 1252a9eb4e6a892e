import Foundation
import Support
import Testing
@testable import Protocols

/// The Faster R-CNN config: defaults = PROTOCOLS §5.1 (VOC07+12, R50-C4, 24k), the files equal the embedded presets,
/// the preset follows the data folder, every numeric key is range-checked, the LR is mmcv's step + linear warm-up,
/// and departures become protocol-variant facets.
@Suite struct FasterRCNNConfigTests {
  static var configFolder: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("configs/benchmarks/mmdetection")
  }

  @Test func defaultsAreTheVOC0712Protocol() {
    let config = FasterRCNNBenchmarkConfig()
    // §5.1: anchors 32–512 × (0.5, 1, 2); RPN 256 @ 0.5, 12000 → 2000 (train), 6000 → 1000 (test), NMS 0.7.
    #expect(config.model.anchorSizes == [32, 64, 128, 256, 512] && config.model.anchorRatios == [0.5, 1, 2])
    #expect(config.model.rpnBatchSize == 256 && config.model.rpnPositiveFraction == 0.5)
    #expect(config.model.rpnPreNMSTrain == 12000 && config.model.rpnPostNMSTrain == 2000)
    #expect(config.model.rpnPreNMSTest == 6000 && config.model.rpnPostNMSTest == 1000 && config.model.rpnNMSThreshold == 0.7)
    // ROI: 512 @ 0.25, RoIAlign 14; test score > 0.05, NMS 0.5, 100 per image.
    #expect(config.model.roiBatchSize == 512 && config.model.roiPositiveFraction == 0.25 && config.model.roiSize == 14)
    #expect(config.model.scoreThreshold == 0.05 && config.model.nmsThreshold == 0.5 && config.model.detectionsPerImage == 100)
    // VOC2007 + VOC2012 trainval → VOC2007 test; (1333, 480…800 step 32), test (1333, 800), flip 0.5, pad 32.
    #expect(config.data.paths.map { URL(fileURLWithPath: $0).lastPathComponent } == ["VOC2007", "VOC2012"])
    #expect(config.data.trainSplit == "trainval" && config.data.testSplit == "test")
    #expect(config.data.maxSize == 1333 && config.data.trainShortSides.count == 11)
    #expect(config.data.trainShortSides.first == 480 && config.data.trainShortSides.last == 800)
    #expect(config.data.testShortSide == 800 && config.data.flipProbability == 0.5 && config.data.padDivisor == 32)
    #expect(config.difficultHandling == .ignore && config.data.batchSize == 16)
    // SGD 0.02, momentum 0.9, wd 1e-4; warm-up 100 from 0.001; ×0.1 at 18k and 22k of 24k; evaluation every 2000.
    #expect(config.optimizer.lr == 0.02 && config.optimizer.momentum == 0.9 && config.optimizer.weightDecay == 1e-4)
    #expect(config.schedule.iterations == 24_000 && config.schedule.steps == [18_000, 22_000])
    #expect(config.schedule.warmupIterations == 100 && config.schedule.warmupRatio == 0.001 && config.schedule.gamma == 0.1)
    #expect(config.schedule.evaluationInterval == 2000 && config.schedule.checkpointInterval == 2000)
  }

  @Test func theFilesAreThePresetsAndTheVOCFileIsTheDefaults() throws {
    for (preset, file) in FasterRCNNPresets.all {
      let text = try String(contentsOf: Self.configFolder.appendingPathComponent(file), encoding: .utf8)
      #expect(text == preset.yaml + "\n", "\(file) differs from FasterRCNNPresets.\(preset.name)")
      #expect(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent == preset.name)
      _ = try FasterRCNNBenchmarkConfig.load(yaml: preset.yaml, source: file)
    }
    #expect(try FasterRCNNBenchmarkConfig.load(yaml: FasterRCNNPresets.voc0712.yaml, source: "voc")
              == FasterRCNNBenchmarkConfig())
  }

  /// mmcv: warm-up lr·(1 − (1 − 0.001)·(1 − i/100)) for i < 100, then 0.02, 0.002 from 18000, 0.0002 from 22000.
  @Test func theLearningRateIsStepsWithLinearWarmup() {
    let config = FasterRCNNBenchmarkConfig()
    #expect(abs(config.learningRate(iteration: 0) - 0.00002) < 1e-11)
    #expect(abs(config.learningRate(iteration: 50) - Float(0.02 * (1 - 0.999 * 0.5))) < 1e-9)
    #expect(config.learningRate(iteration: 100) == 0.02 && config.learningRate(iteration: 17_999) == 0.02)
    #expect(abs(config.learningRate(iteration: 18_000) - 0.002) < 1e-9)
    #expect(abs(config.learningRate(iteration: 22_000) - 0.0002) < 1e-10)
  }

  @Test func thePresetFollowsTheDevkitsClasses() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("frcnn-preset-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let voc = folder.appendingPathComponent("VOC2007/ImageSets/Main")
    let scenes = folder.appendingPathComponent("scenes/ImageSets/Main")
    for url in [voc, scenes] { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    for name in ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
                 "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"] {
      try Data().write(to: voc.appendingPathComponent("\(name)_trainval.txt"))
    }
    for name in ["bag", "coat"] { try Data().write(to: scenes.appendingPathComponent("\(name)_trainval.txt")) }
    #expect(FasterRCNNPresets.preset(forDataAt: voc.deletingLastPathComponent().deletingLastPathComponent().path).name
              == FasterRCNNPresets.voc0712.name)
    #expect(FasterRCNNPresets.preset(forDataAt: scenes.deletingLastPathComponent().deletingLastPathComponent().path).name
              == FasterRCNNPresets.scenesQuick.name)
    #expect(FasterRCNNPresets.preset(forDataAt: nil).name == FasterRCNNPresets.voc0712.name)
    // --data given twice sets data.paths in order, paths with commas kept whole.
    let (config, _) = try FasterRCNNRequest.config(file: nil, data: ["/a,b/VOC2007", "/c/VOC2012"], overrides: [],
                                                   seed: 3)
    #expect(config.data.paths == ["/a,b/VOC2007", "/c/VOC2012"] && config.seed == 3)
  }

  @Test(arguments: [
    ("model.anchor_sizes=[]", "model.anchor_sizes"), ("model.anchor_ratios=[0]", "model.anchor_ratios"),
    ("model.rpn_batch_size=0", "model.rpn_batch_size"), ("model.rpn_positive_fraction=0", "model.rpn_positive_fraction"),
    ("model.rpn_post_nms_train=20000", "model.rpn_post_nms_train"), ("model.rpn_nms_threshold=1.5", "model.rpn_nms_threshold"),
    ("model.roi_batch_size=-1", "model.roi_batch_size"), ("model.roi_size=7", "model.roi_size"),
    ("model.score_threshold=1", "model.score_threshold"), ("model.detections_per_image=0", "model.detections_per_image"),
    ("data.paths=[]", "data.paths"), ("data.max_size=0", "data.max_size"),
    ("data.train_short_sides=[480,2000]", "data.train_short_sides"), ("data.flip_prob=2", "data.flip_prob"),
    ("data.difficult=sometimes", "data.difficult"), ("data.batch_size=0", "data.batch_size"),
    ("data.pad_divisor=0", "data.pad_divisor"), ("data.std=[0,1,1]", "data.std"),
    ("optimizer.lr=-0.02", "optimizer.lr"), ("optimizer.momentum=1", "optimizer.momentum"),
    ("schedule.iterations=0", "schedule.iterations"), ("schedule.steps=[22000,18000]", "schedule.steps"),
    ("schedule.gamma=0", "schedule.gamma"), ("schedule.warmup_ratio=0", "schedule.warmup_ratio"),
    ("data.test_limit=-1", "data.test_limit"),
  ])
  func everyNumericKeyIsRangeChecked(override: String, key: String) {
    do {
      _ = try FasterRCNNBenchmarkConfig.load(yaml: nil, source: "defaults", overrides: [override])
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
    #expect(FasterRCNNBenchmarkConfig().variant(isRandomInit: false, isVOC: true).isEmpty)
    let scenes = try FasterRCNNBenchmarkConfig.load(yaml: FasterRCNNPresets.scenesQuick.yaml, source: "scenes")
    let variant = scenes.variant(isRandomInit: true, isVOC: false)
    #expect(variant["model.roi_batch_size"] == "64" && variant["data.max_size"] == "128")
    #expect(variant["schedule.iterations"] == scenes.schedule.iterations.description)
    #expect(variant["data.paths"] == nil && variant["seed"] == nil)
    #expect(variant["data.sets"] == "VOC2007" && variant["dataset"] != nil && variant["random-init"] == "true")
  }
}
