// The commands that run under `mpirun -np N` / `srun` with N > 1 (README "Scaling out"), and how they start: the
// launcher's process group, each rank's share of the machine's cores, and an error on any rank ending every rank.
import Distributed
import Foundation
import Tensors

/// A command that splits its work over the ranks of an MPI launch; any other command is refused there
/// (`NotDataParallel`), since N copies of it would write the same files and rows.
protocol DataParallelCommand {}

extension Pretrain: DataParallelCommand {}
extension RunVOCSVM: DataParallelCommand {}
extension RunLinear: DataParallelCommand {}
extension RunFCN: DataParallelCommand {}

extension CommonOptions {
  /// Runs `body` in the launcher's process group (a single process without a launcher). Ranks sharing a machine
  /// share its cores: without --threads, each takes cores / ranks on this machine. Under MPI an error on any rank
  /// ends every rank (MPI_Abort), never a hang; MPI_Finalize follows a normal return.
  func runInLaunchedGroup(_ body: (any ProcessGroup) throws -> Void) throws {
    let group = try ProcessGroups.launched()
    func configured() throws {
      if threads == 0, group.isDistributed, let local = ProcessGroups.ranksOnThisMachine {
        try Threads.start(max(1, ProcessInfo.processInfo.activeProcessorCount / local))
        Allocator.retainFreedMemory()
      } else {
        try configureThreads()
      }
      try body(group)
    }
    guard let world = group as? MPIProcessGroup else { return try configured() }
    world.finish { try configured() }
  }
}
