// The engine's ways of running a loop body on several threads: `parallelFor` (a fixed equal split) and
// `parallelForEach` (Support's work queue, with the engine's thread count).
//
// Threading rule: GEMMs run on OpenBLAS's own thread pool (all cores); every other kernel runs through
// `parallelFor`. The two never nest: never call BLAS from inside a `parallelFor` body.
import Dispatch
import Foundation
import COpenBLAS
import Support

/// Engine-wide thread settings.
public enum Threads {
  // nonisolated(unsafe): written by `configure` under BLASThreadMode's condition lock (a lock that waits, which
  // Mutex cannot do), read without it; callers configure once at start-up, before kernels run.
  nonisolated(unsafe) private static var configuredCount = ProcessInfo.processInfo.activeProcessorCount

  /// Worker threads for our kernels and for OpenBLAS (default: all active cores).
  public static var count: Int { configuredCount }

  /// Sets the thread count for both our kernels and OpenBLAS; 0 means all active cores.
  /// Call it once at start-up, before any kernel runs. Counts from outside (`--threads`) go through `start`, which
  /// first proves that the process can afford them (ThreadStart.swift).
  public static func configure(_ requested: Int) {
    precondition((0...maximum).contains(requested), "Threads.configure takes 0…\(maximum) threads, got \(requested).")
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
/// each claim the next unclaimed index when they finish one: Support's `runWorkQueue` with the engine's thread count.
/// `worker` (in `0..<parallelForEachWorkers(count)`) names the thread running the call, so a caller can hand each
/// worker its own slice of a scratch buffer allocated once beforehand. Such a caller passes the `workers` it sized
/// the buffer for: `Threads.count` may change between the two reads (in-process CLI tests configure threads while
/// other suites run), and a worker index past the buffer would write outside it.
///
/// Unlike `parallelFor`'s fixed equal split, this balances itself: a thread slowed by another process (the data
/// loader's workers, other jobs on the machine) simply claims fewer indices. Meant for a few dozen to a few
/// thousand coarse work items (each claim is one atomic increment). Different indices must write different elements.
public func parallelForEach(_ count: Int, workers: Int? = nil, _ body: (_ index: Int, _ worker: Int) -> Void) {
  runWorkQueue(count: count, workers: workers ?? parallelForEachWorkers(count), body)
}

/// The number of threads `parallelForEach(count, _:)` uses: min(Threads.count, count), at least 1.
public func parallelForEachWorkers(_ count: Int) -> Int { max(1, min(Threads.count, count)) }

/// Carries a non-Sendable closure into `concurrentPerform`. Safe here because `parallelFor` waits for
/// every chunk before returning, and each chunk writes a disjoint part of the output. It stays @unchecked: the
/// closures capture unsafe pointers and caller state the compiler cannot prove disjoint.
private struct UncheckedSendableBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
