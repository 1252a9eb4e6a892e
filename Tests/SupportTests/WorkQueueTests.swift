import Foundation
import Synchronization
import Testing
import Support

/// The work queue: every item once, worker indices in range, and the first error stopping the queue.
@Suite struct WorkQueueTests {
  enum Failure: Error, Equatable { case item(Int) }

  /// Indices that ran, in the order their bodies started.
  final class Log: Sendable {
    let entries = Mutex<[Int]>([])
    func append(_ index: Int) { entries.withLock { $0.append(index) } }
    var all: [Int] { entries.withLock { $0 } }
  }

  @Test(arguments: [1, 2, 4, 16])
  func everyIndexRunsOnceOnAWorkerInRange(workers: Int) {
    let log = Log(), workersSeen = Mutex<Set<Int>>([])
    runWorkQueue(count: 100, workers: workers) { index, worker in  // a body that cannot throw needs no `try`
      log.append(index)
      workersSeen.withLock { _ = $0.insert(worker) }
    }
    #expect(log.all.sorted() == Array(0..<100))
    #expect(workersSeen.withLock { $0 }.allSatisfy { $0 >= 0 && $0 < workers })
    runWorkQueue(count: 0, workers: workers) { _, _ in Issue.record("an empty queue runs nothing") }
  }

  @Test func oneWorkerRunsInOrderAndStopsAtTheFirstError() {
    let log = Log()
    #expect(throws: Failure.item(3)) {
      try runWorkQueue(count: 10, workers: 1) { index, worker in
        #expect(worker == 0)
        log.append(index)
        if index == 3 || index == 6 { throw Failure.item(index) }
      }
    }
    #expect(log.all == [0, 1, 2, 3])
  }

  @Test func anErrorSkipsTheItemsNotYetClaimed() {
    // Every item fails: each of the 4 threads runs at most the one item it claimed before the first error.
    let log = Log()
    #expect(throws: Failure.self) {
      try runWorkQueue(count: 1_000, workers: 4) { index, _ in
        log.append(index)
        throw Failure.item(index)
      }
    }
    #expect(!log.all.isEmpty && log.all.count <= 4)
  }

  @Test func theErrorIsRethrownAfterTheRunningItemsFinish() throws {
    // Item 0 fails while item 1 (claimed by the other thread) is still running; the call returns only once item 1
    // has finished, and rethrows item 0's error.
    let started = Log(), finished = Log()
    let item1Started = DispatchSemaphore(value: 0)
    #expect(throws: Failure.item(0)) {
      try runWorkQueue(count: 50, workers: 2) { index, _ in
        started.append(index)
        switch index {
        case 0:
          // Wait (bounded: the two threads could be one) until the other item is running, then fail.
          _ = item1Started.wait(timeout: .now() + 5)
          throw Failure.item(0)
        case 1:
          item1Started.signal()
          Thread.sleep(forTimeInterval: 0.2)
          finished.append(index)
        default:
          finished.append(index)
        }
      }
    }
    #expect(started.all.contains(0))
    #expect(Set(started.all).subtracting([0]) == Set(finished.all))  // nothing still running when it returned
  }
}
