// `run voc-svm`: VOC07 linear SVMs per layer (PROTOCOLS §2) and low-shot SVMs (§3) through liblinear, with every
// finished unit journaled in the work directory (a rerun resumes), every score in the results store, and the
// reference README's VOC table.
import Checkpoints
import Datasets
import Dispatch
import Distributed
import Evaluation
import Foundation
import Models
import Results
import Support
import Tensors

/// One VOC07 SVM evaluation, as the CLI or quickstart asks for it.
public struct VOCSVMRequest {
  /// Where the features come from.
  public enum Input {
    /// A backbone and a VOC year directory (ImageSets/Main with <class>_trainval/test lists); nil: the config's
    /// data.path.
    case checkpoint(BackboneRequest, data: String?)
    /// Features already extracted, in the layout `exportFeatures` writes.
    case features(directory: String)
  }

  public var input: Input
  /// The config's YAML (a file's text or an embedded preset; nil: the defaults alone), laid over the defaults for the
  /// backbone (`VOCSVMConfig.defaults(inChannels:cifarStem:)`), then `overrides` (`key=value`).
  public var configYAML: String?
  /// Names the YAML in errors (its path, or the preset's name).
  public var configSource = "default"
  /// The config file given, recorded with the run.
  public var configFile: String?
  public var overrides: [String] = []
  /// Write the features, labels (and low-shot samples) as .npy files here.
  public var exportFeatures: String?
  /// The name reports show (default: the checkpoint's or the feature directory's file name).
  public var label: String?
  /// Journal and log directory (default: work_dirs/voc-svm/<label>).
  public var workDirectory: URL?
  public var database: String
  /// The feature cache (nil: extract in memory only).
  public var featureCache: URL?
  /// The ranks sharing the run (`mpirun -np N`): images and SVM fit units are split over them; rank 0 calls `run`
  /// and writes the cache, journal, log and rows, the others call `runAsWorker` and write nothing.
  public var processGroup: any ProcessGroup = SingleProcessGroup()

  public init(input: Input, database: String, featureCache: URL?) {
    self.input = input
    self.database = database
    self.featureCache = featureCache
  }

  /// The config for a backbone with `inChannels` input channels and (or not) a CIFAR stem.
  public func config(inChannels: Int = 3, cifarStem: Bool = false) throws -> VOCSVMConfig {
    try VOCSVMConfig.load(yaml: configYAML, source: configSource, overrides: overrides,
                          defaults: .defaults(inChannels: inChannels, cifarStem: cifarStem))
  }

  /// A request with the config file at `path` (nil: none).
  public mutating func useConfigFile(_ path: String?) throws {
    guard let path else { return }
    configYAML = try readConfigFile(path)
    configSource = path
    configFile = path
  }
}

/// What a finished VOC SVM run produced.
public struct VOCSVMResult {
  public var runID: RunID
  public var label: String
  public var full: [FullSVMResult]
  public var lowShot: [String: LowShotResult]
  public var lowShotKs: [Int]
  /// Low-shot (class, k) pairs that had fewer images than asked, one line each (all were used).
  public var shortfalls: [String]
  /// Low-shot k at which every sample is the full set (LowShotDraw.fullSetKs): marked "*" in the table.
  public var fullSetKs: [Int] = []

  /// The note under the table about `fullSetKs`, nil when there is none.
  public var fullSetNote: String? {
    fullSetKs.isEmpty ? nil
      : "* k=\(fullSetKs.map(String.init).joined(separator: ",")): every class had no more images than asked, so "
        + "every sample is the full set and the samples' numbers repeat one draw."
  }

  /// The reference README's VOC table (Best Layer, SVM, k=1 … k=96; low-shot at the best layer), then per layer.
  public var table: Table {
    let best = full.max { $0.mAP < $1.mAP }
    func lowShotCells(_ layer: String?) -> [String] {
      lowShotKs.map { k in
        guard let layer, let result = lowShot[layer], let summary = result.summaries.first(where: { $0.k == k })
        else { return "–" }
        return String(format: "%.2f", 100 * summary.mean)
      }
    }
    var rows = [[label, best?.layer ?? "–", best.map { String(format: "%.2f", 100 * $0.mAP) } ?? "–"]
                + lowShotCells(best?.layer)]
    if full.count > 1 {
      for result in full {
        rows.append(["  \(result.layer)", "", String(format: "%.2f", 100 * result.mAP)] + lowShotCells(result.layer))
      }
    }
    let kColumns = lowShotKs.map { "k=\($0)" + (fullSetKs.contains($0) ? "*" : "") }
    return Table(title: "VOC07 SVM", columns: ["Self-Supervised Config", "Best Layer", "SVM"] + kColumns, rows: rows)
  }

  /// `voc07-svm` mAP (per-class test APs) and, per cost, the CV AP (mean over classes of the 3-fold means), and the
  /// chosen cost per class.
  public static func scores(_ result: FullSVMResult) -> [Score] {
    var scores = [Score(benchmark: .voc07SVM, metric: .mAP, layer: result.layer, value: 100 * result.mAP,
                        count: result.classes.count,
                        perClass: zip(result.classes, result.testAP).map { ClassValue(className: $0, value: 100 * $1) })]
    for (costIndex, cost) in result.costs.enumerated() {
      let perClass = result.classes.indices.map { result.meanCV($0, costIndex) }
      scores.append(Score(benchmark: .voc07SVM, metric: .cvAP, layer: result.layer, cost: cost,
                          value: 100 * perClass.reduce(0, +) / Double(perClass.count), count: perClass.count,
                          perClass: zip(result.classes, perClass).map { ClassValue(className: $0, value: 100 * $1) }))
    }
    scores.append(Score(benchmark: .voc07SVM, metric: .chosenCost, layer: result.layer,
                        value: result.costs[result.chosenCost.first ?? 0], count: result.classes.count,
                        perClass: zip(result.classes, result.chosenCost).map {
                          ClassValue(className: $0, value: result.costs[$1])
                        }))
    return scores
  }

  /// `voc07-lowshot-svm` per k: mAP (mean over samples at the chosen cost, with std), min, max, the chosen cost;
  /// and every (k, sample, cost) mAP with its per-class APs.
  public static func scores(_ result: LowShotResult) -> [Score] {
    var scores: [Score] = []
    for summary in result.summaries {
      let samples = result.classAP[summary.k]!.count
      let k = summary.k
      scores.append(Score(benchmark: .voc07LowShotSVM, metric: .mAP, layer: result.layer, k: k,
                          value: 100 * summary.mean, count: samples, std: 100 * summary.std))
      scores.append(Score(benchmark: .voc07LowShotSVM, metric: .mAPMin, layer: result.layer, k: k,
                          value: 100 * summary.min, count: samples))
      scores.append(Score(benchmark: .voc07LowShotSVM, metric: .mAPMax, layer: result.layer, k: k,
                          value: 100 * summary.max, count: samples))
      scores.append(Score(benchmark: .voc07LowShotSVM, metric: .chosenCost, layer: result.layer, k: k,
                          value: result.costs[summary.chosenCost]))
      for sample in 0..<samples {
        for (costIndex, cost) in result.costs.enumerated() {
          let aps = result.classAP[k]![sample][costIndex]
          scores.append(Score(benchmark: .voc07LowShotSVM, metric: .mAP, layer: result.layer, k: k,
                              sample: sample + 1, cost: cost,
                              value: 100 * result.mAP(k: k, sample: sample, cost: costIndex), count: aps.count,
                              perClass: zip(result.classes, aps).map { ClassValue(className: $0, value: 100 * $1) }))
        }
      }
    }
    return scores
  }
}

public enum VOCSVMProtocol {
  /// What the SVM stage needs, from a checkpoint and a devkit or from a feature directory.
  struct Inputs {
    var config: VOCSVMConfig
    var label: String
    /// Rank 0's work directory and log (nil on the other ranks, which write nothing).
    var work: WorkArea?
    var run: NewRun
    /// Names the features in journal keys (checkpoint hash, dataset, transform, pooling — or the files' hash).
    var identity: String
    var draw: LowShotDraw?
    var classes: Int
    /// Extracts or reads the layers (inside the stored run, so a failure marks it failed).
    var layers: () throws -> [SVMLayerData]
  }

  /// Rank 0's run (or the only process's): the whole recorded run. Other ranks call `runAsWorker`.
  public static func run(_ request: VOCSVMRequest) throws -> VOCSVMResult {
    let group = request.processGroup
    precondition(group.isRoot, "VOCSVMProtocol.run is rank 0's; rank \(group.rank) runs runAsWorker.")
    let start = DispatchTime.now()
    let inputs = try inputs(request)
    let log = inputs.work!.log
    let lowShotKs = inputs.config.lowShot.enabled ? inputs.config.lowShot.k : []
    if let draw = inputs.draw, !draw.shortfalls.isEmpty {
      log.write("low-shot: fewer images than asked for (rule: use all of them): "
                  + draw.shortfalls.joined(separator: "; "))
    }
    let store = try ResultsStore(path: request.database)
    return try store.recording(inputs.run, log: log) { recorded in
      let (full, lowShotResults) = try svmStage(inputs, request: request, recorded: recorded)
      let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
      log.write("finished in \(Console.duration(seconds)); results run \(recorded.id) in \(request.database)")
      return VOCSVMResult(runID: recorded.id, label: inputs.label, full: full, lowShot: lowShotResults,
                          lowShotKs: lowShotKs, shortfalls: inputs.draw?.shortfalls ?? [],
                          fullSetKs: inputs.draw?.fullSetKs ?? [])
    }
  }

  /// A rank other than 0 under mpirun: its share of the extraction and of the SVM fits, in step with rank 0's
  /// `run`; it writes no file, log line or row.
  public static func runAsWorker(_ request: VOCSVMRequest) throws {
    precondition(!request.processGroup.isRoot, "Rank 0 runs VOCSVMProtocol.run.")
    _ = try svmStage(try inputs(request), request: request, recorded: nil)
  }

  static func inputs(_ request: VOCSVMRequest) throws -> Inputs {
    switch request.input {
    case let .checkpoint(backbone, data): try checkpointInputs(request, backbone: backbone, data: data)
    case let .features(directory): try featureDirectoryInputs(request, directory: URL(fileURLWithPath: directory))
    }
  }

  /// The SVMs of every layer, their fit units split over the request's ranks; rank 0 (with `recorded`) journals,
  /// logs and stores the scores. Every rank returns the same results.
  static func svmStage(_ inputs: Inputs, request: VOCSVMRequest, recorded: RecordedRun?) throws
    -> (full: [FullSVMResult], lowShot: [String: LowShotResult]) {
    let group = request.processGroup
    let split = SVMUnitSplit(rank: group.rank, size: group.size) { values in
      var values = values
      try group.allreduceSum(&values)
      return values
    }
    let settings = inputs.config.settings
    let log = inputs.work?.log
    let lowShotKs = inputs.config.lowShot.enabled ? inputs.config.lowShot.k : []
    let layerData = try inputs.layers()
    if let exportFeatures = request.exportFeatures, group.isRoot {
      try exportSVMInputs(to: URL(fileURLWithPath: exportFeatures), layers: layerData, lowShot: inputs.draw)
      log?.write("exported features and labels to \(exportFeatures)")
    }
    let progress = log.map { ProgressReporter(log: $0, interval: 2) }
    var report: SVMProgressHandler?
    if let progress {
      report = { progress.stage($0.stage, done: $0.done, total: $0.total, resumed: $0.resumed) }
    }
    var full: [FullSVMResult] = []
    var lowShotResults: [String: LowShotResult] = [:]
    for (index, data) in layerData.enumerated() {
      let layer = try SVMLayer(data, settings: settings)
      if index == 0, let log {
        let seconds = try layer.estimateFullSeconds(settings: settings) * Double(layerData.count)
          / Double(group.size)
        log.write("SVM stage: \(layerData.count) layer(s) × \(inputs.classes) classes × "
                    + "\(settings.costs.count) costs × (\(settings.folds) folds + final) on "
                    + "\(settings.effectiveWorkers) workers" + (group.isDistributed ? " × \(group.size) ranks" : "")
                    + "; estimate \(Console.duration(seconds))" + (inputs.draw != nil ? " + low-shot" : ""))
      }
      let identity = inputs.identity + "|\(data.layer)"
      // Rank 0 holds the journals: the single record of finished units.
      let journal = try recorded.map { _ in
        try SVMJournal(directory: inputs.work!.directory, key: identity + "|full|" + settings.variant.canonical)
      }
      let result = try layer.runFull(settings: settings, journal: journal, split: split, progress: report)
      full.append(result)
      try recorded?.add(VOCSVMResult.scores(result))
      log?.write(String(format: "%@: mAP %.2f (chosen costs %@)", data.layer, 100 * result.mAP,
                        result.chosenCost.map { "\(result.costs[$0])" }.joined(separator: ",")))
      if let draw = inputs.draw {
        let lowJournal = try recorded.map { _ in
          try SVMJournal(directory: inputs.work!.directory,
                         key: identity + "|lowshot|\(draw.source)|\(lowShotKs)|" + settings.variant.canonical)
        }
        let low = try layer.runLowShot(draw, settings: settings, journal: lowJournal, split: split, progress: report)
        lowShotResults[data.layer] = low
        try recorded?.add(VOCSVMResult.scores(low))
        log?.write("\(data.layer) low-shot: " + low.summaries.map {
          String(format: "k=%d %.2f±%.2f", $0.k, 100 * $0.mean, 100 * $0.std)
        }.joined(separator: "  "))
      }
      let paths = layer.fitPaths
      if paths.finishedByPrimal + paths.stoppedAtCap > 0 {
        log?.write("\(data.layer) " + paths.description + (group.isDistributed ? " (rank 0's fits)" : ""))
      }
    }
    return (full, lowShotResults)
  }

  /// The low-shot samples: read from low_shot.samples_dir, drawn with the seed, or none (low_shot.enabled false).
  static func lowShotDraw(_ config: VOCSVMConfig, trainLabels: SVMLabels) throws -> LowShotDraw? {
    guard config.lowShot.enabled else { return nil }
    if let directory = config.lowShotSamplesDirectory {
      return try readLowShotSamples(directory: directory, ks: config.lowShot.k, samples: config.lowShot.samples,
                                    images: trainLabels.images, classes: trainLabels.classes.count)
    }
    return drawLowShotSamples(labels: trainLabels, ks: config.lowShot.k, samples: config.lowShot.samples,
                              seed: config.seed)
  }

  /// The SVM settings, the difficult rule and the low-shot draw as variant facets.
  static func variant(_ config: VOCSVMConfig, draw: LowShotDraw?) -> ProtocolVariant {
    var variant = config.settings.variant
    variant["difficult"] = "negative-in-train,excluded-at-test"
    if let draw {
      variant["lowshot"] = draw.source.replacingOccurrences(of: " ", with: "_")
      variant["lowshot-k"] = config.lowShot.k.map(String.init).joined(separator: ",")
      variant["lowshot-samples"] = "\(draw.sampleCount)"
      if !draw.shortfalls.isEmpty { variant["lowshot-shortfalls"] = "all-used(\(draw.shortfalls.count))" }
    }
    return variant
  }

  /// Rank 0's work area (nil on the other ranks: they write nothing).
  static func workArea(_ request: VOCSVMRequest, label: String) throws -> WorkArea? {
    guard request.processGroup.isRoot else { return nil }
    return try WorkArea(request.workDirectory ?? URL(fileURLWithPath: "work_dirs/voc-svm/\(label)"))
  }

  /// A checkpoint and a devkit: the backbone, the devkit, the transform; features extracted (or read from the
  /// cache) when the run starts.
  static func checkpointInputs(_ request: VOCSVMRequest, backbone backboneRequest: BackboneRequest,
                               data: String?) throws -> Inputs {
    var backboneRequest = backboneRequest
    backboneRequest.seed = try request.config().seed  // and a bad config fails before the checkpoint is read
    let evaluation = try BackboneBuilder.build(backboneRequest)
    var svmConfig = try request.config(inChannels: evaluation.backbone.config.inChannels,
                                       cifarStem: evaluation.backbone.config.cifarStem)
    if let data { svmConfig.data.path = data }
    let layerList = svmConfig.featureLayers
    let data = svmConfig.data.path
    let checkpoint = backboneRequest.checkpoint
    let label = request.label ?? URL(fileURLWithPath: checkpoint).deletingPathExtension().lastPathComponent
    let work = try workArea(request, label: label)
    let log = work?.log
    let config = evaluation.backbone.config
    let sha = evaluation.sha256

    // Data and preprocessing.
    if PathKind(data) == .file {
      throw ProtocolError.invalidRequest(reason: "The VOC path \(data) is a file, not a folder.",
                                         hint: "Give --data (data.path) a VOC year folder, e.g. VOCdevkit/VOC2007.")
    }
    let source = try VOCImageSource(root: URL(fileURLWithPath: data))
    let size = svmConfig.data.imageSize, resizeSide = svmConfig.data.resize
    let transform = svmConfig.transform(channels: config.inChannels)
    let normalization = transform.normalization
    let extractor = FeatureExtractor(backbone: evaluation.backbone)
    let pooling = extractor.pooling(forInputSize: size)
    let trainLabels = source.trainLabels
    let testLabels = source.testLabels
    let draw = try lowShotDraw(svmConfig, trainLabels: trainLabels)

    var variant = variant(svmConfig, draw: draw)
    variant["pooling"] = pooling == .specified ? "specified(MMSelfSup-AvgPool2d)" : "adaptive(12/6/4/3/2)"
    variant["transform"] = "Resize(\(resizeSide))→\(svmConfig.data.resizeMode)(\(size))"
    variant["resize-rule"] = transform.resizeRule.rawValue  // the bilinear pass order (ResizeRule)
    variant["mean"] = normalization.mean.map { "\($0)" }.joined(separator: ",")
    variant["std"] = normalization.std.map { "\($0)" }.joined(separator: ",")
    if evaluation.isRandomInit { variant.flag("random-init") }
    log?.write("simsiam-bench \(codeVersion) run voc-svm \(label): \(config.depth)-layer ResNet, "
                + "\(CheckpointLayout(rawValue: evaluation.layout)?.displayName ?? evaluation.layout), "
                + "sha256 \(sha.prefix(12)); \(source.count) images (\(trainLabels.images) trainval, "
                + "\(testLabels.images) test), \(trainLabels.classes.count) classes; layers "
                + "\(layerList.map(\.rawValue).joined(separator: ",")); \(Threads.count) threads")
    if let report = evaluation.report { log?.write(report.rendered(), echo: false) }
    log?.write("protocol: \(variant.canonical)")
    let run = NewRun(
      kind: .evaluate, protocolName: BenchmarkID.voc07SVM.rawValue, label: label, configFile: request.configFile,
      config: svmConfig.json, checkpointPath: checkpoint,
      checkpointSHA256: sha, checkpointLayout: evaluation.layout, datasetPath: data,
      datasetFingerprint: source.fingerprint, protocolVariant: variant.stored, codeVersion: codeVersion,
      threads: Threads.count)
    let featureCache = request.featureCache
    let batchSize = svmConfig.data.batchSize
    return Inputs(
      config: svmConfig, label: label, work: work, run: run,
      identity: "features=\(evaluation.featureKey)|\(source.fingerprint)|Resize(\(resizeSide))→\(svmConfig.data.resizeMode)(\(size)) "
        + "rule=\(transform.resizeRule.rawValue) mean=\(normalization.mean) std=\(normalization.std)|\(pooling.rawValue)",
      draw: draw, classes: trainLabels.classes.count,
      layers: {
        let progress = log.map { ProgressReporter(log: $0, interval: 2) }
        let extraction = FeatureExtractionRequest(checkpointSHA256: evaluation.featureKey, source: source,
                                                  transform: transform, layers: layerList, batchSize: batchSize)
        let group = request.processGroup
        log?.write("extracting features of \(source.count) images" + (group.isDistributed
          ? " over \(group.size) ranks (contiguous blocks of whole batches; progress counts rank 0's block)" : ""))
        progress?.begin()
        // Rank 0 alone reads and writes the cache.
        let cache = try log.flatMap { try openFeatureCache(featureCache, log: $0) }
        let features = try ShardedExtraction.extract(extraction, extractor: extractor, cache: cache, group: group) {
          done, total in progress?.count("extract", done: done, total: total)
        }
        if features.computedLayers.count < layerList.count {
          log?.write("feature cache: reused \(layerList.count - features.computedLayers.count) of \(layerList.count) "
                      + "layer(s) from \(featureCache?.path ?? "-")")
        }
        let split = source.splits.splitAt
        return layerList.map { layer -> SVMLayerData in
          let matrix = features.matrices[layer]!
          return SVMLayerData(layer: layer.rawValue, train: matrix.rows(0..<split),
                              test: matrix.rows(split..<matrix.rows), trainLabels: trainLabels, testLabels: testLabels,
                              trainLocation: { source.location(of: $0) },
                              testLocation: { source.location(of: split + $0) })
        }
      })
  }

  /// A feature directory: the classes, labels and features of a directory in the export layout, read up front.
  static func featureDirectoryInputs(_ request: VOCSVMRequest, directory: URL) throws -> Inputs {
    let svmConfig = try request.config()
    // The default layer list reads every layer the directory has; a list given reads those.
    let files = try readSVMInputs(from: directory,
                                  layers: svmConfig.layers == VOCSVMConfig().layers ? nil : svmConfig.layers)
    let label = request.label ?? directory.lastPathComponent
    let work = try workArea(request, label: label)
    let log = work?.log
    let first = files.layers[0]
    let draw = try lowShotDraw(svmConfig, trainLabels: first.trainLabels)
    var variant = variant(svmConfig, draw: draw)
    variant["features"] = "npy-files(pooling-and-transform-as-their-producer-made-them)"
    log?.write("simsiam-bench \(codeVersion) run voc-svm \(label): features from \(directory.path) (sha256 "
                + "\(files.sha256.prefix(12))); \(first.trainLabels.images) trainval, \(first.testLabels.images) "
                + "test images, \(first.trainLabels.classes.count) classes; layers "
                + files.layers.map { "\($0.layer) (\($0.train.columns) dims)" }.joined(separator: ", ")
                + "; \(Threads.count) threads")
    log?.write("protocol: \(variant.canonical)")
    let run = NewRun(
      kind: .evaluate, protocolName: BenchmarkID.voc07SVM.rawValue, label: label, configFile: request.configFile,
      config: svmConfig.json, checkpointPath: directory.path, checkpointSHA256: files.sha256, checkpointLayout: "npy-features",
      datasetPath: directory.path, datasetFingerprint: files.sha256, protocolVariant: variant.stored,
      codeVersion: codeVersion, threads: Threads.count)
    return Inputs(config: svmConfig, label: label, work: work, run: run, identity: "npy=\(files.sha256)", draw: draw,
                  classes: first.trainLabels.classes.count, layers: { files.layers })
  }
}
