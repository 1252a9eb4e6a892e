// `simsiam-bench pretrain`: options → `PretrainRequest`; the protocol lives in Sources/Protocols/Pretrain.
import ArgumentParser
import Distributed
import Foundation
import Protocols
import Tensors

struct Pretrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Pretrain a SimSiam ResNet (SGD, cosine LR, fixed predictor LR) and save safetensors checkpoints.",
    discussion: """
      Without --config, runs the embedded default configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml \
      (about 10 minutes on 2 cores). Any key can be overridden: --set optimizer.lr=0.1 --set schedule.epochs=5. \
      Checkpoints, `latest` and log.txt go to work_dirs/<config name>/; --resume auto continues from `latest`.
      Under `mpirun -np N` (or srun) it trains data-parallel: schedule.batch_size is the global batch, split over \
      the N ranks, with SyncBN; rank 0 writes checkpoints, log and database rows (README "Scaling out").
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "A YAML config (see configs/pretrain); default: the embedded quick Fashion-MNIST config.")
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (dotted, repeatable).",
                                                      valueName: "key=value"))
  var overrides: [String] = []

  @Option(help: "Where checkpoints and the log go (default: work_dirs/<config name>).")
  var workDir: String?

  @Option(help: ArgumentHelp("Continue a run: `auto` (the work directory's latest checkpoint, if any) or a "
                               + "checkpoint path.", valueName: "auto|path"))
  var resume: String?

  @Option(help: "Seconds between progress lines when the output is not a terminal.")
  var logInterval: Double = 10

  @Flag(help: ArgumentHelp("Replace unreadable or corrupt images by the next readable one and report how many were "
                            + "skipped (--set data.skip_corrupt=true); without it the first bad image stops the run."))
  var skipCorrupt = false

  @Option(help: ArgumentHelp("Write the config's initial weights (the model before its first step: the random-init "
                             + "baseline `quickstart` evaluates) to this safetensors file and exit without training.",
                             valueName: "path"))
  var writeInitialWeights: String?

  func run() throws {
    if let path = writeInitialWeights {
      let (config, name) = try PretrainRequest.config(file: self.config, overrides: overrides, seed: common.seed)
      try PretrainProtocol.writeInitialWeights(of: config, name: name, to: URL(fileURLWithPath: path))
      print("wrote the initial weights of \(name) (seed \(config.seed)) to \(path)")
      return
    }
    try common.runInLaunchedGroup(train)
  }

  private func train(in group: any ProcessGroup) throws {
    let (config, name) = try PretrainRequest.config(file: self.config, overrides: overrides,
                                                    skipCorrupt: skipCorrupt, seed: common.seed)
    var request = PretrainRequest(config: config, configName: name, configFile: self.config,
                                  workDirectory: workDir.map { URL(fileURLWithPath: $0) }, database: common.db)
    request.resume = switch resume {
    case nil: .none
    case "auto": .auto
    case let path?: .checkpoint(URL(fileURLWithPath: path))
    }
    request.logInterval = logInterval
    request.processGroup = group
    if group.isRoot { _ = try PretrainProtocol.run(request) } else { try PretrainProtocol.runAsWorker(request) }
  }
}
