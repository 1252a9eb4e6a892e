// `simsiam-bench run <protocol>`: evaluate a checkpoint with one of MMSelfSup's transfer protocols and store every
// score with its provenance in the results database.
import ArgumentParser

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Evaluate a checkpoint with an MMSelfSup protocol and store the scores.",
    subcommands: [RunVOCSVM.self, RunLinear.self, RunKNN.self, RunFCN.self, RunFasterRCNN.self,
                  RunMaskRCNN.self])
}
