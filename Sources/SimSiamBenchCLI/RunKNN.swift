// `simsiam-bench run knn`: options → `KNNRequest`; the protocol lives in Sources/Protocols/KNN.
import ArgumentParser
import Foundation
import Protocols

struct RunKNN: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "knn",
    abstract: "Weighted kNN classifier on global-pooled features (k = 10, 20, 100, 200; T = 0.07).",
    discussion: """
      MMSelfSup's knn_imagenet: L2-normalised GAP(layer4) features of the train split are the bank, the test \
      split the queries (Resize → CenterCrop for both); each query's k most cosine-similar bank images vote for \
      their class with weight exp(sim / 0.07). Similarities are computed in blocks through sgemm, so memory stays \
      bounded for ImageNet-sized banks. Without --config the embedded quick Fashion-MNIST config is used; an \
      ImageNet train/val folder given with --data uses knn_imagenet's settings.
      """)

  @OptionGroup var common: CommonOptions

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

  @Option(help: "Where log.txt goes (default: work_dirs/<config name>/<checkpoint name>).")
  var workDir: String?

  @Option(help: "The name reports show for this checkpoint (default: the checkpoint file name).")
  var label: String?

  @Option(help: "Seconds between progress lines when the output is not a terminal.")
  var logInterval: Double = 10

  @OptionGroup var layoutOptions: LayoutOptions

  @OptionGroup var featureCacheOptions: FeatureCacheOptions

  /// The request these options ask for.
  func request() throws -> KNNRequest {
    let (config, name) = try KNNRequest.config(file: self.config, data: data, overrides: overrides, seed: common.seed)
    var request = KNNRequest(
      backbone: BackboneRequest(checkpoint: checkpoint, layout: layoutOptions.layout, prefix: layoutOptions.prefix,
                                randomInit: randomInit),
      config: config, configName: name, configFile: self.config, label: label,
      workDirectory: workDir.map { URL(fileURLWithPath: $0) }, database: common.db,
      featureCache: featureCacheOptions.directory)
    request.logInterval = logInterval
    return request
  }

  func run() throws {
    common.configureThreads()
    let result = try KNNProtocol.run(try request())
    print("")
    print(result.table.markdown(), terminator: "")
  }
}
