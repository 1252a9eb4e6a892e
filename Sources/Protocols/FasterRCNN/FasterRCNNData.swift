// The Faster R-CNN run's data: the VOC devkits read together for training and the first one's test split for
// scoring, training batches through mmdet's pipeline (loaded on all cores, every draw keyed by the seed and the
// sample's position in the run), and the evaluation over the test split (test pipeline, detection, boxes mapped back
// to the original image, mmdet's eval_map and detectron2's VOC evaluator).
import Datasets
import Evaluation
import Foundation
import Models
import Support
import Synchronization
import Tensors

extension FasterRCNNBenchmarkConfig {
  /// mmdet's training pipeline with this config's scales (Resize 'value' → RandomFlip → Normalize → Pad).
  var trainPipeline: DetectionPipeline {
    DetectionPipeline(shortSides: data.trainShortSides, maxSize: data.maxSize, flipProbability: data.flipProbability,
                      mean: data.mean, std: data.std, padDivisor: data.padDivisor)
  }

  /// The test pipeline: (max_size, test_short_side), no flip.
  var testPipeline: DetectionPipeline {
    DetectionPipeline(shortSides: [data.testShortSide], maxSize: data.maxSize, flipProbability: 0, mean: data.mean,
                      std: data.std, padDivisor: data.padDivisor)
  }

  /// The RPN of this config on C4 features of `channels` channels at `stride` input pixels per feature pixel.
  func rpnConfig(channels: Int, stride: Int) -> RPNConfig {
    RPNConfig(anchorSizes: model.anchorSizes.map(Float.init), aspectRatios: model.anchorRatios.map(Float.init),
              stride: stride, featureChannels: channels, batchSizePerImage: model.rpnBatchSize,
              positiveFraction: model.rpnPositiveFraction, preNMSTopKTrain: model.rpnPreNMSTrain,
              postNMSTopKTrain: model.rpnPostNMSTrain, preNMSTopKTest: model.rpnPreNMSTest,
              postNMSTopKTest: model.rpnPostNMSTest, nmsThreshold: model.rpnNMSThreshold)
  }

  /// The ROI head of this config for `classCount` classes on C4 features at `stride`.
  func roiHeadConfig(classCount: Int, stride: Int) -> ROIHeadConfig {
    ROIHeadConfig(classCount: classCount, pooledSize: model.roiSize, featureStride: stride,
                  batchSizePerImage: model.roiBatchSize, positiveFraction: model.roiPositiveFraction,
                  scoreThreshold: Float(model.scoreThreshold), nmsThreshold: model.nmsThreshold,
                  detectionsPerImage: model.detectionsPerImage)
  }
}

/// The train and test sets of a run and how batches and evaluations are made from them.
struct FasterRCNNData {
  let config: FasterRCNNBenchmarkConfig
  let train: DetectionDataset
  let test: DetectionDataset
  let classNames: [String]
  /// True when the devkits hold the 20 VOC classes (the protocol's dataset).
  let isVOC: Bool
  /// What reading the sets dropped or flagged, for the log.
  let notes: [String]
  private let order: SeededEpochOrder
  private let trainPipeline: DetectionPipeline
  private let testPipeline: DetectionPipeline

  /// Reads both sets (annotations of every listed image, on all cores); typed errors name the folder or file.
  init(config: FasterRCNNBenchmarkConfig) throws {
    self.config = config
    let devkits = config.data.paths.map { URL(fileURLWithPath: $0) }
    for (path, url) in zip(config.data.paths, devkits) where PathKind(path) == .file {
      throw ProtocolError.invalidRequest(reason: "The dataset path \(url.path) is a file, not a folder.",
                                         hint: "Give --data a VOC devkit year folder such as VOCdevkit/VOC2007.")
    }
    classNames = try DetectionDataset.classes(ofDevkit: devkits[0])
    for devkit in devkits.dropFirst() where try DetectionDataset.classes(ofDevkit: devkit) != classNames {
      throw ProtocolError.invalidRequest(
        reason: "\(devkit.path) lists other classes than \(devkits[0].path); devkits trained on together must share "
          + "one class list.", hint: "Give --data only VOC year folders (VOC2007, VOC2012) or one scene devkit.")
    }
    isVOC = classNames == DetectionDataset.vocClasses
    var train = try DetectionDataset(devkits: devkits, split: config.data.trainSplit, classes: classNames,
                                     difficult: config.difficultHandling, boxConvention: config.boxConventionValue,
                                     use: .training)
    var test = try DetectionDataset(devkits: [devkits[0]], split: config.data.testSplit, classes: classNames,
                                    difficult: config.difficultHandling, boxConvention: config.boxConventionValue,
                                    use: .evaluation)
    if config.data.trainLimit > 0 { train = train.prefix(config.data.trainLimit) }
    if config.data.testLimit > 0 { test = test.prefix(config.data.testLimit) }
    guard train.count > 0, test.count > 0 else {
      throw ProtocolError.invalidRequest(
        reason: "The \(train.count == 0 ? config.data.trainSplit : config.data.testSplit) split of "
          + "\(config.data.paths.joined(separator: " + ")) has no usable image.",
        hint: "Check ImageSets/Main and the annotations (training drops images without objects, as mmdet does).")
    }
    self.train = train
    self.test = test
    notes = ["training set: \(train.counts)", "test set: \(test.counts)"]
    order = SeededEpochOrder(count: train.count, seed: config.seed)
    trainPipeline = config.trainPipeline
    testPipeline = config.testPipeline
  }

  var trainFingerprint: String { train.fingerprint }
  var testFingerprint: String { test.fingerprint }

  /// Iteration `iteration`'s batch: samples through the training pipeline on all cores, padded to one size; images
  /// fitted to the backbone's `channels`.
  func trainingBatch(iteration: Int, channels: Int) throws -> DetectionBatch {
    let positions = order.batch(iteration: iteration, batchSize: config.data.batchSize)
    let samples = Mutex([DetectionSample?](repeating: nil, count: positions.count))
    try runWorkQueue(count: positions.count, workers: Threads.count) { slot, _ in
      let (position, index) = positions[slot]
      let sample = try train.load(at: index, pipeline: trainPipeline, seed: config.seed, position: position)
      samples.withLock { $0[slot] = sample }
    }
    var batch = collateDetectionBatch(samples.withLock { $0 }.map { $0! }, padDivisor: config.data.padDivisor)
    batch.images = fitChannels(batch.images, to: channels)
    return batch
  }

  /// mmdet's evaluation over the test split: each image through the test pipeline, detected alone, boxes divided by
  /// its scale factor (mmdet `rescale=True`), scored by eval_map (11-point, IoU 0.5) and detectron2's evaluator.
  func evaluate(_ detector: FasterRCNNC4, channels: Int, progress: ProgressReporter) throws -> DetectionScores {
    var evaluator = VOCDetectionEvaluator(classCount: classNames.count)
    let groundTruth = test.evaluatorGroundTruth
    progress.begin()
    for index in 0..<test.count {
      let sample = try test.load(at: index, pipeline: testPipeline, seed: config.seed)
      let batch = collateDetectionBatch([sample], padDivisor: config.data.padDivisor)
      let detections = detector.detect(images: fitChannels(batch.images, to: channels), imageSizes: batch.sizes)[0]
      let boxes = sample.boxesInOriginalFrame(detections.boxes.scalars)
      var perClass = [[ScoredBox]](repeating: [], count: classNames.count)
      for (k, label) in detections.labels.enumerated() {
        perClass[label].append(ScoredBox(box: DetectionBox(boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2],
                                                           boxes[4 * k + 3]), score: detections.scores[k]))
      }
      evaluator.add(detections: perClass, groundTruth: groundTruth[index])
      progress.count("evaluating", done: index + 1, total: test.count)
    }
    return DetectionScores(mmdet: evaluator.mmdetMAP(iouThreshold: 0.5, use11Points: true),
                           detectron2: evaluator.detectron2(use07Metric: true))
  }
}
