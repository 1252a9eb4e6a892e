// The Mask R-CNN run's data: the COCO train json for training and the test json for scoring, training batches
// through mmdet's pipeline (loaded on all cores, every draw keyed by the seed and the sample's position in the run),
// and the evaluation (test pipeline, detection + masks, boxes mapped back to the original image and masks pasted
// into it, results json written as mmdet's results2json does, scored by COCOeval for bbox and segm).
import Datasets
import Evaluation
import Foundation
import Models
import Support
import Synchronization
import Tensors

extension MaskRCNNBenchmarkConfig {
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

  /// The detector of this config for `classCount` classes on `backbone`'s C2–C5.
  func modelConfig(classCount: Int, backbone: ResNetConfig) -> MaskRCNNConfig {
    let rpn = MultiLevelRPNConfig(
      anchorScales: [Float(model.anchorScale)], aspectRatios: model.anchorRatios.map(Float.init),
      strides: MaskRCNNFPN.pyramidStrides(of: backbone), featureChannels: model.fpnChannels,
      batchSizePerImage: model.rpnBatchSize, positiveFraction: model.rpnPositiveFraction,
      preNMSTopKTrain: model.rpnPreNMSTrain, postNMSTopKTrain: model.rpnPostNMSTrain,
      preNMSTopKTest: model.rpnPreNMSTest, postNMSTopKTest: model.rpnPostNMSTest,
      nmsThreshold: model.rpnNMSThreshold, sizeDivisor: data.padDivisor)
    var roiHead = ROIHeadConfig.mmdetFPN(classCount: classCount)
    roiHead.batchSizePerImage = model.roiBatchSize
    roiHead.positiveFraction = model.roiPositiveFraction
    roiHead.scoreThreshold = Float(model.scoreThreshold)
    roiHead.nmsThreshold = model.nmsThreshold
    roiHead.detectionsPerImage = model.detectionsPerImage
    roiHead.pooledSize = model.boxROISize
    let boxHead = ConvFCBoxHeadConfig(classCount: classCount, inChannels: model.fpnChannels,
                                      roiSize: model.boxROISize, convCount: 4, convChannels: model.boxConvChannels,
                                      fcCount: 1, fcChannels: model.boxFCChannels, usesNorm: model.norm)
    let maskHead = FCNMaskHeadConfig(inChannels: model.fpnChannels, convChannels: model.maskConvChannels,
                                     convCount: 4, classCount: classCount, usesNorm: model.norm)
    return MaskRCNNConfig(fpnChannels: model.fpnChannels, usesNorm: model.norm, rpn: rpn, roiHead: roiHead,
                          boxHead: boxHead, maskHead: maskHead, boxROISize: model.boxROISize,
                          maskROISize: model.maskROISize, finestScale: Float(model.roiFinestScale),
                          maskThreshold: Float(model.maskThreshold))
  }
}

/// The train and test sets of a run and how batches and evaluations are made from them.
struct MaskRCNNData {
  let config: MaskRCNNBenchmarkConfig
  let train: COCOInstanceDataset
  let test: COCOInstanceDataset
  let trainJSON: URL
  let testJSON: URL
  /// The test json's ground truth, restricted to the evaluated images (mmdet sets `params.imgIds` to them).
  let groundTruth: COCOGroundTruth
  let classNames: [String]
  /// True when the categories are COCO's 80 (the protocol's dataset).
  let isCOCO: Bool
  /// What reading the sets dropped or flagged, for the log.
  let notes: [String]
  private let order: SeededEpochOrder
  private let trainPipeline: DetectionPipeline
  private let testPipeline: DetectionPipeline

  /// Reads both jsons; typed errors name the folder or file.
  init(config: MaskRCNNBenchmarkConfig) throws {
    self.config = config
    let root = URL(fileURLWithPath: config.data.root)
    switch PathKind(config.data.root) {
    case .directory: break
    case .file:
      throw ProtocolError.invalidRequest(reason: "The dataset path \(root.path) is a file, not a folder.",
                                         hint: "Give --data a COCO folder holding annotations/ and the image folders.")
    case .missing:
      throw ProtocolError.invalidRequest(
        reason: "The dataset folder \(root.path) does not exist.",
        hint: "Give --data a COCO folder (annotations/instances_train2017.json, train2017/, …) or a `data "
          + "make-scenes` output folder.")
    }
    func resolved(_ path: String) -> URL {
      path.hasPrefix("/") ? URL(fileURLWithPath: path) : root.appendingPathComponent(path)
    }
    trainJSON = resolved(config.data.trainJSON)
    testJSON = resolved(config.data.testJSON)
    for (key, url) in [("train_json", trainJSON), ("test_json", testJSON)] where PathKind(url.path) != .file {
      throw ProtocolError.invalidRequest(
        reason: "data.\(key) \(url.path) is not a file.",
        hint: "A COCO folder holds annotations/instances_{train,val}2017.json; set data.\(key) to the json's path "
          + "relative to data.root.")
    }
    let trainImages = config.data.trainImages.isEmpty ? root : resolved(config.data.trainImages)
    let testImages = config.data.testImages.isEmpty ? root : resolved(config.data.testImages)
    var train = try COCOInstanceDataset(annotationFile: trainJSON, imageDirectory: trainImages, use: .training)
    let testCOCO = try COCODataset(annotationFile: testJSON, imageDirectory: testImages)
    var test = try COCOInstanceDataset(coco: testCOCO, use: .evaluation)
    if train.categoryIDs != test.categoryIDs || train.classNames != test.classNames {
      throw ProtocolError.invalidRequest(
        reason: "\(trainJSON.path) and \(testJSON.path) list different categories.",
        hint: "Train and test jsons must share one category list (ids and names).")
    }
    if config.data.trainLimit > 0 { train = train.prefix(config.data.trainLimit) }
    if config.data.testLimit > 0 { test = test.prefix(config.data.testLimit) }
    guard train.count > 0, test.count > 0 else {
      throw ProtocolError.invalidRequest(
        reason: "\(train.count == 0 ? trainJSON.path : testJSON.path) has no usable image.",
        hint: "Training drops images without annotations or with a side under 32 pixels, as mmdet does.")
    }
    // The ground truth of the evaluated images only (all of them unless test_limit cuts the list).
    var instances = testCOCO.instances
    let kept = Set(test.samples.map(\.imageID))
    instances.images = instances.images.filter { kept.contains($0.id) }
    instances.annotations = instances.annotations.filter { kept.contains($0.imageID) }
    groundTruth = try COCOGroundTruth(instances: instances, path: testJSON.path)
    self.train = train
    self.test = test
    classNames = train.classNames
    isCOCO = train.categoryIDs.count == 80
    notes = ["training set: \(train.counts)", "test set: \(test.counts)"]
    order = SeededEpochOrder(count: train.count, seed: config.seed)
    trainPipeline = config.trainPipeline
    testPipeline = config.testPipeline
  }

  var trainFingerprint: String { train.fingerprint }
  var testFingerprint: String { test.fingerprint }

  /// Iteration `iteration`'s batch: samples through the training pipeline on all cores, images padded to one size
  /// and fitted to the backbone's `channels`, masks padded to each image's own padded size.
  func trainingBatch(iteration: Int, channels: Int) throws -> MaskRCNNTrainingBatch {
    let positions = order.batch(iteration: iteration, batchSize: config.data.batchSize)
    let samples = Mutex([InstanceSample?](repeating: nil, count: positions.count))
    try runWorkQueue(count: positions.count, workers: Threads.count) { slot, _ in
      let (position, index) = positions[slot]
      let sample = try train.load(at: index, pipeline: trainPipeline, seed: config.seed, position: position)
      samples.withLock { $0[slot] = sample }
    }
    let batch = collateInstanceSegmentationBatch(samples.withLock { $0 }.map { $0! },
                                                 padDivisor: config.data.padDivisor)
    return MaskRCNNTrainingBatch(
      images: fitChannels(batch.detection.images, to: channels), sizes: batch.detection.sizes,
      boxes: batch.detection.boxes, labels: batch.detection.labels,
      masks: batch.masks.map { GroundTruthMasks(height: $0.height, width: $0.width, masks: $0.masks) })
  }

  /// mmdet's evaluation over the test json: each image through the test pipeline, detected alone, boxes divided by
  /// its scale factor (`rescale=True`), masks pasted into the original image; `results2json` into `directory`
  /// (`results.bbox.json`, `results.segm.json`), then COCOeval on both as mmdet's `CocoDataset.evaluate`.
  func evaluate(_ detector: MaskRCNNFPN, channels: Int, resultsIn directory: URL,
                progress: ProgressReporter) throws -> InstanceSegmentationScores {
    var images: [COCOImageDetections] = []
    progress.begin()
    for index in 0..<test.count {
      let sample = try test.load(at: index, pipeline: testPipeline, seed: config.seed)
      let detection = sample.detection
      let batch = collateDetectionBatch([detection], padDivisor: config.data.padDivisor)
      let output = detector.detect(images: fitChannels(batch.images, to: channels), imageSizes: batch.sizes)[0]
      let boxes = detection.boxesInOriginalFrame(output.detections.boxes.scalars)
      let pasted = output.detections.count == 0 ? [] : pasteMasks(
        logits: output.maskLogits, boxes: output.detections.boxes, labels: output.detections.labels,
        scaleFactor: (width: Float(detection.scaleFactor.x), height: Float(detection.scaleFactor.y)),
        originalHeight: detection.originalSize.height, originalWidth: detection.originalSize.width,
        threshold: detector.config.maskThreshold)
      let masks = pasted.map { COCORLE(columnMajorMask: $0.columnMajorPixels, height: $0.height, width: $0.width) }
      images.append(COCOImageDetections(imageID: sample.cocoImageID, boxes: boxes, scores: output.detections.scores,
                                        labels: output.detections.labels, masks: masks))
      progress.count("evaluating", done: index + 1, total: test.count)
    }
    let files = try COCOResultsJSON.write(images, categoryIDs: test.categoryIDs,
                                          prefix: directory.appendingPathComponent("results"))
    func stats(_ file: URL, _ iouType: COCOIoUType) throws -> [Double] {
      let detections = try COCODetections.load(file, groundTruth: groundTruth)
      return try COCOEvaluator.evaluate(groundTruth: groundTruth, detections: detections, iouType: iouType).stats
    }
    let box = try stats(files[0], .bbox)
    let mask = files.count > 1 ? try stats(files[1], .segm) : box.map { _ in 0 }
    return InstanceSegmentationScores(box: box, mask: mask)
  }
}

/// One training iteration's inputs for `MaskRCNNFPN.trainingStep`.
struct MaskRCNNTrainingBatch {
  var images: Tensor
  var sizes: [(height: Int, width: Int)]
  var boxes: [Tensor]
  var labels: [[Int]]
  var masks: [GroundTruthMasks]
}
