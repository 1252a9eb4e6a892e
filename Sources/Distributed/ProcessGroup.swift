// The collectives data-parallel training needs (rank, size, broadcast, allreduce-sum in place, allgather, barrier),
// behind one protocol: Open MPI under `mpirun` / `srun` (MPIProcessGroup), and a single process that calls no MPI
// at all (SingleProcessGroup) for a plain run. Layers (SyncBN) and Training (DDP) see only this protocol, so tests
// can pass a simulated group.

/// A fixed set of `size` cooperating processes; this one is `rank` (0-based). Every collective must be called by
/// every rank, in the same order, with buffers of the same length: a collective is a meeting, and a rank that does
/// not come leaves the others waiting (MPIProcessGroup's errors say what happens then).
///
/// Buffers are unsafe buffer pointers so that callers reduce in place, without a copy per call (gradients, BN sums).
public protocol ProcessGroup: AnyObject {
  /// This process's index, 0..<size. Rank 0 writes checkpoints, logs and database rows.
  var rank: Int { get }
  /// The number of processes (the world size N).
  var size: Int { get }
  /// Every element becomes the sum over ranks of that element (MPI_Allreduce, MPI_SUM, in place).
  func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
  func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
  /// Every rank's buffer becomes rank `root`'s (MPI_Bcast).
  func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) throws
  func broadcast(_ buffer: UnsafeMutableBufferPointer<Double>, from root: Int) throws
  /// `gathered` [size × local.count] receives every rank's `local`, in rank order, on every rank (MPI_Allgather).
  func allgather(_ local: UnsafeBufferPointer<Double>, into gathered: UnsafeMutableBufferPointer<Double>) throws
  func allgather(_ local: UnsafeBufferPointer<Float>, into gathered: UnsafeMutableBufferPointer<Float>) throws
  /// Returns once every rank has called it (MPI_Barrier).
  func barrier() throws
  /// Ends the whole job after a failure where no error can be thrown (inside a layer's forward or backward):
  /// prints `error` naming this rank, then stops every rank (MPI_Abort).
  func abort(_ error: Error) -> Never
}

extension ProcessGroup {
  /// True when there is more than one process, i.e. when collectives do anything.
  public var isDistributed: Bool { size > 1 }
  /// Rank 0: the one that writes files, logs and database rows.
  public var isRoot: Bool { rank == 0 }

  public func allreduceSum(_ values: inout [Float]) throws {
    try values.withUnsafeMutableBufferPointer { try allreduceSum($0) }
  }

  public func allreduceSum(_ values: inout [Double]) throws {
    try values.withUnsafeMutableBufferPointer { try allreduceSum($0) }
  }

  public func broadcast(_ values: inout [Float], from root: Int = 0) throws {
    try values.withUnsafeMutableBufferPointer { try broadcast($0, from: root) }
  }

  public func broadcast(_ values: inout [Double], from root: Int = 0) throws {
    try values.withUnsafeMutableBufferPointer { try broadcast($0, from: root) }
  }

  /// Every rank's `local`, concatenated in rank order: [size × local.count].
  public func allgather(_ local: [Double]) throws -> [Double] {
    var gathered = [Double](repeating: 0, count: local.count * size)
    try local.withUnsafeBufferPointer { localBuffer in
      try gathered.withUnsafeMutableBufferPointer { try allgather(localBuffer, into: $0) }
    }
    return gathered
  }
}

/// The whole world is this process: rank 0 of 1. Collectives return at once (a sum over one rank is the value
/// itself) and no MPI function is ever called, so a plain run needs neither `mpirun` nor MPI_Init.
public final class SingleProcessGroup: ProcessGroup {
  public init() {}
  public var rank: Int { 0 }
  public var size: Int { 1 }
  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
  public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) {
    precondition(root == 0, "A single-process group has only rank 0; broadcast from rank \(root) asked.")
  }
  public func broadcast(_ buffer: UnsafeMutableBufferPointer<Double>, from root: Int) {
    precondition(root == 0, "A single-process group has only rank 0; broadcast from rank \(root) asked.")
  }
  public func allgather(_ local: UnsafeBufferPointer<Double>, into gathered: UnsafeMutableBufferPointer<Double>) {
    precondition(gathered.count == local.count,
                 "allgather over 1 rank needs a result of \(local.count) elements, got \(gathered.count).")
    _ = gathered.initialize(from: local)
  }
  public func allgather(_ local: UnsafeBufferPointer<Float>, into gathered: UnsafeMutableBufferPointer<Float>) {
    precondition(gathered.count == local.count,
                 "allgather over 1 rank needs a result of \(local.count) elements, got \(gathered.count).")
    _ = gathered.initialize(from: local)
  }
  public func barrier() {}
  public func abort(_ error: Error) -> Never {
    fatalError("\(error)")  // unreachable in practice: a single process's collectives never fail
  }
}
