// A process group of `size` threads in one process, for testing collectives' users (SyncBN, gradient averaging)
// without MPI: every collective is a rendezvous where the ranks' buffers meet and are combined in rank order.
import Distributed
import Foundation

/// The meeting point the simulated ranks share.
final class Rendezvous: @unchecked Sendable {
  // @unchecked: every field is read and written under `condition`.
  let size: Int
  private let condition = NSCondition()
  private var deposits: [[Double]?]
  private var result: [[Double]] = []
  private var generation = 0

  init(size: Int) {
    self.size = size
    deposits = Array(repeating: nil, count: size)
  }

  /// Deposits `values` for `rank`, waits for every rank, and returns `combine(all deposits in rank order)[rank]`.
  func exchange(_ values: [Double], rank: Int, combine: ([[Double]]) -> [[Double]]) -> [Double] {
    condition.lock()
    defer { condition.unlock() }
    let mine = generation
    deposits[rank] = values
    if deposits.allSatisfy({ $0 != nil }) {
      result = combine(deposits.map { $0! })
      deposits = Array(repeating: nil, count: size)
      generation += 1
      condition.broadcast()
    } else {
      while generation == mine { condition.wait() }
    }
    // `result` stays valid: the next meeting cannot complete before this rank deposits again.
    return result[rank]
  }

  /// Runs `body(rank)` on `size` threads at once and waits for all of them.
  func run(_ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchGroup()
    for rank in 0..<size {
      done.enter()
      let thread = Thread {
        body(rank)
        done.leave()
      }
      thread.stackSize = 8 << 20
      thread.start()
    }
    done.wait()
  }
}

/// One rank of a simulated group.
final class SimulatedProcessGroup: ProcessGroup, @unchecked Sendable {
  let rank: Int
  let rendezvous: Rendezvous
  /// Collectives this rank has joined (to check that layers meet as often as they should).
  private(set) var collectiveCount = 0

  init(rank: Int, rendezvous: Rendezvous) {
    self.rank = rank
    self.rendezvous = rendezvous
  }

  var size: Int { rendezvous.size }

  private func sum(_ values: [Double]) -> [Double] {
    collectiveCount += 1
    return rendezvous.exchange(values, rank: rank) { all in
      var total = [Double](repeating: 0, count: all[0].count)
      for deposit in all { for i in total.indices { total[i] += deposit[i] } }
      return Array(repeating: total, count: all.count)
    }
  }

  private func fromRoot(_ values: [Double], _ root: Int) -> [Double] {
    collectiveCount += 1
    return rendezvous.exchange(values, rank: rank) { all in Array(repeating: all[root], count: all.count) }
  }

  func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
    for (i, value) in sum(buffer.map(Double.init)).enumerated() { buffer[i] = Float(value) }
  }

  func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
    for (i, value) in sum(Array(buffer)).enumerated() { buffer[i] = value }
  }

  func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) {
    for (i, value) in fromRoot(buffer.map(Double.init), root).enumerated() { buffer[i] = Float(value) }
  }

  func broadcast(_ buffer: UnsafeMutableBufferPointer<Double>, from root: Int) {
    for (i, value) in fromRoot(Array(buffer), root).enumerated() { buffer[i] = value }
  }

  func allgather(_ local: UnsafeBufferPointer<Double>, into gathered: UnsafeMutableBufferPointer<Double>) {
    collectiveCount += 1
    let all = rendezvous.exchange(Array(local), rank: rank) { all in
      Array(repeating: all.flatMap { $0 }, count: all.count)
    }
    for (i, value) in all.enumerated() { gathered[i] = value }
  }

  func allgather(_ local: UnsafeBufferPointer<Float>, into gathered: UnsafeMutableBufferPointer<Float>) {
    collectiveCount += 1
    let all = rendezvous.exchange(local.map(Double.init), rank: rank) { all in
      Array(repeating: all.flatMap { $0 }, count: all.count)
    }
    for (i, value) in all.enumerated() { gathered[i] = Float(value) }
  }

  func barrier() { _ = sum([]) }

  func abort(_ error: Error) -> Never { fatalError("simulated rank \(rank): \(error)") }
}
