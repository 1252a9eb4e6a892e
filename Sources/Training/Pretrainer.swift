// The SimSiam pretraining loop (PROTOCOLS §1): two views per image through the shared encoder, the predictor on
// each, symmetric negative cosine with stop-gradient (`SimSiam.trainingStep`), SGD with momentum and weight decay
// on every parameter, the predictor at a fixed LR, LR = lr × batch / 256 with mmcv's per-epoch cosine,
// drop_last, and a loader that prepares the next batches while the step computes.
import Foundation
import Synchronization
import Distributed
import Tensors
import Layers
import Models
import Datasets

/// One training iteration as the progress display sees it.
public struct PretrainIteration: Sendable {
  /// 1-based epoch being trained, and the run's epoch count.
  public var epoch: Int
  public var totalEpochs: Int
  /// 1-based iteration within the epoch, and the epoch's iteration count.
  public var iterationInEpoch: Int
  public var iterationsPerEpoch: Int
  /// Iterations done over the whole run, this one included.
  public var iteration: Int
  public var loss: Float
  public var normalizedOutputStd: Float
  /// The encoder group's LR (the predictor's may be fixed).
  public var learningRate: Float
  /// Source images per second (each gives two views), over this run's iterations so far.
  public var imagesPerSecond: Double
  /// Seconds left at the current speed.
  public var etaSeconds: Double
}

/// What one epoch measured (a time-budget stop reports its partial epoch with `isComplete == false`).
public struct PretrainEpochMetrics: Sendable {
  public var epoch: Int
  public var isComplete: Bool
  public var iterations: Int
  public var meanLoss: Double
  public var learningRate: Float
  /// Mean over the epoch's iterations of the per-dimension std of ẑ = z/‖z‖; ≈ 1/√d when healthy.
  public var normalizedOutputStd: Double
  /// 1/√d, for the display.
  public var healthyStd: Double
  /// True when the std fell below `monitor.collapse_fraction / √d`: the representation is collapsing.
  public var isCollapsing: Bool
  public var imagesPerSecond: Double
  public var seconds: Double
  /// Of `seconds`, the time the step waited for the loader's next batch (0 when loading and augmentation kept up
  /// with the step: the loader threads make the next batches while the step computes).
  public var dataWaitSeconds: Double = 0
  /// kNN top-1 accuracy (0…1) on the held-out split, when the monitor ran after this epoch.
  public var knnAccuracy: Double?
}

/// How a run ended.
public struct PretrainSummary: Sendable {
  public var completedEpochs: Int
  public var iteration: Int
  public var stoppedByTimeBudget: Bool
  /// What `schedule.max_minutes` cut, when it stopped the run.
  public var scheduleCut: ScheduleCut?
  public var lastCheckpoint: URL?
  /// kNN accuracy of randomly initialised backbones (this run's initial weights and further init seeds), when
  /// `monitor.knn_at_end` is set: the baseline pretraining has to beat.
  public var randomInit: RandomInitBaseline?
  /// kNN accuracy (0…1) of the final weights, when `monitor.knn_at_end` is set.
  public var finalKNNAccuracy: Double?
  /// Indices of the images skipped as unreadable (with `data.skip_corrupt`), each with the error, in this run.
  public var skippedImages: [Int: String] = [:]
}

/// A run stopped by `schedule.max_minutes` before the end of its schedule.
///
/// The cap only stops: the cosine schedule stays laid out for `schedule.epochs`, so the stopped run is exactly the
/// prefix of the full run (its last checkpoint resumes to the same final weights), but its LR never decayed to
/// `min_lr`. Re-laying the cosine out over the epochs that fit would need the speed in advance and would make the
/// checkpoints of a capped run differ from those of the full one.
public struct ScheduleCut: Sendable, Equatable, CustomStringConvertible {
  public var maxMinutes: Double
  /// Epochs the cosine is laid out for (`schedule.epochs`) and epochs fully trained.
  public var scheduledEpochs: Int
  public var completedEpochs: Int
  /// Iterations done in the epoch that was cut (0 when the cap struck between epochs).
  public var iterationInEpoch: Int
  /// The encoder LR of the last trained iteration, and the `min_lr` the schedule would have reached.
  public var learningRate: Float
  public var minLR: Float

  public var description: String {
    let partial = iterationInEpoch > 0 ? " and \(iterationInEpoch) iterations of epoch \(completedEpochs + 1)" : ""
    return "schedule.max_minutes = \(maxMinutes) stopped training after \(completedEpochs) of \(scheduledEpochs) epochs"
      + partial + "; the cosine schedule was cut, not re-laid out: it is laid out for \(scheduledEpochs) epochs, so "
      + "the LR stopped at \(learningRate) instead of decaying to min_lr = \(minLR). "
      + "`--resume auto --set schedule.max_minutes=0` trains the rest of the same schedule"
  }
}

/// kNN top-1 accuracy of backbones at random initialisation over several init seeds.
public struct RandomInitBaseline: Sendable, Equatable {
  public var seeds: [UInt64]
  /// One per seed, 0…1.
  public var accuracies: [Double]
  public var mean: Double
  /// Sample standard deviation (n − 1 in the denominator); 0 for one seed.
  public var std: Double

  public init(seeds: [UInt64], accuracies: [Double]) {
    precondition(seeds.count == accuracies.count && !seeds.isEmpty,
                 "A random-init baseline needs one accuracy per seed, got \(accuracies.count) for \(seeds.count).")
    self.seeds = seeds
    self.accuracies = accuracies
    let n = Double(accuracies.count)
    mean = accuracies.reduce(0, +) / n
    let m = mean
    std = accuracies.count > 1 ? (accuracies.map { ($0 - m) * ($0 - m) }.reduce(0, +) / (n - 1)).squareRoot() : 0
  }
}

/// The images `makeViews` skipped as unreadable, shared by the loader threads.
public final class SkippedImages: Sendable {
  private let byIndex = Mutex<[Int: String]>([:])
  public init() {}
  func record(_ index: Int, _ error: Error) {
    let message = "\(error)"
    byIndex.withLock { $0[index] = message }
  }
  public var all: [Int: String] { byIndex.withLock { $0 } }
}

public enum PretrainError: Error, CustomStringConvertible, Equatable {
  case nonFiniteLoss(epoch: Int, iteration: Int, lastCheckpoint: String?)
  case incompatibleCheckpoint(path: String, reason: String)
  case unwritableWorkDirectory(path: String, reason: String)
  case noCheckpoint(path: String)
  case tooFewSamples(count: Int, batchSize: Int)
  case batchNotDivisible(batchSize: Int, worldSize: Int)

  public var description: String {
    switch self {
    case let .nonFiniteLoss(epoch, iteration, lastCheckpoint):
      "The loss became non-finite in epoch \(epoch), iteration \(iteration); training stopped before that update. "
        + (lastCheckpoint.map { "The last good checkpoint is \($0)." } ?? "No checkpoint had been written yet.")
        + " Try a lower optimizer.lr."
    case let .incompatibleCheckpoint(path, reason):
      "Cannot resume from \(path): \(reason)."
    case let .unwritableWorkDirectory(path, reason):
      "The work directory \(path) is not writable: \(reason). Choose another with --work-dir."
    case let .noCheckpoint(path):
      "There is no checkpoint to resume at \(path)."
    case let .tooFewSamples(count, batchSize):
      "The dataset has \(count) samples, fewer than one batch of \(batchSize) (batches drop the incomplete last "
        + "one); lower schedule.batch_size."
    case let .batchNotDivisible(batchSize, worldSize):
      "schedule.batch_size = \(batchSize) is the global batch, split evenly over the \(worldSize) ranks, but it is "
        + "not a multiple of \(worldSize); choose a batch size divisible by the number of ranks (mpirun -np)."
    }
  }
}

/// Trains a SimSiam model on a dataset as a config says, writing checkpoints to a work directory.
public final class Pretrainer {
  public let config: PretrainConfig
  public let dataset: PretrainDataset
  public let model: SimSiam
  public let optimizer: SGD
  /// Where checkpoints and `latest` go; nil writes nothing (tests of the loop alone, ranks other than 0).
  public let workDirectory: URL?
  /// The ranks training together (Pretrainer+DataParallel.swift); a single process by default.
  public let processGroup: any ProcessGroup
  /// Averages the gradients over the ranks after each backward; nil in a single process.
  let gradientAverager: GradientAverager?
  /// Recorded in checkpoints (`code_version`).
  public let codeVersion: String
  /// Epochs fully trained, iterations done over the run, and iterations done in the current epoch.
  public internal(set) var completedEpochs = 0
  public internal(set) var iteration = 0
  public internal(set) var iterationInEpoch = 0
  public internal(set) var lastCheckpoint: URL?
  // Running sums of the epoch in progress (saved in checkpoints, so a resumed epoch reports whole-epoch means).
  var epochLossSum = 0.0, epochStdSum = 0.0
  /// False trains without stop-gradient: the paper's collapse ablation (§4.1, Fig. 2), for experiments and the
  /// collapse test only; deliberately not a config key.
  public var stopsGradient = true
  /// How many init seeds the random-init kNN baseline averages (config.seed, config.seed + 1, …).
  public static let randomBaselineSeedCount = 3

  /// Builds the model from `SplitMix64(seed: config.seed)` and the optimiser, and checks the work directory.
  /// With a `processGroup` of N > 1 ranks, `schedule.batch_size` is the global batch (each rank trains on 1/N of
  /// it), only rank 0 writes to `workDirectory`, and every BatchNorm is synchronised (SyncBN).
  public init(config: PretrainConfig, dataset: PretrainDataset, workDirectory: URL?,
              codeVersion: String = "unknown", processGroup: any ProcessGroup = SingleProcessGroup()) throws {
    try config.validate()
    guard dataset.count >= config.schedule.batchSize else {
      throw PretrainError.tooFewSamples(count: dataset.count, batchSize: config.schedule.batchSize)
    }
    guard config.schedule.batchSize % processGroup.size == 0 else {
      throw PretrainError.batchNotDivisible(batchSize: config.schedule.batchSize, worldSize: processGroup.size)
    }
    self.processGroup = processGroup
    self.config = config
    self.dataset = dataset
    self.workDirectory = workDirectory
    self.codeVersion = codeVersion
    var rng = SplitMix64(seed: config.seed)
    model = SimSiam(config.simSiam, using: &rng)
    let learningRate = config.scaledLearningRate
    let predictorIDs = Set(model.predictor.parameters.map(ObjectIdentifier.init))
    let encoder = model.parameters.filter { !predictorIDs.contains(ObjectIdentifier($0)) }
    optimizer = SGD([ParameterGroup(parameters: encoder, learningRate: learningRate),
                     ParameterGroup(parameters: model.predictor.parameters, learningRate: learningRate,
                                    isLearningRateFixed: config.optimizer.fixPredictorLR)],
                    momentum: config.optimizer.momentum, weightDecay: config.optimizer.weightDecay)
    gradientAverager = processGroup.isDistributed ? GradientAverager(optimizer.allParameters, over: processGroup) : nil
    if processGroup.isDistributed { synchronizeBatchNorms() }
    if let workDirectory, processGroup.isRoot { try Self.prepare(workDirectory) }
  }

  /// kNN accuracy of freshly initialised backbones for `count` seeds starting at `config.seed`; the first is this
  /// run's own initial backbone (the model is built from `SplitMix64(seed:)` the same way). Independent of the
  /// training state, so a resumed run reports the same baseline.
  public func randomInitBaseline(seedCount count: Int = randomBaselineSeedCount,
                                 knn: (ResNet) throws -> Double) rethrows -> RandomInitBaseline {
    let seeds = (0..<UInt64(count)).map { config.seed &+ $0 }
    let accuracies = try seeds.map { seed in
      var rng = SplitMix64(seed: seed)
      return try knn(SimSiam(config.simSiam, using: &rng).backbone)
    }
    return RandomInitBaseline(seeds: seeds, accuracies: accuracies)
  }

  /// Iterations per epoch (drop_last).
  public var iterationsPerEpoch: Int { dataset.count / config.schedule.batchSize }

  /// The per-view augmentation the config describes (PROTOCOLS §1.1 pipeline with the config's strengths).
  public var augmentation: SimSiamAugmentation {
    let data = config.data
    return SimSiamAugmentation(
      size: data.imageSize, scale: data.cropScaleMin...data.cropScaleMax,
      colorJitter: ColorJitter(brightness: data.brightness, contrast: data.contrast, saturation: data.saturation,
                               hue: data.hue),
      colorJitterProbability: data.colorJitterProbability, grayscaleProbability: data.grayscaleProbability,
      blur: RandomGaussianBlur(sigma: 0.1...2.0, probability: data.blurProbability),
      flipProbability: data.flipProbability, normalization: Normalization(mean: data.mean, std: data.std))
  }

  /// Both views of the samples `indices` in epoch `epoch` (0-based): [n, size, size, c] each. Sample i's two
  /// views come from `SplitMix64.derived(seed, epoch, i)`, so batches do not depend on the worker count.
  ///
  /// With `skipped`, an image that fails to read is replaced by the next readable one (index + 1, + 2, …, at most
  /// 16 tries) and recorded; without it the error, which names the file, stops the run.
  public static func makeViews(_ indices: [Int], epoch: Int, seed: UInt64, dataset: PretrainDataset,
                               augmentation: SimSiamAugmentation, channels: Int,
                               skipped: SkippedImages? = nil) throws -> (Tensor, Tensor) {
    var first: [Image] = [], second: [Image] = []
    first.reserveCapacity(indices.count)
    second.reserveCapacity(indices.count)
    for index in indices {
      var rng = SplitMix64.derived(seed, UInt64(epoch), UInt64(index))
      let image = try readableImage(at: index, dataset: dataset, channels: channels, skipped: skipped)
      first.append(augmentation.augmentedImage(image, using: &rng))
      second.append(augmentation.augmentedImage(image, using: &rng))
    }
    return (collate(first, normalization: augmentation.normalization),
            collate(second, normalization: augmentation.normalization))
  }

  private static func readableImage(at index: Int, dataset: PretrainDataset, channels: Int,
                                    skipped: SkippedImages?) throws -> Image {
    guard let skipped else { return try dataset.image(at: index, channels: channels) }
    var lastError: Error?
    for offset in 0..<16 {
      let candidate = (index + offset) % dataset.count
      do {
        return try dataset.image(at: candidate, channels: channels)
      } catch {
        skipped.record(candidate, error)
        lastError = error
      }
    }
    throw lastError!  // 16 unreadable images in a row: the dataset itself is broken
  }

  /// Trains from the current state to `schedule.epochs` (or until `stopAfterEpochs` epochs are complete, or the
  /// time budget is spent), checkpointing as configured. `onEpoch` hears of an epoch after its checkpoint (if one
  /// is due) is on disk. Callbacks may throw to stop the run (no further checkpoint is written then, as with a
  /// killed process).
  @discardableResult
  public func train(stopAfterEpochs: Int? = nil,
                    onIteration: (PretrainIteration) throws -> Void = { _ in },
                    onEpoch: (PretrainEpochMetrics) throws -> Void = { _ in },
                    knn: ((ResNet) throws -> Double)? = nil) throws -> PretrainSummary {
    let epochs = config.schedule.epochs, batchSize = config.schedule.batchSize
    let lastEpoch = min(epochs, stopAfterEpochs ?? epochs)
    let perEpoch = iterationsPerEpoch
    let (seed, dataset, augmentation, channels) = (config.seed, self.dataset, self.augmentation,
                                                   config.model.inChannels)
    let skipped = config.data.skipCorrupt ? SkippedImages() : nil
    let (rank, worldSize) = (processGroup.rank, processGroup.size)
    try broadcastStateFromRoot()  // rank 0's weights, buffers, momentum and counters (after its resume)
    let clock = ContinuousClock()
    var imagesThisRun = 0
    var summary = PretrainSummary(completedEpochs: completedEpochs, iteration: iteration, stoppedByTimeBudget: false)
    if config.monitor.knnAtEnd, let knn { summary.randomInit = try randomInitBaseline(knn: knn) }
    // schedule.max_minutes counts from here: training, checkpoints and the kNN monitor between epochs, not the
    // random-init baseline before it.
    let trainingStart = clock.now, start = trainingStart
    func cut(_ learningRate: Float) -> ScheduleCut {
      ScheduleCut(maxMinutes: config.schedule.maxMinutes, scheduledEpochs: epochs, completedEpochs: completedEpochs,
                  iterationInEpoch: iterationInEpoch, learningRate: learningRate, minLR: config.schedule.minLR)
    }

    epochLoop: while completedEpochs < lastEpoch {
      let epoch = completedEpochs  // 0-based, mmcv's runner.epoch
      optimizer.updateLearningRates { base in
        cosineAnnealingLearningRate(base: base, minimum: self.config.schedule.minLR, progress: epoch,
                                    maxProgress: epochs)
      }
      let learningRate = optimizer.parameterGroups[0].learningRate
      let plan = EpochPlan(sampleCount: dataset.count, batchSize: batchSize, shuffle: true, dropLast: true,
                           seed: seed, epoch: epoch)
      let skip = iterationInEpoch  // > 0 when resuming inside an epoch
      let loader = BatchLoader(plan: plan, workers: config.data.workers, prefetch: config.data.prefetch) {
        indices, batchNumber in
        // Batches already trained before a mid-epoch checkpoint are not made again.
        if batchNumber < skip { return nil as (Tensor, Tensor)? }
        // This rank's share of the global batch (indices r, r + N, …); views keyed by the global index.
        return try Self.makeViews(Self.shard(indices, rank: rank, of: worldSize), epoch: epoch, seed: seed,
                                  dataset: dataset, augmentation: augmentation, channels: channels,
                                  skipped: skipped)
      }
      defer { loader.cancel() }
      let epochStart = clock.now
      var epochImages = 0
      var dataWait = Duration.zero
      while true {
        let waitStart = clock.now
        guard let batch = try loader.next() else { break }
        dataWait += clock.now - waitStart
        guard let (view1, view2) = batch else { continue }
        optimizer.zeroGrad()
        var result = model.trainingStep(view1, view2, stopsGradient: stopsGradient)
        try gradientAverager?.average()
        // Rank 0's clock decides the time budget, so every rank stops after the same iteration.
        let overBudget = try agreed(config.schedule.maxMinutes > 0
                                      && seconds(clock.now - start) > config.schedule.maxMinutes * 60,
                                    averaging: &result)
        guard result.loss.isFinite else {
          throw PretrainError.nonFiniteLoss(epoch: epoch + 1, iteration: iterationInEpoch + 1,
                                            lastCheckpoint: lastCheckpoint?.path)
        }
        optimizer.step()
        iteration += 1
        iterationInEpoch += 1
        epochLossSum += Double(result.loss)
        epochStdSum += Double(result.normalizedOutputStd)
        imagesThisRun += batchSize
        epochImages += batchSize
        let elapsed = seconds(clock.now - trainingStart)
        let speed = Double(imagesThisRun) / max(elapsed, 1e-9)
        let remaining = (lastEpoch - epoch) * perEpoch - iterationInEpoch
        try onIteration(PretrainIteration(
          epoch: epoch + 1, totalEpochs: epochs, iterationInEpoch: iterationInEpoch, iterationsPerEpoch: perEpoch,
          iteration: iteration, loss: result.loss, normalizedOutputStd: result.normalizedOutputStd,
          learningRate: learningRate, imagesPerSecond: speed,
          etaSeconds: Double(remaining * batchSize) / max(speed, 1e-9)))
        if overBudget && iterationInEpoch < perEpoch {
          summary.stoppedByTimeBudget = true
          summary.scheduleCut = cut(learningRate)
          var partial = epochMetrics(epoch: epoch + 1, isComplete: false, learningRate: learningRate,
                                     images: epochImages, seconds: seconds(clock.now - epochStart))
          partial.dataWaitSeconds = seconds(dataWait)
          try saveCheckpoint()
          try onEpoch(partial)
          break epochLoop
        }
      }
      var metrics = epochMetrics(epoch: epoch + 1, isComplete: true, learningRate: learningRate,
                                 images: epochImages, seconds: seconds(clock.now - epochStart))
      metrics.dataWaitSeconds = seconds(dataWait)
      completedEpochs += 1
      iterationInEpoch = 0
      epochLossSum = 0
      epochStdSum = 0
      let interval = config.monitor.knnInterval
      if let knn, interval > 0, completedEpochs % interval == 0 { metrics.knnAccuracy = try knn(model.backbone) }
      // The checkpoint is written before `onEpoch` hears of the epoch: a crash in between leaves a checkpoint
      // without its stored epoch row (which a resume writes again), never a row for an epoch with no checkpoint.
      let isCheckpointEpoch = completedEpochs % config.checkpoint.interval == 0 || completedEpochs == lastEpoch
      let overBudget = try agreedByRoot(config.schedule.maxMinutes > 0
                                          && seconds(clock.now - start) > config.schedule.maxMinutes * 60)
        && completedEpochs < lastEpoch
      if isCheckpointEpoch || overBudget { try saveCheckpoint() }
      try onEpoch(metrics)
      if overBudget {
        summary.stoppedByTimeBudget = true
        summary.scheduleCut = cut(learningRate)
        break
      }
    }
    if config.monitor.knnAtEnd, let knn { summary.finalKNNAccuracy = try knn(model.backbone) }
    summary.completedEpochs = completedEpochs
    summary.iteration = iteration
    summary.lastCheckpoint = lastCheckpoint
    summary.skippedImages = skipped?.all ?? [:]
    return summary
  }

  private func epochMetrics(epoch: Int, isComplete: Bool, learningRate: Float, images: Int,
                            seconds: Double) -> PretrainEpochMetrics {
    let count = max(iterationInEpoch, 1)
    let std = epochStdSum / Double(count)
    let healthy = 1 / Double(config.model.features).squareRoot()
    return PretrainEpochMetrics(
      epoch: epoch, isComplete: isComplete, iterations: iterationInEpoch, meanLoss: epochLossSum / Double(count),
      learningRate: learningRate, normalizedOutputStd: std, healthyStd: healthy,
      isCollapsing: std < Double(config.monitor.collapseFraction) * healthy,
      imagesPerSecond: Double(images) / max(seconds, 1e-9), seconds: seconds, knnAccuracy: nil)
  }
}

func seconds(_ duration: Duration) -> Double {
  Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}
