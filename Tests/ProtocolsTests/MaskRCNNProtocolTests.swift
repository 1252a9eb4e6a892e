import Checkpoints
import Datasets
import Foundation
import Models
import Results
import Support
import Tensors
import Testing
import TestSupport
@testable import Protocols

/// A COCO-layout folder as the full config reads it: annotations/instances_{train,val}2017.json with polygon
/// segmentations, train2017/ and val2017/ holding `count` JPEGs of 64×48 each (one or two bright rectangles of
/// category 1 "cat" or 3 "dog" on a dark background; category 2 is listed but never used), and one crowd
/// annotation in the first training image.
func makeTinyCOCOFolder(_ root: URL, count: Int) throws {
  let (width, height) = (64, 48)
  try FileManager.default.createDirectory(at: root.appendingPathComponent("annotations"),
                                          withIntermediateDirectories: true)
  for split in ["train2017", "val2017"] {
    let folder = root.appendingPathComponent(split)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var images: [[String: Any]] = [], annotations: [[String: Any]] = []
    for index in 0..<count {
      let key = index + (split == "val2017" ? 1000 : 0)
      var pixels = [UInt8](repeating: 25, count: width * height * 3)
      for object in 0..<(1 + key % 2) {
        let (x0, y0) = (4 + (key * 7 + object * 29) % 30, 4 + (key * 5 + object * 3) % 20)
        let (w, h) = (min(14 + (key % 3) * 4, width - x0), min(12 + (key % 4) * 3, height - y0))
        let isCat = (key + object) % 2 == 0
        for y in y0..<(y0 + h) {
          for x in x0..<(x0 + w) {
            for c in 0..<3 { pixels[(y * width + x) * 3 + c] = isCat ? UInt8(200 - 60 * c) : UInt8(80 + 70 * c) }
          }
        }
        let (x1, y1, x2, y2) = (Double(x0), Double(y0), Double(x0 + w), Double(y0 + h))
        annotations.append([
          "id": annotations.count + 1 + key * 10, "image_id": key + 1, "category_id": isCat ? 1 : 3,
          "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
          "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
        ])
      }
      if split == "train2017" && index == 0 {
        annotations.append(["id": 999_999, "image_id": key + 1, "category_id": 1, "bbox": [40, 30, 10, 10],
                            "area": 100, "iscrowd": 1, "segmentation": [[40, 30, 50, 30, 50, 40, 40, 40]]])
      }
      let name = String(format: "%012d.jpg", key + 1)
      try Image(width: width, height: height, channels: 3, pixels: pixels)
        .write(to: folder.appendingPathComponent(name), format: .jpeg, jpegQuality: 95)
      images.append(["id": key + 1, "file_name": name, "width": width, "height": height])
    }
    let json: [String: Any] = [
      "images": images, "annotations": annotations,
      "categories": [["id": 1, "name": "cat"], ["id": 2, "name": "cow"], ["id": 3, "name": "dog"]],
    ]
    try JSONSerialization.data(withJSONObject: json)
      .write(to: root.appendingPathComponent("annotations/instances_\(split).json"))
  }
}

/// `run mask-rcnn` end to end on tiny data: the COCO 1x config (scaled down by overrides only) trains, evaluates
/// box and mask AP and stores them; a run split by `stopAfter` and resumed ends bit-identical to an uninterrupted
/// one; bad inputs are named before anything is stored.
@Suite(.serialized) struct MaskRCNNProtocolTests {
  /// The COCO protocol with only its scale changed (image sizes, widths, samples, batch, epochs).
  static let tinyOverrides = [
    "data.train_short_sides=[48,64]", "data.test_short_side=48", "data.max_size=96", "data.batch_size=2",
    "model.fpn_channels=8", "model.box_conv_channels=8", "model.box_fc_channels=16", "model.mask_conv_channels=8",
    "model.rpn_pre_nms_train=200", "model.rpn_post_nms_train=50", "model.rpn_pre_nms_test=100",
    "model.rpn_post_nms_test=30", "model.rpn_batch_size=32", "model.roi_batch_size=16", "schedule.epochs=2",
    "schedule.step_epochs=[2]", "schedule.warmup_iterations=2", "schedule.checkpoint_interval=2",
    "schedule.evaluation_interval=2",
  ]

  func request(folder: URL, work: String, overrides: [String] = tinyOverrides,
               checkpoint: String) throws -> MaskRCNNRequest {
    let (config, name) = try MaskRCNNRequest.config(file: nil, data: folder.appendingPathComponent("coco").path,
                                                    overrides: overrides, seed: 5)
    #expect(name == "mask_rcnn_r50_fpn_mstrain_1x_coco")
    var request = MaskRCNNRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config,
                                  configName: name, workDirectory: folder.appendingPathComponent(work),
                                  database: folder.appendingPathComponent("r.sqlite").path)
    request.logInterval = 1000
    return request
  }

  @Test func theCOCOConfigTrainsEvaluatesAndStores() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try makeTinyCOCOFolder(folder.appendingPathComponent("coco"), count: 4)
    let checkpoint = try tinyRGBCheckpoint(in: folder)
    let result = try MaskRCNNProtocol.run(try request(folder: folder, work: "a", checkpoint: checkpoint))
    let scores = try #require(result.scores)
    // 4 training images in batches of 2: 2 iterations per epoch, 2 epochs.
    #expect(result.iteration == 4 && result.benchmark == .cocoMaskRCNN)
    #expect(scores.box.count == 12 && scores.mask.count == 12)
    #expect((scores.box + scores.mask).allSatisfy { $0 == -1 || (0...1).contains($0) })
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let run = try #require(try store.runs().first)
    #expect(run.status == .finished)
    #expect(run.protocolVariant?.contains("model.fpn_channels=8") == true)
    // Three categories, not COCO's 80: recorded as another dataset.
    #expect(run.protocolVariant?.contains("dataset=coco-layout(other-classes)") == true)
    let stored = try store.scores(run: run.runID)
    #expect(stored.filter { $0.metric == "mAP" && $0.layer == "bbox" }.map(\.epoch) == [2, 4, nil])
    for (head, stats) in [("bbox", scores.box), ("segm", scores.mask)] {
      for (metric, index) in [("mAP", 0), ("AP50", 1), ("AP75", 2)] {
        let final = try #require(stored.first { $0.metric == metric && $0.layer == head && $0.epoch == nil })
        #expect(abs(final.value - 100 * stats[index]) < 1e-9)
      }
    }
    // The results files are pycocotools-readable COCO results, and the checkpoint holds mmdet's names.
    for file in ["results.bbox.json", "results.segm.json"] {
      #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("a/\(file)").path))
    }
    let saved = try SafeTensors(contentsOf: folder.appendingPathComponent("a/iter_4.safetensors"))
    for prefix in ["backbone.layer4.", "neck.lateral_convs.0.", "neck.fpn_convs.3.", "rpn_head.rpn_conv.",
                   "roi_head.bbox_head.shared_convs.3.", "roi_head.bbox_head.shared_fcs.0.",
                   "roi_head.mask_head.convs.3.", "roi_head.mask_head.upsample.", "roi_head.mask_head.conv_logits.",
                   "optimizer.momentum_buffer.roi_head.mask_head."] {
      #expect(saved.tensors.keys.contains { $0.hasPrefix(prefix) }, "\(prefix)")
    }
  }

  @Test func aRunStoppedAndResumedIsBitIdenticalToAnUninterruptedOne() throws {
    // Two runs compared bit for bit: no other test may change the process-wide thread count between them.
    try ThreadCountLock.holding {
      let folder = try temporaryFolder()
      defer { try? FileManager.default.removeItem(at: folder) }
      try makeTinyCOCOFolder(folder.appendingPathComponent("coco"), count: 4)
      let checkpoint = try tinyRGBCheckpoint(in: folder)
      let whole = try MaskRCNNProtocol.run(try request(folder: folder, work: "whole", checkpoint: checkpoint))

      var first = try request(folder: folder, work: "split", checkpoint: checkpoint)
      first.stopAfter = 3
      let stopped = try MaskRCNNProtocol.run(first)
      #expect(stopped.scores == nil && stopped.iteration == 3)
      var second = try request(folder: folder, work: "split", checkpoint: checkpoint)
      second.resume = true
      let resumed = try MaskRCNNProtocol.run(second)
      #expect(resumed.runID == stopped.runID)
      #expect(resumed.scores == whole.scores)
      let a = try SafeTensors(contentsOf: folder.appendingPathComponent("whole/iter_4.safetensors"))
      let b = try SafeTensors(contentsOf: folder.appendingPathComponent("split/iter_4.safetensors"))
      #expect(a.tensors.keys.sorted() == b.tensors.keys.sorted())
      for (name, tensor) in a.tensors { #expect(tensor.value.scalars == b.tensors[name]?.value.scalars, "\(name)") }
    }
  }

  @Test func badInputsAreNamedBeforeAnythingIsStored() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let coco = folder.appendingPathComponent("coco")
    try makeTinyCOCOFolder(coco, count: 2)
    let checkpoint = try tinyRGBCheckpoint(in: folder)
    let database = folder.appendingPathComponent("r.sqlite").path
    // A training image listed in the json but missing on disk.
    try FileManager.default.removeItem(at: coco.appendingPathComponent("train2017/000000000002.jpg"))
    #expect { try MaskRCNNProtocol.run(try request(folder: folder, work: "bad", checkpoint: checkpoint)) }
      throws: { "\($0)".contains("000000000002.jpg") }
    try makeTinyCOCOFolder(coco, count: 2)
    // A missing test json.
    try FileManager.default.removeItem(at: coco.appendingPathComponent("annotations/instances_val2017.json"))
    #expect { try MaskRCNNProtocol.run(try request(folder: folder, work: "bad2", checkpoint: checkpoint)) }
      throws: { "\($0)".contains("instances_val2017.json") }
    try makeTinyCOCOFolder(coco, count: 2)
    // A file given as the COCO folder.
    var wrong = try request(folder: folder, work: "bad3", checkpoint: checkpoint)
    wrong.config.data.root = checkpoint
    #expect { try MaskRCNNProtocol.run(wrong) } throws: { "\($0)".contains("tiny-rgb.safetensors") }
    // A config value out of range is named with its key.
    #expect { try request(folder: folder, work: "bad4", overrides: ["model.mask_threshold=1.5"],
                          checkpoint: checkpoint) } throws: { "\($0)".contains("model.mask_threshold") }
    // Nothing was stored for the failed runs.
    if FileManager.default.fileExists(atPath: database) {
      let store = try ResultsStore(path: database)
      for run in try store.runs() { #expect(try store.scores(run: run.runID).isEmpty) }
    }
  }
}

/// The embedded configs are the files under configs/, and the data folder picks the preset.
struct MaskRCNNPresetTests {
  @Test func theEmbeddedConfigsAreTheFilesAndLoad() throws {
    for (preset, file) in MaskRCNNPresets.all {
      let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
      let text = try String(contentsOf: root.appendingPathComponent("configs/benchmarks/mmdetection/\(file)"),
                            encoding: .utf8)
      #expect(text == preset.yaml + "\n", "\(file) differs from MaskRCNNPresets.\(preset.name)")
      #expect(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent == preset.name)
      _ = try MaskRCNNBenchmarkConfig.load(yaml: preset.yaml, source: preset.name)
    }
    // The reference preset is the Codable defaults: it departs from nothing.
    let reference = try MaskRCNNBenchmarkConfig.load(yaml: MaskRCNNPresets.coco.yaml, source: "coco")
    #expect(reference == MaskRCNNBenchmarkConfig())
    #expect(reference.variant(isRandomInit: false, isCOCO: true, pyramidStrides: [4, 8, 16, 32, 64]).canonical
              .isEmpty)
  }

  @Test func theDataFolderPicksThePreset() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(MaskRCNNPresets.preset(forDataAt: nil).name == MaskRCNNPresets.coco.name)
    try makeTinyCOCOFolder(folder.appendingPathComponent("coco"), count: 1)
    #expect(MaskRCNNPresets.preset(forDataAt: folder.appendingPathComponent("coco").path).name
              == MaskRCNNPresets.coco.name)
    let scenes = folder.appendingPathComponent("scenes")
    // What `data make-scenes` writes beside the COCO json: a VOC devkit.
    try FileManager.default.createDirectory(at: scenes.appendingPathComponent("annotations"),
                                            withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: scenes.appendingPathComponent("VOCdevkit/VOC2007"),
                                            withIntermediateDirectories: true)
    try Data("{}".utf8).write(to: scenes.appendingPathComponent("annotations/instances_trainval.json"))
    #expect(MaskRCNNPresets.preset(forDataAt: scenes.path).name == MaskRCNNPresets.scenesQuick.name)
  }

  @Test func theScheduleStepsByEpochAfterAWarmupByIteration() throws {
    var config = MaskRCNNBenchmarkConfig()
    config.data.batchSize = 16
    // COCO train2017 after mmdet's filter: 117,266 images → 7,330 iterations per epoch.
    #expect(config.iterationsPerEpoch(trainCount: 117_266) == 7_330)
    let perEpoch = 7_330
    // mmcv: lr·(1 − (1 − 0.001)·(1 − i/1000)) during the warm-up.
    #expect(abs(config.learningRate(iteration: 0, iterationsPerEpoch: perEpoch) - 0.02 * 0.001) < 1e-9)
    #expect(abs(config.learningRate(iteration: 500, iterationsPerEpoch: perEpoch) - 0.02 * 0.5005) < 1e-7)
    #expect(config.learningRate(iteration: 8 * perEpoch - 1, iterationsPerEpoch: perEpoch) == 0.02)
    #expect(abs(config.learningRate(iteration: 8 * perEpoch, iterationsPerEpoch: perEpoch) - 0.002) < 1e-9)
    #expect(abs(config.learningRate(iteration: 11 * perEpoch, iterationsPerEpoch: perEpoch) - 0.0002) < 1e-10)
  }
}
