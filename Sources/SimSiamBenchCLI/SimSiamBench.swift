// The `simsiam-bench` command tree. Commands are thin: the work lives in the library targets.
import ArgumentParser
import Protocols

@main
struct SimSiamBench: ParsableCommand {
  static let version = Protocols.codeVersion

  static let configuration = CommandConfiguration(
    commandName: "simsiam-bench",
    abstract: "SimSiam pretraining and transfer evaluations on CPU.",
    discussion: """
      Pretrains SimSiam ResNets and evaluates checkpoints with MMSelfSup's protocols on a Float32 engine over \
      OpenBLAS. Commands marked "(not implemented yet)" report so and exit with a failure status.
      """,
    version: version,
    subcommands: [
      Quickstart.self, Pretrain.self, RunCommand.self, Results.self, Report.self, Compare.self, Checkpoint.self,
      DataCommand.self, SelfTest.self,
      EvalCommand.self,
    ])
}
