// `simsiam-bench run linear --head mhead|avgpool`: options → `LinearProbeRequest`; the protocol lives in
// Sources/Protocols/Linear.
import ArgumentParser
import Evaluation
import Foundation
import Protocols

struct RunLinear: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "linear",
    abstract: "Frozen-backbone linear probes (multi-head feature1–5 or AvgPool), MMSelfSup's protocols.",
    discussion: """
      --head mhead: AvgPool → BN(affine=False) → Linear on each of feature1 … feature5, summed cross-entropy, SGD \
      Nesterov, step LR (resnet50_mhead_8xb32-steplr-90e_in1k). --head avgpool: GAP → Linear, LARS, cosine LR \
      (resnet50_8xb512-coslr-90e_in1k). Without --config the embedded quick Fashion-MNIST config of the head is \
      used (configs/benchmarks/classification/fashion-mnist/); --data sets data.path. The LR is lr × batch_size / \
      base_batch_size. --cache-features trains the heads on features extracted once with the test transform \
      (fast on CPU; recorded as a protocol deviation). Heads are checkpointed to the work directory every epoch; \
      --resume continues from there.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The checkpoint to evaluate (.safetensors or .pth, any layout `checkpoint inspect` knows).")
  var checkpoint: String

  @Option(help: ArgumentHelp("mhead (feature1–5) or avgpool; default: the config's head.type.",
                             valueName: "mhead|avgpool"))
  var head: ProbeKind?

  @Option(help: "The dataset folder (sets data.path).")
  var data: String?

  @Option(help: "A YAML config (configs/benchmarks/classification/…); default: the embedded quick config.")
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (dotted, repeatable).",
                                                      valueName: "key=value"))
  var overrides: [String] = []

  @Flag(help: "Train the heads on features extracted once with the test transform (protocol deviation).")
  var cacheFeatures = false

  @Flag(help: "Continue from the work directory's head checkpoint (same checkpoint, config and data).")
  var resume = false

  @Flag(help: "Evaluate the checkpoint's architecture at random initialisation instead of its weights (baseline).")
  var randomInit = false

  @Option(help: "Where head checkpoints and log.txt go (default: work_dirs/<config name>/<checkpoint name>).")
  var workDir: String?

  @Option(help: "The name reports show for this checkpoint (default: the checkpoint file name).")
  var label: String?

  @Option(help: "Seconds between progress lines when the output is not a terminal.")
  var logInterval: Double = 10

  @OptionGroup var layoutOptions: LayoutOptions

  @OptionGroup var featureCacheOptions: FeatureCacheOptions

  /// The request these options ask for.
  func request() throws -> LinearProbeRequest {
    let (config, name) = try LinearProbeRequest.config(file: self.config, data: data, head: head,
                                                       overrides: overrides, cacheFeatures: cacheFeatures,
                                                       seed: common.seed)
    var request = LinearProbeRequest(
      backbone: BackboneRequest(checkpoint: checkpoint, layout: layoutOptions.layout, prefix: layoutOptions.prefix,
                                randomInit: randomInit),
      config: config, configName: name, configFile: self.config, label: label,
      workDirectory: workDir.map { URL(fileURLWithPath: $0) }, resume: resume, database: common.db,
      featureCache: featureCacheOptions.directory)
    request.logInterval = logInterval
    return request
  }

  func run() throws {
    common.configureThreads()
    let result = try LinearProbeProtocol.run(try request())
    print("")
    print(result.table.markdown(), terminator: "")
  }
}

extension ProbeKind: ExpressibleByArgument {}
