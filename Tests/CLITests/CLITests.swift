import ArgumentParser
import Foundation
import Testing
import Tensors
import Checkpoints
@testable import SimSiamBenchCLI

@Suite struct ParsingTests {
  @Test func sharedOptionsParse() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["pretrain", "--threads", "2", "--seed", "42",
                                                             "--db", "out/r.sqlite"]) as? Pretrain)
    #expect(command.common.threads == 2)
    #expect(command.common.seed == 42)
    #expect(command.common.db == "out/r.sqlite")
  }

  @Test func defaultsUseAllCoresAndTheDefaultDatabase() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["run"]) as? Run)
    #expect(command.common.threads == 0)
    #expect(command.common.seed == 0)
    #expect(command.common.db == "results/simsiam.sqlite")
  }

  @Test func negativeThreadsAreRejected() {
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["report", "--threads=-3"]) }
  }

  @Test(arguments: ["pretrain", "run", "results", "report", "compare", "data"])
  func plannedCommandsSayTheyAreNotImplemented(_ name: String) throws {
    // Extra arguments are accepted so the honest message, not a parse error, is what the user sees.
    var command = try SimSiamBench.parseAsRoot([name, "--threads", "1", "--some-future-flag", "x"])
    #expect {
      try command.run()
    } throws: { error in
      let text = String(describing: error)
      return error is NotImplementedYet && text.contains("simsiam-bench \(name)")
        && text.contains("not implemented yet in this version")
    }
    // A generic Error exits with EXIT_FAILURE, not success.
    #expect(SimSiamBench.exitCode(for: NotImplementedYet(command: name)) != .success)
  }

  @Test func everyCommandGroupIsRegisteredWithAnAbstract() {
    let names = SimSiamBench.configuration.subcommands.map { $0._commandName }
    #expect(names == ["pretrain", "run", "results", "report", "compare", "checkpoint", "data", "selftest"])
    for subcommand in SimSiamBench.configuration.subcommands {
      #expect(!subcommand.configuration.abstract.isEmpty)
    }
    #expect(SimSiamBench.configuration.version == SimSiamBench.version)
  }

  @Test func checkpointInspectParses() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["checkpoint", "inspect", "a.safetensors", "--tensors"])
                                 as? Checkpoint.Inspect)
    #expect(command.file == "a.safetensors")
    #expect(command.listsTensors)
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["checkpoint", "inspect"]) }
  }
}

@Suite struct InspectTests {
  @Test func reportsCountsShapesAndMetadata() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("tiny.safetensors")
    try SafeTensors(tensors: [
      "conv1.weight": StoredTensor(Tensor.zeros([4, 3, 3, 3])),  // 108 scalars
      "bn1.weight": StoredTensor(Tensor.zeros([4])),
      "bn1.running_mean": StoredTensor(Tensor.zeros([4])),
      "bn1.num_batches_tracked": StoredTensor(Tensor(shape: [], scalars: [9]), dtype: .i64),
      "fc.weight": StoredTensor(Tensor.zeros([2, 4])),
    ], metadata: ["epoch": "5"]).write(to: url)

    let command = try #require(try SimSiamBench.parseAsRoot(["checkpoint", "inspect", url.path, "--tensors"])
                                 as? Checkpoint.Inspect)
    let text = try command.report()
    #expect(text.contains("tensors:     5 (4 F32, 1 I64)"))
    #expect(text.contains("parameters:  120 (all scalars incl. BN running statistics: 125)"))  // 108 + 4 + 8
    #expect(text.contains("conv1  1 tensor, 108 scalars"))
    #expect(text.contains("bn1.num_batches_tracked  I64 []"))
    #expect(text.contains("conv1.weight             F32 [4, 3, 3, 3]"))
    #expect(text.contains("epoch = 5"))
  }

  @Test func missingFileIsATypedError() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["checkpoint", "inspect", "/nonexistent/x.safetensors"])
                                 as? Checkpoint.Inspect)
    #expect(throws: CheckpointError.self) { try command.report() }
  }
}

@Suite struct SelfTestParsingTests {
  @Test func rejectsTooFewStepsAndTinyBatches() {
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["selftest", "--steps", "5"]) }
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["selftest", "--batch-size", "2"]) }
    #expect(throws: Never.self) { try SimSiamBench.parseAsRoot(["selftest", "--steps", "12", "--threads", "1"]) }
  }
}
