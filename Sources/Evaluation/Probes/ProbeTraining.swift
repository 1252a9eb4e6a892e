// Where a probe's training batches come from, and the epoch loop.
//
// Protocol mode (`AugmentedProbeImages`): every epoch each image is augmented afresh (RandomResizedCrop, flip, …),
// the frozen backbone runs once per batch and its stage outputs are pooled for every head — one backbone forward
// feeds all five heads. Cached mode (`CachedProbeFeatures`, `--cache-features`): the pooled features of the
// test-transformed images are computed once and the heads train on them; a documented deviation from the protocol.
// Test features are always the deterministic test transform, so they are extracted once in both modes.
import Foundation
import Synchronization
import Datasets
import Layers
import Models
import Tensors

/// One training batch: per-head pooled features and the labels.
public struct ProbeBatch {
  public var features: [Tensor]
  public var labels: [Int]
}

/// A labelled training set that yields per-head pooled features for given sample indices.
public protocol ProbeTrainingData {
  var count: Int { get }
  var labels: [Int] { get }
  /// Features of `indices` for every head, as drawn for `epoch` (augmented data depends on the epoch).
  func batch(_ indices: [Int], epoch: Int) throws -> ProbeBatch
}

/// Pooled features computed once (one matrix per head, rows = images).
public struct CachedProbeFeatures: ProbeTrainingData {
  public let matrices: [FeatureMatrix]
  public let labels: [Int]

  public init(matrices: [FeatureMatrix], labels: [Int]) {
    precondition(matrices.allSatisfy { $0.rows == labels.count },
                 "Cached probe features have rows \(matrices.map(\.rows)) for \(labels.count) labels.")
    self.matrices = matrices
    self.labels = labels
  }

  public var count: Int { labels.count }

  public func batch(_ indices: [Int], epoch: Int) throws -> ProbeBatch {
    let features = matrices.map { matrix in
      let d = matrix.columns
      return Tensor(uninitializedShape: [indices.count, d]) { output in
        matrix.withUnsafeBufferPointer { input in
          let (source, target) = (input.baseAddress!, output.baseAddress!)
          indices.withUnsafeBufferPointer { rows in
            parallelFor(0..<rows.count, minimumChunk: max(1, 65_536 / max(d, 1))) { range in
              for slot in range { (target + slot * d).update(from: source + rows[slot] * d, count: d) }
            }
          }
        }
      }
    }
    return ProbeBatch(features: features, labels: indices.map { labels[$0] })
  }
}

/// The training augmentation of a probe protocol.
public enum ProbeTrainTransform: String, Codable, Sendable, CaseIterable {
  /// §4.1 ImageNet multi-head: RandomResizedCrop → flip → ColorJitter(0.4, 0.4, 0.4, 0) → Lighting.
  case randomResizedCropJitterLighting = "rrc-flip-jitter-lighting"
  /// §4.2 AvgPool and §4.4 iNat18: RandomResizedCrop → flip.
  case randomResizedCropFlip = "rrc-flip"
  /// §4.3 Places205: Resize(resize) → CenterCrop(resize) → RandomCrop(crop) → flip.
  case resizeRandomCropFlip = "resize-randomcrop-flip"
}

/// Builds one augmented training view as a normalised [crop, crop, channels] tensor.
public struct ProbeAugmentation: Sendable {
  public var transform: ProbeTrainTransform
  public var crop: Int
  public var resize: Int
  public var normalization: Normalization

  public init(transform: ProbeTrainTransform, crop: Int, resize: Int, normalization: Normalization) {
    self.transform = transform; self.crop = crop; self.resize = resize; self.normalization = normalization
  }

  public func callAsFunction<G: RandomNumberGenerator>(_ image: Image, using generator: inout G) -> Tensor {
    switch transform {
    case .randomResizedCropJitterLighting, .randomResizedCropFlip:
      let lighting = transform == .randomResizedCropJitterLighting
      let pipeline = LinearProbeAugmentation(
        size: crop, colorJitter: lighting ? ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0)
          : ColorJitter(), lighting: lighting, normalization: normalization)
      var parameters = pipeline.parameters(for: image, using: &generator)
      if image.channels == 1 && !parameters.lightingOffsets.isEmpty {
        // Grayscale data (Fashion-MNIST): the RGB Lighting offset reduced to luma (ITU-R 601-2, as Pillow's
        // convert('L')), i.e. the offset a replicated-RGB image would get after conversion back to gray.
        let o = parameters.lightingOffsets
        parameters.lightingOffsets = [0.299 * o[0] + 0.587 * o[1] + 0.114 * o[2]]
      }
      return pipeline.tensor(image, parameters: parameters)
    case .resizeRandomCropFlip:
      // torchvision Resize(resize) → CenterCrop(resize) → RandomCrop(crop): i, j ~ randint(0, side − crop) →
      // RandomHorizontalFlip.
      let square = image.resizedShortSide(to: resize).centerCropped(size: resize)
      let top = Int(generator.next(upperBound: UInt64(max(square.height - crop, 0) + 1)))
      let left = Int(generator.next(upperBound: UInt64(max(square.width - crop, 0) + 1)))
      var view = square.cropped(x: left, y: top, width: crop, height: crop)
      if generator.nextUniform() < 0.5 { view = view.flippedHorizontally() }
      return view.toTensor(normalization: normalization)
    }
  }
}

/// Protocol mode: augmented images through the frozen backbone every epoch.
public struct AugmentedProbeImages: ProbeTrainingData {
  public let source: ClassificationSource
  public let backbone: ResNet
  public let augmentation: ProbeAugmentation
  public let layers: [FeatureLayer]
  public let pooling: FeaturePooling
  public let seed: UInt64

  public init(source: ClassificationSource, backbone: ResNet, augmentation: ProbeAugmentation,
              layers: [FeatureLayer], pooling: FeaturePooling, seed: UInt64) {
    self.source = source; self.backbone = backbone; self.augmentation = augmentation
    self.layers = layers; self.pooling = pooling; self.seed = seed
  }

  public var count: Int { source.count }
  public var labels: [Int] { source.labels }

  public func batch(_ indices: [Int], epoch: Int) throws -> ProbeBatch {
    let channels = backbone.config.inChannels
    let size = augmentation.crop
    let per = size * size * channels
    let failure = Mutex<(index: Int, error: Error)?>(nil)
    let images = Tensor(uninitializedShape: [indices.count, size, size, channels]) { output in
      let target = output.baseAddress!
      // Decoding and augmenting are per-image work; each image draws from its own (seed, epoch, index) stream,
      // so a batch is the same whatever the thread count, and a resumed epoch repeats exactly.
      parallelFor(0..<indices.count, minimumChunk: 1) { range in
        for slot in range {
          do {
            let image = try source.image(at: indices[slot], channels: channels)
            var generator = SplitMix64.derived(seed, 0xA06, UInt64(epoch), UInt64(indices[slot]))
            let view = augmentation(image, using: &generator)
            view.scalars.withUnsafeBufferPointer { (target + slot * per).update(from: $0.baseAddress!, count: per) }
          } catch {
            failure.withLock { if $0 == nil { $0 = (indices[slot], error) } }
            (target + slot * per).update(repeating: 0, count: per)
          }
        }
      }
    }
    if let failure = failure.withLock({ $0 }) { throw failure.error }
    let stages = backbone.inferFeatures(images, upTo: layers.map(\.stageIndex).max()! + 1)
    let features = layers.map { pooling.pooledFlat(stages[$0.stageIndex], layer: $0) }
    return ProbeBatch(features: features, labels: indices.map { source.labels[$0] })
  }
}

// MARK: - The epoch loop

/// Progress of one iteration.
public struct ProbeIteration: Sendable {
  public var epoch: Int  // 1-based
  public var totalEpochs: Int
  public var iterationInEpoch: Int  // 1-based
  public var iterationsPerEpoch: Int
  public var loss: Float  // summed over heads
  public var learningRate: Float
  public var imagesPerSecond: Double
  public var etaSeconds: Double
}

/// What one finished epoch produced.
public struct ProbeEpochReport: Sendable, Codable, Equatable {
  public var epoch: Int  // 1-based
  /// Mean cross-entropy per head over the epoch.
  public var losses: [Double]
  public var learningRate: Double
  public var seconds: Double
  public var imagesPerSecond: Double
  /// Test accuracy per head when the epoch was evaluated, else nil.
  public var hits: [ProbeHits]?
}

/// How a probe trains over several processes (`mpirun -np N simsiam-bench run linear`), as closures so that this
/// layer needs no process group: the Protocols layer wires them to an MPI group, the heads' BatchNorms to SyncBN.
///
/// The configured batch is the GLOBAL batch: rank r takes the positions r, r + N, … of each global batch
/// (`ProbeDataParallelism.share`), so every step sees the images of the single-process step, each augmented from
/// its own (seed, epoch, index) stream. Each rank's loss is the mean over its own images; `combineGradients`
/// receives the weight nᵣ·N / n that makes the averaged gradient the whole batch's when the shares differ (the last
/// batch of an epoch). Weighting after the backward is exact here because a head's gradients depend only on this
/// rank's logits and inputs: the SyncBN before each Linear has no parameters and its input gradient is not used.
public struct ProbeDataParallelism {
  public var rank: Int
  public var size: Int
  /// Element-wise sums over the ranks (an allreduce): the step's losses.
  public var sum: ([Double]) throws -> [Double]
  /// After this rank's backward: every trainable gradient becomes Σᵣ weightᵣ·gᵣ / N on every rank.
  public var combineGradients: (_ weight: Float) throws -> Void

  public init(rank: Int, size: Int, sum: @escaping ([Double]) throws -> [Double],
              combineGradients: @escaping (_ weight: Float) throws -> Void) {
    precondition(size >= 1 && (0..<size).contains(rank), "Rank \(rank) of a group of \(size).")
    self.rank = rank
    self.size = size
    self.sum = sum
    self.combineGradients = combineGradients
  }

  /// Rank `rank`'s positions of a global batch: rank, rank + size, … (DistributedSampler's `indices[rank::world]`).
  public static func share(_ indices: [Int], rank: Int, of size: Int) -> [Int] {
    guard size > 1 else { return indices }
    return stride(from: rank, to: indices.count, by: size).map { indices[$0] }
  }
}

/// Runs epochs `probe.completedEpochs ..< epochs` on `data`, evaluating on `test` every `evaluationInterval`
/// epochs and after the last one.
public struct ProbeTrainer {
  public var batchSize: Int
  public var evaluationInterval: Int
  public var seed: UInt64

  public init(batchSize: Int, evaluationInterval: Int, seed: UInt64) {
    precondition(batchSize >= 1 && evaluationInterval >= 1,
                 "Probe batch size and evaluation interval must be ≥ 1, got \(batchSize) and \(evaluationInterval).")
    self.batchSize = batchSize
    self.evaluationInterval = evaluationInterval
    self.seed = seed
  }

  /// The sample order of `epoch`: a Fisher–Yates shuffle from its own stream (DataLoader(shuffle=True)).
  public func order(count: Int, epoch: Int) -> [Int] {
    var generator = SplitMix64.derived(seed, 0x5A0F, UInt64(epoch))
    var order = Array(0..<count)
    order.shuffle(using: &generator)
    return order
  }

  /// Accuracy of every head on test features (one matrix per head).
  public static func evaluate(_ probe: LinearProbe, features: [FeatureMatrix], labels: [Int],
                              batchSize: Int = 1024) -> [ProbeHits] {
    var hits = [ProbeHits](repeating: ProbeHits(), count: probe.heads.count)
    let data = CachedProbeFeatures(matrices: features, labels: labels)
    for start in stride(from: 0, to: labels.count, by: batchSize) {
      let indices = Array(start..<min(start + batchSize, labels.count))
      let batch = try! data.batch(indices, epoch: 0)  // cached features never throw
      for (slot, logits) in probe.logits(features: batch.features).enumerated() {
        countHits(logits: logits, labels: batch.labels, into: &hits[slot])
      }
    }
    return hits
  }

  /// With `parallelism`, this rank trains on its share of every batch, the losses are the global batch's, and
  /// only rank 0 evaluates (the others report `hits` nil): `test` may be empty there.
  public func train(_ probe: LinearProbe, data: ProbeTrainingData, test: [FeatureMatrix], testLabels: [Int],
                    parallelism: ProbeDataParallelism? = nil,
                    onIteration: (ProbeIteration) -> Void = { _ in },
                    onEpoch: (ProbeEpochReport) throws -> Void) throws {
    let epochs = probe.optimization.epochs
    let iterations = (data.count + batchSize - 1) / batchSize
    let ranks = parallelism?.size ?? 1
    precondition(ranks == 1 || data.count % batchSize == 0 || data.count % batchSize >= ranks,
                 "The last batch of \(data.count % batchSize) images cannot give each of \(ranks) ranks an image.")
    let runStart = Date()
    var imagesDone = 0
    let startEpoch = probe.completedEpochs
    while probe.completedEpochs < epochs {
      let epoch = probe.completedEpochs
      probe.beginEpoch(epoch)
      let epochStart = Date()
      let order = order(count: data.count, epoch: epoch)
      var sums = [Double](repeating: 0, count: probe.heads.count)
      for iteration in 0..<iterations {
        let indices = Array(order[(iteration * batchSize)..<min((iteration + 1) * batchSize, data.count)])
        var losses: [Float]
        if let parallelism {
          // This rank's share; gradients weighted by its share of the batch, losses summed over the ranks.
          let share = ProbeDataParallelism.share(indices, rank: parallelism.rank, of: parallelism.size)
          let batch = try data.batch(share, epoch: epoch)
          let weight = Float(Double(share.count * parallelism.size) / Double(indices.count))
          losses = try probe.step(features: batch.features, labels: batch.labels) {
            try parallelism.combineGradients(weight)
          }
          let weighted = try parallelism.sum(losses.map { Double($0) * Double(share.count) })
          for (slot, sum) in weighted.enumerated() { sums[slot] += sum }
          losses = weighted.map { Float($0 / Double(indices.count)) }
        } else {
          let batch = try data.batch(indices, epoch: epoch)
          losses = probe.step(features: batch.features, labels: batch.labels)
          for (slot, loss) in losses.enumerated() { sums[slot] += Double(loss) * Double(indices.count) }
        }
        imagesDone += indices.count
        let elapsed = Date().timeIntervalSince(runStart)
        let rate = Double(imagesDone) / max(elapsed, 1e-9)
        let remaining = Double((epochs - startEpoch) * data.count - imagesDone)
        onIteration(ProbeIteration(epoch: epoch + 1, totalEpochs: epochs, iterationInEpoch: iteration + 1,
                                   iterationsPerEpoch: iterations, loss: losses.reduce(0, +),
                                   learningRate: probe.learningRate, imagesPerSecond: rate,
                                   etaSeconds: remaining / max(rate, 1e-9)))
      }
      probe.completedEpochs = epoch + 1
      let seconds = Date().timeIntervalSince(epochStart)
      let evaluates = (probe.completedEpochs % evaluationInterval == 0 || probe.completedEpochs == epochs)
        && (parallelism?.rank ?? 0) == 0
      let hits = evaluates ? Self.evaluate(probe, features: test, labels: testLabels) : nil
      try onEpoch(ProbeEpochReport(epoch: epoch + 1, losses: sums.map { $0 / Double(max(data.count, 1)) },
                                   learningRate: Double(probe.learningRate), seconds: seconds,
                                   imagesPerSecond: Double(data.count) / max(seconds, 1e-9), hits: hits))
    }
  }
}
