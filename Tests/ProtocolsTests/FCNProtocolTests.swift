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

/// A VOC2012-layout folder: 6 train + 2 aug + 3 val images of 24×20 with a bright square of class 1 + (i mod 3) on a
/// dark background (palette masks for SegmentationClass, gray PNGs for SegmentationClassAug, 255 on the square's rim).
func makeTinyVOC2012(_ root: URL) throws {
  let fm = FileManager.default
  for folder in ["JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"] {
    try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
  }
  let (width, height) = (24, 20)
  func sample(_ index: Int) -> (Image, Image) {
    var pixels = [UInt8](repeating: 30, count: width * height * 3)
    var labels = [UInt8](repeating: 0, count: width * height)
    let (x0, y0, side) = (2 + (index * 5) % 10, 2 + (index * 3) % 8, 9)
    for y in y0..<(y0 + side) {
      for x in x0..<(x0 + side) {
        let rim = y == y0 || x == x0 || y == y0 + side - 1 || x == x0 + side - 1
        labels[y * width + x] = rim ? 255 : UInt8(1 + index % 3)
        for c in 0..<3 { pixels[(y * width + x) * 3 + c] = UInt8(120 + 40 * (index % 3) + 20 * c) }
      }
    }
    return (Image(width: width, height: height, channels: 3, pixels: pixels),
            Image(width: width, height: height, channels: 1, pixels: labels))
  }
  var lists: [String: [String]] = ["train": [], "aug": [], "val": []]
  for index in 0..<11 {
    let id = String(format: "2007_%06d", index)
    let (image, label) = sample(index)
    try image.write(to: root.appendingPathComponent("JPEGImages/\(id).jpg"))
    let split = index < 6 ? "train" : index < 8 ? "aug" : "val"
    lists[split]!.append(id)
    if split == "aug" {
      try label.write(to: root.appendingPathComponent("SegmentationClassAug/\(id).png"))
    } else {
      try label.writePalettePNG(to: root.appendingPathComponent("SegmentationClass/\(id).png"))
    }
  }
  for (split, ids) in lists {
    try Data((ids.joined(separator: "\n") + "\n").utf8)
      .write(to: root.appendingPathComponent("ImageSets/Segmentation/\(split).txt"))
  }
}

/// A ResNet-18 (ImageNet stem, 3 channels) at width 1/8 under torchvision names.
func tinyRGBCheckpoint(in folder: URL) throws -> String {
  var generator = SplitMix64(seed: 7)
  let backbone = ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 8), using: &generator)
  let url = folder.appendingPathComponent("tiny-rgb.safetensors")
  try StateDict.save(backbone.namedParameters, to: url)
  return url.path
}

/// `run fcn` end to end on tiny data: the voc12aug config (scaled down by overrides only) trains, evaluates and
/// stores; a run split by `stopAfter` and resumed ends bit-identical to an uninterrupted one; bad inputs are named.
@Suite(.serialized) struct FCNProtocolTests {
  /// The voc12aug protocol with only its scale changed (crop, scales, heads, batch, iterations).
  static let tinyOverrides = [
    "data.img_scale=[48,24]", "data.crop_size=[24,24]", "data.test_scale=[48,24]", "data.batch_size=4",
    "model.decode_channels=16", "model.auxiliary_channels=8", "schedule.iterations=4",
    "schedule.checkpoint_interval=2", "schedule.evaluation_interval=2",
  ]

  func request(folder: URL, work: String, overrides: [String] = tinyOverrides,
               checkpoint: String) throws -> FCNRequest {
    let data = folder.appendingPathComponent("VOC2012").path
    let (config, name) = try FCNRequest.config(file: nil, data: data, overrides: overrides, seed: 5)
    #expect(name == "fcn_r50-d8_512x512_20k_voc12aug")
    var request = FCNRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config, configName: name,
                             workDirectory: folder.appendingPathComponent(work),
                             database: folder.appendingPathComponent("r.sqlite").path)
    request.logInterval = 1000
    return request
  }

  @Test func theVOC12AugConfigTrainsEvaluatesAndStores() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try makeTinyVOC2012(folder.appendingPathComponent("VOC2012"))
    let checkpoint = try tinyRGBCheckpoint(in: folder)
    let result = try FCNProtocol.run(try request(folder: folder, work: "a", checkpoint: checkpoint))
    let scores = try #require(result.scores)
    #expect(result.iteration == 4 && result.benchmark == .voc12AugFCN && result.classNames.count == 21)
    #expect(scores.meanIoU.isFinite && (0...1).contains(scores.meanIoU))
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let run = try #require(try store.runs().first)
    #expect(run.status == .finished)
    #expect(run.protocolVariant?.contains("data.crop_size=24,24") == true)
    let stored = try store.scores(run: run.runID)
    // The evaluation at iteration 2 and 4 (detail rows), then the protocol result (no iteration).
    #expect(stored.filter { $0.metric == "mIoU" }.map(\.epoch) == [2, 4, nil])
    let final = try #require(stored.first { $0.metric == "mIoU" && $0.epoch == nil })
    #expect(abs(final.value - 100 * scores.meanIoU) < 1e-9)
    #expect(final.perClass.first?.className == "background")
    #expect(FCNProtocol.checkpoints(in: folder.appendingPathComponent("a")).map(\.iteration) == [4])
    #expect(result.table.rows[0][1] == String(format: "%.2f", 100 * scores.meanIoU))
  }

  @Test func aRunStoppedAndResumedIsBitIdenticalToAnUninterruptedOne() throws {
    // Two runs compared bit for bit: no other test may change the process-wide thread count between them.
    try ThreadCountLock.holding {
      let folder = try temporaryFolder()
      defer { try? FileManager.default.removeItem(at: folder) }
      try makeTinyVOC2012(folder.appendingPathComponent("VOC2012"))
      let checkpoint = try tinyRGBCheckpoint(in: folder)
      let whole = try FCNProtocol.run(try request(folder: folder, work: "whole", checkpoint: checkpoint))

      var first = try request(folder: folder, work: "split", checkpoint: checkpoint)
      first.stopAfter = 3
      let stopped = try FCNProtocol.run(first)
      #expect(stopped.scores == nil && stopped.iteration == 3)
      var second = try request(folder: folder, work: "split", checkpoint: checkpoint)
      second.resume = true
      let resumed = try FCNProtocol.run(second)
      #expect(resumed.runID == stopped.runID)
      #expect(resumed.scores?.meanIoU == whole.scores?.meanIoU)
      let a = try SafeTensors(contentsOf: folder.appendingPathComponent("whole/iter_4.safetensors"))
      let b = try SafeTensors(contentsOf: folder.appendingPathComponent("split/iter_4.safetensors"))
      #expect(a.tensors.keys.sorted() == b.tensors.keys.sorted())
      for (name, tensor) in a.tensors { #expect(tensor.value.scalars == b.tensors[name]?.value.scalars, "\(name)") }

      // Another config refuses the checkpoint instead of mixing runs.
      var changed = try request(folder: folder, work: "split",
                                overrides: Self.tinyOverrides + ["optimizer.lr=0.02"], checkpoint: checkpoint)
      changed.resume = true
      #expect(throws: ProtocolError.self) { try FCNProtocol.run(changed) }
    }
  }

  @Test func badInputsAreNamedBeforeAnythingIsStored() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let root = folder.appendingPathComponent("VOC2012")
    try makeTinyVOC2012(root)
    let checkpoint = try tinyRGBCheckpoint(in: folder)
    // A mask index beyond the 21 VOC classes (not 255) in a training mask.
    try Image(width: 24, height: 20, channels: 1, pixels: [UInt8](repeating: 40, count: 480))
      .writePalettePNG(to: root.appendingPathComponent("SegmentationClass/2007_000000.png"))
    do {
      _ = try FCNProtocol.run(try request(folder: folder, work: "bad", checkpoint: checkpoint))
      Issue.record("a mask with index 40 was accepted")
    } catch {
      #expect("\(error)".contains("2007_000000.png"))
    }
    // No protocol result for the failed run.
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    for run in try store.runs() {
      #expect(run.status != .finished)
      #expect(try store.scores(run: run.runID).allSatisfy { $0.epoch != nil })
    }
    // A missing val list.
    try FileManager.default.removeItem(at: root.appendingPathComponent("ImageSets/Segmentation/val.txt"))
    do {
      _ = try FCNProtocol.run(try request(folder: folder, work: "bad2", checkpoint: checkpoint))
      Issue.record("a missing val.txt was accepted")
    } catch {
      #expect("\(error)".contains("val.txt"))
    }
    // A checkpoint without backbone tensors.
    let empty = folder.appendingPathComponent("no-backbone.safetensors")
    try SafeTensors(tensors: ["head.fc.weight": StoredTensor(Tensor.zeros([2, 2]))], metadata: [:]).write(to: empty)
    try makeTinyVOC2012(root)
    do {
      _ = try FCNProtocol.run(try request(folder: folder, work: "bad3", checkpoint: empty.path))
      Issue.record("a checkpoint without a backbone was accepted")
    } catch {
      #expect("\(error)".contains("no-backbone.safetensors"))
    }
  }
}
