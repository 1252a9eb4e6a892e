import Foundation
import Testing
@testable import Tensors

/// `Threads.start`'s checks (issue 14 item 5). The end-to-end case (the binary under `ulimit -v` with `--threads 64`)
/// is CLITests' ThreadStartCommandTests.
@Suite struct ThreadStartTests {
  @Test func refusesCountsOutsideTheDocumentedRange() {
    for requested in [-1, Threads.maximum + 1, 100_000] {
      #expect(throws: ThreadStartError.outOfRange(requested: requested, maximum: 256)) {
        try Threads.start(requested)
      }
    }
    #expect(ThreadStartError.outOfRange(requested: 300, maximum: 256).description
      == "--threads must be 0 (all active cores) or 1…256, got 300.")
  }

  /// A limit just above what the process already maps leaves room for no worker: refused, naming the count, the
  /// limit and what fits (0: the hint then names only the limit).
  @Test func refusesWorkersTheAddressSpaceLimitCannotHold() throws {
    let inUse = Threads.addressSpaceInUse()
    #expect(inUse > 0)
    let limit = inUse + Threads.workingReserveBytes + 3 * Threads.bytesPerWorker + Threads.bytesPerWorker / 2
    // 3 workers fit (with the reserve), 4 do not; 3.5 workers' worth is left, so 3 is the affordable count.
    try Threads.checkAddressSpace(threads: 2, limit: limit)
    do {
      try Threads.checkAddressSpace(threads: 64, limit: limit)
      Issue.record("64 workers were accepted under a limit that holds 3")
    } catch {
      guard case let .notEnoughAddressSpace(threads, needed, limitBytes, _, affordable) = error else {
        Issue.record("unexpected \(error)")
        return
      }
      #expect(threads == 64 && limitBytes == limit && affordable == 3)
      #expect(needed == 64 * Threads.bytesPerWorker + Threads.workingReserveBytes)
      #expect(error.description.contains("Cannot start 64 worker threads"))
      #expect(error.description.contains("memory") && error.description.contains("--threads 3 or fewer"))
    }
    // No limit: nothing to check; an absurd count overflows nothing.
    try Threads.checkAddressSpace(threads: Threads.maximum, limit: nil)
    #expect(throws: ThreadStartError.self) { try Threads.checkAddressSpace(threads: Int.max / 2, limit: limit) }
  }

  /// The probe really starts the threads (all alive at once) and joins them: afterwards the process has no more
  /// threads than before.
  @Test func probeStartsAndJoinsEveryThread() throws {
    func threadCount() -> Int {
      (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }
    try Threads.probeThreadCreation(32)
    let before = threadCount()
    try Threads.probeThreadCreation(32)
    // Other suites run concurrently and may start or end threads; 32 leftover threads would be far beyond that.
    #expect(threadCount() < before + 16)
  }

  @Test func messagesNameThreadsAndMemory() {
    let refused = ThreadStartError.cannotCreateThread(threads: 64, started: 40, errno: EAGAIN)
    #expect(refused.description.contains("Cannot start 64 worker threads: the system refused thread 41"))
    #expect(refused.description.contains("--threads 40 or fewer"))
    let tooBig = ThreadStartError.notEnoughAddressSpace(threads: 64, neededBytes: 9 << 30, limitBytes: 6 << 30,
                                                         inUseBytes: 1 << 29, affordable: 0)
    #expect(tooBig.description.contains("9216 MiB of memory") && tooBig.description.contains("limit is 6144 MiB"))
    #expect(!tooBig.description.contains("--threads 0"))
  }
}
