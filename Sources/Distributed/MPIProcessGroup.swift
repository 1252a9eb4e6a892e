// Open MPI's MPI_COMM_WORLD as a ProcessGroup, and the launch detection that decides between it and a single
// process. Only the thread that initialised MPI calls it (MPI_THREAD_FUNNELED): the training loop's thread; loader
// threads and the engine's kernels never communicate.
import CMPI
import Foundation
import Synchronization

/// The process group a command runs in.
public enum ProcessGroups {
  /// The launcher's environment variables: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE, PMIx launchers (mpirun,
  /// `srun --mpi=pmix`) set PMIX_RANK, Slurm's PMI-2 sets PMI_SIZE.
  static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"]

  /// True when a launcher started this process (one of `launcherVariables` is set).
  public static var isLaunchedByMPI: Bool {
    let environment = ProcessInfo.processInfo.environment
    return launcherVariables.contains { environment[$0] != nil }
  }

  /// The number of ranks the launcher started, read from its environment without initialising MPI (Open MPI's
  /// OMPI_COMM_WORLD_SIZE, PMI-2's PMI_SIZE, Slurm's SLURM_NTASKS under srun); nil without a launcher.
  public static var launchedWorldSize: Int? {
    guard isLaunchedByMPI else { return nil }
    let environment = ProcessInfo.processInfo.environment
    return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"].lazy.compactMap { environment[$0].flatMap(Int.init) }
      .first
  }

  /// Ranks of this job on this machine (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE), when a launcher says: each rank
  /// then takes its share of the cores instead of all of them.
  public static var ranksOnThisMachine: Int? {
    ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
  }

  /// MPI's world when started by mpirun / srun (MPI initialised on the first call), else a `SingleProcessGroup`
  /// without any MPI call: a plain `simsiam-bench pretrain` needs no launcher.
  public static func launched() throws -> any ProcessGroup {
    isLaunchedByMPI ? try MPIProcessGroup.world() : SingleProcessGroup()
  }
}

/// MPI_COMM_WORLD with MPI_ERRORS_RETURN: a failed call throws `DistributedError.mpiCallFailed`.
///
/// What a dead peer does (Open MPI 4.1, measured; README "Scaling out"): when a rank dies (killed, crashed, or
/// exited with an error), mpirun's runtime notices and ends the whole job — it prints which rank died and how,
/// sends SIGTERM (then SIGKILL) to the other ranks and exits non-zero. A survivor blocked in a collective is
/// therefore ended by mpirun within about a second, not left waiting. Errors a call does return (a broken TCP
/// connection between machines) come back as `DistributedError`, and `finish(_:)` turns any error into
/// MPI_Abort, which ends every rank.
public final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {
  // @unchecked Sendable: the communicator handle is immutable and MPI itself serialises what it needs; calls
  // happen on the initialising thread only (MPI_THREAD_FUNNELED).
  public let rank: Int
  public let size: Int
  private let communicator: MPI_Comm?

  private static let shared = Mutex<Result<MPIProcessGroup, DistributedError>?>(nil)

  /// Initialises MPI once (MPI_Init_thread, FUNNELED), sets MPI_ERRORS_RETURN on the world, and returns it.
  public static func world() throws -> MPIProcessGroup {
    try shared.withLock { state in
      if let state { return try state.get() }
      let result = Result<MPIProcessGroup, DistributedError> { () throws(DistributedError) in
        var provided: Int32 = 0
        let code = MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided)
        guard code == cmpi_success() else {
          throw DistributedError.initializationFailed(code: code, message: errorString(code))
        }
        let world = cmpi_comm_world()
        _ = MPI_Comm_set_errhandler(world, cmpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        _ = MPI_Comm_rank(world, &rank)
        _ = MPI_Comm_size(world, &size)
        return MPIProcessGroup(communicator: world, rank: Int(rank), size: Int(size))
      }
      state = result
      return try result.get()
    }
  }

  private init(communicator: MPI_Comm?, rank: Int, size: Int) {
    self.communicator = communicator
    self.rank = rank
    self.size = size
  }

  /// Open MPI's text for an error code.
  static func errorString(_ code: Int32) -> String {
    var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
    var length: Int32 = 0
    guard MPI_Error_string(code, &text, &length) == cmpi_success() else { return "unknown MPI error" }
    return String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  private func check(_ code: Int32, _ call: String) throws {
    guard code != cmpi_success() else { return }
    throw DistributedError.mpiCallFailed(call: call, code: code, message: Self.errorString(code), rank: rank,
                                         size: size)
  }

  /// MPI counts are Int32: longer buffers go in slices of at most 2^30 elements.
  private static let maximumSlice = 1 << 30

  private func sliced<T>(_ buffer: UnsafeMutableBufferPointer<T>, _ body: (UnsafeMutablePointer<T>, Int32) -> Int32,
                         call: String) throws {
    guard let base = buffer.baseAddress else { return }
    var start = 0
    while start < buffer.count {
      let count = min(Self.maximumSlice, buffer.count - start)
      try check(body(base + start, Int32(count)), call)
      start += count
    }
  }

  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
    try sliced(buffer, { MPI_Allreduce(cmpi_in_place(), $0, $1, cmpi_float(), cmpi_sum(), communicator) },
               call: "MPI_Allreduce")
  }

  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
    try sliced(buffer, { MPI_Allreduce(cmpi_in_place(), $0, $1, cmpi_double(), cmpi_sum(), communicator) },
               call: "MPI_Allreduce")
  }

  public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) throws {
    precondition((0..<size).contains(root), "broadcast from rank \(root) in a group of \(size).")
    try sliced(buffer, { MPI_Bcast($0, $1, cmpi_float(), Int32(root), communicator) }, call: "MPI_Bcast")
  }

  public func broadcast(_ buffer: UnsafeMutableBufferPointer<Double>, from root: Int) throws {
    precondition((0..<size).contains(root), "broadcast from rank \(root) in a group of \(size).")
    try sliced(buffer, { MPI_Bcast($0, $1, cmpi_double(), Int32(root), communicator) }, call: "MPI_Bcast")
  }

  public func allgather(_ local: UnsafeBufferPointer<Double>, into gathered: UnsafeMutableBufferPointer<Double>)
    throws {
    precondition(gathered.count == local.count * size && local.count < Self.maximumSlice,
                 "allgather of \(local.count) elements over \(size) ranks needs a result of \(local.count * size) "
                   + "elements, got \(gathered.count).")
    guard local.count > 0 else { return }
    try check(MPI_Allgather(local.baseAddress, Int32(local.count), cmpi_double(), gathered.baseAddress,
                            Int32(local.count), cmpi_double(), communicator), "MPI_Allgather")
  }

  public func allgather(_ local: UnsafeBufferPointer<Float>, into gathered: UnsafeMutableBufferPointer<Float>)
    throws {
    precondition(gathered.count == local.count * size && local.count < Self.maximumSlice,
                 "allgather of \(local.count) elements over \(size) ranks needs a result of \(local.count * size) "
                   + "elements, got \(gathered.count).")
    guard local.count > 0 else { return }
    try check(MPI_Allgather(local.baseAddress, Int32(local.count), cmpi_float(), gathered.baseAddress,
                            Int32(local.count), cmpi_float(), communicator), "MPI_Allgather")
  }

  public func barrier() throws {
    try check(MPI_Barrier(communicator), "MPI_Barrier")
  }

  /// Ends the job after `body`: MPI_Finalize when it returns; when it throws, the error on standard error (naming
  /// this rank) and MPI_Abort, which ends every rank — a survivor waiting in a collective would otherwise wait
  /// for a rank that left, and MPI_Finalize itself waits for all ranks.
  public func finish<T>(_ body: () throws -> T) -> T {
    do {
      let value = try body()
      _ = MPI_Finalize()
      return value
    } catch {
      abort(error)
    }
  }

  /// Prints `error` as this rank's and aborts the whole job (MPI_Abort, exit status 1).
  public func abort(_ error: Error) -> Never {
    FileHandle.standardError.write(Data("Error (rank \(rank) of \(size)): \(error)\n".utf8))
    _ = MPI_Abort(communicator, 1)
    exit(1)
  }
}
