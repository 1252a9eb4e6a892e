// `simsiam-bench run linear` (being built).
import ArgumentParser

struct RunLinear: PlannedCommand {
  static let configuration = CommandConfiguration(
    commandName: "linear", abstract: "Frozen-backbone linear probes (multi-head feature1–5 or AvgPool). (not implemented yet)")
  @OptionGroup var common: CommonOptions
  @Argument(parsing: .allUnrecognized, help: .hidden) var remaining: [String] = []
}
