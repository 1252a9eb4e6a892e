// `run linear --head mhead|avgpool`: MMSelfSup's frozen-backbone linear probes (PROTOCOLS §4.1–4.4). Loads the
// backbone through `BackboneBuilder`, extracts the test features once, trains the heads (on augmented images every
// epoch, or on cached features), checkpoints the heads every epoch, and stores per-epoch and final top-1/top-5 per
// head with the run's provenance. Under mpirun every rank trains on its share of each global batch (DDP + SyncBN
// heads), the test features are extracted in blocks per rank, and rank 0 evaluates, writes and records.
import Checkpoints
import Datasets
import Distributed
import Evaluation
import Foundation
import Layers
import Results
import Support
import Tensors
import Training

/// One linear-probe evaluation, as the CLI or quickstart asks for it.
public struct LinearProbeRequest {
  public var backbone: BackboneRequest
  public var config: LinearProbeConfig
  /// The config's name (its file name, or the embedded preset's): names the work directory.
  public var configName: String
  /// The config file given, recorded with the run.
  public var configFile: String?
  /// The name reports show (default: the checkpoint's file name).
  public var label: String?
  /// Head checkpoints and log.txt (default: work_dirs/<config name>/<checkpoint name>).
  public var workDirectory: URL?
  /// Continue from the work directory's head checkpoint.
  public var resume = false
  public var database: String
  /// The feature cache (nil: extract in memory only).
  public var featureCache: URL?
  /// Seconds between progress lines when standard output is not a terminal.
  public var logInterval: Double = 10
  /// The ranks the run is split over (`mpirun -np N`): rank 0 calls `LinearProbeProtocol.run` and writes the
  /// checkpoints, cache, log and rows; the others call `runAsWorker` and write nothing.
  public var processGroup: any ProcessGroup = SingleProcessGroup()

  public init(backbone: BackboneRequest, config: LinearProbeConfig, configName: String, configFile: String? = nil,
              label: String? = nil, workDirectory: URL? = nil, resume: Bool = false, database: String,
              featureCache: URL?) {
    self.backbone = backbone
    self.config = config
    self.configName = configName
    self.configFile = configFile
    self.label = label
    self.workDirectory = workDirectory
    self.resume = resume
    self.database = database
    self.featureCache = featureCache
  }

  /// resnet50_8xb512-coslr-90e_in1k over the (multi-head) defaults.
  public static let imageNetAvgPoolOverrides = [
    "head.type=avgpool", "data.train_transform=rrc-flip", "optimizer.type=lars", "optimizer.lr=1.6",
    "optimizer.base_batch_size=4096", "optimizer.weight_decay=0", "optimizer.nesterov=false",
    "schedule.batch_size=4096", "schedule.policy=cosine", "schedule.min_lr=0",
  ]

  /// The config of a run: `file` if given; else MMSelfSup's ImageNet protocol of the head for an ImageNet
  /// train/val folder, or the embedded quick config of the head (CIFAR statistics for a CIFAR folder). `data` sets
  /// data.path and `head` head.type before `overrides`; `cacheFeatures` and an explicit `seed` win over all.
  public static func config(file: String?, data: String?, head: ProbeKind?, overrides: [String],
                            cacheFeatures: Bool, seed: UInt64?) throws -> (config: LinearProbeConfig, name: String) {
    var early: [String] = []
    var late = overrides
    if let data { early.append("data.path=\(data)") }
    if let head { early.append("head.type=\(head.rawValue)") }
    if cacheFeatures { late.append("cache_features=true") }
    if let seed { late.append("seed=\(seed)") }
    if let file {
      return (try LinearProbeConfig.load(yaml: try readConfigFile(file), source: file, overrides: early + late),
              configFileName(file))
    }
    let kind = head ?? .mhead
    let detected = data.flatMap(detectClassificationData)
    if detected == .imageFolder {
      let protocolOverrides = kind == .mhead ? [] : imageNetAvgPoolOverrides
      let name = kind == .mhead ? "resnet50_mhead_8xb32-steplr-90e_in1k" : "resnet50_8xb512-coslr-90e_in1k"
      return (try LinearProbeConfig.load(yaml: nil, source: "default", overrides: protocolOverrides + early + late),
              name)
    }
    let preset = kind == .mhead ? ClassificationPresets.mheadQuick : ClassificationPresets.avgpoolQuick
    let dataOverrides = detected == .cifar10 ? cifarOverrides : []
    return (try LinearProbeConfig.load(yaml: preset.yaml, source: preset.name,
                                       overrides: dataOverrides + early + late),
            preset.name.replacingOccurrences(of: "fashion-mnist",
                                             with: detected == .cifar10 ? "cifar10" : "fashion-mnist"))
  }
}

/// What a finished probe run produced.
public struct LinearProbeResult {
  public var runID: RunID
  public var label: String
  public var benchmark: BenchmarkID
  /// The final evaluation's epoch and hits per head.
  public var epoch: Int
  public var hits: [FeatureLayer: ProbeHits]

  /// The final top-1 and top-5 per head (`epoch` nil: the protocol result).
  public var scores: [Score] {
    hits.sorted { $0.key.rawValue < $1.key.rawValue }.flatMap { layer, hits in
      LinearProbeResult.scores(benchmark: benchmark, layer: layer, hits: hits, epoch: nil)
    }
  }

  static func scores(benchmark: BenchmarkID, layer: FeatureLayer, hits: ProbeHits, epoch: Int?) -> [Score] {
    [Score(benchmark: benchmark, metric: .top1, layer: layer.rawValue, epoch: epoch, value: hits.top1Percent,
           count: hits.count),
     Score(benchmark: benchmark, metric: .top5, layer: layer.rawValue, epoch: epoch, value: hits.top5Percent,
           count: hits.count)]
  }

  /// The README's linear table layout: Feature1 … Feature5, AvgPool; "top-1 / top-5" per cell.
  public var table: Table {
    let layers = FeatureLayer.stages + [.avgpool]
    let columns = ["Self-Supervised Config"] + (1...5).map { "Feature\($0)" } + ["AvgPool"]
    let cells = layers.map { layer in
      hits[layer].map { String(format: "%.2f / %.2f", $0.top1Percent, $0.top5Percent) } ?? "–"
    }
    return Table(title: "\(benchmark) (top-1 / top-5 %, epoch \(epoch))", columns: columns, rows: [[label] + cells])
  }
}

public enum LinearProbeProtocol {
  /// `heads_epoch_<N>.safetensors` files of a work directory, by epoch.
  public static func headCheckpoints(in directory: URL) -> [(epoch: Int, url: URL)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.compactMap { name -> (Int, URL)? in
      guard name.hasPrefix("heads_epoch_"), name.hasSuffix(".safetensors"),
            let epoch = Int(name.dropFirst("heads_epoch_".count).dropLast(".safetensors".count)) else { return nil }
      return (epoch, directory.appendingPathComponent(name))
    }.sorted { $0.0 < $1.0 }
  }

  /// Rank 0's run (or the only process's): the whole recorded run. Other ranks call `runAsWorker`.
  public static func run(_ request: LinearProbeRequest) throws -> LinearProbeResult {
    precondition(request.processGroup.isRoot,
                 "LinearProbeProtocol.run is rank 0's; rank \(request.processGroup.rank) runs runAsWorker.")
    return try perform(request)!
  }

  /// A rank other than 0 under mpirun: its share of the extraction and of every training batch, in step with rank
  /// 0's `run`; it writes no file, log line or row.
  public static func runAsWorker(_ request: LinearProbeRequest) throws {
    precondition(!request.processGroup.isRoot, "Rank 0 runs LinearProbeProtocol.run.")
    _ = try perform(request)
  }

  /// The run on any rank; rank 0 returns the result, the others nil. Every rank makes the same collective calls
  /// in the same order: the state broadcast, the sharded extractions, then per step the SyncBN sums of the heads,
  /// the gradient average and the loss sum.
  static func perform(_ request: LinearProbeRequest) throws -> LinearProbeResult? {
    let config = request.config
    let group = request.processGroup
    // The head checkpoints live under the checkpoint's own name, whatever label the reports show.
    let setup = try FrozenClassificationSetup(
      backbone: request.backbone, seed: config.seed, data: config.data, label: request.label,
      workDirectory: request.workDirectory, configName: request.configName,
      defaultWorkName: { _, checkpointName in checkpointName }, featureCache: request.featureCache,
      evaluationProtocol: .linear, writes: group.isRoot)
    let (evaluation, log, train, test, label, featureCache) = (setup.evaluation, setup.workArea?.log, setup.train,
                                                               setup.test, setup.label, setup.featureCache)
    let backbone = evaluation.backbone
    let channels = backbone.config.inChannels
    let kind = config.kind
    let layers = config.layers
    let classCount = setup.classCount, benchmark = setup.benchmark
    let pooling = FeatureExtractor(backbone: backbone).pooling(forInputSize: config.data.crop)
    let optimization = config.optimization
    let batchSize = config.schedule.batchSize
    try DataParallelState.checkShares(batchSize: batchSize,
                                      lastBatch: train.count % batchSize == 0 ? batchSize : train.count % batchSize,
                                      ranks: group.size, what: "run linear over \(train.count) training images")

    var variant = classificationVariant(config.data, isRandomInit: evaluation.isRandomInit)
    if config.cacheFeatures { variant.flag("cached-features") }
    if kind == .mhead && pooling == .adaptive { variant["pooling"] = "adaptive" }

    let ranks = group.isDistributed
      ? " over \(group.size) ranks (each ~\(batchSize / group.size) images per step\(kind == .mhead ? ", SyncBN" : ""))"
      : ""
    log?.write("simsiam-bench \(codeVersion) run linear --head \(kind.rawValue) (\(request.configName)): "
                 + "\(backbone.config.depth)-layer ResNet, \(train.count) train / \(test.count) test images, "
                 + "\(classCount) classes, \(optimization.epochs) epochs, batch \(batchSize)\(ranks), "
                 + "lr \(optimization.learningRate) (\(config.optimizer.lr) × \(batchSize) / "
                 + "\(config.optimizer.baseBatchSize)), \(pooling.rawValue) pooling, "
                 + (config.cacheFeatures ? "cached features (protocol deviation)" : "augmented images every epoch")
                 + ", \(Threads.count) threads")
    if group.isRoot { setup.logBackbone() }

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
    if let work = setup.workArea, request.resume, let latest = headCheckpoints(in: work.directory).last {
      let file = try SafeTensors(contentsOf: latest.url)
      for (key, value) in metadata where file.metadata[key] != value {
        throw ProtocolError.resumeMismatch(
          path: latest.url.path,
          reason: "its \(key) differs from this run's (\(key == "config" ? "the config changed" : "other checkpoint or data"))")
      }
      try probe.restore(file, source: latest.url.path)
      history = (file.metadata["history"].flatMap { try? JSONDecoder().decode([ProbeEpochReport].self,
                                                                             from: Data($0.utf8)) }) ?? []
      work.log.write("resumed from \(latest.url.path) after epoch \(probe.completedEpochs)")
    } else if let work = setup.workArea, request.resume {
      work.log.write("--resume: no head checkpoint in \(work.directory.path); starting fresh")
    }
    // DDP: every rank starts from rank 0's heads, statistics, momentum and epoch (a resume only rank 0 read).
    var counters = [Double(probe.completedEpochs)]
    try DataParallelState.broadcastFromRoot(probe.namedParameters.map(\.parameter), optimizer: probe.optimizer,
                                            counters: &counters, over: group)
    probe.completedEpochs = Int(counters[0])

    let progress = log.map { ProgressReporter(log: $0, interval: request.logInterval) }
    let testFeatures = try extractFeatures(evaluation, source: test, data: config.data, layers: layers,
                                           cache: featureCache, progress: progress, what: "test features",
                                           group: group)
    let testMatrices = layers.map { testFeatures.matrices[$0]! }
    let trainingData: ProbeTrainingData
    if config.cacheFeatures {
      let cached = try extractFeatures(evaluation, source: train, data: config.data, layers: layers,
                                       cache: featureCache, progress: progress, what: "train features", group: group)
      trainingData = CachedProbeFeatures(matrices: layers.map { cached.matrices[$0]! }, labels: train.labels)
    } else {
      let transform = ProbeTrainTransform(rawValue: config.data.trainTransform)!
      trainingData = AugmentedProbeImages(
        source: train, backbone: backbone,
        augmentation: ProbeAugmentation(transform: transform, crop: config.data.crop, resize: config.data.resize,
                                        normalization: config.data.normalization(channels: channels)),
        layers: layers, pooling: pooling, seed: config.seed)
    }

    let trainer = ProbeTrainer(batchSize: batchSize, evaluationInterval: config.evaluation.interval,
                               seed: config.seed)
    let parallelism = dataParallelism(probe, over: group)
    guard group.isRoot, let log, let progress else {
      try trainer.train(probe, data: trainingData, test: [], testLabels: [], parallelism: parallelism,
                        onEpoch: { _ in })
      return nil
    }
    let directory = setup.work.directory
    let store = try ResultsStore(path: request.database)
    let run = setup.newRun(configFile: request.configFile, configJSON: config.json, dataPath: config.data.path,
                           variant: variant)
    return try store.recording(run, log: log) { recorded in
      // Per-epoch rows: loss and LR as an epoch metric; when evaluated, top-1/top-5 per head with `epoch` set.
      func record(_ report: ProbeEpochReport) throws {
        try recorded.add(EpochMetric(epoch: report.epoch, loss: report.losses.reduce(0, +),
                                     learningRate: report.learningRate, imagesPerSecond: report.imagesPerSecond))
        guard let hits = report.hits else { return }
        try recorded.add(zip(layers, hits).flatMap { layer, value in
          LinearProbeResult.scores(benchmark: benchmark, layer: layer, hits: value, epoch: report.epoch)
        })
      }
      // Epochs already trained before a resume: their metrics and scores go into this run too.
      for report in history { try record(report) }
      progress.begin()
      try trainer.train(probe, data: trainingData, test: testMatrices, testLabels: test.labels,
                        parallelism: parallelism,
                        onIteration: { step in
                          progress.show(String(format: "epoch %d/%d  iter %d/%d  loss %.4f  lr %.5g  %.1f img/s  ETA ",
                                               step.epoch, step.totalEpochs, step.iterationInEpoch,
                                               step.iterationsPerEpoch, Double(step.loss), Double(step.learningRate),
                                               step.imagesPerSecond) + Console.duration(step.etaSeconds),
                                        final: step.iterationInEpoch == step.iterationsPerEpoch)
                        },
                        onEpoch: { report in
                          history.append(report)
                          try saveHeads(probe, in: directory, metadata: metadata, history: history)
                          try record(report)
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
        throw ProtocolError.invalidRequest(reason: "The probe finished without an evaluation; nothing to store.",
                                           hint: "Set evaluation.interval so that the last epoch is evaluated.")
      }
      let result = LinearProbeResult(runID: recorded.id, label: label, benchmark: benchmark, epoch: final.epoch,
                                     hits: Dictionary(uniqueKeysWithValues: zip(layers, finalHits)))
      try recorded.add(result.scores)
      log.write("finished: results run \(recorded.id) in \(request.database); head checkpoints in \(directory.path)")
      return result
    }
  }

  /// With several ranks: the multi-head BNs in SyncBN mode over `group` (MultiClsHead's norm_cfg SyncBN) and the
  /// heads' gradients averaged in DDP buckets, weighted by each rank's share of the batch; nil for one process.
  static func dataParallelism(_ probe: LinearProbe, over group: any ProcessGroup) -> ProbeDataParallelism? {
    guard group.isDistributed else { return nil }
    for head in probe.heads { head.norm?.processGroup = group }
    let averager = GradientAverager(probe.heads.flatMap(\.trainableParameters), over: group)
    return ProbeDataParallelism(rank: group.rank, size: group.size, sum: { values in
      var values = values
      try group.allreduceSum(&values)
      return values
    }, combineGradients: { weight in try averager.average(weight: weight) })
  }

  /// Writes `heads_epoch_<N>.safetensors` atomically and removes older head checkpoints.
  static func saveHeads(_ probe: LinearProbe, in directory: URL, metadata: [String: String],
                        history: [ProbeEpochReport]) throws {
    var metadata = metadata
    metadata["history"] = (try? JSONEncoder().encode(history)).flatMap { String(data: $0, encoding: .utf8) } ?? "[]"
    let url = directory.appendingPathComponent("heads_epoch_\(probe.completedEpochs).safetensors")
    try probe.checkpoint(metadata: metadata).write(to: url)
    for old in headCheckpoints(in: directory) where old.epoch < probe.completedEpochs {
      try? FileManager.default.removeItem(at: old.url)
    }
  }
}
