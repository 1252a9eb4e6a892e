// `simsiam-bench run voc-svm`: VOC07 linear SVMs per layer (PROTOCOLS §2) and low-shot SVMs (§3) through liblinear,
// with every finished unit journaled in the work directory (a rerun resumes), every score in the results store,
// and the reference README's VOC table printed at the end.
import ArgumentParser
import Checkpoints
import Datasets
import Dispatch
import Evaluation
import Foundation
import Models
import Results
import Tensors

struct RunVOCSVM: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "voc-svm",
    abstract: "VOC07 linear SVMs per layer (feature1–5) and low-shot SVMs (k = 1 … 96).",
    discussion: """
      Extracts feature1…feature5 of the checkpoint's backbone (eval mode; Resize 256 → squash 224; MMSelfSup's \
      AvgPool2d kernels giving 9216/9216/8192/9216/8192 dims for ResNet-50). For other input sizes (--image-size, \
      e.g. 32 for CIFAR-stem backbones, the default for them) each stage is pooled adaptively to the same grids \
      12/6/4/3/2; the pooling rule is stored with the scores. Then per layer and class: liblinear L2R_L2LOSS_SVC_DUAL \
      (weights +1:2, −1:1, bias 1, eps 1e-4) on x/(‖x‖+1e-5); the cost (19 by default) is chosen by 3-fold \
      stratified CV with scikit-learn's average precision; test AP is the all-point AP of MMSelfSup's \
      svm_helper.calculate_ap. Difficult images are negatives in training and excluded at test, as in the \
      reference. --low-shot adds k positives + (classes−1)·k negatives per class (non-difficult images), 5 seeded \
      samples per k (or --low-shot-samples), the cost with the best mean test mAP per k. \
      Finished units are journaled in --work-dir; rerunning the same command resumes.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The checkpoint (.pth or .safetensors); its backbone architecture is detected.")
  var checkpoint: String?

  @Option(help: "A VOC year directory, e.g. VOCdevkit/VOC2007 (ImageSets/Main with <class>_trainval/test lists).")
  var data: String?

  @Option(help: ArgumentHelp(
    "Run the SVMs on features already extracted, instead of --checkpoint and --data.",
    discussion: "A directory in the layout --export-features writes: classes.txt, trainval_labels.npy and "
      + "test_labels.npy (int32 [images, classes]; 1, 0, -1 = difficult), trainval_<layer>.npy and "
      + "test_<layer>.npy (float32 or float64 [images, dim], not normalised)."))
  var features: String?

  @OptionGroup var layoutOptions: LayoutOptions

  @OptionGroup var featureCacheOptions: FeatureCacheOptions

  @Flag(help: "Load the backbone even if some tensors are missing (they keep their random initial values).")
  var allowMissing = false

  @Flag(help: "Also run the low-shot SVMs (k = 1, 2, 4, 8, 16, 32, 64, 96; 5 samples).")
  var lowShot = false

  @Option(help: "Read low-shot samples train_targets_sample{1..5}_k{k}.npy from this directory (implies --low-shot).")
  var lowShotSamples: String?

  @Option(help: "Comma-separated k values for --low-shot.")
  var lowShotK: String = "1,2,4,8,16,32,64,96"

  @Option(help: "Comma-separated layers among feature1 … feature5 (default: all; --features: every one there).")
  var layers: String?

  @Option(help: "Comma-separated SVM costs (default: the reference's 1, 10, 100 and 0.5^4 … 0.5^19).")
  var costs: String?

  @Option(help: "Write the features, labels (and low-shot samples) as .npy files here.")
  var exportFeatures: String?

  @Option(help: "Journal and log directory (default: work_dirs/voc-svm/<label>).")
  var workDir: String?

  @Option(help: "Images per forward pass during feature extraction.")
  var batchSize: Int = 32

  @Option(help: "The name reports show for this checkpoint (default: the file name).")
  var label: String?

  @Option(help: "Square input side (default 224; 32 for CIFAR-stem backbones). Not 224: adaptive pooling.")
  var imageSize: Int?

  @Option(help: "Short side before the squash (default 256; equal to --image-size when that is given).")
  var resize: Int?

  @Option(help: "Comma-separated per-channel means (x/255); default ImageNet's, or Fashion-MNIST's for 1 channel.")
  var mean: String?

  @Option(help: "Comma-separated per-channel stds; default ImageNet's, or Fashion-MNIST's for 1 channel.")
  var std: String?

  @Option(help: "Concurrent liblinear fits (0: --threads).")
  var workers: Int = 0

  @Flag(help: ArgumentHelp(
    "Bit-reproducible SVMs: one fit at a time, each with the same seed for liblinear's coordinate order.",
    discussion: "Without it, fits run in parallel and liblinear's shuffles interleave, so repeated runs agree to "
      + "the solver tolerance (typically within 0.01 mAP points), not bit for bit."))
  var deterministic = false

  func validate() throws {
    guard batchSize >= 1 else { throw ValidationError("--batch-size must be ≥ 1, got \(batchSize).") }
    if features != nil {
      guard checkpoint == nil, data == nil else {
        throw ValidationError("--features replaces --checkpoint and --data; give either --features DIR or both.")
      }
    } else {
      guard checkpoint != nil, data != nil else {
        throw ValidationError("Give --checkpoint and --data (a VOC year directory), or --features DIR.")
      }
      _ = try parsedLayers()
    }
    _ = try parsedCosts()
    _ = try parsedKs()
  }

  func parsedLayers() throws -> [FeatureLayer] {
    guard let layers else { return [.feature1, .feature2, .feature3, .feature4, .feature5] }
    return try layers.split(separator: ",").map { name in
      guard let layer = FeatureLayer(rawValue: String(name).trimmingCharacters(in: .whitespaces)),
            layer != .avgpool
      else { throw ValidationError("--layers: '\(name)' is not one of feature1 … feature5.") }
      return layer
    }
  }

  func parsedCosts() throws -> [Double] {
    guard let costs else { return referenceSVMCosts }
    let values = costs.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { throw SVMError.badCostList(costs) }
    return values.map { $0! }
  }

  func parsedKs() throws -> [Int] {
    let values = lowShotK.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
      throw ValidationError("--low-shot-k: give positive integers separated by commas, got '\(lowShotK)'.")
    }
    return values.map { $0! }
  }

  /// What the SVM stage needs, from a checkpoint and a devkit or from a feature directory.
  struct Inputs {
    var name: String
    var log: LogFile
    var workDirectory: URL
    var run: NewRun
    /// Names the features in journal keys (checkpoint hash, dataset, transform, pooling or the files' hash).
    var identity: String
    var draw: LowShotDraw?
    var classes: Int
    /// Extracts or reads the layers (inside the stored run, so a failure marks it failed).
    var layers: () throws -> [SVMLayerData]
  }

  func run() throws {
    common.configureThreads()
    let start = DispatchTime.now()
    var settings = SVMSettings()
    settings.costs = try parsedCosts()
    settings.workers = workers
    settings.deterministic = deterministic
    let inputs = try features.map { try featureDirectoryInputs(URL(fileURLWithPath: $0), settings: settings) }
      ?? checkpointInputs(settings: settings)
    let log = inputs.log
    let lowShotKs = try parsedKs()
    if let draw = inputs.draw, !draw.shortfalls.isEmpty {
      log.write("low-shot: fewer images than asked for (rule: use all of them): "
                  + draw.shortfalls.prefix(10).joined(separator: "; ") + (draw.shortfalls.count > 10 ? "; …" : ""))
    }
    let store = try ResultsStore(path: common.db)
    let runID = try store.beginRun(inputs.run)
    do {
      let layerData = try inputs.layers()
      if let exportFeatures {
        try exportSVMInputs(to: URL(fileURLWithPath: exportFeatures), layers: layerData, lowShot: inputs.draw)
        log.write("exported features and labels to \(exportFeatures)")
      }
      let progress = SVMProgressLine(log: log)
      var full: [FullSVMResult] = []
      var lowShotResults: [String: LowShotResult] = [:]
      for (index, data) in layerData.enumerated() {
        let layer = try SVMLayer(data, settings: settings)
        if index == 0 {
          let seconds = try layer.estimateFullSeconds(settings: settings) * Double(layerData.count)
          log.write("SVM stage: \(layerData.count) layer(s) × \(inputs.classes) classes × "
                      + "\(settings.costs.count) costs × (\(settings.folds) folds + final) on "
                      + "\(settings.effectiveWorkers) workers; estimate \(ProgressPrinter.duration(seconds))"
                      + (inputs.draw != nil ? " + low-shot" : ""))
        }
        let identity = inputs.identity + "|\(data.layer)"
        let journal = try SVMJournal(directory: inputs.workDirectory,
                                     key: identity + "|full|" + settings.variantDescription)
        let result = try layer.runFull(settings: settings, journal: journal) { progress.update($0) }
        full.append(result)
        _ = try store.addScores(fullScores(result), to: runID)
        log.write(String(format: "%@: mAP %.2f (chosen costs %@)", data.layer, 100 * result.mAP,
                         result.chosenCost.map { "\(result.costs[$0])" }.joined(separator: ",")))
        if let draw = inputs.draw {
          let lowJournal = try SVMJournal(
            directory: inputs.workDirectory,
            key: identity + "|lowshot|\(draw.source)|\(lowShotKs)|" + settings.variantDescription)
          let low = try layer.runLowShot(draw, settings: settings, journal: lowJournal) { progress.update($0) }
          lowShotResults[data.layer] = low
          _ = try store.addScores(lowShotScores(low), to: runID)
          log.write("\(data.layer) low-shot: " + low.summaries.map {
            String(format: "k=%d %.2f±%.2f", $0.k, 100 * $0.mean, 100 * $0.std)
          }.joined(separator: "  "))
        }
        let paths = layer.fitPaths
        if paths.finishedByPrimal + paths.stoppedAtCap > 0 { log.write("\(data.layer) " + paths.description) }
      }
      try store.finishRun(runID)
      let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
      log.write("finished in \(ProgressPrinter.duration(seconds)); results run \(runID) in \(common.db)")
      print(summaryTable(name: inputs.name, full: full, lowShot: lowShotResults, ks: lowShotKs).text())
      if let draw = inputs.draw, !draw.shortfalls.isEmpty {
        print("note: \(draw.shortfalls.count) low-shot class/k pairs had fewer images than asked; all were used.")
      }
    } catch {
      try? store.failRun(runID, message: "\(error)")
      log.write("failed: \(error)")
      throw error
    }
  }

  /// The low-shot samples: read from --low-shot-samples, drawn with --seed under --low-shot, or none.
  func lowShotDraw(trainLabels: SVMLabels) throws -> LowShotDraw? {
    guard lowShot || lowShotSamples != nil else { return nil }
    let ks = try parsedKs()
    if let lowShotSamples {
      return try readLowShotSamples(directory: URL(fileURLWithPath: lowShotSamples), ks: ks,
                                    images: trainLabels.images, classes: trainLabels.classes.count)
    }
    return drawLowShotSamples(labels: trainLabels, ks: ks, seed: common.seed)
  }

  func lowShotVariant(_ draw: LowShotDraw?) throws -> String {
    guard let draw else { return "" }
    return "; lowshot=\(draw.source) k=\(try parsedKs().map(String.init).joined(separator: ",")) "
      + "samples=\(draw.sampleCount)" + (draw.shortfalls.isEmpty ? "" : " shortfalls=all-used(\(draw.shortfalls.count))")
  }

  func openWorkDirectory(name: String) throws -> (URL, LogFile) {
    let workDirectory = URL(fileURLWithPath: workDir ?? "work_dirs/voc-svm/\(name)")
    try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
    return (workDirectory, try LogFile(workDirectory.appendingPathComponent("log.txt")))
  }

  /// --checkpoint + --data: the backbone, the devkit, the transform; features extracted (or read from the cache)
  /// when the run starts.
  func checkpointInputs(settings: SVMSettings) throws -> Inputs {
    guard let checkpoint, let data else { preconditionFailure("validate() requires --checkpoint and --data.") }
    let layerList = try parsedLayers()
    let name = label ?? URL(fileURLWithPath: checkpoint).deletingPathExtension().lastPathComponent
    let (workDirectory, log) = try openWorkDirectory(name: name)

    // Backbone from the checkpoint.
    let mapped = try MappedCheckpoint(try readCheckpoint(checkpoint, io: .current), layout: layoutOptions.layout,
                                      prefix: layoutOptions.prefix)
    guard let guess = mapped.architecture, let config = ResNetConfig(guess) else {
      throw CheckpointLayoutError.layoutNotFound(
        path: checkpoint, layout: mapped.layout.rawValue,
        reason: "its backbone is not a ResNet-18/34/50 we build (architecture: "
          + "\(mapped.architecture.map { "\($0)" } ?? "no conv1.weight"))")
    }
    var generator = SplitMix64(seed: common.seed)
    let backbone = ResNet(config, using: &generator)
    let report = try loadBackbone(mapped, file: checkpoint, into: backbone, allowMissing: allowMissing)
    let sha = report.sha256 ?? ""

    // Data and preprocessing.
    let source = try VOCImageSource(root: URL(fileURLWithPath: data))
    let size = imageSize ?? (config.cifarStem ? 32 : 224)
    let resizeSide = resize ?? (imageSize != nil || config.cifarStem ? size : 256)
    let normalization = try makeNormalization(channels: config.inChannels)
    let transform = EvaluationTransform(resize: resizeSide, size: size, mode: .squash, normalization: normalization)
    let extractor = FeatureExtractor(backbone: backbone)
    let pooling = extractor.pooling(forInputSize: size)
    let trainLabels = source.trainLabels
    let testLabels = source.testLabels
    let draw = try lowShotDraw(trainLabels: trainLabels)

    let transformText = "Resize(\(resizeSide))→squash(\(size)) mean=\(normalization.mean) std=\(normalization.std)"
    let variant = settings.variantDescription + "; pooling=\(pooling.rawValue) (\(pooling == .specified ? "MMSelfSup AvgPool2d kernels" : "adaptive to 12/6/4/3/2"))"
      + "; transform=\(transformText); difficult=negative-in-train, excluded-at-test" + (try lowShotVariant(draw))
    log.write("simsiam-bench \(SimSiamBench.version) run voc-svm \(name): \(guess), \(report.layout.displayName), "
                + "sha256 \(sha.prefix(12)); \(source.count) images (\(trainLabels.images) trainval, "
                + "\(testLabels.images) test), \(trainLabels.classes.count) classes; layers "
                + "\(layerList.map(\.rawValue).joined(separator: ",")); \(Threads.count) threads")
    log.write("protocol: \(variant)")
    let configJSON = jsonObject([
      "checkpoint": checkpoint, "data": data, "layers": layerList.map(\.rawValue).joined(separator: ","),
      "costs": settings.costs.map { "\($0)" }.joined(separator: ","), "ap_cv": "sklearn average_precision_score",
      "ap_test": "all-point (svm_helper.calculate_ap)", "pooling": pooling.rawValue, "image_size": "\(size)",
      "resize": "\(resizeSide)", "seed": "\(common.seed)", "low_shot": draw?.source ?? "off",
      "low_shot_shortfalls": draw?.shortfalls.joined(separator: "; ") ?? "", "work_dir": workDirectory.path,
    ])
    let run = NewRun(
      kind: .evaluate, protocolName: Benchmark.voc07SVM, label: name, config: configJSON, checkpointPath: checkpoint,
      checkpointSHA256: sha, checkpointLayout: report.layout.rawValue, datasetPath: data,
      datasetFingerprint: source.fingerprint, protocolVariant: variant, codeVersion: SimSiamBench.version,
      threads: Threads.count)
    let cacheOptions = featureCacheOptions
    let batchSize = batchSize
    return Inputs(
      name: name, log: log, workDirectory: workDirectory, run: run,
      identity: "features=\(sha)|\(source.fingerprint)|\(transformText)|\(pooling.rawValue)", draw: draw,
      classes: trainLabels.classes.count,
      layers: {
        let progress = SVMProgressLine(log: log)
        let request = FeatureExtractionRequest(checkpointSHA256: sha, source: source, transform: transform,
                                               layers: layerList, batchSize: batchSize)
        log.write("extracting features of \(source.count) images")
        let features = try extractor.extract(request, cache: try cacheOptions.open(log: log)) { done, total in
          progress.update("extract", done, total)
        }
        if features.computedLayers.count < layerList.count {
          log.write("feature cache: reused \(layerList.count - features.computedLayers.count) of \(layerList.count) "
                      + "layer(s) from \(cacheOptions.featureCache)")
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

  /// --features DIR: the classes, labels and features of a directory in the export layout, read up front.
  func featureDirectoryInputs(_ directory: URL, settings: SVMSettings) throws -> Inputs {
    let requested = layers.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
    let files = try readSVMInputs(from: directory, layers: requested)
    let name = label ?? directory.lastPathComponent
    let (workDirectory, log) = try openWorkDirectory(name: name)
    let first = files.layers[0]
    let draw = try lowShotDraw(trainLabels: first.trainLabels)
    let variant = settings.variantDescription + "; features=npy files (pooling and transform as their producer "
      + "made them); difficult=negative-in-train, excluded-at-test" + (try lowShotVariant(draw))
    log.write("simsiam-bench \(SimSiamBench.version) run voc-svm \(name): features from \(directory.path) (sha256 "
                + "\(files.sha256.prefix(12))); \(first.trainLabels.images) trainval, \(first.testLabels.images) "
                + "test images, \(first.trainLabels.classes.count) classes; layers "
                + files.layers.map { "\($0.layer) (\($0.train.columns) dims)" }.joined(separator: ", ")
                + "; \(Threads.count) threads")
    log.write("protocol: \(variant)")
    let configJSON = jsonObject([
      "features": directory.path, "layers": files.layers.map(\.layer).joined(separator: ","),
      "costs": settings.costs.map { "\($0)" }.joined(separator: ","), "ap_cv": "sklearn average_precision_score",
      "ap_test": "all-point (svm_helper.calculate_ap)", "seed": "\(common.seed)", "low_shot": draw?.source ?? "off",
      "low_shot_shortfalls": draw?.shortfalls.joined(separator: "; ") ?? "", "work_dir": workDirectory.path,
    ])
    let run = NewRun(
      kind: .evaluate, protocolName: Benchmark.voc07SVM, label: name, config: configJSON,
      checkpointPath: directory.path, checkpointSHA256: files.sha256, checkpointLayout: "npy-features",
      datasetPath: directory.path, datasetFingerprint: files.sha256, protocolVariant: variant,
      codeVersion: SimSiamBench.version, threads: Threads.count)
    return Inputs(name: name, log: log, workDirectory: workDirectory, run: run, identity: "npy=\(files.sha256)",
                  draw: draw, classes: first.trainLabels.classes.count, layers: { files.layers })
  }

  func makeNormalization(channels: Int) throws -> Normalization {
    func parse(_ text: String?, _ fallback: [Float], option: String) throws -> [Float] {
      guard let text else { return fallback }
      let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
      guard values.count == channels, values.allSatisfy({ $0 != nil }) else {
        throw ValidationError("--\(option) needs \(channels) comma-separated number(s), got '\(text)'.")
      }
      return values.map { $0! }
    }
    let defaults: ([Float], [Float]) = channels == 3
      ? (Normalization.imagenet.mean, Normalization.imagenet.std)
      : ([Float](repeating: 0.2860, count: channels), [Float](repeating: 0.3530, count: channels))
    return Normalization(mean: try parse(mean, defaults.0, option: "mean"), std: try parse(std, defaults.1, option: "std"))
  }

  /// `voc07-svm` mAP (per-class test APs) and, per cost, the CV AP (mean over classes of the 3-fold means).
  func fullScores(_ result: FullSVMResult) -> [Score] {
    var scores = [Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: result.layer, value: 100 * result.mAP,
                        count: result.classes.count,
                        perClass: zip(result.classes, result.testAP).map { ClassValue(className: $0, value: 100 * $1) })]
    for (costIndex, cost) in result.costs.enumerated() {
      let perClass = result.classes.indices.map { result.meanCV($0, costIndex) }
      scores.append(Score(benchmark: Benchmark.voc07SVM, metric: "cv-AP", layer: result.layer, cost: cost,
                          value: 100 * perClass.reduce(0, +) / Double(perClass.count), count: perClass.count,
                          perClass: zip(result.classes, perClass).map { ClassValue(className: $0, value: 100 * $1) }))
    }
    scores.append(Score(benchmark: Benchmark.voc07SVM, metric: "chosen-cost", layer: result.layer,
                        value: result.costs[result.chosenCost.first ?? 0], count: result.classes.count,
                        perClass: zip(result.classes, result.chosenCost).map {
                          ClassValue(className: $0, value: result.costs[$1])
                        }))
    return scores
  }

  /// `voc07-lowshot-svm` per k: mAP (mean over samples at the chosen cost, with std), min, max, the chosen cost;
  /// and every (k, sample, cost) mAP with its per-class APs.
  func lowShotScores(_ result: LowShotResult) -> [Score] {
    var scores: [Score] = []
    for summary in result.summaries {
      let samples = result.classAP[summary.k]!.count
      let k = summary.k
      scores.append(Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: result.layer, k: k,
                          value: 100 * summary.mean, count: samples, std: 100 * summary.std))
      scores.append(Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP-min", layer: result.layer, k: k,
                          value: 100 * summary.min, count: samples))
      scores.append(Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP-max", layer: result.layer, k: k,
                          value: 100 * summary.max, count: samples))
      scores.append(Score(benchmark: Benchmark.voc07LowShotSVM, metric: "chosen-cost", layer: result.layer, k: k,
                          value: result.costs[summary.chosenCost]))
      for sample in 0..<samples {
        for (costIndex, cost) in result.costs.enumerated() {
          let aps = result.classAP[k]![sample][costIndex]
          scores.append(Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: result.layer, k: k,
                              sample: sample + 1, cost: cost, value: 100 * result.mAP(k: k, sample: sample, cost: costIndex),
                              count: aps.count,
                              perClass: zip(result.classes, aps).map { ClassValue(className: $0, value: 100 * $1) }))
        }
      }
    }
    return scores
  }

  /// The reference README's VOC table (Best Layer, SVM, k=1 … k=96; low-shot at the best layer), then per layer.
  func summaryTable(name: String, full: [FullSVMResult], lowShot: [String: LowShotResult], ks: [Int]) -> Table {
    let best = full.max { $0.mAP < $1.mAP }
    func lowShotCells(_ layer: String?) -> [String] {
      ks.map { k in
        guard let layer, let result = lowShot[layer], let summary = result.summaries.first(where: { $0.k == k })
        else { return "–" }
        return String(format: "%.2f", 100 * summary.mean)
      }
    }
    var rows = [[name, best?.layer ?? "–", best.map { String(format: "%.2f", 100 * $0.mAP) } ?? "–"]
                + lowShotCells(best?.layer)]
    if full.count > 1 {
      for result in full {
        rows.append(["  \(result.layer)", "", String(format: "%.2f", 100 * result.mAP)] + lowShotCells(result.layer))
      }
    }
    return Table(title: "VOC07 SVM", columns: ["Self-Supervised Config", "Best Layer", "SVM"] + ks.map { "k=\($0)" },
                 rows: rows)
  }
}

/// A JSON object of string values, keys sorted.
private func jsonObject(_ values: [String: String]) -> String {
  let data = (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])) ?? Data("{}".utf8)
  return String(decoding: data, as: UTF8.self)
}

/// Progress lines with an ETA, at most one every 2 seconds (and at each stage's end).
final class SVMProgressLine: @unchecked Sendable {
  // @unchecked: state guarded by `lock`; called from worker threads.
  private let lock = NSLock()
  private let log: LogFile
  private var lastPrint = 0.0
  private var stage = ""
  private var stageStart = 0.0
  private var stageFirstDone = 0

  init(log: LogFile) { self.log = log }

  private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

  func update(_ progress: SVMProgress) { update(progress.stage, progress.done, progress.total, resumed: progress.resumed) }

  func update(_ name: String, _ done: Int, _ total: Int, resumed: Int = 0) {
    lock.lock()
    defer { lock.unlock() }
    let now = Self.now()
    if name != stage {
      stage = name
      stageStart = now
      stageFirstDone = done
      if resumed > 0 { log.write("\(name): \(resumed) of \(total) units already done (journal); resuming") }
    }
    guard now - lastPrint >= 2 || done == total else { return }
    lastPrint = now
    let elapsed = now - stageStart
    let progressed = done - stageFirstDone
    let eta = progressed > 0 ? elapsed / Double(progressed) * Double(total - done) : .nan
    log.write("\(name) \(done)/\(total)  elapsed \(ProgressPrinter.duration(elapsed))  ETA "
                + (eta.isFinite ? ProgressPrinter.duration(eta) : "–"), echo: true)
  }
}
