// `run fcn`: MMSegmentation's FCN-D8 benchmark (PROTOCOLS §5.3/§5.4). Builds the dilated backbone from any
// checkpoint through `BackboneBuilder`, puts the FCN heads on it, fine-tunes everything with SGD + poly LR on mmseg's
// training pipeline, checkpoints model and optimizer every N iterations (atomically), evaluates mIoU as mmseg does
// every M iterations and at the end, and stores every score with the run's provenance.
//
// Under mpirun (`FineTuningRanks`) each rank trains on its slots of every global batch with SyncBN in backbone and
// heads and DDP's gradient average, scores its block of the test images (the areas summed over the ranks), and rank
// 0 alone writes checkpoints, log and rows; a resume is read by rank 0 and broadcast.
//
// Departures from mmseg's runner, each forced by running in one process and said here:
// - one process is all "GPUs": a batch of `data.batch_size` images with batch statistics over the whole batch is
//   what SyncBN computes over 4 GPUs × 4 images (the loss is a mean over the whole batch's pixels where mmseg
//   averages the GPUs' means: the same, since every GPU's crops have the same size);
// - the data order is a seeded permutation per epoch and a batch may straddle two epochs (mmseg's IterLoader starts
//   a new epoch with a short last batch instead); every random draw is keyed by (seed, sample position) or
//   (seed, iteration), so a resumed run is bit-identical to an uninterrupted one.
import Checkpoints
import Datasets
import Distributed
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

  /// Rank 0's run (or the only process's): the whole recorded run. Other ranks call `runAsWorker`.
  public static func run(_ request: FCNRequest) throws -> FCNResult {
    precondition(request.processGroup.isRoot,
                 "FCNProtocol.run is rank 0's; rank \(request.processGroup.rank) runs runAsWorker.")
    return try perform(request)!
  }

  /// A rank other than 0 under mpirun: its share of every training batch and of each evaluation, in step with rank
  /// 0's `run`; it writes no file, log line or row.
  public static func runAsWorker(_ request: FCNRequest) throws {
    precondition(!request.processGroup.isRoot, "Rank 0 runs FCNProtocol.run.")
    _ = try perform(request)
  }

  /// The run on any rank; rank 0 returns the result, the others nil. Every rank makes the same collective calls
  /// in the same order: the state broadcast, then per iteration the SyncBN sums, the gradient average and the
  /// loss mean, and the area sums of each evaluation.
  static func perform(_ request: FCNRequest) throws -> FCNResult? {
    let config = request.config
    let group = request.processGroup
    try FineTuningRanks.checkBatch(config.data.batchSize, ranks: group.size, what: "run fcn")
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
    // Rank 0's work area and log; the other ranks write nothing.
    let work = try group.isRoot ? WorkArea(request.workDirectory ?? URL(fileURLWithPath: "work_dirs")
      .appendingPathComponent(request.configName).appendingPathComponent(label)) : nil
    let log = work?.log
    let benchmark = BenchmarkID(train.layout == .cityscapes ? .cityscapes : .voc12aug, .fcn)
    let variant = config.variant(isRandomInit: evaluation.isRandomInit, layout: train.layout)
    let schedule = config.schedule
    let rankNote = group.isDistributed
      ? " (\(group.size) ranks × \(config.data.batchSize / group.size), SyncBN)" : ""
    log?.write("simsiam-bench \(codeVersion) run fcn (\(request.configName)): "
                 + "\(evaluation.backbone.config.depth)-layer ResNet, strides \(config.model.strides), dilations "
                 + "\(config.model.dilations), \(train.count) train / \(test.count) test images (\(train.layout)), "
                 + "\(classNames.count) classes, \(schedule.iterations) iterations of \(config.data.batchSize)"
                 + "\(rankNote), crop \(config.data.cropSize), "
                 + "lr \(config.optimizer.lr) poly \(schedule.power) → \(schedule.minLr), \(Threads.count) threads")
    log?.write("protocol: \(variant.canonical)")
    if let report = evaluation.report { log?.write(report.rendered()) }
    if evaluation.isRandomInit { log?.write("random initialisation (seed \(evaluation.seed)); weights not loaded") }

    let optimizer = config.optimizer.makeSGD(segmentor.parameters)
    let metadata: [String: String] = [
      "checkpoint_sha256": evaluation.featureKey, "config": config.json,
      "train_fingerprint": train.fingerprint, "test_fingerprint": test.fingerprint,
    ]

    // Resume (rank 0): the latest checkpoint of the work directory must belong to this checkpoint, config and
    // data; then every rank starts from rank 0's state.
    let ranks = FineTuningRanks(group: group, parameters: segmentor.parameters,
                                batchNorms: segmentor.backbone.batchNorms + segmentor.batchNormsOfHeads)
    var state = FineTuningState(iteration: 0, evaluations: [], runID: nil)
    var resumedFrom: URL?
    if let work, let log {
      (state, resumedFrom) = try FineTuningState.resumed(request.resume, in: work.directory,
                                                         into: segmentor.namedParameters, optimizer: optimizer,
                                                         expecting: metadata, log: log)
    }
    try ranks.broadcastFromRoot(segmentor.namedParameters, optimizer: optimizer, state: &state)

    let loader = FCNBatchLoader(dataset: train, config: config, channels: channels)
    let progress = log.map { ProgressReporter(log: $0, interval: request.logInterval) }
    let loop = FineTuningLoop(
      iterations: schedule.iterations, checkpointInterval: schedule.checkpointInterval,
      evaluationInterval: schedule.evaluationInterval, stopAfter: request.stopAfter, progress: progress,
      divergenceHint: "Lower optimizer.lr, or check the data (labels must be class indices or 255).")
    let slots = ranks.slots(batchSize: config.data.batchSize)
    // The schedule from `state`; `evaluated` receives each evaluation's scores (rank 0 records them).
    func fineTune(state: inout FineTuningState, evaluated: (Int, SegmentationScores) throws -> Void,
                  save: (FineTuningState) throws -> Void) throws -> Bool {
      try loop.run(
        state: &state, optimizer: optimizer,
        learningRate: { iteration in
          // mmcv Poly: (base − min)·(1 − iter/max)^power + min, set before the iteration runs.
          polyLearningRate(base: Float(config.optimizer.lr), minimum: Float(schedule.minLr),
                           power: Float(schedule.power), progress: iteration, maxProgress: schedule.iterations)
        },
        step: { iteration in
          optimizer.zeroGrad()
          var dropout = SplitMix64.derived(config.seed, 0xD40, UInt64(iteration))
          let losses: [Float]
          if group.isDistributed {
            // The whole batch's dropout masks, drawn as the single process draws them; this rank's rows.
            let batch = try loader.batch(iteration: iteration, slots: slots)
            let masks = segmentor.dropoutMasks(samples: config.data.batchSize, using: &dropout)
            let local = segmentor.trainingStep(images: batch.images, labels: batch.labels,
                                               decodeDropoutMask: masks.decode.rows(slots),
                                               auxiliaryDropoutMask: masks.auxiliary?.rows(slots))
            losses = try ranks.combine([local.decodeLoss, local.auxiliaryLoss])
          } else {
            let batch = try loader.batch(iteration: iteration)
            let local = segmentor.trainingStep(images: batch.images, labels: batch.labels, dropout: &dropout)
            losses = [local.decodeLoss, local.auxiliaryLoss]
          }
          return .init(loss: losses[0] + losses[1],
                       parts: String(format: "decode %.4f, aux %.4f", losses[0], losses[1]))
        },
        evaluate: { iteration in
          let scores = try FCNEvaluation.evaluate(segmentor, on: test, config: config, channels: channels,
                                                  progress: progress, ranks: ranks)
          try evaluated(iteration, scores)
          return scores.meanIoU
        },
        save: save)
    }

    guard let work, let log else {
      // Another rank: the same schedule and evaluations, nothing written.
      if try fineTune(state: &state, evaluated: { _, _ in }, save: { _ in }) {
        _ = try FCNEvaluation.evaluate(segmentor, on: test, config: config, channels: channels, progress: nil,
                                       ranks: ranks)
      }
      return nil
    }
    let store = try ResultsStore(path: request.database)
    let start = state.runStart(resumedFrom: resumedFrom, iterations: schedule.iterations, store: store) {
      NewRun(kind: .evaluate, protocolName: benchmark.rawValue, label: label,
             configFile: request.configFile, config: config.json,
             checkpointPath: request.backbone.checkpoint, checkpointSHA256: evaluation.sha256,
             checkpointLayout: evaluation.layout, datasetPath: config.data.path,
             datasetFingerprint: "train \(train.fingerprint) test \(test.fingerprint)",
             protocolVariant: variant.stored, codeVersion: codeVersion, threads: Threads.count)
    }
    return try store.recording(start, log: log) { recorded in
      state.runID = recorded.id

      func record(_ scores: SegmentationScores, at iteration: Int) throws {
        try recorded.add(FCNResult.scores(benchmark: benchmark, classNames: classNames, scores: scores,
                                          iteration: iteration))
        log.write(String(format: "iteration %d: mIoU %.2f, mAcc %.2f, aAcc %.2f", iteration, 100 * scores.meanIoU,
                         100 * scores.meanAccuracy, 100 * scores.overallAccuracy))
      }

      let finished = try fineTune(state: &state, evaluated: { try record($1, at: $0) }, save: { state in
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
      let final = try FCNEvaluation.evaluate(segmentor, on: test, config: config, channels: channels,
                                             progress: progress, ranks: ranks)
      try record(final, at: state.iteration)
      let result = FCNResult(runID: recorded.id, label: label, benchmark: benchmark, iteration: state.iteration,
                             classNames: classNames, scores: final)
      try recorded.add(result.rows)
      log.write("finished: results run \(recorded.id) in \(request.database); checkpoints in \(work.directory.path)")
      return result
    }
  }
}

extension FCNSegmentor {
  /// The BatchNorms of the decode and auxiliary heads (their ConvBN layers).
  var batchNormsOfHeads: [BatchNorm] {
    [decodeHead, auxiliaryHead].compactMap { $0 }.flatMap { head in
      head.convs.map(\.bn) + (head.concatConv.map { [$0.bn] } ?? [])
    }
  }

  /// The dropout masks `trainingStep(images:labels:dropout:)` draws for a batch of `samples` images: the decode
  /// head's `[samples, channels]`, then the auxiliary head's (shape [0]: no dropout; nil: no auxiliary head).
  func dropoutMasks<G: RandomNumberGenerator>(samples: Int, using generator: inout G)
    -> (decode: Tensor, auxiliary: Tensor?) {
    func draw(_ head: FCNHead) -> Tensor {
      head.config.dropout > 0 ? head.dropout.drawMask(samples: samples, channels: head.config.channels,
                                                      using: &generator) : Tensor.zeros([0])
    }
    let decode = draw(decodeHead)
    return (decode, auxiliaryHead.map(draw))
  }
}

extension Tensor {
  /// Rows `rows` of a `[n, c]` mask (a shape-[0] tensor, "no mask", stays as it is).
  func rows(_ rows: [Int]) -> Tensor {
    guard rank == 2 else { return self }
    let c = shape[1]
    return Tensor(shape: [rows.count, c], scalars: rows.flatMap { scalars[($0 * c)..<(($0 + 1) * c)] })
  }
}
