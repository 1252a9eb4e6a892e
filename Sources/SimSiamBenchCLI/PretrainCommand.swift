// `simsiam-bench pretrain`: loads a config (the embedded quick Fashion-MNIST default without --config), trains
// with live progress, writes checkpoints to work_dirs/<config name>/ and per-epoch metrics to the results store.
import ArgumentParser
import Foundation
import Tensors
import Datasets
import Training
import Results

struct Pretrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Pretrain a SimSiam ResNet (SGD, cosine LR, fixed predictor LR) and save safetensors checkpoints.",
    discussion: """
      Without --config, runs the embedded default configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml \
      (about 10 minutes on 2 cores). Any key can be overridden: --set optimizer.lr=0.1 --set schedule.epochs=5. \
      Checkpoints, `latest` and log.txt go to work_dirs/<config name>/; --resume auto continues from `latest`.
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

  /// The config and its name (the file name without extension).
  func loadConfig() throws -> (PretrainConfig, String) {
    var overrides = self.overrides
    if skipCorrupt { overrides.append("data.skip_corrupt=true") }
    // --seed is shared by every command; given explicitly it wins over the config's seed.
    if CommandLine.arguments.contains(where: { $0 == "--seed" || $0.hasPrefix("--seed=") }) {
      overrides.append("seed=\(common.seed)")
    }
    guard let config else {
      return (try PretrainConfig.load(yaml: nil, source: "default", overrides: overrides),
              PretrainConfig.quickDefaultName)
    }
    let url = URL(fileURLWithPath: config)
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
      throw ValidationError("Cannot read the config \(config): \((error as NSError).localizedDescription).")
    }
    let name = url.deletingPathExtension().lastPathComponent
    return (try PretrainConfig.load(yaml: text, source: config, overrides: overrides), name)
  }

  func run() throws {
    common.configureThreads()
    let (config, name) = try loadConfig()
    let workDirectory = workDir.map { URL(fileURLWithPath: $0) } ?? Pretrainer.defaultWorkDirectory(configName: name)
    let dataset = try PretrainDataset.open(config.data, channels: config.model.inChannels)
    let trainer = try Pretrainer(config: config, dataset: dataset, workDirectory: workDirectory,
                                 codeVersion: SimSiamBench.version)
    let log = try LogFile(workDirectory.appendingPathComponent("log.txt"))
    log.write("simsiam-bench \(SimSiamBench.version) pretrain \(name): \(dataset.count) images, "
                + "\(trainer.iterationsPerEpoch) iterations/epoch, \(config.schedule.epochs) epochs, "
                + "lr \(config.scaledLearningRate), \(Threads.count) threads; config \(config.json)")
    if let resume {
      let url = resume == "auto" ? Pretrainer.latestCheckpoint(in: workDirectory) : URL(fileURLWithPath: resume)
      if let url {
        try trainer.resume(from: url)
        log.write("resumed from \(url.path) at epoch \(trainer.completedEpochs), iteration \(trainer.iteration)")
      } else {
        log.write("--resume auto: no checkpoint in \(workDirectory.path); starting fresh")
      }
    }

    var monitor: KNNMonitor?
    if config.monitor.knnAtEnd || config.monitor.knnInterval > 0 {
      let test = try PretrainDataset.open(config.data, channels: config.model.inChannels, split: .test)
      monitor = try KNNMonitor(bank: dataset, queries: test, bankCount: config.monitor.knnTrainSamples,
                               queryCount: config.monitor.knnTestSamples, k: config.monitor.knnK,
                               temperature: config.monitor.knnTemperature, imageSize: config.data.imageSize,
                               channels: config.model.inChannels, normalization: trainer.augmentation.normalization)
    }

    let store = try ResultsStore(path: common.db)
    let runID = try store.beginRun(NewRun(
      kind: .pretrain, protocolName: "simsiam", label: name, configFile: self.config, config: config.json,
      datasetPath: config.data.path, datasetFingerprint: dataset.fingerprint, codeVersion: SimSiamBench.version,
      threads: Threads.count))
    let progress = ProgressPrinter(log: log, interval: logInterval)
    do {
      let summary = try trainer.train(
        onIteration: progress.iteration,
        onEpoch: { metrics in
          progress.epoch(metrics)
          try store.addEpochMetric(EpochMetric(epoch: metrics.epoch, loss: metrics.meanLoss,
                                               learningRate: Double(metrics.learningRate),
                                               outputStd: metrics.normalizedOutputStd,
                                               imagesPerSecond: metrics.imagesPerSecond,
                                               knnTop1: metrics.knnAccuracy.map { 100 * $0 }), to: runID)
        },
        knn: monitor.map { monitor in { backbone in monitor.accuracy(of: backbone) } })
      let scores = Self.knnScores(summary, config: config)
      if let monitor, let baseline = summary.randomInit {
        let perSeed = zip(baseline.seeds, baseline.accuracies).map { "seed \($0) " + String(format: "%.2f", 100 * $1) }
        log.write(String(format: "kNN (k=%d, T=%.2f, %d bank / %d queries) at random initialisation: %.2f ± %.2f %% "
                           + "over %d init seeds (", monitor.k, Double(monitor.temperature), monitor.bankLabels.count,
                         monitor.queryLabels.count, 100 * baseline.mean, 100 * baseline.std, baseline.seeds.count)
                    + perSeed.joined(separator: ", ") + ")")
      }
      if let final = summary.finalKNNAccuracy {
        log.write(String(format: "kNN after pretraining: %.2f %%", 100 * final)
                    + (summary.randomInit.map { String(format: " (%+.2f points over the random-init mean)",
                                                        100 * (final - $0.mean)) } ?? ""))
      }
      if !scores.isEmpty { _ = try store.addScores(scores, to: runID) }
      if !summary.skippedImages.isEmpty {
        log.write("skipped \(summary.skippedImages.count) unreadable image(s) (data.skip_corrupt):")
        for (index, reason) in summary.skippedImages.sorted(by: { $0.key < $1.key }).prefix(20) {
          log.write("  #\(index): \(reason)")
        }
      }
      if let cut = summary.scheduleCut { log.write("NOTE: \(cut).") }
      try store.finishRun(runID, message: summary.scheduleCut.map { "\($0)." })
      log.write("finished: \(summary.completedEpochs) epochs, \(summary.iteration) iterations"
                  + (summary.stoppedByTimeBudget ? " (stopped by schedule.max_minutes; schedule cut)" : "")
                  + "; checkpoint \(summary.lastCheckpoint?.path ?? "none"); results run \(runID) in \(common.db)")
    } catch {
      try? store.failRun(runID, message: "\(error)")
      log.write("failed: \(error)")
      throw error
    }
  }
}

extension Pretrain {
  /// The kNN scores of a run: the random-init baseline (the mean over init seeds with `count` and `std`, then one
  /// detail row per seed with `sample` = its index) and the final weights; percentages.
  static func knnScores(_ summary: PretrainSummary, config: PretrainConfig) -> [Score] {
    let benchmark = "\(config.data.kind)-knn", k = config.monitor.knnK
    var scores: [Score] = []
    if let baseline = summary.randomInit {
      scores.append(Score(benchmark: benchmark, metric: "top1", layer: "avgpool-random-init", k: k,
                          value: 100 * baseline.mean, count: baseline.accuracies.count, std: 100 * baseline.std))
      for (index, accuracy) in baseline.accuracies.enumerated() {
        scores.append(Score(benchmark: benchmark, metric: "top1", layer: "avgpool-random-init", k: k, sample: index,
                            value: 100 * accuracy))
      }
    }
    if let final = summary.finalKNNAccuracy {
      scores.append(Score(benchmark: benchmark, metric: "top1", layer: "avgpool", k: k, value: 100 * final))
    }
    return scores
  }
}

/// Appends lines to work_dir/log.txt and echoes them to standard output.
final class LogFile: @unchecked Sendable {
  // @unchecked: used from the training thread only.
  private let handle: FileHandle

  init(_ url: URL) throws {
    if !FileManager.default.fileExists(atPath: url.path) {
      _ = FileManager.default.createFile(atPath: url.path, contents: nil)
    }
    handle = try FileHandle(forWritingTo: url)
    try handle.seekToEnd()
  }

  /// Writes a time-stamped line to the file and, unless `echo` is false, the line to standard output.
  func write(_ line: String, echo: Bool = true) {
    let stamp = ISO8601DateFormatter().string(from: Date())
    try? handle.write(contentsOf: Data("\(stamp) \(line)\n".utf8))
    if echo { ProgressPrinter.printLine(line) }
  }
}

/// A live progress line on a terminal (rewritten in place), periodic plain lines otherwise.
final class ProgressPrinter {
  let log: LogFile
  let interval: Double
  let isTerminal = isatty(STDOUT_FILENO) == 1
  private var lastLine = Date.distantPast
  nonisolated(unsafe) static var hasLiveLine = false

  init(log: LogFile, interval: Double) {
    self.log = log
    self.interval = interval
  }

  func iteration(_ step: PretrainIteration) {
    let text = String(format: "epoch %d/%d  iter %d/%d  loss %.4f  z-std %.4f  lr %.5f  %.1f img/s  ETA ",
                      step.epoch, step.totalEpochs, step.iterationInEpoch, step.iterationsPerEpoch,
                      Double(step.loss), Double(step.normalizedOutputStd), Double(step.learningRate),
                      step.imagesPerSecond) + Self.duration(step.etaSeconds)
    if isTerminal {
      print("\r\u{1B}[2K" + text, terminator: "")
      fflush(nil)  // all output streams (stdout itself is not concurrency-safe to name)
      Self.hasLiveLine = true
    }
    if Date().timeIntervalSince(lastLine) >= interval || step.iterationInEpoch == step.iterationsPerEpoch {
      lastLine = Date()
      log.write(text, echo: !isTerminal)
    }
  }

  func epoch(_ metrics: PretrainEpochMetrics) {
    var text = "epoch \(metrics.epoch)" + (metrics.isComplete ? "" : " (partial, \(metrics.iterations) iterations)")
    text += String(format: ": mean loss %.4f, lr %.5f, z-std %.4f (1/√d = %.4f), %.1f img/s, %.0f s",
                      metrics.meanLoss, Double(metrics.learningRate), metrics.normalizedOutputStd,
                      metrics.healthyStd, metrics.imagesPerSecond, metrics.seconds)
    if let knn = metrics.knnAccuracy { text += String(format: ", kNN %.2f %%", 100 * knn) }
    log.write(text)
    if metrics.isCollapsing {
      log.write("WARNING: the normalised output std \(String(format: "%.4f", metrics.normalizedOutputStd)) is far "
                  + "below 1/√d = \(String(format: "%.4f", metrics.healthyStd)): the representation is collapsing.")
    }
  }

  static func printLine(_ line: String) {
    if hasLiveLine { print("\r\u{1B}[2K", terminator: ""); hasLiveLine = false }
    print(line)
    fflush(nil)  // a pipe (CI, `| tee`) is block-buffered: show each line when it is written
  }

  static func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
      : String(format: "%d:%02d", total / 60, total % 60)
  }
}
