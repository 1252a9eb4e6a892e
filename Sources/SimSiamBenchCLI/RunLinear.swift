// `simsiam-bench run linear --head mhead|avgpool`: options → `LinearProbeRequest`; the protocol lives in
// Sources/Protocols/Linear.
import ArgumentParser
import Distributed
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
      --resume continues from there. Under `mpirun -np N` schedule.batch_size is the global batch, split over the       ranks (README "Scaling out").
      """)

  @OptionGroup var common: CommonOptions

  @OptionGroup var options: FrozenBackboneOptions

  @Option(help: ArgumentHelp("mhead (feature1–5) or avgpool; default: the config's head.type.",
                             valueName: "mhead|avgpool"))
  var head: ProbeKind?

  @Flag(help: "Train the heads on features extracted once with the test transform (protocol deviation).")
  var cacheFeatures = false

  @Flag(help: "Continue from the work directory's head checkpoint (same checkpoint, config and data).")
  var resume = false

  /// The request these options ask for.
  func request() throws -> LinearProbeRequest {
    let (config, name) = try LinearProbeRequest.config(file: options.config, data: options.data, head: head,
                                                       overrides: options.overrides, cacheFeatures: cacheFeatures,
                                                       seed: common.seed)
    var request = LinearProbeRequest(
      backbone: options.backbone, config: config, configName: name, configFile: options.config, label: options.label,
      workDirectory: options.workDirectory, resume: resume, database: common.db,
      featureCache: options.featureCacheOptions.directory)
    request.logInterval = options.logInterval
    return request
  }

  func run() throws {
    try common.runInLaunchedGroup(evaluate)
  }

  /// Under mpirun, rank 0 runs the recorded run and prints the table; the others train their share silently.
  private func evaluate(in group: any ProcessGroup) throws {
    var request = try request()
    request.processGroup = group
    guard group.isRoot else { return try LinearProbeProtocol.runAsWorker(request) }
    let result = try LinearProbeProtocol.run(request)
    print("")
    print(result.table.markdown(), terminator: "")
  }
}

extension ProbeKind: ExpressibleByArgument {}
