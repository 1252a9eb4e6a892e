import Foundation
import Testing
import Checkpoints
import Results
import Training
@testable import SimSiamBenchCLI

/// The built `simsiam-bench` binary is killed with SIGKILL in the middle of an epoch, after its first checkpoint,
/// and resumed with `--resume auto`: the final checkpoint must be bit-identical to an uninterrupted run with the same
/// seed and thread count.
///
/// Why this is exact: a checkpoint holds the weights, BN running statistics, momentum buffers and the counters
/// (epoch, iteration, iteration in epoch). Everything random after initialisation is derived, not carried: epoch
/// e's sample order is `EpochPlan(seed, e)` and sample i's two views use `SplitMix64.derived(seed, e, i)`, so a run
/// resumed from the end of epoch 1 redoes the killed part of epoch 2 with the same batches and the same views, and
/// (with the same OpenBLAS thread count) the same arithmetic. Nothing written after the checkpoint is read back.
@Suite(.serialized) struct PretrainKillResumeTests {
  /// `SIMSIAM_BENCH_BINARY`, else `simsiam-bench` next to the test bundle (the build products directory).
  static func binary() -> URL? {
    if let path = ProcessInfo.processInfo.environment["SIMSIAM_BENCH_BINARY"] { return URL(fileURLWithPath: path) }
    let places = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                  URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
    return places.map { $0.appendingPathComponent("simsiam-bench") }
      .first { FileManager.default.isExecutableFile(atPath: $0.path) }
  }

  static let binaryFound = binary() != nil

  /// ResNet-18 (CIFAR stem) at 1/8 width, d = 32, on 48 synthetic 32×32 images, batch 8: 6 iterations per epoch.
  static func arguments(workDirectory: URL, database: URL) -> [String] {
    ["pretrain", "--threads", "2", "--seed", "5", "--db", database.path, "--work-dir", workDirectory.path,
     "--log-interval", "0"] + [
      "model.width_multiplier=0.125", "model.projector_hidden=32", "model.features=32", "model.predictor_hidden=8",
      "data.kind=synthetic", "data.limit=48", "data.image_size=32", "data.workers=2", "schedule.batch_size=8",
      "schedule.epochs=3", "schedule.max_minutes=0", "optimizer.lr=0.2", "checkpoint.keep=0",
      "monitor.knn_at_end=false", "monitor.knn_interval=0",
    ].flatMap { ["--set", $0] }
  }

  /// Runs the binary; `onLine` sees each output line as it is printed and may kill the process.
  static func run(_ arguments: [String], onLine: (String, Process) -> Void = { _, _ in }) throws
    -> (status: Int32, reason: Process.TerminationReason, output: String) {
    let process = Process()
    process.executableURL = try #require(binary())
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    var output = "", pending = Data()
    let handle = pipe.fileHandleForReading
    // availableData returns as soon as anything arrives (read(upToCount:) waits for the whole count).
    while case let chunk = handle.availableData, !chunk.isEmpty {
      pending.append(chunk)
      while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
        let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
        pending.removeSubrange(pending.startIndex...newline)
        output += line + "\n"
        onLine(line, process)
      }
    }
    process.waitUntilExit()
    return (process.terminationStatus, process.terminationReason, output)
  }

  /// Names, shapes and the bits of every value (weights, BN statistics, momentum buffers).
  static func bits(_ url: URL) throws -> [String: [UInt32]] {
    try SafeTensors(contentsOf: url).tensors.mapValues { $0.value.scalars.map(\.bitPattern) }
  }

  @Test(.enabled(if: binaryFound, "the simsiam-bench binary is not built next to the tests (swift build --build-tests)"))
  func sigkillMidEpochThenResumeIsBitExact() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-kill-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let database = folder.appendingPathComponent("results.sqlite")
    let reference = folder.appendingPathComponent("reference"), killed = folder.appendingPathComponent("killed")

    let uninterrupted = try Self.run(Self.arguments(workDirectory: reference, database: database))
    #expect(uninterrupted.status == 0, "\(uninterrupted.output)")

    // Kill once epoch 2 has trained 2 of its 6 iterations: epoch_1 is on disk, epoch 2 is half done.
    var checkpointsAtKill: [String] = []
    let first = try Self.run(Self.arguments(workDirectory: killed, database: database)) { line, process in
      guard checkpointsAtKill.isEmpty, line.contains("epoch 2/3  iter 2/6") else { return }
      checkpointsAtKill = ["(none)"] + Pretrainer.checkpoints(in: killed).map(\.lastPathComponent)
      kill(process.processIdentifier, SIGKILL)
    }
    #expect(first.reason == .uncaughtSignal && first.status == SIGKILL, "\(first.output)")
    #expect(checkpointsAtKill == ["(none)", "epoch_1.safetensors"])
    let left = Pretrainer.checkpoints(in: killed).map(\.lastPathComponent)
    #expect(left.first == "epoch_1.safetensors" && !left.contains("epoch_3.safetensors"))

    let resumed = try Self.run(Self.arguments(workDirectory: killed, database: database) + ["--resume", "auto"])
    #expect(resumed.status == 0, "\(resumed.output)")
    #expect(resumed.output.contains("resumed from \(killed.appendingPathComponent("epoch_1.safetensors").path)"))

    let expected = try Self.bits(reference.appendingPathComponent("epoch_3.safetensors"))
    let actual = try Self.bits(killed.appendingPathComponent("epoch_3.safetensors"))
    #expect(expected.keys.contains("optimizer.momentum_buffer.backbone.conv1.weight"))
    #expect(actual.keys.sorted() == expected.keys.sorted())
    let differing = expected.keys.filter { actual[$0] != expected[$0] }.sorted()
    #expect(differing.isEmpty, "tensors differing after kill + resume: \(differing.prefix(5))")
    let metadata = try SafeTensors(contentsOf: killed.appendingPathComponent("epoch_3.safetensors")).metadata
    #expect(metadata["iteration"] == "18" && metadata["epoch"] == "3")

    // One training, one run: the resumed process continued the killed run's row (issue 13) and recorded the resume.
    let store = try ResultsStore(path: database.path)
    let runs = try store.runs()
    #expect(runs.count == 2, "the reference run and the killed-then-resumed one: \(runs.map(\.runID))")
    #expect(runs.map(\.status) == [.finished, .finished])
    let resumes = try store.resumes(run: try #require(runs.last).runID)
    #expect(resumes.map(\.previousStatus) == ["died"] && resumes.first?.fromEpoch == 1)
    #expect(try store.epochMetrics(run: try #require(runs.last).runID).map(\.epoch) == [1, 2, 3])
  }
}
