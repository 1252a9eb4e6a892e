// `simsiam-bench run voc-svm` (being built).
import ArgumentParser

struct RunVOCSVM: PlannedCommand {
  static let configuration = CommandConfiguration(
    commandName: "voc-svm", abstract: "VOC07 linear SVMs per layer (feature1–5) and low-shot SVMs. (not implemented yet)")
  @OptionGroup var common: CommonOptions
  @Argument(parsing: .allUnrecognized, help: .hidden) var remaining: [String] = []
}
