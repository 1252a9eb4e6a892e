import Distributed
import Foundation
import Testing

@Suite struct ProcessGroupTests {
  @Test func aSingleProcessIsRankZeroOfOneAndCollectivesKeepValues() throws {
    let group = SingleProcessGroup()
    #expect(group.rank == 0 && group.size == 1 && !group.isDistributed && group.isRoot)
    var floats: [Float] = [1, -2, 3.5]
    try group.allreduceSum(&floats)
    try group.broadcast(&floats)
    #expect(floats == [1, -2, 3.5])
    #expect(try group.allgather([4, 5]) == [4, 5])
    try group.barrier()
  }

  /// The test process itself is not started by mpirun (the MPI tests start their own), so it gets no MPI.
  @Test func aPlainRunIsASingleProcessWithoutMPI() throws {
    guard !ProcessGroups.isLaunchedByMPI else { return }
    #expect(try ProcessGroups.launched() is SingleProcessGroup)
  }

  @Test func simulatedRanksSumBroadcastAndGatherInRankOrder() {
    let rendezvous = Rendezvous(size: 3)
    let seen = Mutexed<[Int: [Double]]>([:])
    rendezvous.run { rank in
      let group = SimulatedProcessGroup(rank: rank, rendezvous: rendezvous)
      var values = [Double(rank), 10 * Double(rank)]
      try? group.allreduceSum(&values)  // [0+1+2, 0+10+20]
      var fromTwo = [Double(rank)]
      try? group.broadcast(&fromTwo, from: 2)
      let gathered = (try? group.allgather([Double(rank)])) ?? []
      seen.update { $0[rank] = values + fromTwo + gathered }
    }
    for rank in 0..<3 { #expect(seen.value[rank] == [3, 30, 2, 0, 1, 2]) }
  }
}
