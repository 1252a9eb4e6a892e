// Typed errors of the collectives: which MPI call failed, on which rank, with Open MPI's own message and a hint.

public enum DistributedError: Error, CustomStringConvertible, Equatable {
  /// An MPI function returned an error code (the world communicator uses MPI_ERRORS_RETURN, so errors come back
  /// here instead of aborting inside the library).
  case mpiCallFailed(call: String, code: Int32, message: String, rank: Int, size: Int)
  /// The environment says the process was started by mpirun / srun, but MPI could not be initialised.
  case initializationFailed(code: Int32, message: String)

  public var description: String {
    switch self {
    case let .mpiCallFailed(call, code, message, rank, size):
      "\(call) failed on rank \(rank) of \(size): \(message) (MPI error \(code)). A peer rank probably stopped or "
        + "the network between the machines failed; the run cannot continue. Restart the same command with "
        + "--resume auto to continue from the last checkpoint."
    case let .initializationFailed(code, message):
      "MPI_Init_thread failed: \(message) (MPI error \(code)). The process was started by mpirun or srun "
        + "(OMPI_COMM_WORLD_SIZE / PMIX_RANK is set) but could not join the job; run it without the launcher for a "
        + "single-process run, or check the launcher's own messages above."
    }
  }
}
