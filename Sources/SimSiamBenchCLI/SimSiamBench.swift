// The `simsiam-bench` command tree. Commands are thin: the work lives in the library targets.
import ArgumentParser

@main
struct SimSiamBench: ParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "simsiam-bench",
    abstract: "SimSiam pretraining and transfer evaluations on CPU.",
    discussion: """
      Pretrains SimSiam ResNets and evaluates checkpoints with MMSelfSup's protocols on a Float32 engine over \
      OpenBLAS. In this version `selftest`, `checkpoint inspect`, `results` and `report markdown` do real work; the other commands report that they \
      are not implemented yet.
      """,
    version: version,
    subcommands: [
      Pretrain.self, RunCommand.self, Results.self, Report.self, Compare.self, Checkpoint.self, DataCommand.self,
      SelfTest.self,
    ])
}
