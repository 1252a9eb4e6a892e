// The lifecycle every iteration-based fine-tuning protocol shares (`run fcn`, `run faster-rcnn`): the seeded data
// order, the training loop (learning rate, step, divergence check, progress, periodic evaluation, checkpoints,
// `--stop-after`) and the `iter_<N>.safetensors` checkpoint that `--resume` restores bit-exactly. Each protocol
// supplies its model's step and its evaluation; what a run is and how it is recorded stays in one place. Under
// mpirun, `FineTuningRanks` holds what every data-parallel fine-tuning run shares: the ranks' shares of a batch,
// SyncBN, the gradient average, sharded evaluation and rank 0's state broadcast.
import Checkpoints
import Distributed
import Foundation
import Layers
import Models
import Results
import Support
import Tensors

/// The training order of a fine-tuning run: an endless sequence of seeded per-epoch permutations of the training
/// set; iteration i takes sample positions i·B ..< (i+1)·B (a batch may straddle two epochs). Every random draw of a
/// sample is keyed by its position, so a resumed run sees exactly the batches an uninterrupted one would.
struct SeededEpochOrder {
  let count: Int
  let seed: UInt64

  init(count: Int, seed: UInt64) {
    precondition(count > 0, "A training order needs at least one sample, got \(count).")
    self.count = count
    self.seed = seed
  }

  /// Epoch `epoch`'s order: Fisher–Yates from `SplitMix64.derived(seed, 0x5A3D1E, epoch)`.
  func permutation(epoch: Int) -> [Int] {
    var generator = SplitMix64.derived(seed, 0x5A3D1E, UInt64(epoch))
    var order = Array(0..<count)
    order.shuffle(using: &generator)
    return order
  }

  /// The (sample position, dataset index) pairs of `iteration`'s batch of `batchSize`.
  func batch(iteration: Int, batchSize: Int) -> [(position: Int, index: Int)] {
    let first = iteration * batchSize
    var permutations: [Int: [Int]] = [:]
    return (first..<(first + batchSize)).map { position in
      let epoch = position / count
      if permutations[epoch] == nil { permutations[epoch] = permutation(epoch: epoch) }
      return (position, permutations[epoch]![position % count])
    }
  }
}

/// Where a fine-tuning run is: what `--resume` restores besides the weights and the momentum.
struct FineTuningState {
  /// A periodic evaluation: the iteration and the protocol's headline score (mIoU, AP50).
  struct Evaluation: Codable, Equatable {
    var iteration: Int
    var score: Double

    init(iteration: Int, score: Double) {
      self.iteration = iteration
      self.score = score
    }

    private enum CodingKeys: String, CodingKey { case iteration, score, mIoU }

    init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      iteration = try container.decode(Int.self, forKey: .iteration)
      // FCN checkpoints written before the lifecycle was shared call the score `mIoU`.
      score = try container.decodeIfPresent(Double.self, forKey: .score)
        ?? container.decode(Double.self, forKey: .mIoU)
    }

    func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(iteration, forKey: .iteration)
      try container.encode(score, forKey: .score)
    }
  }

  var iteration: Int
  var evaluations: [Evaluation]
  var runID: RunID?

  /// `iter_<N>.safetensors` files of a work directory, by iteration.
  static func checkpoints(in directory: URL) -> [(iteration: Int, url: URL)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.compactMap { name -> (Int, URL)? in
      guard name.hasPrefix("iter_"), name.hasSuffix(".safetensors"),
            let iteration = Int(name.dropFirst("iter_".count).dropLast(".safetensors".count)) else { return nil }
      return (iteration, directory.appendingPathComponent(name))
    }.sorted { $0.0 < $1.0 }
  }

  /// Writes `iter_<iteration>.safetensors` atomically — every parameter and buffer under the model's state-dict
  /// names, SGD's momentum under `optimizer.momentum_buffer.<name>`, the state and `metadata` — then removes older
  /// iteration checkpoints.
  func save(_ named: [NamedParameter], optimizer: SGD, metadata: [String: String], in directory: URL) throws {
    var tensors = StateDict.tensors(of: named)
    let names = Dictionary(uniqueKeysWithValues: named.map { (ObjectIdentifier($0.parameter), $0.name) })
    for (parameter, buffer) in zip(optimizer.allParameters, optimizer.momentumBuffers) {
      if let buffer, let name = names[ObjectIdentifier(parameter)] {
        tensors["optimizer.momentum_buffer.\(name)"] = StoredTensor(buffer)
      }
    }
    var metadata = metadata
    metadata["iteration"] = String(iteration)
    metadata["evaluations"] = (try? JSONEncoder().encode(evaluations)).flatMap { String(data: $0, encoding: .utf8) }
    if let runID { metadata["run_id"] = String(runID.rawValue) }
    let url = directory.appendingPathComponent("iter_\(iteration).safetensors")
    try SafeTensors(tensors: tensors, metadata: metadata).write(to: url)
    for old in Self.checkpoints(in: directory) where old.iteration < iteration {
      try? FileManager.default.removeItem(at: old.url)
    }
  }

  /// Loads `url` into the model's parameters and `optimizer` after checking that its metadata matches `expecting`
  /// (the checkpoint hash, config and data fingerprints the run was started from).
  static func restore(_ url: URL, into named: [NamedParameter], optimizer: SGD,
                      expecting metadata: [String: String]) throws -> FineTuningState {
    let file = try SafeTensors(contentsOf: url)
    for (key, value) in metadata where file.metadata[key] != value {
      throw ProtocolError.resumeMismatch(
        path: url.path,
        reason: "its \(key) differs from this run's (\(key == "config" ? "the config changed" : "other checkpoint or data"))")
    }
    guard let iterationText = file.metadata["iteration"], let iteration = Int(iterationText), iteration >= 0 else {
      throw CheckpointError.stateDictMismatch(path: url.path, missing: ["__metadata__.iteration"], unexpected: [],
                                              wrongShapes: [])
    }
    try StateDict.load(file.tensors.filter { !$0.key.hasPrefix("optimizer.") }, into: named, source: url.path)
    let names = Dictionary(uniqueKeysWithValues: named.map { (ObjectIdentifier($0.parameter), $0.name) })
    let buffers: [Tensor?] = optimizer.allParameters.map { parameter in
      names[ObjectIdentifier(parameter)].flatMap { file.tensors["optimizer.momentum_buffer.\($0)"]?.value }
    }
    try optimizer.restoreMomentumBuffers(buffers)
    let evaluations = file.metadata["evaluations"].flatMap {
      try? JSONDecoder().decode([Evaluation].self, from: Data($0.utf8))
    } ?? []
    let runID = file.metadata["run_id"].flatMap(Int64.init).map(RunID.init(rawValue:))
    return FineTuningState(iteration: iteration, evaluations: evaluations, runID: runID)
  }
}

extension FineTuningState {
  /// `--resume`: the work directory's latest `iter_<N>.safetensors` restored into the model and `optimizer` (refused
  /// unless it belongs to this checkpoint, config and data: `expecting`), with the file it came from; without
  /// `resume`, or without a checkpoint, a fresh state.
  static func resumed(_ resume: Bool, in directory: URL, into named: [NamedParameter], optimizer: SGD,
                      expecting metadata: [String: String], log: LogFile) throws -> (state: FineTuningState, from: URL?) {
    guard resume else { return (FineTuningState(iteration: 0, evaluations: [], runID: nil), nil) }
    guard let latest = checkpoints(in: directory).last else {
      log.write("--resume: no checkpoint in \(directory.path); starting fresh")
      return (FineTuningState(iteration: 0, evaluations: [], runID: nil), nil)
    }
    let state = try restore(latest.url, into: named, optimizer: optimizer, expecting: metadata)
    log.write("resumed from \(latest.url.path) after iteration \(state.iteration)")
    return (state, latest.url)
  }

  /// The run row to record into: a checkpoint before the end of `iterations` continues its own row (if the store
  /// still has it); a fresh start, or a checkpoint at the end (re-evaluated), gets a new row from `newRun`.
  func runStart(resumedFrom: URL?, iterations: Int, store: ResultsStore, newRun: () -> NewRun) -> RunStart {
    if let resumedFrom, iteration < iterations, let runID, (try? store.run(runID)) != nil {
      return .resuming(runID, epoch: 0, iteration: iteration, checkpoint: resumedFrom.path)
    }
    return .new(newRun())
  }
}

/// The iteration loop of a fine-tuning run, from `state.iteration` to the end of the schedule (or `stopAfter`).
struct FineTuningLoop {
  /// What one training step reports: the total loss (checked for divergence) and the progress text of its parts.
  struct StepReport {
    var loss: Float
    var parts: String
  }

  var iterations: Int
  /// Iterations between checkpoints and between evaluations (0: only at the end).
  var checkpointInterval: Int
  var evaluationInterval: Int
  var stopAfter: Int?
  /// Rank 0's progress (nil on the other ranks of a data-parallel run, which print nothing).
  var progress: ProgressReporter?
  /// The hint a diverged run's error gives.
  var divergenceHint: String

  /// Runs the schedule: per iteration, `learningRate(iteration)` on every group, `step(iteration)` (zeroes the
  /// gradients, forward + backward, and under mpirun the gradient average; its loss the same on every rank, so
  /// every rank takes the same branch), the divergence check, `optimizer.step()`; an evaluation every
  /// `evaluationInterval` iterations before the last (its score kept in the state), a checkpoint through `save`
  /// every `checkpointInterval`, at the end and where `stopAfter` stops. Returns false when the run stopped early.
  func run(state: inout FineTuningState, optimizer: SGD, learningRate: (Int) -> Float,
           step: (Int) throws -> StepReport, evaluate: (Int) throws -> Double,
           save: (FineTuningState) throws -> Void) throws -> Bool {
    progress?.begin()
    let clock = ContinuousClock()
    var windowStart = clock.now
    var windowIterations = 0
    while state.iteration < iterations {
      let iteration = state.iteration
      let rate = learningRate(iteration)
      optimizer.updateLearningRates { _ in rate }
      let report = try step(iteration)
      guard report.loss.isFinite else {
        throw ProtocolError.invalidRequest(
          reason: "The loss became \(report.loss) at iteration \(iteration + 1) (\(report.parts)); the run stops "
            + "rather than store scores of a diverged model.", hint: divergenceHint)
      }
      optimizer.step()
      state.iteration += 1
      windowIterations += 1

      let elapsed = (clock.now - windowStart).seconds
      let iterationsPerSecond = Double(windowIterations) / max(elapsed, 1e-9)
      let eta = Double(iterations - state.iteration) / max(iterationsPerSecond, 1e-9)
      progress?.show(String(format: "iter %d/%d  loss %.4f", state.iteration, iterations, report.loss)
                      + " (\(report.parts))" + String(format: "  lr %.5g  %.2f it/s  ETA ", rate, iterationsPerSecond)
                      + Console.duration(eta), final: state.iteration == iterations)
      if windowIterations >= 50 { windowStart = clock.now; windowIterations = 0 }

      let isLast = state.iteration == iterations
      if evaluationInterval > 0 && state.iteration % evaluationInterval == 0 && !isLast {
        state.evaluations.append(.init(iteration: state.iteration, score: try evaluate(state.iteration)))
        progress?.begin(); windowStart = clock.now; windowIterations = 0
      }
      let stopsHere = !isLast && stopAfter.map { state.iteration >= $0 } == true
      if isLast || stopsHere || (checkpointInterval > 0 && state.iteration % checkpointInterval == 0) {
        try save(state)
      }
      if stopsHere { return false }
    }
    return true
  }
}

/// The ranks of a data-parallel fine-tuning run (`mpirun -np N simsiam-bench run fcn`; torch DDP + SyncBatchNorm,
/// as mmseg's and mmdet's dist_train.sh run them), or the one process of a plain run (every method then returns at
/// once). `data.batch_size` is the GLOBAL batch: rank r takes the slots r, r + N, … of each batch (which must
/// divide by N, so every rank's loss is a mean over as many images and DDP's plain average of the ranks'
/// gradients is the gradient of the whole batch's loss — also through SyncBN's backward, which a weighting after
/// the backward could not be). Every random draw stays keyed by (seed, sample position) or (seed, iteration), so a
/// rank draws for its images what the single process draws for them.
struct FineTuningRanks {
  let group: any ProcessGroup
  private let averager: GradientAverager?

  /// With several ranks: `batchNorms` in SyncBN mode over `group`, and DDP's bucketed average of the trainable
  /// `parameters`' gradients.
  init(group: any ProcessGroup, parameters: [Parameter], batchNorms: [BatchNorm]) {
    self.group = group
    guard group.isDistributed else {
      averager = nil
      return
    }
    for norm in batchNorms { norm.processGroup = group }
    averager = GradientAverager(parameters, over: group)
  }

  /// Refuses a global batch of `batchSize` that `ranks` cannot share evenly (a typed error naming the sizes).
  static func checkBatch(_ batchSize: Int, ranks: Int, what: String) throws {
    guard ranks > 1, batchSize % ranks != 0 else { return }
    throw ProtocolError.invalidRequest(
      reason: "\(what): data.batch_size \(batchSize) is the global batch and cannot be split evenly over \(ranks) "
        + "ranks.", hint: "Run with a number of ranks that divides \(batchSize) (mpirun -np), or set "
        + "data.batch_size to a multiple of \(ranks).")
  }

  /// This rank's slots of a global batch of `batchSize`: r, r + N, … (DistributedSampler's `indices[rank::world]`).
  func slots(batchSize: Int) -> [Int] {
    Array(stride(from: group.rank, to: batchSize, by: group.size))
  }

  /// After this rank's backward: every gradient averaged over the ranks, and `losses` (each a mean over this rank's
  /// images) averaged into the whole batch's, the same on every rank.
  func combine(_ losses: [Float]) throws -> [Float] {
    guard let averager else { return losses }
    try averager.average()
    let sums = try sum(losses.map(Double.init))
    return sums.map { Float($0 / Double(group.size)) }
  }

  /// Element-wise sums over the ranks (exact for integer counts below 2⁵³).
  func sum(_ values: [Double]) throws -> [Double] {
    guard group.isDistributed else { return values }
    var values = values
    try group.allreduceSum(&values)
    return values
  }

  /// This rank's contiguous block of `count` evaluation images (`Sharding.blocks`, one image per batch).
  func evaluationBlock(count: Int) -> Range<Int> {
    Sharding.blocks(count: count, batchSize: 1, ranks: group.size)[group.rank]
  }

  /// Rank 0's weights, BN buffers, momentum and iteration on every rank: DDP's initial broadcast, which also
  /// carries a resume only rank 0 read. Rank 0 alone keeps the evaluations and the run id (it alone records).
  func broadcastFromRoot(_ named: [NamedParameter], optimizer: SGD, state: inout FineTuningState) throws {
    var counters = [Double(state.iteration)]
    try DataParallelState.broadcastFromRoot(named.map(\.parameter), optimizer: optimizer, counters: &counters,
                                            over: group)
    state.iteration = Int(counters[0])
  }
}

extension ResNet {
  /// Every BatchNorm of the backbone, in forward order (stem, then each block's branch and downsample).
  var batchNorms: [BatchNorm] {
    let blocks = stages.flatMap { $0 }.flatMap { block in
      block.branch.map(\.bn) + (block.downsample.map { [$0.bn] } ?? [])
    }
    return [stem.bn] + blocks
  }
}

extension Duration {
  /// The duration in seconds.
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
