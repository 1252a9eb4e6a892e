// The FCN run's data: training batches through mmseg's pipeline (loaded on all cores, every draw keyed by the seed
// and the sample's position in the run) and the evaluation over the test split (test pipeline, whole or slide
// inference, mmseg's intersect-and-union).
import Datasets
import Evaluation
import Foundation
import Synchronization
import Models
import Support
import Tensors

extension FCNBenchmarkConfig {
  /// mmseg's training pipeline with this config's scales (Resize → RandomCrop → flip → PhotoMetricDistortion →
  /// Normalize → Pad).
  var trainPipeline: SegmentationTrainPipeline {
    var pipeline = SegmentationTrainPipeline(
      scale: (data.imageScale[0], data.imageScale[1]), ratioRange: data.ratioRange[0]...data.ratioRange[1],
      cropSize: (data.cropSize[0], data.cropSize[1]), catMaxRatio: data.catMaxRatio,
      flipProbability: data.flipProbability, normalization: normalization)
    pipeline.appliesPhotometricDistortion = data.photometricDistortion
    return pipeline
  }

  var testPipeline: SegmentationTestPipeline {
    SegmentationTestPipeline(scale: (data.testScale[0], data.testScale[1]), normalization: normalization)
  }

  var normalization: SegmentationNormalization { SegmentationNormalization(mean: data.mean, std: data.std) }

  var testModeValue: SegmentationTestMode {
    switch testMode {
    case .whole: .whole
    case .slide: .slide(cropHeight: data.slideCrop[0], cropWidth: data.slideCrop[1],
                        strideHeight: data.slideStride[0], strideWidth: data.slideStride[1])
    }
  }

  /// The segmentor's heads for `classCount` classes.
  func modelConfig(classCount: Int) -> FCNConfig {
    FCNConfig(classCount: classCount,
              decodeHead: FCNHeadConfig(channels: model.decodeChannels, convCount: model.decodeConvs,
                                        concatInput: model.concatInput, dropout: Float(model.dropout)),
              auxiliaryHead: model.auxiliaryChannels > 0
                ? FCNHeadConfig(channels: model.auxiliaryChannels, convCount: 1, concatInput: false,
                                dropout: Float(model.dropout))
                : nil,
              auxiliaryWeight: Float(model.auxiliaryWeight), alignCorners: model.alignCorners)
  }
}

/// A normalised RGB tensor `[…, 3]` as the backbone's input: unchanged for 3 channels; for a 1-channel backbone the
/// mean of the three normalised channels (with one shared mean and std, the normalised mean of the channels).
func fitChannels(_ image: Tensor, to channels: Int) -> Tensor {
  guard channels == 1 else { return image }
  let pixels = image.count / 3
  var shape = image.shape
  shape[shape.count - 1] = 1
  var gray = [Float](repeating: 0, count: pixels)
  image.scalars.withUnsafeBufferPointer { rgb in
    for pixel in 0..<pixels { gray[pixel] = (rgb[3 * pixel] + rgb[3 * pixel + 1] + rgb[3 * pixel + 2]) / 3 }
  }
  return Tensor(shape: shape, scalars: gray)
}

/// The training batches of a run in the seeded epoch order of `SeededEpochOrder`.
struct FCNBatchLoader {
  let dataset: SegmentationDataset
  let pipeline: SegmentationTrainPipeline
  let order: SeededEpochOrder
  let batchSize: Int
  let seed: UInt64
  let channels: Int

  init(dataset: SegmentationDataset, config: FCNBenchmarkConfig, channels: Int) {
    self.dataset = dataset
    pipeline = config.trainPipeline
    order = SeededEpochOrder(count: dataset.count, seed: config.seed)
    batchSize = config.data.batchSize
    seed = config.seed
    self.channels = channels
  }

  /// Images `[n, cropH, cropW, channels]` and labels `n·cropH·cropW` of `iteration`'s batch slots `slots` (default:
  /// the whole batch, n = B; under mpirun this rank's share), loaded on all cores.
  func batch(iteration: Int, slots: [Int]? = nil) throws -> (images: Tensor, labels: [UInt8]) {
    let all = order.batch(iteration: iteration, batchSize: batchSize)
    let positions = slots.map { $0.map { all[$0] } } ?? all
    let count = positions.count
    let examples = Mutex([SegmentationExample?](repeating: nil, count: count))
    try runWorkQueue(count: count, workers: Threads.count) { slot, _ in
      let (position, index) = positions[slot]
      let sample = try dataset.sample(at: index)
      var generator = SplitMix64.derived(seed, 0xA06E17, UInt64(position))
      let example = pipeline(sample.pair, using: &generator)
      examples.withLock { $0[slot] = example }
    }
    let loaded = examples.withLock { $0 }.map { $0! }
    let (height, width) = (loaded[0].height, loaded[0].width)
    var pixels: [Float] = []
    pixels.reserveCapacity(count * height * width * 3)
    var labels: [UInt8] = []
    labels.reserveCapacity(count * height * width)
    for example in loaded {
      precondition(example.height == height && example.width == width,
                   "Training crops must share one padded size, got \(example.height)×\(example.width) and "
                     + "\(height)×\(width).")
      pixels += example.image.scalars
      labels += example.label
    }
    let images = fitChannels(Tensor(shape: [count, height, width, 3], scalars: pixels), to: channels)
    return (images, labels)
  }
}

enum FCNEvaluation {
  /// mmseg's evaluation over `dataset`: test pipeline, whole or slide inference at the test scale, logits resized to
  /// the original size, argmax, intersect-and-union accumulated over the set. Under mpirun each rank scores its
  /// block of images and the areas are summed over the ranks (exact integer counts): every rank gets the scores
  /// of the whole set. `progress` (rank 0's) counts this rank's block.
  static func evaluate(_ segmentor: FCNSegmentor, on dataset: SegmentationDataset, config: FCNBenchmarkConfig,
                       channels: Int, progress: ProgressReporter?,
                       ranks: FineTuningRanks? = nil) throws -> SegmentationScores {
    let pipeline = config.testPipeline
    let mode = config.testModeValue
    var confusion = SegmentationConfusion(classCount: dataset.classNames.count)
    let block = ranks?.evaluationBlock(count: dataset.count) ?? 0..<dataset.count
    progress?.begin()
    for index in block {
      let sample = try dataset.sample(at: index)
      let image = pipeline(sample.image)
      let batched = Tensor(shape: [1] + image.shape, scalars: image.scalars)
      let prediction = SegmentationInference.labels(
        image: batched, mode: mode, originalHeight: sample.label.height, originalWidth: sample.label.width,
        alignCorners: config.model.alignCorners) { crop in
          segmentor.predictLogits(fitChannels(crop, to: channels), height: crop.shape[1], width: crop.shape[2])
        }
      confusion.add(prediction: prediction, label: sample.label.pixels)
      progress?.count("evaluating", done: index + 1 - block.lowerBound, total: block.count)
    }
    guard let ranks, ranks.group.isDistributed else { return confusion.result }
    let c = confusion.classCount
    let areas = try ranks.sum((confusion.intersection + confusion.predicted + confusion.labelled).map(Double.init))
      .map { Int64($0) }
    let (intersection, predicted, labelled) = (Array(areas[0..<c]), Array(areas[c..<(2 * c)]),
                                               Array(areas[(2 * c)...]))
    return SegmentationScores(intersection: intersection,
                              union: (0..<c).map { predicted[$0] + labelled[$0] - intersection[$0] },
                              labelled: labelled)
  }
}
