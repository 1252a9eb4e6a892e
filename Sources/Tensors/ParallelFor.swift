// The engine's one place that runs a loop body on several threads.
//
// Threading rule: GEMMs run on OpenBLAS's own thread pool (all cores); every other kernel runs through
// `parallelFor`. The two never nest: never call BLAS from inside a `parallelFor` body.
import Dispatch
import Foundation
import COpenBLAS
import Synchronization

/// Engine-wide thread settings.
public enum Threads {
  // nonisolated(unsafe): written by `configure` under BLASThreadMode's condition lock (a lock that waits, which
  // Mutex cannot do), read without it; callers configure once at start-up, before kernels run.
  nonisolated(unsafe) private static var configuredCount = ProcessInfo.processInfo.activeProcessorCount

  /// Worker threads for our kernels and for OpenBLAS (default: all active cores).
  public static var count: Int { configuredCount }

  /// Sets the thread count for both our kernels and OpenBLAS; 0 means all active cores.
  /// Call it once at start-up, before any kernel runs.
  public static func configure(_ requested: Int) {
    let available = ProcessInfo.processInfo.activeProcessorCount
    // Under the BLAS mode lock: a single-threaded region that is active keeps OpenBLAS at one thread and restores
    // the new count when it ends (in-process CLI tests configure threads while other suites run regions).
    BLASThreadMode.condition.lock()
    defer { BLASThreadMode.condition.unlock() }
    configuredCount = requested > 0 ? requested : available
    if BLASThreadMode.regions == 0 { openblas_set_num_threads(Int32(configuredCount)) }
  }
}

/// Runs `body` over disjoint sub-ranges covering `range`, on up to `Threads.count` threads.
///
/// Ranges shorter than `minimumChunk` per thread run inline: spawning costs microseconds, so tiny loops
/// stay single-threaded. `body` may write through pointers captured from outside, as long as different
/// sub-ranges write different elements.
public func parallelFor(_ range: Range<Int>, minimumChunk: Int = 1,
                        _ body: (Range<Int>) -> Void) {
  let total = range.count
  guard total > 0 else { return }
  let chunks = min(Threads.count, max(1, total / max(minimumChunk, 1)))
  if chunks <= 1 {
    body(range)
    return
  }
  withoutActuallyEscaping(body) { body in
    let box = UncheckedSendableBox(body)
    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
      let start = range.lowerBound + total * chunk / chunks
      let end = range.lowerBound + total * (chunk + 1) / chunks
      box.value(start..<end)
    }
  }
}

/// Runs `body(index, worker)` once for every index in `0..<count`, on `parallelForEachWorkers(count)` threads that
/// each claim the next unclaimed index when they finish one. `worker` (in `0..<parallelForEachWorkers(count)`)
/// names the thread running the call, so a caller can hand each worker its own slice of a scratch buffer
/// allocated once beforehand. Such a caller passes the `workers` it sized the buffer for: `Threads.count` may change
/// between the two reads (in-process CLI tests configure threads while other suites run), and a worker index past
/// the buffer would write outside it.
///
/// Unlike `parallelFor`'s fixed equal split, this balances itself: a thread slowed by another process (the data
/// loader's workers, other jobs on the machine) simply claims fewer indices. Meant for a few dozen to a few
/// thousand coarse work items (each claim is one atomic increment). Different indices must write different elements.
public func parallelForEach(_ count: Int, workers: Int? = nil, _ body: (_ index: Int, _ worker: Int) -> Void) {
  guard count > 0 else { return }
  let threads = workers ?? parallelForEachWorkers(count)
  precondition(threads >= 1, "parallelForEach needs at least one worker, got \(threads).")
  if threads <= 1 {
    for index in 0..<count { body(index, 0) }
    return
  }
  let counter = ClaimCounter(count)
  withoutActuallyEscaping(body) { body in
    let box = UncheckedSendableBox(body)
    DispatchQueue.concurrentPerform(iterations: threads) { worker in
      while let index = counter.claim() { box.value(index, worker) }
    }
  }
}

/// The number of threads `parallelForEach(count, _:)` uses: min(Threads.count, count), at least 1.
public func parallelForEachWorkers(_ count: Int) -> Int { max(1, min(Threads.count, count)) }

/// Hands out 0, 1, …, count − 1, each once, to whichever thread asks first.
private final class ClaimCounter: Sendable {
  private let next = Atomic<Int>(0)
  private let count: Int

  init(_ count: Int) { self.count = count }

  func claim() -> Int? {
    // Each increment returns a different old value; a thread stops at its first one ≥ count, so `next` ends at most
    // one per worker past `count`. Relaxed: the indices only need to be distinct, and concurrentPerform's join
    // orders the bodies' writes before the caller reads them.
    let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
    return index < count ? index : nil
  }
}

/// Carries a non-Sendable closure into `concurrentPerform`. Safe here because `parallelFor` waits for
/// every chunk before returning, and each chunk writes a disjoint part of the output. It stays @unchecked: the
/// closures capture unsafe pointers and caller state the compiler cannot prove disjoint.
private struct UncheckedSendableBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
