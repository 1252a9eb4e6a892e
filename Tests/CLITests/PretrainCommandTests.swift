import Foundation
import Testing
import Results
import Training
import TestSupport
@testable import SimSiamBenchCLI

/// `simsiam-bench pretrain` in process: what it stores (per-epoch kNN, the random-init baseline over 3 init seeds,
/// a cut schedule) and what it refuses before training.
@Suite(.serialized) struct PretrainCommandTests {
  static func tinyArguments(_ folder: URL, _ extra: [String] = []) -> [String] {
    ["pretrain", "--threads", "1", "--db", folder.appendingPathComponent("r.sqlite").path,
     "--work-dir", folder.appendingPathComponent("work").path, "--log-interval", "1000"] + ([
      "model.width_multiplier=0.125", "model.projector_hidden=32", "model.features=32", "model.predictor_hidden=8",
      "data.kind=synthetic", "data.limit=32", "data.image_size=16", "data.workers=1", "schedule.batch_size=16",
      "schedule.epochs=2", "schedule.max_minutes=0", "optimizer.lr=0.2", "monitor.knn_train_samples=32",
      "monitor.knn_test_samples=32", "monitor.knn_k=5",
    ] + extra).flatMap { ["--set", $0] }
  }

  static func withFolder(_ body: (URL) throws -> Void) throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-pretrain-cli-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try body(folder)
  }

  @Test func storesKNNPerEpochAndARandomBaselineOverThreeSeeds() throws {
    try Self.withFolder { folder in
      var command = try SimSiamBench.parseAsRoot(Self.tinyArguments(folder, ["monitor.knn_interval=1",
                                                                            "monitor.knn_at_end=true"]))
      try ThreadCountLock.holding { try command.run() }
      let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
      let run = try #require(try store.runs().last)
      #expect(run.status == .finished && run.message == nil)
      let epochs = try store.epochMetrics(run: run.runID)
      #expect(epochs.map(\.epoch) == [1, 2])
      #expect(epochs.allSatisfy { ($0.knnTop1 ?? -1) >= 0 && ($0.knnTop1 ?? 101) <= 100 })

      let scores = try store.scores(run: run.runID)
      let baseline = scores.filter { $0.layer == "avgpool-random-init" }
      #expect(baseline.count == 4)  // the mean, then one row per init seed
      let mean = try #require(baseline.first { $0.sample == nil })
      #expect(mean.benchmark == "synthetic-knn" && mean.metric == "top1" && mean.k == 5 && mean.count == 3)
      let perSeed = baseline.filter { $0.sample != nil }.sorted { $0.sample! < $1.sample! }
      #expect(perSeed.map(\.sample) == [0, 1, 2])
      let values = perSeed.map(\.value)
      let average = values.reduce(0, +) / 3
      let std = (values.map { ($0 - average) * ($0 - average) }.reduce(0, +) / 2).squareRoot()
      #expect(abs(mean.value - average) < 1e-9 && abs((mean.std ?? -1) - std) < 1e-9)
      #expect(scores.contains { $0.layer == "avgpool" && $0.sample == nil })
    }
  }

  @Test func aTimeCapSaysInTheStoredRunThatTheScheduleWasCut() throws {
    try Self.withFolder { folder in
      var command = try SimSiamBench.parseAsRoot(Self.tinyArguments(folder, ["schedule.max_minutes=0.000001",
                                                                            "monitor.knn_at_end=false"]))
      try ThreadCountLock.holding { try command.run() }
      let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
      let run = try #require(try store.runs().last)
      #expect(run.status == .finished)
      let message = try #require(run.message)
      #expect(message.contains("schedule.max_minutes") && message.contains("cosine schedule was cut")
                && message.contains("0 of 2 epochs"))
      let log = try String(contentsOf: folder.appendingPathComponent("work/log.txt"), encoding: .utf8)
      #expect(log.contains("NOTE: schedule.max_minutes"))
    }
  }

  @Test func aMissingDatasetStopsBeforeTheWorkDirectoryOrTheStoreIsTouched() throws {
    try Self.withFolder { folder in
      var command = try SimSiamBench.parseAsRoot(Self.tinyArguments(folder, [
        "data.kind=fashion-mnist", "data.path=\(folder.appendingPathComponent("no-such-data").path)",
      ]))
      #expect {
        try ThreadCountLock.holding { try command.run() }
      } throws: { error in
        "\(error)".contains("no-such-data")
      }
      #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("work").path))
      #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("r.sqlite").path))
    }
  }

  @Test func anUnwritableWorkDirectoryStopsBeforeTraining() throws {
    try Self.withFolder { folder in
      var arguments = Self.tinyArguments(folder)
      arguments[arguments.firstIndex(of: "--work-dir")! + 1] = "/proc/simsiam-bench-cannot-write"
      var command = try SimSiamBench.parseAsRoot(arguments)
      #expect {
        try ThreadCountLock.holding { try command.run() }
      } throws: { error in
        guard case PretrainError.unwritableWorkDirectory(let path, _) = error else { return false }
        return path == "/proc/simsiam-bench-cannot-write"
      }
      #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("r.sqlite").path))
    }
  }
}
