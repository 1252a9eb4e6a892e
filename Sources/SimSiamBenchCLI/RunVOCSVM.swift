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
  var checkpoint: String

  @Option(help: "A VOC year directory, e.g. VOCdevkit/VOC2007 (ImageSets/Main with <class>_trainval/test lists).")
  var data: String

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

  @Option(help: "Comma-separated layers among feature1 … feature5.")
  var layers: String = "feature1,feature2,feature3,feature4,feature5"

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

  func validate() throws {
    guard batchSize >= 1 else { throw ValidationError("--batch-size must be ≥ 1, got \(batchSize).") }
    _ = try parsedLayers()
    _ = try parsedCosts()
    _ = try parsedKs()
  }

  func parsedLayers() throws -> [FeatureLayer] {
    try layers.split(separator: ",").map { name in
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

  func run() throws {
    common.configureThreads()
    let start = DispatchTime.now()
    let layerList = try parsedLayers()
    var settings = SVMSettings()
    settings.costs = try parsedCosts()
    settings.workers = workers
    let runsLowShot = lowShot || lowShotSamples != nil
    let name = label ?? URL(fileURLWithPath: checkpoint).deletingPathExtension().lastPathComponent
    let workDirectory = URL(fileURLWithPath: workDir ?? "work_dirs/voc-svm/\(name)")
    try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
    let log = try LogFile(workDirectory.appendingPathComponent("log.txt"))

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
    let lowShotKs = try parsedKs()
    let draw: LowShotDraw? = try runsLowShot ? (lowShotSamples.map {
      try readLowShotSamples(directory: URL(fileURLWithPath: $0), ks: lowShotKs, images: trainLabels.images,
                             classes: trainLabels.classes.count)
    } ?? drawLowShotSamples(labels: trainLabels, ks: lowShotKs, seed: common.seed)) : nil

    let transformText = "Resize(\(resizeSide))→squash(\(size)) mean=\(normalization.mean) std=\(normalization.std)"
    var variant = settings.variantDescription + "; pooling=\(pooling.rawValue) (\(pooling == .specified ? "MMSelfSup AvgPool2d kernels" : "adaptive to 12/6/4/3/2"))"
      + "; transform=\(transformText); difficult=negative-in-train, excluded-at-test"
    if let draw {
      variant += "; lowshot=\(draw.source) k=\(lowShotKs.map(String.init).joined(separator: ",")) samples=\(draw.sampleCount)"
        + (draw.shortfalls.isEmpty ? "" : " shortfalls=all-used(\(draw.shortfalls.count))")
    }
    log.write("simsiam-bench \(SimSiamBench.version) run voc-svm \(name): \(guess), \(report.layout.displayName), "
                + "sha256 \(sha.prefix(12)); \(source.count) images (\(trainLabels.images) trainval, "
                + "\(testLabels.images) test), \(trainLabels.classes.count) classes; layers "
                + "\(layerList.map(\.rawValue).joined(separator: ",")); \(Threads.count) threads")
    log.write("protocol: \(variant)")
    if let draw, !draw.shortfalls.isEmpty {
      log.write("low-shot: fewer images than asked for (rule: use all of them): "
                  + draw.shortfalls.prefix(10).joined(separator: "; ") + (draw.shortfalls.count > 10 ? "; …" : ""))
    }

    let store = try ResultsStore(path: common.db)
    let configJSON = jsonObject([
      "checkpoint": checkpoint, "data": data, "layers": layerList.map(\.rawValue).joined(separator: ","),
      "costs": settings.costs.map { "\($0)" }.joined(separator: ","), "ap_cv": "sklearn average_precision_score",
      "ap_test": "all-point (svm_helper.calculate_ap)", "pooling": pooling.rawValue, "image_size": "\(size)",
      "resize": "\(resizeSide)", "seed": "\(common.seed)", "low_shot": draw?.source ?? "off",
      "low_shot_shortfalls": draw?.shortfalls.joined(separator: "; ") ?? "", "work_dir": workDirectory.path,
    ])
    let runID = try store.beginRun(NewRun(
      kind: .evaluate, protocolName: Benchmark.voc07SVM, label: name, config: configJSON, checkpointPath: checkpoint,
      checkpointSHA256: sha, checkpointLayout: report.layout.rawValue, datasetPath: data,
      datasetFingerprint: source.fingerprint, protocolVariant: variant, codeVersion: SimSiamBench.version,
      threads: Threads.count))
    do {
      // Features.
      let progress = SVMProgressLine(log: log)
      let request = FeatureExtractionRequest(checkpointSHA256: sha, source: source, transform: transform,
                                             layers: layerList, batchSize: batchSize)
      log.write("extracting features of \(source.count) images")
      let features = try extractor.extract(request, cache: try featureCacheOptions.open(log: log)) { done, total in
        progress.update("extract", done, total)
      }
      if features.computedLayers.count < layerList.count {
        log.write("feature cache: reused \(layerList.count - features.computedLayers.count) of \(layerList.count) "
                    + "layer(s) from \(featureCacheOptions.featureCache)")
      }
      let split = source.splits.splitAt
      let layerData = layerList.map { layer -> SVMLayerData in
        let matrix = features.matrices[layer]!
        return SVMLayerData(layer: layer.rawValue, train: matrix.rows(0..<split),
                            test: matrix.rows(split..<matrix.rows), trainLabels: trainLabels, testLabels: testLabels,
                            trainLocation: { source.location(of: $0) }, testLocation: { source.location(of: split + $0) })
      }
      if let exportFeatures {
        try exportSVMInputs(to: URL(fileURLWithPath: exportFeatures), layers: layerData, lowShot: draw)
        log.write("exported features and labels to \(exportFeatures)")
      }

      var full: [FullSVMResult] = []
      var lowShotResults: [String: LowShotResult] = [:]
      for (index, data) in layerData.enumerated() {
        let layer = try SVMLayer(data, settings: settings)
        if index == 0 {
          let seconds = try layer.estimateFullSeconds(settings: settings) * Double(layerData.count)
          log.write("SVM stage: \(layerData.count) layer(s) × \(trainLabels.classes.count) classes × "
                      + "\(settings.costs.count) costs × (\(settings.folds) folds + final) on "
                      + "\(settings.effectiveWorkers) workers; estimate \(ProgressPrinter.duration(seconds))"
                      + (runsLowShot ? " + low-shot" : ""))
        }
        let identity = "features=\(sha)|\(source.fingerprint)|\(data.layer)|\(transformText)|\(pooling.rawValue)"
        let journal = try SVMJournal(directory: workDirectory, key: identity + "|full|" + settings.variantDescription)
        let result = try layer.runFull(settings: settings, journal: journal) { progress.update($0) }
        full.append(result)
        _ = try store.addScores(fullScores(result), to: runID)
        log.write(String(format: "%@: mAP %.2f (chosen costs %@)", data.layer, 100 * result.mAP,
                         result.chosenCost.map { "\(result.costs[$0])" }.joined(separator: ",")))
        if let draw {
          let lowJournal = try SVMJournal(
            directory: workDirectory,
            key: identity + "|lowshot|\(draw.source)|\(lowShotKs)|" + settings.variantDescription)
          let low = try layer.runLowShot(draw, settings: settings, journal: lowJournal) { progress.update($0) }
          lowShotResults[data.layer] = low
          _ = try store.addScores(lowShotScores(low), to: runID)
          log.write("\(data.layer) low-shot: " + low.summaries.map {
            String(format: "k=%d %.2f±%.2f", $0.k, 100 * $0.mean, 100 * $0.std)
          }.joined(separator: "  "))
        }
      }
      try store.finishRun(runID)
      let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
      log.write("finished in \(ProgressPrinter.duration(seconds)); results run \(runID) in \(common.db)")
      print(summaryTable(name: name, full: full, lowShot: lowShotResults, ks: lowShotKs).text())
      if let draw, !draw.shortfalls.isEmpty {
        print("note: \(draw.shortfalls.count) low-shot class/k pairs had fewer images than asked; all were used.")
      }
    } catch {
      try? store.failRun(runID, message: "\(error)")
      log.write("failed: \(error)")
      throw error
    }
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
