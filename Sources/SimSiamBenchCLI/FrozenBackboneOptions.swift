// The options `run linear` and `run knn` share: which checkpoint, which data and config, the baseline switch, and
// where the run's files go.
import ArgumentParser
import Foundation
import Protocols

struct FrozenBackboneOptions: ParsableArguments {
  @Option(help: "The checkpoint to evaluate (.safetensors or .pth, any layout `checkpoint inspect` knows).")
  var checkpoint: String

  @Option(help: "The dataset folder (sets data.path).")
  var data: String?

  @Option(help: "A YAML config (configs/benchmarks/classification/…); default: the embedded quick config.")
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (dotted, repeatable).",
                                                      valueName: "key=value"))
  var overrides: [String] = []

  @Flag(help: "Evaluate the checkpoint's architecture at random initialisation instead of its weights (baseline).")
  var randomInit = false

  @Option(help: "Where the run's files and log.txt go (default: a folder under work_dirs/<config name>/).")
  var workDir: String?

  @Option(help: "The name reports show for this checkpoint (default: the checkpoint file name).")
  var label: String?

  @Option(help: "Seconds between progress lines when the output is not a terminal.")
  var logInterval: Double = 10

  @OptionGroup var layoutOptions: LayoutOptions

  @OptionGroup var featureCacheOptions: FeatureCacheOptions

  var backbone: BackboneRequest {
    BackboneRequest(checkpoint: checkpoint, layout: layoutOptions.layout, prefix: layoutOptions.prefix,
                    randomInit: randomInit)
  }

  var workDirectory: URL? { workDir.map { URL(fileURLWithPath: $0) } }
}
