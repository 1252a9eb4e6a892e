import Protocols
import ArgumentParser
import Foundation
import Testing
import Checkpoints
import Layers
import Models
import Results
import Tensors
import TestSupport
@testable import SimSiamBenchCLI

/// `run linear` and `run knn` end to end on a tiny backbone and a few dozen synthetic images.
@Suite struct RunLinearTests {
  static func withFolder<T>(_ body: (URL) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-probe-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
  }

  /// A ResNet-18 with the CIFAR stem, width 1/16, 1 input channel, saved under torchvision names.
  static func tinyCheckpoint(in folder: URL) throws -> String {
    var generator = SplitMix64(seed: 42)
    let backbone = ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16, cifarStem: true, inChannels: 1),
                          using: &generator)
    let url = folder.appendingPathComponent("tiny.safetensors")
    try StateDict.save(backbone.namedParameters, to: url)
    return url.path
  }

  static let tinyData = ["--set", "data.kind=synthetic", "--set", "data.limit=40", "--set", "data.test_limit=24",
                         "--set", "data.extract_batch_size=16"]

  @Test(arguments: [(ProbeKindArgument.mhead, false), (.mhead, true), (.avgpool, false)])
  func linearProbeRunsAndStoresScores(_ head: ProbeKindArgument, _ cached: Bool) throws {
    try Self.withFolder { folder in
      let checkpoint = try Self.tinyCheckpoint(in: folder)
      let db = folder.appendingPathComponent("r.sqlite").path
      var arguments = ["run", "linear", "--head", head.rawValue, "--checkpoint", checkpoint, "--db", db,
                       "--threads", "2", "--work-dir", folder.appendingPathComponent("work").path,
                       "--feature-cache", folder.appendingPathComponent("features").path,
                       "--set", "schedule.epochs=2", "--set", "schedule.batch_size=16",
                       "--set", "schedule.milestones=[1]", "--set", "evaluation.interval=1"] + Self.tinyData
      if cached { arguments.append("--cache-features") }
      let command = try #require(try SimSiamBench.parseAsRoot(arguments) as? RunLinear)
      try ThreadCountLock.holding { try command.run() }

      let store = try ResultsStore(path: db)
      let run = try #require(try store.runs().last)
      #expect(run.status == .finished)
      #expect(run.protocolName == "synthetic-linear")
      #expect(run.label == "tiny")
      #expect(run.checkpointSHA256?.count == 64)
      #expect((run.protocolVariant ?? "").contains("pooling=adaptive") == (head == .mhead))
      #expect((run.protocolVariant ?? "").contains("cached-features") == cached)
      let scores = try store.scores(run: run.runID)
      let final = scores.filter(\.isProtocolResult)
      let layers = head == .mhead ? (1...5).map { "feature\($0)" } : ["avgpool"]
      #expect(Set(final.compactMap(\.layer)) == Set(layers))
      #expect(final.count == 2 * layers.count)
      #expect(final.allSatisfy { (0...100).contains($0.value) && $0.count == 24 })
      // Per-epoch rows (evaluation.interval=1): sample = epoch.
      #expect(Set(scores.compactMap(\.epoch)) == [1, 2])
      #expect(try store.epochMetrics(run: run.runID).map(\.epoch) == [1, 2])
      let work = folder.appendingPathComponent("work")
      #expect(FileManager.default.fileExists(atPath: work.appendingPathComponent("heads_epoch_2.safetensors").path))
      #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("heads_epoch_1.safetensors").path))
    }
  }

  @Test func resumeContinuesFromTheHeadCheckpointAndRefusesAChangedConfig() throws {
    try Self.withFolder { folder in
      let checkpoint = try Self.tinyCheckpoint(in: folder)
      let db = folder.appendingPathComponent("r.sqlite").path
      let base = ["run", "linear", "--checkpoint", checkpoint, "--db", db, "--threads", "1",
                  "--work-dir", folder.appendingPathComponent("work").path,
         "--feature-cache", folder.appendingPathComponent("features").path, "--cache-features",
                  "--set", "schedule.batch_size=16"] + Self.tinyData
      let first = try #require(try SimSiamBench.parseAsRoot(base + ["--set", "schedule.epochs=2"]) as? RunLinear)
      try ThreadCountLock.holding { try first.run() }
      let store = try ResultsStore(path: db)
      let firstScores = try store.scores(run: try store.runs().last!.runID).filter(\.isProtocolResult)
      // The finished run resumed: nothing left to train, the history and final scores are stored again.
      let again = try #require(try SimSiamBench.parseAsRoot(base + ["--set", "schedule.epochs=2", "--resume"])
                                 as? RunLinear)
      try ThreadCountLock.holding { try again.run() }
      let resumed = try store.runs().last!
      #expect(resumed.status == .finished)
      let resumedScores = try store.scores(run: resumed.runID).filter(\.isProtocolResult)
      #expect(resumedScores.map(\.value) == firstScores.map(\.value))
      let changed = try #require(try SimSiamBench.parseAsRoot(base + ["--set", "schedule.epochs=3", "--resume"])
                                   as? RunLinear)
      #expect { try changed.run() } throws: { "\($0)".contains("Cannot resume") }
    }
  }

  @Test func randomInitAndDatasetDetection() throws {
    try Self.withFolder { folder in
      let checkpoint = try Self.tinyCheckpoint(in: folder)
      let db = folder.appendingPathComponent("r.sqlite").path
      let command = try #require(try SimSiamBench.parseAsRoot(
        ["run", "knn", "--checkpoint", checkpoint, "--db", db, "--threads", "1", "--random-init",
         "--work-dir", folder.appendingPathComponent("work").path,
         "--feature-cache", folder.appendingPathComponent("features").path, "--set", "knn.k=[3]"] + Self.tinyData) as? RunKNN)
      try ThreadCountLock.holding { try command.run() }
      let run = try #require(try ResultsStore(path: db).runs().last)
      #expect(run.label == "tiny-random-init")
      #expect(run.protocolVariant?.contains("random-init") == true)
      try FileManager.default.createDirectory(at: folder.appendingPathComponent("in/train"),
                                              withIntermediateDirectories: true)
      try FileManager.default.createDirectory(at: folder.appendingPathComponent("in/val"),
                                              withIntermediateDirectories: true)
      #expect(detectClassificationData(folder.appendingPathComponent("in").path) == .imageFolder)
      #expect(detectClassificationData(folder.path) == nil)
      let imagenet = try #require(try SimSiamBench.parseAsRoot(
        ["run", "linear", "--head", "avgpool", "--checkpoint", "x", "--data", folder.appendingPathComponent("in").path])
        as? RunLinear)
      let request = try imagenet.request()
      let (config, name) = (request.config, request.configName)
      #expect(name == "resnet50_8xb512-coslr-90e_in1k")
      #expect(config.optimization.method == .lars && config.data.crop == 224 && config.scaledLearningRate == 1.6)
    }
  }

  @Test func aMissingCheckpointIsAClearError() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(
      ["run", "linear", "--checkpoint", "/nonexistent/ckpt.safetensors", "--db", "/tmp/unused.sqlite"]) as? RunLinear)
    #expect { try command.run() } throws: { "\($0)".contains("/nonexistent/ckpt.safetensors") }
  }
}

/// `ProbeKind` under a name that does not need `import Evaluation` in the argument list.
enum ProbeKindArgument: String, CaseIterable, Sendable { case mhead, avgpool }
