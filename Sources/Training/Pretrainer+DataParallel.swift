// Data-parallel pretraining over a ProcessGroup (PROTOCOLS §9; torch DistributedDataParallel + SyncBatchNorm, as
// the official main_simsiam.py and MMSelfSup's dist_train.sh run SimSiam): every rank holds the whole model and
// trains on 1/N of each global batch; rank 0's state is broadcast at the start, gradients are averaged after each
// backward, every BatchNorm is synchronised, and the step's loss is the mean over ranks. With the same seed, a run
// on N ranks × b images follows the run on 1 rank × N·b up to float summation order (DistributedTests).
import Distributed
import Layers
import Models
import Tensors

extension Pretrainer {
  /// Rank `rank`'s share of a global batch: the indices at positions rank, rank + N, … (DistributedSampler's
  /// `indices[rank::world]`, applied to each global batch of the (seed, epoch) permutation).
  ///
  /// Batches are cut from the global permutation first (drop_last on the global batch), so the iterations per
  /// epoch, the samples of each step and every sample's views (keyed by its global index) are the same for any
  /// N; torch's sampler pads the permutation to a multiple of N and drops per rank instead, which can differ by
  /// one iteration per epoch when the dataset size is not a multiple of N·b.
  public static func shard(_ indices: [Int], rank: Int, of size: Int) -> [Int] {
    precondition(indices.count % size == 0 && (0..<size).contains(rank),
                 "A global batch of \(indices.count) cannot be split evenly over \(size) ranks (rank \(rank)).")
    guard size > 1 else { return indices }
    return stride(from: rank, to: indices.count, by: size).map { indices[$0] }
  }

  /// Every BatchNorm of backbone, projector and predictor, in forward order.
  public var batchNorms: [BatchNorm] {
    let backbone = model.backbone
    let blocks = backbone.stages.flatMap { $0 }.flatMap { block in
      block.branch.map(\.bn) + (block.downsample.map { [$0.bn] } ?? [])
    }
    return [backbone.stem.bn] + blocks + model.projector.norms + [model.predictor.bn0]
  }

  /// Puts every BatchNorm in SyncBN mode over this trainer's group.
  func synchronizeBatchNorms() {
    for norm in batchNorms { norm.processGroup = processGroup }
  }

  /// Rank 0's weights, BN buffers, momentum buffers and counters, on every rank (DDP's initial broadcast; after a
  /// resume, which only rank 0 reads, it carries the checkpoint to the others).
  func broadcastStateFromRoot() throws {
    guard processGroup.isDistributed else { return }
    var counters = [Double(completedEpochs), Double(iteration), Double(iterationInEpoch), epochLossSum, epochStdSum]
    try processGroup.broadcast(&counters)
    (completedEpochs, iteration, iterationInEpoch) = (Int(counters[0]), Int(counters[1]), Int(counters[2]))
    (epochLossSum, epochStdSum) = (counters[3], counters[4])
    for parameter in model.parameters {
      try parameter.value.scalars.withUnsafeMutableBufferPointer { try processGroup.broadcast($0, from: 0) }
    }
    // Momentum buffers exist once a step has run (or a checkpoint restored them): rank 0 says which exist.
    var present = optimizer.momentumBuffers.map { $0 == nil ? 0.0 : 1.0 }
    try processGroup.broadcast(&present)
    var buffers: [Tensor?] = []
    for (parameter, (local, isPresent)) in zip(optimizer.allParameters, zip(optimizer.momentumBuffers, present)) {
      guard isPresent == 1 else { buffers.append(nil); continue }
      var buffer = local ?? Tensor.zeros(parameter.value.shape)
      try buffer.scalars.withUnsafeMutableBufferPointer { try processGroup.broadcast($0, from: 0) }
      buffers.append(buffer)
    }
    try optimizer.restoreMomentumBuffers(buffers)
  }

  /// The step's loss and output std averaged over the ranks (each rank's is the mean over its own images, so
  /// this is the mean over the global batch), together with the vote of rank 0 alone on `stop` — one allreduce.
  /// Every rank gets the same values, so all of them take the same branch (stop, or non-finite loss).
  func agreed(_ stop: Bool, averaging result: inout SimSiamStepResult) throws -> Bool {
    guard processGroup.isDistributed else { return stop }
    var values = [Double(result.loss), Double(result.normalizedOutputStd), processGroup.isRoot && stop ? 1 : 0]
    try processGroup.allreduceSum(&values)
    let ranks = Double(processGroup.size)
    result.loss = Float(values[0] / ranks)
    result.normalizedOutputStd = Float(values[1] / ranks)
    return values[2] > 0
  }

  /// Rank 0's `flag`, on every rank.
  func agreedByRoot(_ flag: Bool) throws -> Bool {
    guard processGroup.isDistributed else { return flag }
    var value = [flag ? 1.0 : 0.0]
    try processGroup.broadcast(&value)
    return value[0] > 0
  }
}
