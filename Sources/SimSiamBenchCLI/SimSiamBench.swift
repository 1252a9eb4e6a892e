import ArgumentParser

@main
struct SimSiamBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simsiam-bench",
    abstract: "SimSiam pretraining and transfer evaluations on CPU.",
    version: "0.1.0")
}
