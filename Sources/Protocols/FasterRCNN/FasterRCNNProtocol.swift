// `run faster-rcnn`: MMSelfSup's Faster R-CNN R50-C4 benchmark on VOC07+12 (PROTOCOLS §5.1). Builds the backbone from
// any checkpoint through `BackboneBuilder` (stem..layer3 become the C4 trunk, layer4 the ROI head's res5, both from
// the checkpoint as mim_dist_train_c4.sh loads them), puts the RPN and the box head on it, fine-tunes everything with
// SGD + warm-up + steps on mmdet's multi-scale pipeline, checkpoints model and optimizer every N iterations
// (atomically), evaluates VOC2007 test as mmdet and detectron2 do every M iterations and at the end, and stores every
// score with the run's provenance.
//
// Departures from mmdet's runner, each forced by running in one process and said here:
// - one process is all "GPUs": a batch of `data.batch_size` images with batch statistics over the whole batch is
//   what SyncBN computes over 8 GPUs × 2 images; the images of a batch are padded to the batch's largest size (mmdet
//   pads per GPU, i.e. per 2 images);
// - the data order is a seeded permutation per epoch (`SeededEpochOrder`) and mmdet's aspect-ratio grouping of
//   batches (GroupSampler) is not applied: it only saves padding;
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

public enum FasterRCNNProtocol {
  /// `iter_<N>.safetensors` files of a work directory, by iteration.
  public static func checkpoints(in directory: URL) -> [(iteration: Int, url: URL)] {
    FineTuningState.checkpoints(in: directory)
  }

  public static func run(_ request: FasterRCNNRequest) throws -> FasterRCNNResult {
    let config = request.config
    // Data first: a wrong folder fails before the checkpoint is read.
    let data = try FasterRCNNData(config: config)
    let classNames = data.classNames

    var backboneRequest = request.backbone
    backboneRequest.seed = config.seed
    let evaluation = try BackboneBuilder.build(backboneRequest)
    let channels = evaluation.backbone.config.inChannels
    if channels == 1 && (Set(config.data.mean).count != 1 || Set(config.data.std).count != 1) {
      throw ProtocolError.invalidRequest(
        reason: "\(request.backbone.checkpoint) is a 1-channel backbone, but data.mean/data.std differ per channel.",
        hint: "A 1-channel backbone sees the mean of the normalised channels: give one mean and std for all three.")
    }
    // The C4 trunk is stem..layer3: its stride is the stem's (4, or 1 for a CIFAR stem) times layer1–3's.
    let backboneConfig = evaluation.backbone.config
    let c4Stride = (backboneConfig.cifarStem ? 1 : 4) * backboneConfig.strides.prefix(3).reduce(1, *)
    let c4Channels = backboneConfig.featureChannels[3]
    var headGenerator = SplitMix64.derived(config.seed, 0xDE7EC7)
    let rpn = RegionProposalNetwork(inChannels: c4Channels, config: config.rpnConfig(channels: c4Channels,
                                                                                       stride: c4Stride),
                                    using: &headGenerator)
    let detector = FasterRCNNC4(backbone: evaluation.backbone, rpn: rpn,
                                roiHead: config.roiHeadConfig(classCount: classNames.count, stride: c4Stride),
                                using: &headGenerator)

    let label = request.label ?? evaluation.defaultLabel(request.backbone.checkpoint)
    let work = try WorkArea(request.workDirectory ?? URL(fileURLWithPath: "work_dirs")
      .appendingPathComponent(request.configName).appendingPathComponent(label))
    let log = work.log
    let benchmark = BenchmarkID.voc0712FasterRCNN
    let variant = config.variant(isRandomInit: evaluation.isRandomInit, isVOC: data.isVOC)
    let schedule = config.schedule
    log.write("simsiam-bench \(codeVersion) run faster-rcnn (\(request.configName)): "
                + "\(evaluation.backbone.config.depth)-layer ResNet C4, \(data.train.count) train images from "
                + "\(config.data.paths.joined(separator: " + ")) / \(data.test.count) test images, "
                + "\(classNames.count) classes, \(schedule.iterations) iterations of \(config.data.batchSize), "
                + "short sides \(config.data.trainShortSides) ≤ \(config.data.maxSize), lr \(config.optimizer.lr) "
                + "steps \(schedule.steps), \(Threads.count) threads")
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
    let start = state.runStart(resumedFrom: resumed.from, iterations: schedule.iterations, store: store) {
      NewRun(kind: .evaluate, protocolName: benchmark.rawValue, label: label,
             configFile: request.configFile, config: config.json,
             checkpointPath: request.backbone.checkpoint, checkpointSHA256: evaluation.sha256,
             checkpointLayout: evaluation.layout, datasetPath: config.data.paths.joined(separator: " + "),
             datasetFingerprint: "train \(data.trainFingerprint) test \(data.testFingerprint)",
             protocolVariant: variant.stored, codeVersion: codeVersion, threads: Threads.count)
    }
    return try store.recording(start, log: log) { recorded in
      state.runID = recorded.id
      let progress = ProgressReporter(log: log, interval: request.logInterval)

      func evaluate(at iteration: Int) throws -> DetectionScores {
        let scores = try data.evaluate(detector, channels: channels, progress: progress)
        try recorded.add(FasterRCNNResult.scores(benchmark: benchmark, classNames: classNames, scores: scores,
                                                 iteration: iteration))
        log.write(String(format: "iteration %d: AP50 %.2f, AP %.2f, AP75 %.2f", iteration, 100 * scores.mmdet.mAP,
                         scores.detectron2.ap, scores.detectron2.ap75))
        return scores
      }

      let loop = FineTuningLoop(
        iterations: schedule.iterations, checkpointInterval: schedule.checkpointInterval,
        evaluationInterval: schedule.evaluationInterval, stopAfter: request.stopAfter, progress: progress,
        divergenceHint: "Lower optimizer.lr or lengthen schedule.warmup_iterations, or check the annotations.")
      let finished = try loop.run(
        state: &state, optimizer: optimizer,
        learningRate: { config.learningRate(iteration: $0) },
        step: { iteration in
          let batch = try data.trainingBatch(iteration: iteration, channels: channels)
          optimizer.zeroGrad()
          var sampler = SplitMix64.derived(config.seed, 0x5A4D1E, UInt64(iteration))
          let losses = detector.trainingStep(images: batch.images, imageSizes: batch.sizes,
                                             gtBoxes: batch.boxes, gtLabels: batch.labels, sampler: &sampler)
          return .init(loss: losses.total,
                       parts: String(format: "rpn cls %.4f, rpn box %.4f, cls %.4f, box %.4f", losses.rpnClass,
                                     losses.rpnBox, losses.roiClass, losses.roiBox))
        },
        evaluate: { iteration in 100 * (try evaluate(at: iteration).mmdet.mAP) },
        save: { state in
          try state.save(detector.namedParameters, optimizer: optimizer, metadata: metadata, in: work.directory)
        })
      if !finished {
        recorded.finishMessage = "stopped after iteration \(state.iteration) of \(schedule.iterations) "
          + "(--stop-after); no score stored; continue with --resume"
        log.write("stopped after iteration \(state.iteration) of \(schedule.iterations); checkpoint in "
                    + "\(work.directory.path); continue with --resume")
        return FasterRCNNResult(runID: recorded.id, label: label, benchmark: benchmark, iteration: state.iteration,
                                classNames: classNames, scores: nil)
      }
      let final = try evaluate(at: state.iteration)
      let result = FasterRCNNResult(runID: recorded.id, label: label, benchmark: benchmark,
                                    iteration: state.iteration, classNames: classNames, scores: final)
      try recorded.add(result.rows)
      log.write("finished: results run \(recorded.id) in \(request.database); checkpoints in \(work.directory.path)")
      return result
    }
  }
}
