// `run knn`: MMSelfSup's weighted kNN classifier (PROTOCOLS §4.5) on global-average-pooled layer4 features of the
// train split (bank) and the test split (queries), both with the test transform, through the shared feature
// extractor and cache; top-1 and top-5 for k = 10, 20, 100, 200 into the results store.
import Datasets
import Evaluation
import Foundation
import Results
import Support
import Tensors
import Training

/// One kNN evaluation, as the CLI or quickstart asks for it.
public struct KNNRequest {
  public var backbone: BackboneRequest
  public var config: KNNConfig
  /// The config's name (its file name, or the embedded preset's): names the work directory.
  public var configName: String
  /// The config file given, recorded with the run.
  public var configFile: String?
  /// The name reports show (default: the checkpoint's file name).
  public var label: String?
  /// Where log.txt goes (default: work_dirs/<config name>/<label>).
  public var workDirectory: URL?
  public var database: String
  /// The feature cache (nil: extract in memory only).
  public var featureCache: URL?
  /// Seconds between progress lines when standard output is not a terminal.
  public var logInterval: Double = 10

  public init(backbone: BackboneRequest, config: KNNConfig, configName: String, configFile: String? = nil,
              label: String? = nil, workDirectory: URL? = nil, database: String, featureCache: URL?) {
    self.backbone = backbone
    self.config = config
    self.configName = configName
    self.configFile = configFile
    self.label = label
    self.workDirectory = workDirectory
    self.database = database
    self.featureCache = featureCache
  }

  /// The config of a run: `file` if given; else knn_imagenet's settings for an ImageNet train/val folder, or the
  /// embedded quick config (with CIFAR statistics for a CIFAR folder). `data` sets data.path, `overrides` are
  /// `key=value` texts, and an explicit `seed` wins over the config's.
  public static func config(file: String?, data: String?, overrides: [String],
                            seed: UInt64?) throws -> (config: KNNConfig, name: String) {
    var all: [String] = []
    if let data { all.append("data.path=\(data)") }
    all += overrides
    if let seed { all.append("seed=\(seed)") }
    if let file {
      return (try KNNConfig.load(yaml: try readConfigFile(file), source: file, overrides: all), configFileName(file))
    }
    let detected = data.flatMap(detectClassificationData)
    if detected == .imageFolder {
      return (try KNNConfig.load(yaml: nil, source: "default", overrides: all), "knn_imagenet")
    }
    let preset = ClassificationPresets.knnQuick
    return (try KNNConfig.load(yaml: preset.yaml, source: preset.name,
                               overrides: (detected == .cifar10 ? cifarOverrides : []) + all),
            detected == .cifar10 ? "knn_cifar10_quick" : preset.name)
  }
}

/// What a finished kNN run produced.
public struct KNNResult {
  public var runID: RunID
  public var label: String
  public var benchmark: BenchmarkID
  public var accuracies: [KNNAccuracy]

  /// Top-1 and top-5 per k. No layer: the protocol always reads the GAP features, and its tables and references
  /// key on k alone.
  public var scores: [Score] {
    accuracies.flatMap { accuracy in
      [Score(benchmark: benchmark, metric: .top1, k: accuracy.k, value: accuracy.top1, count: accuracy.queries),
       Score(benchmark: benchmark, metric: .top5, k: accuracy.k, value: accuracy.top5, count: accuracy.queries)]
    }
  }

  /// The README's kNN table layout: one column per k, "top-1 / top-5".
  public var table: Table {
    Table(title: "\(benchmark) (top-1 / top-5 %)",
          columns: ["Self-Supervised Config"] + accuracies.map { "k=\($0.k)" },
          rows: [[label] + accuracies.map { String(format: "%.1f / %.1f", $0.top1, $0.top5) }])
  }
}

public enum KNNProtocol {
  public static func run(_ request: KNNRequest) throws -> KNNResult {
    let config = request.config
    let setup = try FrozenClassificationSetup(
      backbone: request.backbone, seed: config.seed, data: config.data, label: request.label,
      workDirectory: request.workDirectory, configName: request.configName, defaultWorkName: { label, _ in label },
      featureCache: request.featureCache, evaluationProtocol: .knn)
    let (evaluation, log, bank, queries, label, featureCache) = (setup.evaluation, setup.log, setup.train, setup.test,
                                                                 setup.label, setup.featureCache)
    let classCount = setup.classCount, benchmark = setup.benchmark
    var variant = classificationVariant(config.data, isRandomInit: evaluation.isRandomInit)
    if config.knn.k.contains(where: { $0 > bank.count }) { variant["k-clamped-to-bank"] = "\(bank.count)" }
    log.write("simsiam-bench \(codeVersion) run knn (\(request.configName)): \(bank.count) bank / \(queries.count) "
                + "query images, \(classCount) classes, k \(config.knn.k.map(String.init).joined(separator: "/")), "
                + "T \(config.knn.temperature), \(Threads.count) threads")
    setup.logBackbone()

    let store = try ResultsStore(path: request.database)
    let run = setup.newRun(configFile: request.configFile, configJSON: config.json, dataPath: config.data.path,
                           variant: variant)
    return try store.recording(run, log: log) { recorded in
      let progress = ProgressReporter(log: log, interval: request.logInterval)
      let bankFeatures = try extractFeatures(evaluation, source: bank, data: config.data, layers: [.avgpool],
                                             cache: featureCache, progress: progress, what: "bank features")
      let queryFeatures = try extractFeatures(evaluation, source: queries, data: config.data, layers: [.avgpool],
                                              cache: featureCache, progress: progress, what: "query features")
      let classifier = WeightedKNN(ks: config.knn.k, temperature: config.knn.temperature,
                                   queryBlock: config.knn.queryBlock, bankBlock: config.knn.bankBlock)
      progress.begin()
      let accuracies = classifier.evaluate(
        bank: bankFeatures.matrices[.avgpool]!, bankLabels: bank.labels, queries: queryFeatures.matrices[.avgpool]!,
        queryLabels: queries.labels, classCount: classCount) { done, total in
          progress.count("kNN queries", done: done, total: total, unit: "queries/s")
        }
      for accuracy in accuracies {
        log.write(String(format: "k=%d: top-1 %.2f %%, top-5 %.2f %%", accuracy.k, accuracy.top1, accuracy.top5))
      }
      let result = KNNResult(runID: recorded.id, label: label, benchmark: benchmark, accuracies: accuracies)
      try recorded.add(result.scores)
      log.write("finished: results run \(recorded.id) in \(request.database)")
      return result
    }
  }
}
