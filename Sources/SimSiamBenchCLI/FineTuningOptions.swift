// The options every fine-tuning protocol shares (`run fcn`, `run faster-rcnn`): the config and its overrides, the
// schedule shortcuts, the baseline flag, the run lifecycle (resume, stop-after, work directory, label, progress).
import ArgumentParser
import Foundation

struct FineTuningOptions: ParsableArguments {
  @Option(help: "A YAML config (configs/benchmarks/…); default: chosen from the data folder.")
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (dotted, repeatable).",
                                                      valueName: "key=value"))
  var overrides: [String] = []

  @Option(help: "Training iterations (sets schedule.iterations).")
  var iterations: Int?

  @Flag(help: "Fine-tune the checkpoint's architecture from random initialisation instead of its weights (baseline).")
  var randomInit = false

  @Flag(help: "Continue from the work directory's latest iter_<N>.safetensors.")
  var resume = false

  @Option(help: "Stop after this iteration of the schedule (checkpoint written, no score); --resume continues.")
  var stopAfter: Int?

  @Option(help: "Where checkpoints and log.txt go (default: work_dirs/<config name>/<label>).")
  var workDir: String?

  @Option(help: "The name reports show for this checkpoint (default: the checkpoint file name).")
  var label: String?

  @Option(help: "Seconds between progress lines when the output is not a terminal.")
  var logInterval: Double = 10

  /// The overrides with the shortcuts first (`--iterations`), so an explicit `--set` wins.
  var allOverrides: [String] { (iterations.map { ["schedule.iterations=\($0)"] } ?? []) + overrides }

  var workDirectory: URL? { workDir.map { URL(fileURLWithPath: $0) } }

  func validate() throws {
    if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be ≥ 1, got \(stopAfter).") }
    if let iterations, iterations < 1 { throw ValidationError("--iterations must be ≥ 1, got \(iterations).") }
  }
}
