// The package's one work queue: independent items on a few threads, each thread claiming the next unclaimed index
// when it finishes one. Tensors' `parallelForEach` runs the engine's coarse kernels through it (with the engine's
// thread count), the SVM protocols run their liblinear fits through it (with `--workers`).
import Dispatch
import Synchronization

/// Runs `body(index, worker)` once for every index in `0..<count`, on min(`workers`, `count`) threads. Indices are
/// claimed in increasing order (callers put the longest items first); `worker` (in `0..<workers`) names the thread
/// running the call, so a caller can hand each worker its own slice of a buffer allocated beforehand.
///
/// It balances itself: a thread slowed by another process simply claims fewer indices. Meant for a few dozen to a
/// few thousand coarse items (each claim takes a lock). Different indices must write different elements.
///
/// Errors: the first error a body throws is rethrown once every running body has returned. No index is claimed
/// after it, so the items not yet started are skipped, and the ones already running finish. One worker runs the
/// items in order on the calling thread, stopping at the first error.
public func runWorkQueue<E: Error>(count: Int, workers: Int,
                                   _ body: (_ index: Int, _ worker: Int) throws(E) -> Void) throws(E) {
  guard count > 0 else { return }
  precondition(workers >= 1, "A work queue needs at least one worker, got \(workers).")
  let threads = min(workers, count)
  if threads == 1 {
    for index in 0..<count { try body(index, 0) }
    return
  }
  let state = Mutex(QueueState<E>())
  withoutActuallyEscaping(body) { body in
    let box = UncheckedSendableBox(body)
    DispatchQueue.concurrentPerform(iterations: threads) { worker in
      while let index = state.withLock({ $0.claim(count) }) {
        do throws(E) { try box.value(index, worker) } catch {
          state.withLock { $0.fail(error) }
          return
        }
      }
    }
  }
  if let error = state.withLock({ $0.error }) { throw error }
}

/// The next index to hand out and the first error, behind the queue's lock.
private struct QueueState<E: Error> {
  var next = 0
  var error: E?

  /// The next index, or nil when every index is handed out or an item has failed.
  mutating func claim(_ count: Int) -> Int? {
    guard error == nil, next < count else { return nil }
    next += 1
    return next - 1
  }

  /// Keeps the first error; later ones (from items that were already running) are dropped.
  mutating func fail(_ error: E) {
    if self.error == nil { self.error = error }
  }
}

/// Carries the non-Sendable body into `concurrentPerform`. Safe because `runWorkQueue` waits for every thread
/// before returning, and different indices write different elements.
private struct UncheckedSendableBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
