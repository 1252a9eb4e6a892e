// `run fcn`: MMSegmentation's FCN-D8 benchmark (PROTOCOLS §5.3/§5.4). Builds the dilated backbone from any
// checkpoint through `BackboneBuilder`, puts the FCN heads on it, fine-tunes everything with SGD + poly LR on mmseg's
// training pipeline, checkpoints model and optimizer every N iterations (atomically), evaluates mIoU as mmseg does
// every M iterations and at the end, and stores every score with the run's provenance.
//
// Departures from mmseg's runner, each forced by running in one process and said here:
// - one process is all "GPUs": a batch of `data.batch_size` images with batch statistics over the whole batch is
//   what SyncBN computes over 4 GPUs × 4 images;
// - the data order is a seeded permutation per epoch and a batch may straddle two epochs (mmseg's IterLoader starts
//   a new epoch with a short last batch instead); every random draw is keyed by (seed, sample position) or
//   (seed, iteration), so a resumed run is bit-identical to an uninterrupted one.
import Checkpoints
import Datasets
import Evaluation
import Foundation
import Layers
import Models
import Results
import Support
import Tensors

public enum FCNProtocol {
  /// `iter_<N>.safetensors` files of a work directory, by iteration.
  public static func checkpoints(in directory: URL) -> [(iteration: Int, url: URL)] {
    FineTuningState.checkpoints(in: directory)
  }

  public static func run(_ request: FCNRequest) throws -> FCNResult {
    let config = request.config
    let dataRoot = URL(fileURLWithPath: config.data.path)
    if PathKind(config.data.path) == .file {
      throw ProtocolError.invalidRequest(reason: "The dataset path \(config.data.path) is a file, not a folder.",
                                         hint: "Give --data the VOC2012, Cityscapes or scene devkit folder.")
    }
    // Data first: a wrong folder fails before the checkpoint is read.
    var train = try SegmentationDataset.open(root: dataRoot, split: config.data.trainSplit)
    var test = try SegmentationDataset.open(root: dataRoot, split: config.data.testSplit)
    if config.data.trainLimit > 0 { train = try train.prefix(config.data.trainLimit) }
    if config.data.testLimit > 0 { test = try test.prefix(config.data.testLimit) }
    guard train.count > 0, test.count > 0 else {
      throw ProtocolError.invalidRequest(
        reason: "The \(train.count == 0 ? config.data.trainSplit : config.data.testSplit) split of \(dataRoot.path) "
          + "lists no images.", hint: "Check the split lists under ImageSets/Segmentation (or data.train_split / "
          + "data.test_split).")
    }
    let classNames = train.classNames

    // The backbone with the config's strides and dilations, loaded from the checkpoint (or its random init).
    var backboneRequest = request.backbone
    backboneRequest.seed = config.seed
    let evaluation = try BackboneBuilder.build(backboneRequest) { base in
      base.withDilation(strides: config.model.strides, dilations: config.model.dilations,
                        contractDilation: config.model.contractDilation)
    }
    let channels = evaluation.backbone.config.inChannels
    if channels == 1 && (Set(config.data.mean).count != 1 || Set(config.data.std).count != 1) {
      throw ProtocolError.invalidRequest(
        reason: "\(request.backbone.checkpoint) is a 1-channel backbone, but data.mean/data.std differ per channel.",
        hint: "A 1-channel backbone sees the mean of the normalised channels: give one mean and std for all three.")
    }
    var headGenerator = SplitMix64.derived(config.seed, 0xFC4EAD)
    let segmentor = FCNSegmentor(backbone: evaluation.backbone, config: config.modelConfig(classCount: classNames.count),
                                 using: &headGenerator)

    let label = request.label ?? evaluation.defaultLabel(request.backbone.checkpoint)
    let work = try WorkArea(request.workDirectory ?? URL(fileURLWithPath: "work_dirs")
      .appendingPathComponent(request.configName).appendingPathComponent(label))
    let log = work.log
    let benchmark = BenchmarkID(train.layout == .cityscapes ? .cityscapes : .voc12aug, .fcn)
    let variant = config.variant(isRandomInit: evaluation.isRandomInit, layout: train.layout)
    let schedule = config.schedule
    log.write("simsiam-bench \(codeVersion) run fcn (\(request.configName)): \(evaluation.backbone.config.depth)-layer "
                + "ResNet, strides \(config.model.strides), dilations \(config.model.dilations), "
                + "\(train.count) train / \(test.count) test images (\(train.layout)), \(classNames.count) classes, "
                + "\(schedule.iterations) iterations of \(config.data.batchSize), crop \(config.data.cropSize), "
                + "lr \(config.optimizer.lr) poly \(schedule.power) → \(schedule.minLr), \(Threads.count) threads")
    log.write("protocol: \(variant.canonical)")
    if let report = evaluation.report { log.write(report.rendered()) }
    if evaluation.isRandomInit { log.write("random initialisation (seed \(evaluation.seed)); weights not loaded") }

    let optimizer = SGD(segmentor.parameters, learningRate: Float(config.optimizer.lr),
                        momentum: Float(config.optimizer.momentum), weightDecay: Float(config.optimizer.weightDecay))
    let metadata: [String: String] = [
      "checkpoint_sha256": evaluation.featureKey, "config": config.json,
      "train_fingerprint": train.fingerprint, "test_fingerprint": test.fingerprint,
    ]

    // Resume: the latest checkpoint of the work directory must belong to this checkpoint, config and data.
    let resumed = try FineTuningState.resumed(request.resume, in: work.directory, into: segmentor.namedParameters,
                                              optimizer: optimizer, expecting: metadata, log: log)
    var state = resumed.state
    let store = try ResultsStore(path: request.database)
    let start = state.runStart(resumedFrom: resumed.from, iterations: schedule.iterations, store: store) {
      NewRun(kind: .evaluate, protocolName: benchmark.rawValue, label: label,
             configFile: request.configFile, config: config.json,
             checkpointPath: request.backbone.checkpoint, checkpointSHA256: evaluation.sha256,
             checkpointLayout: evaluation.layout, datasetPath: config.data.path,
             datasetFingerprint: "train \(train.fingerprint) test \(test.fingerprint)",
             protocolVariant: variant.stored, codeVersion: codeVersion, threads: Threads.count)
    }
    return try store.recording(start, log: log) { recorded in
      state.runID = recorded.id
      let progress = ProgressReporter(log: log, interval: request.logInterval)

      func evaluate(at iteration: Int) throws -> SegmentationScores {
        let scores = try FCNEvaluation.evaluate(segmentor, on: test, config: config, channels: channels,
                                                progress: progress)
        try recorded.add(FCNResult.scores(benchmark: benchmark, classNames: classNames, scores: scores,
                                          iteration: iteration))
        log.write(String(format: "iteration %d: mIoU %.2f, mAcc %.2f, aAcc %.2f", iteration, 100 * scores.meanIoU,
                         100 * scores.meanAccuracy, 100 * scores.overallAccuracy))
        return scores
      }

      let loader = FCNBatchLoader(dataset: train, config: config, channels: channels)
      let loop = FineTuningLoop(
        iterations: schedule.iterations, checkpointInterval: schedule.checkpointInterval,
        evaluationInterval: schedule.evaluationInterval, stopAfter: request.stopAfter, progress: progress,
        divergenceHint: "Lower optimizer.lr, or check the data (labels must be class indices or 255).")
      let finished = try loop.run(
        state: &state, optimizer: optimizer,
        learningRate: { iteration in
          // mmcv Poly: (base − min)·(1 − iter/max)^power + min, set before the iteration runs.
          polyLearningRate(base: Float(config.optimizer.lr), minimum: Float(schedule.minLr),
                           power: Float(schedule.power), progress: iteration, maxProgress: schedule.iterations)
        },
        step: { iteration in
          let batch = try loader.batch(iteration: iteration)
          optimizer.zeroGrad()
          var dropout = SplitMix64.derived(config.seed, 0xD40, UInt64(iteration))
          let losses = segmentor.trainingStep(images: batch.images, labels: batch.labels, dropout: &dropout)
          return .init(loss: losses.decodeLoss + losses.auxiliaryLoss,
                       parts: String(format: "decode %.4f, aux %.4f", losses.decodeLoss, losses.auxiliaryLoss))
        },
        evaluate: { iteration in try evaluate(at: iteration).meanIoU },
        save: { state in
          try state.save(segmentor.namedParameters, optimizer: optimizer, metadata: metadata, in: work.directory)
        })
      if !finished {
        recorded.finishMessage = "stopped after iteration \(state.iteration) of \(schedule.iterations) "
          + "(--stop-after); no score stored; continue with --resume"
        log.write("stopped after iteration \(state.iteration) of \(schedule.iterations); checkpoint in "
                    + "\(work.directory.path); continue with --resume")
        return FCNResult(runID: recorded.id, label: label, benchmark: benchmark, iteration: state.iteration,
                         classNames: classNames, scores: nil)
      }
      let final = try evaluate(at: state.iteration)
      let result = FCNResult(runID: recorded.id, label: label, benchmark: benchmark, iteration: state.iteration,
                             classNames: classNames, scores: final)
      try recorded.add(result.rows)
      log.write("finished: results run \(recorded.id) in \(request.database); checkpoints in \(work.directory.path)")
      return result
    }
  }
}
