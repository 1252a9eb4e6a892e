// What the data-parallel protocol runs (`run linear`, `run fcn`, `run faster-rcnn` under mpirun) share besides the
// engine's SyncBN and GradientAverager: rank 0's state carried to the other ranks (DDP's initial broadcast, and a
// resume that only rank 0 reads), and the error for a batch the ranks cannot share.
import Distributed
import Layers
import Tensors

enum DataParallelState {
  /// Rank 0's `parameters` (weights and BN buffers), the optimizer's momentum buffers and `counters`, on every rank.
  /// Every rank must pass the same parameters in the same order; with one process nothing happens.
  static func broadcastFromRoot(_ parameters: [Parameter], optimizer: any Optimizer, counters: inout [Double],
                                over group: any ProcessGroup) throws {
    guard group.isDistributed else { return }
    try group.broadcast(&counters)
    for parameter in parameters {
      try parameter.value.scalars.withUnsafeMutableBufferPointer { try group.broadcast($0, from: 0) }
    }
    // Momentum buffers exist once a step has run (or a checkpoint restored them): rank 0 says which exist.
    var present = optimizer.momentumBuffers.map { $0 == nil ? 0.0 : 1.0 }
    try group.broadcast(&present)
    var buffers: [Tensor?] = []
    for (parameter, (local, isPresent)) in zip(optimizer.allParameters, zip(optimizer.momentumBuffers, present)) {
      guard isPresent == 1 else { buffers.append(nil); continue }
      var buffer = local ?? Tensor.zeros(parameter.value.shape)
      try buffer.scalars.withUnsafeMutableBufferPointer { try group.broadcast($0, from: 0) }
      buffers.append(buffer)
    }
    try optimizer.restoreMomentumBuffers(buffers)
  }

  /// Refuses a run whose batches cannot give every rank at least one image: a rank with none would have no
  /// BatchNorm statistics and no mean loss. `lastBatch` is the image count of the smallest batch of the run.
  static func checkShares(batchSize: Int, lastBatch: Int, ranks: Int, what: String) throws {
    guard ranks > 1, lastBatch < ranks || batchSize < ranks else { return }
    throw ProtocolError.invalidRequest(
      reason: "\(what): a batch of \(min(batchSize, lastBatch)) image(s) cannot be shared by \(ranks) ranks (every "
        + "rank needs at least one image of each global batch; the configured batch size is the global batch).",
      hint: "Run with fewer ranks (mpirun -np), or change the batch size or data limit so that every batch holds "
        + "at least \(ranks) images.")
  }
}
