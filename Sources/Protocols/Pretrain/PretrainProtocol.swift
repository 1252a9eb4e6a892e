// `pretrain`: SimSiam pretraining as a recorded run. Loads the config, trains with live progress, writes
// checkpoints to the work directory and per-epoch metrics to the results store — each epoch's row only once its
// checkpoint is on disk — and a resumed training continues its own run row.
import Checkpoints
import Datasets
import Distributed
import Foundation
import Models
import Results
import Support
import Tensors
import Training

/// One pretraining, as the CLI or quickstart asks for it.
public struct PretrainRequest {
  /// Where a training continues from.
  public enum Resume: Equatable {
    /// Start fresh.
    case none
    /// The work directory's latest checkpoint, if any (else start fresh).
    case auto
    /// This checkpoint.
    case checkpoint(URL)
  }

  public var config: PretrainConfig
  /// The config's name (its file name, or the embedded default's): names the default work directory and the run.
  public var configName: String
  /// The config file given, recorded with the run.
  public var configFile: String?
  /// Checkpoints and log.txt (default: work_dirs/<config name>).
  public var workDirectory: URL?
  public var resume = Resume.none
  public var database: String
  /// Seconds between progress lines when standard output is not a terminal.
  public var logInterval: Double = 10
  /// The ranks training together (`mpirun -np N`); only rank 0 writes checkpoints, the log and database rows.
  public var processGroup: any ProcessGroup = SingleProcessGroup()

  public init(config: PretrainConfig, configName: String, configFile: String? = nil, workDirectory: URL? = nil,
              resume: Resume = .none, database: String) {
    self.config = config
    self.configName = configName
    self.configFile = configFile
    self.workDirectory = workDirectory
    self.resume = resume
    self.database = database
  }

  /// The config of a run: `file` (or the embedded quick default) with `overrides`; `skipCorrupt` sets
  /// data.skip_corrupt, and an explicit `seed` wins over the config's.
  public static func config(file: String?, overrides: [String], skipCorrupt: Bool = false,
                            seed: UInt64?) throws -> (config: PretrainConfig, name: String) {
    var overrides = overrides
    if skipCorrupt { overrides.append("data.skip_corrupt=true") }
    if let seed { overrides.append("seed=\(seed)") }
    guard let file else {
      return (try PretrainConfig.load(yaml: nil, source: "default", overrides: overrides),
              PretrainConfig.quickDefaultName)
    }
    return (try PretrainConfig.load(yaml: try readConfigFile(file), source: file, overrides: overrides),
            configFileName(file))
  }
}

/// What a finished pretraining produced.
public struct PretrainResult {
  public var runID: RunID
  public var summary: PretrainSummary
  /// The kNN monitor's scores (random-init baseline and final weights), as stored.
  public var scores: [Score]
  /// Whether this call continued an earlier run's row.
  public var resumedRun: Bool
}

/// The results run a work directory's training writes to (`results_run.json`), so a resume continues it.
struct PretrainRunRecord: Codable, Equatable {
  /// The results database, as an absolute path.
  var database: String
  var runID: Int64

  static func url(in directory: URL) -> URL { directory.appendingPathComponent("results_run.json") }

  static func read(in directory: URL) -> PretrainRunRecord? {
    (try? Data(contentsOf: url(in: directory))).flatMap { try? JSONDecoder().decode(PretrainRunRecord.self, from: $0) }
  }

  func write(in directory: URL) throws {
    try AtomicFile.write(JSONEncoder().encode(self), to: Self.url(in: directory))
  }

  static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
}

public enum PretrainProtocol {
  /// Rank 0's run (or the only process's): the whole recorded run. Other ranks call `runAsWorker`.
  public static func run(_ request: PretrainRequest) throws -> PretrainResult {
    let config = request.config
    let name = request.configName
    let group = request.processGroup
    precondition(group.isRoot, "PretrainProtocol.run is rank 0's; rank \(group.rank) runs runAsWorker.")
    let workDirectory = request.workDirectory ?? Pretrainer.defaultWorkDirectory(configName: name)
    let dataset = try PretrainDataset.open(config.data, channels: config.model.inChannels)
    let trainer = try Pretrainer(config: config, dataset: dataset, workDirectory: workDirectory,
                                 codeVersion: codeVersion, processGroup: group)
    let log = try LogFile(workDirectory.appendingPathComponent("log.txt"))
    let ranks = group.isDistributed
      ? ", \(group.size) ranks × \(config.schedule.batchSize / group.size) images (SyncBN)" : ""
    log.write("simsiam-bench \(codeVersion) pretrain \(name): \(dataset.count) images, "
                + "\(trainer.iterationsPerEpoch) iterations/epoch, \(config.schedule.epochs) epochs, "
                + "lr \(config.scaledLearningRate), \(Threads.count) threads" + ranks + "; config \(config.json)")
    var resumedFrom: URL?
    switch request.resume {
    case .none: break
    case .auto:
      resumedFrom = Pretrainer.latestCheckpoint(in: workDirectory)
      if resumedFrom == nil { log.write("--resume auto: no checkpoint in \(workDirectory.path); starting fresh") }
    case let .checkpoint(url): resumedFrom = url
    }
    if let resumedFrom {
      try trainer.resume(from: resumedFrom)
      log.write("resumed from \(resumedFrom.path) at epoch \(trainer.completedEpochs), iteration \(trainer.iteration)")
    }

    var monitor: KNNMonitor?
    if config.monitor.knnAtEnd || config.monitor.knnInterval > 0 {
      let test = try PretrainDataset.open(config.data, channels: config.model.inChannels, split: .test)
      monitor = try KNNMonitor(bank: dataset, queries: test, bankCount: config.monitor.knnTrainSamples,
                               queryCount: config.monitor.knnTestSamples, k: config.monitor.knnK,
                               temperature: config.monitor.knnTemperature, imageSize: config.data.imageSize,
                               channels: config.model.inChannels, normalization: trainer.augmentation.normalization)
    }

    // A resumed training continues the run its work directory recorded, when that run is in this database.
    let store = try ResultsStore(path: request.database)
    let database = PretrainRunRecord.absolute(request.database)
    var start = RunStart.new(NewRun(
      kind: .pretrain, protocolName: "simsiam", label: name, configFile: request.configFile, config: config.json,
      datasetPath: config.data.path, datasetFingerprint: dataset.fingerprint, codeVersion: codeVersion,
      threads: Threads.count))
    if let resumedFrom, let record = PretrainRunRecord.read(in: workDirectory), record.database == database,
       let previous = try? store.run(RunID(record.runID)), previous.kind == .pretrain, previous.label == name {
      start = .resuming(RunID(record.runID), epoch: trainer.completedEpochs, iteration: trainer.iteration,
                        checkpoint: resumedFrom.path)
      log.write("continuing results run \(record.runID) (was \(previous.status.rawValue))")
    }
    let isResumedRun = if case .resuming = start { true } else { false }
    let printer = PretrainProgress(ProgressReporter(log: log, interval: request.logInterval))
    return try store.recording(start, log: log) { recorded in
      try PretrainRunRecord(database: database, runID: recorded.id.rawValue).write(in: workDirectory)
      let summary = try trainer.train(
        onIteration: printer.iteration,
        onEpoch: { metrics in
          printer.epoch(metrics)
          try recorded.add(EpochMetric(epoch: metrics.epoch, loss: metrics.meanLoss,
                                       learningRate: Double(metrics.learningRate),
                                       outputStd: metrics.normalizedOutputStd,
                                       imagesPerSecond: metrics.imagesPerSecond,
                                       knnTop1: metrics.knnAccuracy.map { 100 * $0 }))
        },
        knn: monitor.map { monitor in { backbone in monitor.accuracy(of: backbone) } })
      let scores = knnScores(summary, config: config)
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
      try recorded.add(scores)
      if !summary.skippedImages.isEmpty {
        log.write("skipped \(summary.skippedImages.count) unreadable image(s) (data.skip_corrupt):")
        for (index, reason) in summary.skippedImages.sorted(by: { $0.key < $1.key }).prefix(20) {
          log.write("  #\(index): \(reason)")
        }
      }
      if let cut = summary.scheduleCut {
        log.write("NOTE: \(cut).")
        recorded.finishMessage = "\(cut)."
      }
      log.write("finished: \(summary.completedEpochs) epochs, \(summary.iteration) iterations"
                  + (summary.stoppedByTimeBudget ? " (stopped by schedule.max_minutes; schedule cut)" : "")
                  + "; checkpoint \(summary.lastCheckpoint?.path ?? "none"); results run \(recorded.id) in "
                  + request.database)
      return PretrainResult(runID: recorded.id, summary: summary, scores: scores, resumedRun: isResumedRun)
    }
  }

  /// A rank other than 0 of a data-parallel run: the same training (its share of every batch, the collectives)
  /// without checkpoints, log, progress, kNN monitor or database; rank 0 broadcasts its state, resumed or not.
  public static func runAsWorker(_ request: PretrainRequest) throws {
    let config = request.config
    let dataset = try PretrainDataset.open(config.data, channels: config.model.inChannels)
    let trainer = try Pretrainer(config: config, dataset: dataset, workDirectory: nil, codeVersion: codeVersion,
                                 processGroup: request.processGroup)
    try trainer.train()
  }

  /// The kNN scores of a run: the random-init baseline (the mean over init seeds with `count` and `std`, then one
  /// detail row per seed with `sample` = its index) and the final weights; percentages.
  public static func knnScores(_ summary: PretrainSummary, config: PretrainConfig) -> [Score] {
    // Named after data.kind (`image-folder-knn` for an ImageNet folder), as stored since the first version.
    let benchmark = "\(config.data.kind)-knn", k = config.monitor.knnK
    var scores: [Score] = []
    if let baseline = summary.randomInit {
      scores.append(Score(benchmark: benchmark, metric: Metric.top1.rawValue, layer: "avgpool-random-init", k: k,
                          value: 100 * baseline.mean, count: baseline.accuracies.count, std: 100 * baseline.std))
      for (index, accuracy) in baseline.accuracies.enumerated() {
        scores.append(Score(benchmark: benchmark, metric: Metric.top1.rawValue, layer: "avgpool-random-init", k: k, sample: index,
                            value: 100 * accuracy))
      }
    }
    if let final = summary.finalKNNAccuracy {
      scores.append(Score(benchmark: benchmark, metric: Metric.top1.rawValue, layer: "avgpool", k: k, value: 100 * final))
    }
    return scores
  }

  /// The quick config's SimSiam at its initial weights (`SplitMix64(seed: config.seed)`, as `Pretrainer` builds
  /// it): the random-init twin of a pretraining, saved as a checkpoint any evaluator loads.
  public static func writeInitialWeights(of config: PretrainConfig, name: String, to url: URL) throws {
    var generator = SplitMix64(seed: config.seed)
    let model = SimSiam(config.simSiam, using: &generator)
    try SafeTensors(tensors: StateDict.tensors(of: model.namedParameters),
                    metadata: ["author": "simsiam-bench", "epoch": "0", "seed": String(config.seed),
                               "note": "random initialisation of \(name)"])
      .write(to: url)
  }
}

/// Pretraining progress lines: per iteration (live or periodic) and per epoch.
struct PretrainProgress {
  let reporter: ProgressReporter

  init(_ reporter: ProgressReporter) { self.reporter = reporter }

  func iteration(_ step: PretrainIteration) {
    reporter.show(String(format: "epoch %d/%d  iter %d/%d  loss %.4f  z-std %.4f  lr %.5f  %.1f img/s  ETA ",
                         step.epoch, step.totalEpochs, step.iterationInEpoch, step.iterationsPerEpoch,
                         Double(step.loss), Double(step.normalizedOutputStd), Double(step.learningRate),
                         step.imagesPerSecond) + Console.duration(step.etaSeconds),
                  final: step.iterationInEpoch == step.iterationsPerEpoch)
  }

  func epoch(_ metrics: PretrainEpochMetrics) {
    var text = "epoch \(metrics.epoch)" + (metrics.isComplete ? "" : " (partial, \(metrics.iterations) iterations)")
    text += String(format: ": mean loss %.4f, lr %.5f, z-std %.4f (1/√d = %.4f), %.1f img/s, %.0f s "
                     + "(%.1f s waiting for data)",
                   metrics.meanLoss, Double(metrics.learningRate), metrics.normalizedOutputStd,
                   metrics.healthyStd, metrics.imagesPerSecond, metrics.seconds, metrics.dataWaitSeconds)
    if let knn = metrics.knnAccuracy { text += String(format: ", kNN %.2f %%", 100 * knn) }
    reporter.log.write(text)
    if metrics.isCollapsing {
      reporter.log.write("WARNING: the normalised output std \(String(format: "%.4f", metrics.normalizedOutputStd)) "
                           + "is far below 1/√d = \(String(format: "%.4f", metrics.healthyStd)): the representation "
                           + "is collapsing.")
    }
  }
}
