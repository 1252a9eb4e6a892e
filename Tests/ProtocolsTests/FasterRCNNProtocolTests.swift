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

/// A VOC-layout detection devkit year folder (`year` = VOC2007 or VOC2012) with the 20 VOC class lists: `count`
/// images of 64×48 per split, each with one or two bright boxes of "cat" or "dog" on a dark background, one of them
/// difficult in every third image. Split `test` only for VOC2007.
func makeTinyDetectionDevkit(_ root: URL, count: Int, seedOffset: Int = 0) throws {
  let writer = try VOCDevkitWriter(root: root)
  let (width, height) = (64, 48)
  let classes = Array(SegmentationClasses.voc.dropFirst())
  for split in root.lastPathComponent == "VOC2007" ? ["trainval", "test"] : ["trainval"] {
    var ids: [String] = [], objectLists: [[VOCAnnotation.Object]] = []
    for index in 0..<count {
      let key = index + seedOffset + (split == "test" ? 1000 : 0)
      let id = String(format: "%@_%06d", split == "test" ? "t" : "v", key)
      var pixels = [UInt8](repeating: 25, count: width * height * 3)
      var objects: [VOCAnnotation.Object] = []
      for object in 0..<(1 + key % 2) {
        let (x0, y0) = (4 + (key * 7 + object * 29) % 30, 4 + (key * 5 + object * 3) % 20)
        let (w, h) = (14 + (key % 3) * 4, 12 + (key % 4) * 3)
        let isCat = (key + object) % 2 == 0
        for y in y0..<min(height, y0 + h) {
          for x in x0..<min(width, x0 + w) {
            for c in 0..<3 { pixels[(y * width + x) * 3 + c] = isCat ? UInt8(200 - 60 * c) : UInt8(80 + 70 * c) }
          }
        }
        objects.append(.init(name: isCat ? "cat" : "dog", isDifficult: key % 3 == 0 && object == 1,
                             box: .init(xmin: Double(x0 + 1), ymin: Double(y0 + 1),
                                        xmax: Double(min(width, x0 + w)), ymax: Double(min(height, y0 + h)))))
      }
      try writer.writeImage(Image(width: width, height: height, channels: 3, pixels: pixels), id: id)
      try writer.writeAnnotation(VOCAnnotation(filename: "\(id).jpg", width: width, height: height, objects: objects),
                                 id: id)
      ids.append(id)
      objectLists.append(objects)
    }
    try writer.writeMainSet(split: split, ids: ids, objects: objectLists, classes: classes)
  }
}

/// `run faster-rcnn` end to end on tiny data: the reference config (scaled down by overrides only) trains on two
/// devkits, evaluates VOC2007 test and stores AP50/AP/AP75; a run split by `stopAfter` and resumed ends
/// bit-identical to an uninterrupted one; bad inputs are named before anything is stored.
@Suite(.serialized) struct FasterRCNNProtocolTests {
  /// The VOC07+12 protocol with only its scale changed (image sizes, anchors, samples, batch, iterations).
  static let tinyOverrides = [
    "data.train_short_sides=[48,64]", "data.test_short_side=48", "data.max_size=96", "data.batch_size=2",
    "model.anchor_sizes=[16,32]", "model.rpn_pre_nms_train=200", "model.rpn_post_nms_train=50",
    "model.rpn_pre_nms_test=100", "model.rpn_post_nms_test=30", "model.rpn_batch_size=32",
    "model.roi_batch_size=16", "model.roi_size=4", "schedule.iterations=4", "schedule.warmup_iterations=2",
    "schedule.steps=[3]", "schedule.checkpoint_interval=2", "schedule.evaluation_interval=2",
  ]

  func request(folder: URL, work: String, overrides: [String] = tinyOverrides,
               checkpoint: String) throws -> FasterRCNNRequest {
    let data = ["VOC2007", "VOC2012"].map { folder.appendingPathComponent($0).path }
    let (config, name) = try FasterRCNNRequest.config(file: nil, data: data, overrides: overrides, seed: 5)
    #expect(name == "faster_rcnn_r50_c4_mstrain_24k_voc0712")
    var request = FasterRCNNRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config,
                                    configName: name, workDirectory: folder.appendingPathComponent(work),
                                    database: folder.appendingPathComponent("r.sqlite").path)
    request.logInterval = 1000
    return request
  }

  func makeData(_ folder: URL) throws {
    try makeTinyDetectionDevkit(folder.appendingPathComponent("VOC2007"), count: 5)
    try makeTinyDetectionDevkit(folder.appendingPathComponent("VOC2012"), count: 3, seedOffset: 100)
  }

  @Test func theVOC0712ConfigTrainsEvaluatesAndStores() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try makeData(folder)
    let checkpoint = try tinyRGBCheckpoint(in: folder)
    let result = try FasterRCNNProtocol.run(try request(folder: folder, work: "a", checkpoint: checkpoint))
    let scores = try #require(result.scores)
    #expect(result.iteration == 4 && result.benchmark == .voc0712FasterRCNN && result.classNames.count == 20)
    #expect((0...1).contains(scores.mmdet.mAP) && (0...100).contains(scores.detectron2.ap))
    // Only cat and dog have test objects: mmdet averages over classes with ground truth.
    #expect(scores.mmdet.groundTruthCounts.enumerated().filter { $0.element > 0 }.map(\.offset).sorted()
              == [7, 11])
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let run = try #require(try store.runs().first)
    #expect(run.status == .finished)
    #expect(run.protocolVariant?.contains("model.roi_batch_size=16") == true)
    let stored = try store.scores(run: run.runID)
    #expect(stored.filter { $0.metric == "AP50" }.map(\.epoch) == [2, 4, nil])
    let final = try #require(stored.first { $0.metric == "AP50" && $0.epoch == nil })
    #expect(abs(final.value - 100 * scores.mmdet.mAP) < 1e-9)
    #expect(final.perClass.count == 20)
    #expect(stored.contains { $0.metric == "mAP" && $0.epoch == nil && abs($0.value - scores.detectron2.ap) < 1e-9 })
    #expect(stored.contains { $0.metric == "AP75" && $0.epoch == nil })
    #expect(FasterRCNNProtocol.checkpoints(in: folder.appendingPathComponent("a")).map(\.iteration) == [4])
    // The checkpoint holds the detector under mmdet's names, and the optimizer's momentum.
    let saved = try SafeTensors(contentsOf: folder.appendingPathComponent("a/iter_4.safetensors"))
    #expect(saved.tensors.keys.contains { $0.hasPrefix("rpn_head.") })
    #expect(saved.tensors.keys.contains { $0.hasPrefix("roi_head.shared_head.layer4.") })
    #expect(saved.tensors.keys.contains { $0.hasPrefix("optimizer.momentum_buffer.roi_head.bbox_head.") })
  }

  @Test func aRunStoppedAndResumedIsBitIdenticalToAnUninterruptedOne() throws {
    // Two runs compared bit for bit: no other test may change the process-wide thread count between them.
    try ThreadCountLock.holding {
      let folder = try temporaryFolder()
      defer { try? FileManager.default.removeItem(at: folder) }
      try makeData(folder)
      let checkpoint = try tinyRGBCheckpoint(in: folder)
      let whole = try FasterRCNNProtocol.run(try request(folder: folder, work: "whole", checkpoint: checkpoint))

      var first = try request(folder: folder, work: "split", checkpoint: checkpoint)
      first.stopAfter = 3
      let stopped = try FasterRCNNProtocol.run(first)
      #expect(stopped.scores == nil && stopped.iteration == 3)
      var second = try request(folder: folder, work: "split", checkpoint: checkpoint)
      second.resume = true
      let resumed = try FasterRCNNProtocol.run(second)
      #expect(resumed.runID == stopped.runID)
      #expect(resumed.scores == whole.scores)
      let a = try SafeTensors(contentsOf: folder.appendingPathComponent("whole/iter_4.safetensors"))
      let b = try SafeTensors(contentsOf: folder.appendingPathComponent("split/iter_4.safetensors"))
      #expect(a.tensors.keys.sorted() == b.tensors.keys.sorted())
      for (name, tensor) in a.tensors { #expect(tensor.value.scalars == b.tensors[name]?.value.scalars, "\(name)") }

      // Another config refuses the checkpoint instead of mixing runs.
      var changed = try request(folder: folder, work: "split",
                                overrides: Self.tinyOverrides + ["optimizer.lr=0.01"], checkpoint: checkpoint)
      changed.resume = true
      #expect(throws: ProtocolError.self) { try FasterRCNNProtocol.run(changed) }
    }
  }

  @Test func badInputsAreNamedBeforeAnythingIsStored() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try makeData(folder)
    let checkpoint = try tinyRGBCheckpoint(in: folder)
    let database = folder.appendingPathComponent("r.sqlite").path
    // Malformed XML in a training annotation.
    let annotation = folder.appendingPathComponent("VOC2012/Annotations/v_000101.xml")
    try Data("<annotation><object><name>cat</name>".utf8).write(to: annotation)
    do {
      _ = try FasterRCNNProtocol.run(try request(folder: folder, work: "bad", checkpoint: checkpoint))
      Issue.record("a malformed annotation was accepted")
    } catch {
      #expect("\(error)".contains("v_000101.xml"))
    }
    try makeData(folder)
    // A missing test list.
    try FileManager.default.removeItem(at: folder.appendingPathComponent("VOC2007/ImageSets/Main/test.txt"))
    do {
      _ = try FasterRCNNProtocol.run(try request(folder: folder, work: "bad2", checkpoint: checkpoint))
      Issue.record("a missing test.txt was accepted")
    } catch {
      #expect("\(error)".contains("test.txt"))
    }
    try makeData(folder)
    // A file given as a devkit folder.
    do {
      _ = try FasterRCNNProtocol.run(try request(folder: folder, work: "bad3", checkpoint: checkpoint)
        .with { $0.config.data.paths[1] = checkpoint })
      Issue.record("a file as devkit was accepted")
    } catch {
      #expect("\(error)".contains("tiny-rgb.safetensors"))
    }
    // Nothing was stored for the failed runs.
    if FileManager.default.fileExists(atPath: database) {
      let store = try ResultsStore(path: database)
      for run in try store.runs() { #expect(try store.scores(run: run.runID).isEmpty) }
    }
  }
}

extension FasterRCNNRequest {
  /// A copy changed by `change`.
  func with(_ change: (inout FasterRCNNRequest) -> Void) -> FasterRCNNRequest {
    var copy = self
    change(&copy)
    return copy
  }
}
