// `simsiam-bench run linear --head mhead|avgpool`: MMSelfSup's frozen-backbone linear probes (PROTOCOLS §4.1–4.4).
// Loads the backbone through `loadBackbone`, extracts the test features once, trains the heads (on augmented
// images every epoch, or on cached features with --cache-features), checkpoints the heads every epoch, and stores
// per-epoch and final top-1/top-5 per head with the run's provenance.
import ArgumentParser
import Foundation
import Checkpoints
import Datasets
import Evaluation
import Models
import Results
import Tensors
import Training

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

  /// The config and its name (the file name without extension, or the embedded preset's name).
  func loadConfig() throws -> (LinearProbeConfig, String) {
    var early: [String] = []
    var late = overrides
    if let data { early.append("data.path=\(data)") }
    if let head { early.append("head.type=\(head.rawValue)") }
    if cacheFeatures { late.append("cache_features=true") }
    if CommandLine.arguments.contains(where: { $0 == "--seed" || $0.hasPrefix("--seed=") }) {
      late.append("seed=\(common.seed)")
    }
    if let config {
      let url = URL(fileURLWithPath: config)
      let text: String
      do { text = try String(contentsOf: url, encoding: .utf8) } catch {
        throw ValidationError("Cannot read the config \(config): \((error as NSError).localizedDescription).")
      }
      return (try LinearProbeConfig.load(yaml: text, source: config, overrides: early + late),
              url.deletingPathExtension().lastPathComponent)
    }
    let kind = head ?? .mhead
    let detected = data.flatMap(detectClassificationData)
    if detected == .imageFolder {
      // An ImageNet-layout folder without a config: MMSelfSup's ImageNet protocol of the head.
      let protocolOverrides = kind == .mhead ? [] : LinearProbeConfig.imageNetAvgPoolOverrides
      let name = kind == .mhead ? "resnet50_mhead_8xb32-steplr-90e_in1k" : "resnet50_8xb512-coslr-90e_in1k"
      return (try LinearProbeConfig.load(yaml: nil, source: "default", overrides: protocolOverrides + early + late),
              name)
    }
    let preset = kind == .mhead ? ClassificationPresets.mheadQuick : ClassificationPresets.avgpoolQuick
    let dataOverrides = detected == .cifar10 ? cifarOverrides : []
    return (try LinearProbeConfig.load(yaml: preset.yaml, source: preset.name,
                                       overrides: dataOverrides + early + late),
            preset.name.replacingOccurrences(of: "fashion-mnist", with: detected == .cifar10 ? "cifar10" : "fashion-mnist"))
  }

  func run() throws {
    common.configureThreads()
    let (config, name) = try loadConfig()
    let evaluation = try loadEvaluationBackbone(checkpoint, layoutOptions: layoutOptions, randomInit: randomInit,
                                                seed: config.seed)
    let directory = workDir.map { URL(fileURLWithPath: $0) }
      ?? URL(fileURLWithPath: "work_dirs").appendingPathComponent(name)
        .appendingPathComponent(evaluation.defaultLabel(checkpoint))
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let log = try LogFile(directory.appendingPathComponent("log.txt"))
    let runner = LinearProbeRun(config: config, name: name, evaluation: evaluation, checkpointPath: checkpoint,
                                configFile: self.config, label: label ?? evaluation.defaultLabel(checkpoint),
                                directory: directory, resume: resume, database: common.db, log: log,
                                logInterval: logInterval, featureCache: try featureCacheOptions.open(log: log))
    let result = try runner.run()
    print("")
    print(result.table.markdown(), terminator: "")
  }
}

extension ProbeKind: ExpressibleByArgument {}

/// CIFAR statistics for the quick configs when --data is a CIFAR folder.
let cifarOverrides = ["data.kind=cifar10", "data.mean=[0.4914, 0.4822, 0.4465]", "data.std=[0.2470, 0.2435, 0.2616]"]

extension LinearProbeConfig {
  /// resnet50_8xb512-coslr-90e_in1k over the (multi-head) defaults.
  static let imageNetAvgPoolOverrides = [
    "head.type=avgpool", "data.train_transform=rrc-flip", "optimizer.type=lars", "optimizer.lr=1.6",
    "optimizer.base_batch_size=4096", "optimizer.weight_decay=0", "optimizer.nesterov=false",
    "schedule.batch_size=4096", "schedule.policy=cosine", "schedule.min_lr=0",
  ]
}

/// Which embedded-data layout a folder has: Fashion-MNIST IDX files, CIFAR batches or an ImageNet train/val tree.
func detectClassificationData(_ path: String) -> ClassificationDataKind? {
  let manager = FileManager.default
  func exists(_ name: String) -> Bool { manager.fileExists(atPath: (path as NSString).appendingPathComponent(name)) }
  if exists("train-images-idx3-ubyte.gz") || exists("train-images-idx3-ubyte") { return .fashionMNIST }
  if exists("data_batch_1.bin") || exists("test_batch.bin") { return .cifar10 }
  var isDirectory: ObjCBool = false
  let train = manager.fileExists(atPath: (path as NSString).appendingPathComponent("train"), isDirectory: &isDirectory)
    && isDirectory.boolValue
  let val = manager.fileExists(atPath: (path as NSString).appendingPathComponent("val"), isDirectory: &isDirectory)
    && isDirectory.boolValue
  return train && val ? .imageFolder : nil
}

// MARK: - Shared by run linear and run knn

/// A backbone ready for frozen evaluation, with the provenance of its weights.
struct EvaluationBackbone {
  let backbone: ResNet
  let report: LoadReport?
  let sha256: String
  let layout: String
  let isRandomInit: Bool
  let seed: UInt64

  /// Feature-cache key: the file's hash, or the seed for a random initialisation.
  var featureKey: String { isRandomInit ? "random-init-\(seed)-\(sha256)" : sha256 }

  /// The checkpoint file name without extension (plus `-random-init`).
  func defaultLabel(_ path: String) -> String {
    var stem = URL(fileURLWithPath: path).lastPathComponent
    for suffix in [".safetensors", ".pth.tar", ".pth", ".pt", ".ckpt", ".tar"] where stem.hasSuffix(suffix) {
      stem = String(stem.dropLast(suffix.count))
      break
    }
    return isRandomInit ? stem + "-random-init" : stem
  }
}

/// Builds our ResNet for the checkpoint's architecture and loads its backbone strictly through `loadBackbone`
/// (or keeps the random initialisation for a baseline).
func loadEvaluationBackbone(_ path: String, layoutOptions: LayoutOptions, randomInit: Bool,
                            seed: UInt64) throws -> EvaluationBackbone {
  let mapped = try MappedCheckpoint(try readCheckpoint(path, io: .current), layout: layoutOptions.layout,
                                    prefix: layoutOptions.prefix)
  guard let guess = mapped.architecture else {
    throw CheckpointLayoutError.layoutNotFound(path: path, layout: mapped.layout.rawValue,
                                               reason: "its backbone has no conv1.weight")
  }
  guard let resnet = ResNetConfig(guess) else {
    throw ValidationError("\(path) holds a \(guess) backbone; the evaluators build ResNet-18/34/50 only.")
  }
  var generator = SplitMix64.derived(seed, 0xBAC4B0E)
  let backbone = ResNet(resnet, using: &generator)
  if randomInit {
    return EvaluationBackbone(backbone: backbone, report: nil, sha256: try fileSHA256(path),
                              layout: mapped.layout.rawValue, isRandomInit: true, seed: seed)
  }
  let report = try loadBackbone(mapped, file: path, into: backbone, allowMissing: false)
  return EvaluationBackbone(backbone: backbone, report: report, sha256: report.sha256 ?? "",
                            layout: mapped.layout.rawValue, isRandomInit: false, seed: seed)
}

/// Progress of a long loop: a live line on a terminal, periodic log lines otherwise.
final class EvaluationProgress {
  let log: LogFile
  let interval: Double
  let isTerminal = isatty(STDOUT_FILENO) == 1
  private var lastLine = Date.distantPast
  private var started = Date()

  init(log: LogFile, interval: Double) {
    self.log = log
    self.interval = interval
  }

  /// Restarts the rate clock (a new phase).
  func begin() { started = Date(); lastLine = .distantPast }

  func show(_ text: String, final: Bool = false) {
    if isTerminal {
      print("\r\u{1B}[2K" + text, terminator: "")
      fflush(nil)
      ProgressPrinter.hasLiveLine = true
    }
    if Date().timeIntervalSince(lastLine) >= interval || final {
      lastLine = Date()
      log.write(text, echo: !isTerminal)
    }
  }

  /// "what done/total  N img/s  ETA m:ss" for a counted phase.
  func count(_ what: String, done: Int, total: Int) {
    let elapsed = Date().timeIntervalSince(started)
    let rate = Double(done) / max(elapsed, 1e-9)
    let eta = Double(total - done) / max(rate, 1e-9)
    show(String(format: "%@ %d/%d  %.1f img/s  ETA ", what, done, total, rate) + ProgressPrinter.duration(eta),
         final: done == total)
  }
}

/// Extracts `layers` of `source` with the test transform through the shared `FeatureExtractor`.
func extractFeatures(_ evaluation: EvaluationBackbone, source: ClassificationSource, data: ClassificationDataConfig,
                     layers: [FeatureLayer], cache: FeatureCache?, progress: EvaluationProgress,
                     what: String) throws -> ExtractedFeatures {
  let channels = evaluation.backbone.config.inChannels
  let transform = EvaluationTransform(resize: data.resize, size: data.crop, mode: .centerCrop,
                                      normalization: data.normalization(channels: channels))
  let request = FeatureExtractionRequest(checkpointSHA256: evaluation.featureKey, source: source,
                                         transform: transform, layers: layers, batchSize: data.extractBatchSize)
  progress.begin()
  return try FeatureExtractor(backbone: evaluation.backbone).extract(request, cache: cache) { done, total in
    progress.count(what, done: done, total: total)
  }
}

// MARK: - The linear-probe run

/// What a finished probe run produced.
struct LinearProbeResult {
  var runID: RunID
  var hits: [FeatureLayer: ProbeHits]
  var table: Table
}

/// One `run linear`: data, probe, resume, training with checkpoints, scores.
struct LinearProbeRun {
  var config: LinearProbeConfig
  var name: String
  var evaluation: EvaluationBackbone
  var checkpointPath: String
  var configFile: String?
  var label: String
  var directory: URL
  var resume: Bool
  var database: String
  var log: LogFile
  var logInterval: Double
  /// Where extracted features are cached (nil: in memory only).
  var featureCache: FeatureCache?

  /// `heads_epoch_<N>.safetensors` files of the work directory, by epoch.
  static func headCheckpoints(in directory: URL) -> [(epoch: Int, url: URL)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.compactMap { name -> (Int, URL)? in
      guard name.hasPrefix("heads_epoch_"), name.hasSuffix(".safetensors"),
            let epoch = Int(name.dropFirst("heads_epoch_".count).dropLast(".safetensors".count)) else { return nil }
      return (epoch, directory.appendingPathComponent(name))
    }.sorted { $0.0 < $1.0 }
  }

  func run() throws -> LinearProbeResult {
    let backbone = evaluation.backbone
    let channels = backbone.config.inChannels
    let kind = config.kind
    let layers = config.layers
    let location = config.data.location
    let train = try ClassificationSource.open(location, split: .train, channels: channels)
    let test = try ClassificationSource.open(location, split: .test, channels: channels)
    let classCount = max(train.classCount, test.classCount)
    let pooling = FeatureExtractor(backbone: backbone).pooling(forInputSize: config.data.crop)
    let benchmark = "\(location.kind.benchmarkName)-linear"
    let optimization = config.optimization

    var variants: [String] = []
    if config.cacheFeatures { variants.append("cached-features") }
    if kind == .mhead && pooling == .adaptive { variants.append("adaptive-pooling") }
    if config.data.crop != 224 || config.data.resize != 256 {
      variants.append("resize=\(config.data.resize),crop=\(config.data.crop)")
    }
    if config.data.limit > 0 { variants.append("train-limit=\(config.data.limit)") }
    if config.data.testLimit > 0 { variants.append("test-limit=\(config.data.testLimit)") }
    if evaluation.isRandomInit { variants.append("random-init") }

    log.write("simsiam-bench \(SimSiamBench.version) run linear --head \(kind.rawValue) (\(name)): "
                + "\(backbone.config.depth)-layer ResNet, \(train.count) train / \(test.count) test images, "
                + "\(classCount) classes, \(optimization.epochs) epochs, batch \(config.schedule.batchSize), "
                + "lr \(optimization.learningRate) (\(config.optimizer.lr) × \(config.schedule.batchSize) / "
                + "\(config.optimizer.baseBatchSize)), \(pooling.rawValue) pooling, "
                + (config.cacheFeatures ? "cached features (protocol deviation)" : "augmented images every epoch")
                + ", \(Threads.count) threads")
    if let report = evaluation.report { log.write(report.rendered()) }
    if evaluation.isRandomInit { log.write("random initialisation (seed \(evaluation.seed)); weights not loaded") }

    // Resume state first, so a mismatch fails before any long extraction.
    var generator = SplitMix64.derived(config.seed, 0x4EAD)
    let probe = LinearProbe(kind: kind, inputs: ProbeInput.inputs(layers, featureChannels: backbone.config.featureChannels),
                            classCount: classCount, optimization: optimization,
                            batchNormMomentum: config.head.bnMomentum, initStd: config.head.initStd,
                            using: &generator)
    let metadata: [String: String] = [
      "checkpoint_sha256": evaluation.featureKey, "config": config.json,
      "train_fingerprint": train.fingerprint, "test_fingerprint": test.fingerprint,
    ]
    var history: [ProbeEpochReport] = []
    if resume, let latest = Self.headCheckpoints(in: directory).last {
      let file = try SafeTensors(contentsOf: latest.url)
      for (key, value) in metadata where file.metadata[key] != value {
        throw ValidationError("Cannot resume from \(latest.url.path): its \(key) differs from this run's "
                                + "(\(key == "config" ? "the config changed" : "other checkpoint or data")). "
                                + "Use another --work-dir, or run without --resume to start over.")
      }
      try probe.restore(file, source: latest.url.path)
      history = (file.metadata["history"].flatMap { try? JSONDecoder().decode([ProbeEpochReport].self,
                                                                             from: Data($0.utf8)) }) ?? []
      log.write("resumed from \(latest.url.path) after epoch \(probe.completedEpochs)")
    } else if resume {
      log.write("--resume: no head checkpoint in \(directory.path); starting fresh")
    }

    let progress = EvaluationProgress(log: log, interval: logInterval)
    let featureLayers = layers
    let testFeatures = try extractFeatures(evaluation, source: test, data: config.data, layers: featureLayers,
                                           cache: featureCache, progress: progress, what: "test features")
    let testMatrices = featureLayers.map { testFeatures.matrices[$0]! }
    let trainingData: ProbeTrainingData
    if config.cacheFeatures {
      let cached = try extractFeatures(evaluation, source: train, data: config.data, layers: featureLayers,
                                       cache: featureCache, progress: progress, what: "train features")
      trainingData = CachedProbeFeatures(matrices: featureLayers.map { cached.matrices[$0]! }, labels: train.labels)
    } else {
      let transform = ProbeTrainTransform(rawValue: config.data.trainTransform)!
      trainingData = AugmentedProbeImages(
        source: train, backbone: backbone,
        augmentation: ProbeAugmentation(transform: transform, crop: config.data.crop, resize: config.data.resize,
                                        normalization: config.data.normalization(channels: channels)),
        layers: featureLayers, pooling: pooling, seed: config.seed)
    }

    let store = try ResultsStore(path: database)
    let runID = try store.beginRun(NewRun(
      kind: .evaluate, protocolName: benchmark, label: label, configFile: configFile, config: config.json,
      checkpointPath: checkpointPath, checkpointSHA256: evaluation.sha256, checkpointLayout: evaluation.layout,
      datasetPath: config.data.path, datasetFingerprint: "train \(train.fingerprint) test \(test.fingerprint)",
      protocolVariant: variants.isEmpty ? nil : variants.joined(separator: ";"), codeVersion: SimSiamBench.version,
      threads: Threads.count))
    do {
      // Epochs already trained before a resume: their metrics and scores go into this run too.
      for report in history { try record(report, layers: layers, benchmark: benchmark, store: store, runID: runID) }
      let trainer = ProbeTrainer(batchSize: config.schedule.batchSize, evaluationInterval: config.evaluation.interval,
                                 seed: config.seed)
      progress.begin()
      try trainer.train(probe, data: trainingData, test: testMatrices, testLabels: test.labels,
                        onIteration: { step in
                          progress.show(String(format: "epoch %d/%d  iter %d/%d  loss %.4f  lr %.5g  %.1f img/s  ETA ",
                                               step.epoch, step.totalEpochs, step.iterationInEpoch,
                                               step.iterationsPerEpoch, Double(step.loss), Double(step.learningRate),
                                               step.imagesPerSecond) + ProgressPrinter.duration(step.etaSeconds),
                                        final: step.iterationInEpoch == step.iterationsPerEpoch)
                        },
                        onEpoch: { report in
                          history.append(report)
                          try saveHeads(probe, metadata: metadata, history: history)
                          try record(report, layers: layers, benchmark: benchmark, store: store, runID: runID)
                          var line = String(format: "epoch %d: loss %@, lr %.5g, %.1f img/s, %.0f s", report.epoch,
                                            report.losses.map { String(format: "%.4f", $0) }.joined(separator: "/"),
                                            report.learningRate, report.imagesPerSecond, report.seconds)
                          if let hits = report.hits {
                            line += "; top-1 " + zip(layers, hits).map {
                              "\($0.rawValue) \(String(format: "%.2f", $1.top1Percent))"
                            }.joined(separator: ", ")
                          }
                          log.write(line)
                        })
      guard let final = history.last, let finalHits = final.hits else {
        throw ValidationError("The probe finished without an evaluation; nothing to store.")
      }
      var scores: [Score] = []
      var byLayer: [FeatureLayer: ProbeHits] = [:]
      for (layer, hits) in zip(layers, finalHits) {
        byLayer[layer] = hits
        scores.append(Score(benchmark: benchmark, metric: "top1", layer: layer.rawValue, value: hits.top1Percent,
                            count: hits.count))
        scores.append(Score(benchmark: benchmark, metric: "top5", layer: layer.rawValue, value: hits.top5Percent,
                            count: hits.count))
      }
      _ = try store.addScores(scores, to: runID)
      try store.finishRun(runID)
      let table = Self.summary(label: label, hits: byLayer, title: "\(benchmark) (top-1 / top-5 %, epoch \(final.epoch))")
      log.write("finished: results run \(runID) in \(database); head checkpoints in \(directory.path)")
      return LinearProbeResult(runID: runID, hits: byLayer, table: table)
    } catch {
      try? store.failRun(runID, message: "\(error)")
      log.write("failed: \(error)")
      throw error
    }
  }

  /// Per-epoch rows: loss and LR as an epoch metric; when evaluated, top-1/top-5 per head with `epoch` set
  /// (detail rows; the protocol result has `epoch` nil).
  func record(_ report: ProbeEpochReport, layers: [FeatureLayer], benchmark: String, store: ResultsStore,
              runID: RunID) throws {
    try store.addEpochMetric(EpochMetric(epoch: report.epoch, loss: report.losses.reduce(0, +),
                                         learningRate: report.learningRate, imagesPerSecond: report.imagesPerSecond),
                             to: runID)
    guard let hits = report.hits else { return }
    var scores: [Score] = []
    for (layer, value) in zip(layers, hits) {
      scores.append(Score(benchmark: benchmark, metric: "top1", layer: layer.rawValue, epoch: report.epoch,
                          value: value.top1Percent, count: value.count))
      scores.append(Score(benchmark: benchmark, metric: "top5", layer: layer.rawValue, epoch: report.epoch,
                          value: value.top5Percent, count: value.count))
    }
    _ = try store.addScores(scores, to: runID)
  }

  /// Writes `heads_epoch_<N>.safetensors` atomically and removes older head checkpoints.
  func saveHeads(_ probe: LinearProbe, metadata: [String: String], history: [ProbeEpochReport]) throws {
    var metadata = metadata
    metadata["history"] = (try? JSONEncoder().encode(history)).flatMap { String(data: $0, encoding: .utf8) } ?? "[]"
    let url = directory.appendingPathComponent("heads_epoch_\(probe.completedEpochs).safetensors")
    try probe.checkpoint(metadata: metadata).write(to: url)
    for old in Self.headCheckpoints(in: directory) where old.epoch < probe.completedEpochs {
      try? FileManager.default.removeItem(at: old.url)
    }
  }

  /// The README's linear table layout: Feature1 … Feature5, AvgPool; "top-1 / top-5" per cell.
  static func summary(label: String, hits: [FeatureLayer: ProbeHits], title: String) -> Table {
    let layers = FeatureLayer.stages + [.avgpool]
    let columns = ["Self-Supervised Config"] + (1...5).map { "Feature\($0)" } + ["AvgPool"]
    let cells = layers.map { layer in
      hits[layer].map { String(format: "%.2f / %.2f", $0.top1Percent, $0.top5Percent) } ?? "–"
    }
    return Table(title: title, columns: columns, rows: [[label] + cells])
  }
}
