// The `simsiam-bench` command tree. Commands are thin: the work lives in the library targets.
import ArgumentParser
import Distributed
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

  /// ArgumentParser's main, except that under `mpirun -np N` / `srun` with N > 1 only the commands that split their
  /// work over the ranks (`DataParallelCommand`) run; any other would run N times over the same files and database.
  static func main() {
    do {
      var command = try parseAsRoot()
      if let ranks = ProcessGroups.launchedWorldSize, ranks > 1, !(command is DataParallelCommand) {
        throw NotDataParallel(command: type(of: command)._commandName, ranks: ranks)
      }
      try command.run()
    } catch {
      exit(withError: error)
    }
  }
}

/// A command other than `pretrain` started by an MPI launcher with several ranks.
struct NotDataParallel: Error, CustomStringConvertible {
  var command: String
  var ranks: Int

  var description: String {
    "`\(command)` was started as \(ranks) MPI ranks (mpirun -np / srun), but only `simsiam-bench pretrain`, "
      + "`run voc-svm`, `run linear` and `run fcn` split their work over ranks in this version; the \(ranks) copies would write the same files. "
      + "Run it without mpirun (or with -np 1)."
  }
}
