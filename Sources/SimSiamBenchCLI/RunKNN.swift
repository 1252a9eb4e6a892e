// `simsiam-bench run knn` (being built).
import ArgumentParser

struct RunKNN: PlannedCommand {
  static let configuration = CommandConfiguration(
    commandName: "knn", abstract: "Weighted kNN classifier on global-pooled features. (not implemented yet)")
  @OptionGroup var common: CommonOptions
  @Argument(parsing: .allUnrecognized, help: .hidden) var remaining: [String] = []
}
