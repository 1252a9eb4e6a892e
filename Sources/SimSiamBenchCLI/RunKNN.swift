// `simsiam-bench run knn`: MMSelfSup's weighted kNN classifier (PROTOCOLS §4.5) on global-average-pooled layer4
// features of the train split (bank) and the test split (queries), both with the test transform, read through
// the shared feature extractor/cache; top-1 and top-5 for k = 10, 20, 100, 200 into the results store.
import ArgumentParser
import Foundation
import Checkpoints
import Datasets
import Evaluation
import Results
import Tensors

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

  func loadConfig() throws -> (KNNConfig, String) {
    var all: [String] = []
    if let data { all.append("data.path=\(data)") }
    all += overrides
    if CommandLine.arguments.contains(where: { $0 == "--seed" || $0.hasPrefix("--seed=") }) {
      all.append("seed=\(common.seed)")
    }
    if let config {
      let url = URL(fileURLWithPath: config)
      let text: String
      do { text = try String(contentsOf: url, encoding: .utf8) } catch {
        throw ValidationError("Cannot read the config \(config): \((error as NSError).localizedDescription).")
      }
      return (try KNNConfig.load(yaml: text, source: config, overrides: all),
              url.deletingPathExtension().lastPathComponent)
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

  func run() throws {
    common.configureThreads()
    let (config, name) = try loadConfig()
    let evaluation = try loadEvaluationBackbone(checkpoint, layoutOptions: layoutOptions, randomInit: randomInit,
                                                seed: config.seed)
    let label = self.label ?? evaluation.defaultLabel(checkpoint)
    let directory = workDir.map { URL(fileURLWithPath: $0) }
      ?? URL(fileURLWithPath: "work_dirs").appendingPathComponent(name).appendingPathComponent(label)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let log = try LogFile(directory.appendingPathComponent("log.txt"))
    let result = try KNNRun(config: config, name: name, evaluation: evaluation, checkpointPath: checkpoint,
                            configFile: self.config, label: label, database: common.db, log: log,
                            logInterval: logInterval, featureCache: try featureCacheOptions.open(log: log)).run()
    print("")
    print(result.table.markdown(), terminator: "")
  }
}

/// What a finished kNN run produced.
struct KNNRunResult {
  var runID: RunID
  var accuracies: [KNNAccuracy]
  var table: Table
}

/// One `run knn`: bank and query features, the classifier, scores.
struct KNNRun {
  var config: KNNConfig
  var name: String
  var evaluation: EvaluationBackbone
  var checkpointPath: String
  var configFile: String?
  var label: String
  var database: String
  var log: LogFile
  var logInterval: Double
  /// Where extracted features are cached (nil: in memory only).
  var featureCache: FeatureCache?

  func run() throws -> KNNRunResult {
    let channels = evaluation.backbone.config.inChannels
    let location = config.data.location
    let bank = try ClassificationSource.open(location, split: .train, channels: channels)
    let queries = try ClassificationSource.open(location, split: .test, channels: channels)
    let classCount = max(bank.classCount, queries.classCount)
    let benchmark = "\(location.kind.benchmarkName)-knn"
    var variants: [String] = []
    if config.data.crop != 224 || config.data.resize != 256 {
      variants.append("resize=\(config.data.resize),crop=\(config.data.crop)")
    }
    if config.data.limit > 0 { variants.append("train-limit=\(config.data.limit)") }
    if config.data.testLimit > 0 { variants.append("test-limit=\(config.data.testLimit)") }
    if evaluation.isRandomInit { variants.append("random-init") }
    if config.knn.k.contains(where: { $0 > bank.count }) {
      variants.append("k-clamped-to-bank=\(bank.count)")
    }
    log.write("simsiam-bench \(SimSiamBench.version) run knn (\(name)): \(bank.count) bank / \(queries.count) query "
                + "images, \(classCount) classes, k \(config.knn.k.map(String.init).joined(separator: "/")), "
                + "T \(config.knn.temperature), \(Threads.count) threads")
    if let report = evaluation.report { log.write(report.rendered()) }
    if evaluation.isRandomInit { log.write("random initialisation (seed \(evaluation.seed)); weights not loaded") }

    let store = try ResultsStore(path: database)
    let runID = try store.beginRun(NewRun(
      kind: .evaluate, protocolName: benchmark, label: label, configFile: configFile, config: config.json,
      checkpointPath: checkpointPath, checkpointSHA256: evaluation.sha256, checkpointLayout: evaluation.layout,
      datasetPath: config.data.path, datasetFingerprint: "train \(bank.fingerprint) test \(queries.fingerprint)",
      protocolVariant: variants.isEmpty ? nil : variants.joined(separator: ";"), codeVersion: SimSiamBench.version,
      threads: Threads.count))
    do {
      let progress = EvaluationProgress(log: log, interval: logInterval)
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
          progress.count("kNN queries", done: done, total: total)
        }
      var scores: [Score] = []
      for accuracy in accuracies {
        // No layer: the kNN protocol always reads the GAP features, and its tables and references key on k alone.
        scores.append(Score(benchmark: benchmark, metric: "top1", k: accuracy.k,
                            value: accuracy.top1, count: accuracy.queries))
        scores.append(Score(benchmark: benchmark, metric: "top5", k: accuracy.k,
                            value: accuracy.top5, count: accuracy.queries))
        log.write(String(format: "k=%d: top-1 %.2f %%, top-5 %.2f %%", accuracy.k, accuracy.top1, accuracy.top5))
      }
      _ = try store.addScores(scores, to: runID)
      try store.finishRun(runID)
      log.write("finished: results run \(runID) in \(database)")
      return KNNRunResult(runID: runID, accuracies: accuracies,
                          table: Self.summary(label: label, accuracies: accuracies, benchmark: benchmark))
    } catch {
      try? store.failRun(runID, message: "\(error)")
      log.write("failed: \(error)")
      throw error
    }
  }

  /// The README's kNN table layout: one column per k, "top-1 / top-5".
  static func summary(label: String, accuracies: [KNNAccuracy], benchmark: String) -> Table {
    Table(title: "\(benchmark) (top-1 / top-5 %)",
          columns: ["Self-Supervised Config"] + accuracies.map { "k=\($0.k)" },
          rows: [[label] + accuracies.map { String(format: "%.1f / %.1f", $0.top1, $0.top5) }])
  }
}
