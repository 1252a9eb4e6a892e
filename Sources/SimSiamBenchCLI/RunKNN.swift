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

  @OptionGroup var options: FrozenBackboneOptions

  /// The request these options ask for.
  func request() throws -> KNNRequest {
    let (config, name) = try KNNRequest.config(file: options.config, data: options.data,
                                               overrides: options.overrides, seed: common.seed)
    var request = KNNRequest(
      backbone: options.backbone, config: config, configName: name, configFile: options.config, label: options.label,
      workDirectory: options.workDirectory, database: common.db, featureCache: options.featureCacheOptions.directory)
    request.logInterval = options.logInterval
    return request
  }

  func run() throws {
    try common.configureThreads()
    let result = try KNNProtocol.run(try request())
    print("")
    print(result.table.markdown(), terminator: "")
  }
}
