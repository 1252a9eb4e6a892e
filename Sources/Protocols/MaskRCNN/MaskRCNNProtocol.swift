// `run mask-rcnn`: MMSelfSup's Mask R-CNN R50-FPN 1x benchmark on COCO2017 (PROTOCOLS §5.2). Builds the backbone from
// any checkpoint through `BackboneBuilder` (C2–C5 of the ResNet), puts the FPN, the five-level RPN, the box head and
// the mask head on it, fine-tunes everything with SGD + warm-up + epoch steps on mmdet's multi-scale pipeline,
// checkpoints model and optimizer every N iterations (atomically), evaluates the test json with COCO box and mask AP
// (pycocotools' COCOeval, Evaluation/COCO) every M iterations and at the end, and stores every score with the run's
// provenance.
//
// Departures from mmdet's runner, each forced by running in one process and said here:
// - one process is all "GPUs": a batch of `data.batch_size` images with batch statistics over the whole batch is
//   what SyncBN computes over 8 GPUs × 2 images; the images of a batch are padded to the batch's largest size (mmdet
//   pads per GPU, i.e. per 2 images);
// - the data order is a seeded permutation per epoch (`SeededEpochOrder`) and mmdet's aspect-ratio grouping of
//   batches (GroupSampler) is not applied: it only saves padding; an epoch is ⌈images / batch⌉ iterations;
// - every random draw (scale, flip, RPN and ROI sampling) is keyed by (seed, sample position) or (seed, iteration),
//   so a resumed run is bit-identical to an uninterrupted one.
import Checkpoints
import Datasets
import Evaluation
import Foundation
import Layers
import Models
import Results
import Support
import Tensors

public enum MaskRCNNProtocol {
  public static func run(_ request: MaskRCNNRequest) throws -> MaskRCNNResult {
    let config = request.config
    // Data first: a wrong folder fails before the checkpoint is read.
    let data = try MaskRCNNData(config: config)

    var backboneRequest = request.backbone
    backboneRequest.seed = config.seed
    let evaluation = try BackboneBuilder.build(backboneRequest)
    let channels = evaluation.backbone.config.inChannels
    if channels == 1 && (Set(config.data.mean).count != 1 || Set(config.data.std).count != 1) {
      throw ProtocolError.invalidRequest(
        reason: "\(request.backbone.checkpoint) is a 1-channel backbone, but data.mean/data.std differ per channel.",
        hint: "A 1-channel backbone sees the mean of the normalised channels: give one mean and std for all three.")
    }
    guard evaluation.backbone.config.dilations.allSatisfy({ $0 == 1 }) else {
      throw ProtocolError.invalidRequest(
        reason: "\(request.backbone.checkpoint) builds a dilated ResNet; the FPN needs C2–C5 at strides ×2 apart.",
        hint: "Use a plain ResNet checkpoint (no dilation).")
    }
    var headGenerator = SplitMix64.derived(config.seed, 0x3A5C7F)
    let detector = MaskRCNNFPN(backbone: evaluation.backbone,
                               config: config.modelConfig(classCount: data.classNames.count,
                                                          backbone: evaluation.backbone.config),
                               using: &headGenerator)

    let label = request.label ?? evaluation.defaultLabel(request.backbone.checkpoint)
    let work = try WorkArea(request.workDirectory ?? URL(fileURLWithPath: "work_dirs")
      .appendingPathComponent(request.configName).appendingPathComponent(label))
    let log = work.log
    let benchmark = BenchmarkID.cocoMaskRCNN
    let strides = detector.pyramidStrides
    let variant = config.variant(isRandomInit: evaluation.isRandomInit, isCOCO: data.isCOCO, pyramidStrides: strides)
    let iterationsPerEpoch = config.iterationsPerEpoch(trainCount: data.train.count)
    let iterations = config.schedule.epochs * iterationsPerEpoch
    log.write("simsiam-bench \(codeVersion) run mask-rcnn (\(request.configName)): "
                + "\(evaluation.backbone.config.depth)-layer ResNet + FPN \(config.model.fpnChannels) (P2–P6 at "
                + "strides \(strides.map(String.init).joined(separator: "/"))), \(data.train.count) train images "
                + "from \(data.trainJSON.path) / \(data.test.count) test images, \(data.classNames.count) classes, "
                + "\(config.schedule.epochs) epochs × \(iterationsPerEpoch) = \(iterations) iterations of "
                + "\(config.data.batchSize), short sides \(config.data.trainShortSides) ≤ \(config.data.maxSize), "
                + "lr \(config.optimizer.lr) steps after epochs \(config.schedule.stepEpochs), \(Threads.count) threads")
    for note in data.notes { log.write(note) }
    log.write("protocol: \(variant.canonical)")
    if let report = evaluation.report { log.write(report.rendered()) }
    if evaluation.isRandomInit { log.write("random initialisation (seed \(evaluation.seed)); weights not loaded") }

    let optimizer = config.optimizer.makeSGD(detector.parameters)
    let metadata: [String: String] = [
      "checkpoint_sha256": evaluation.featureKey, "config": config.json,
      "train_fingerprint": data.trainFingerprint, "test_fingerprint": data.testFingerprint,
    ]

    // Resume: the latest checkpoint of the work directory must belong to this checkpoint, config and data.
    let resumed = try FineTuningState.resumed(request.resume, in: work.directory, into: detector.namedParameters,
                                              optimizer: optimizer, expecting: metadata, log: log)
    var state = resumed.state
    let store = try ResultsStore(path: request.database)
    let start = state.runStart(resumedFrom: resumed.from, iterations: iterations, store: store) {
      NewRun(kind: .evaluate, protocolName: benchmark.rawValue, label: label,
             configFile: request.configFile, config: config.json,
             checkpointPath: request.backbone.checkpoint, checkpointSHA256: evaluation.sha256,
             checkpointLayout: evaluation.layout, datasetPath: config.data.root,
             datasetFingerprint: "train \(data.trainFingerprint) test \(data.testFingerprint)",
             protocolVariant: variant.stored, codeVersion: codeVersion, threads: Threads.count)
    }
    return try store.recording(start, log: log) { recorded in
      state.runID = recorded.id
      let progress = ProgressReporter(log: log, interval: request.logInterval)

      func evaluate(at iteration: Int) throws -> InstanceSegmentationScores {
        let scores = try data.evaluate(detector, channels: channels, resultsIn: work.directory, progress: progress)
        try recorded.add(MaskRCNNResult.scores(benchmark: benchmark, scores: scores, iteration: iteration))
        log.write(String(format: "iteration %d: box mAP %.1f AP50 %.1f AP75 %.1f, mask mAP %.1f AP50 %.1f AP75 %.1f",
                         iteration, 100 * scores.box[0], 100 * scores.box[1], 100 * scores.box[2],
                         100 * scores.mask[0], 100 * scores.mask[1], 100 * scores.mask[2]))
        return scores
      }

      let loop = FineTuningLoop(
        iterations: iterations, checkpointInterval: config.schedule.checkpointInterval,
        evaluationInterval: config.schedule.evaluationInterval, stopAfter: request.stopAfter, progress: progress,
        divergenceHint: "Lower optimizer.lr or lengthen schedule.warmup_iterations, or check the annotations.")
      let finished = try loop.run(
        state: &state, optimizer: optimizer,
        learningRate: { config.learningRate(iteration: $0, iterationsPerEpoch: iterationsPerEpoch) },
        step: { iteration in
          let batch = try data.trainingBatch(iteration: iteration, channels: channels)
          optimizer.zeroGrad()
          var sampler = SplitMix64.derived(config.seed, 0x5A4D1E, UInt64(iteration))
          let losses = detector.trainingStep(images: batch.images, imageSizes: batch.sizes, gtBoxes: batch.boxes,
                                             gtLabels: batch.labels, gtMasks: batch.masks, sampler: &sampler)
          return .init(loss: losses.total,
                       parts: String(format: "rpn cls %.4f, rpn box %.4f, cls %.4f, box %.4f, mask %.4f",
                                     losses.rpnClass, losses.rpnBox, losses.roiClass, losses.roiBox, losses.mask))
        },
        evaluate: { iteration in 100 * (try evaluate(at: iteration).box[0]) },
        save: { state in
          try state.save(detector.namedParameters, optimizer: optimizer, metadata: metadata, in: work.directory)
        })
      if !finished {
        recorded.finishMessage = "stopped after iteration \(state.iteration) of \(iterations) "
          + "(--stop-after); no score stored; continue with --resume"
        log.write("stopped after iteration \(state.iteration) of \(iterations); checkpoint in "
                    + "\(work.directory.path); continue with --resume")
        return MaskRCNNResult(runID: recorded.id, label: label, benchmark: benchmark, iteration: state.iteration,
                              scores: nil)
      }
      let final = try evaluate(at: state.iteration)
      let result = MaskRCNNResult(runID: recorded.id, label: label, benchmark: benchmark, iteration: state.iteration,
                                  scores: final)
      try recorded.add(result.rows)
      log.write("finished: results run \(recorded.id) in \(request.database); checkpoints in \(work.directory.path)")
      return result
    }
  }
}
