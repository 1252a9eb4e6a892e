// Swift Testing runs suites in parallel in one process, and the kernels' thread count is process-wide
// (Threads.configure). A test that runs the same work at two thread counts would otherwise change the count under a
// test that compares two runs bit for bit (PretrainCollapseTests' determinism check failed that way once in a full
// run). Both kinds take this one lock, so they never overlap.
import Foundation
import Tensors

public enum ThreadCountLock {
  private static let lock = NSRecursiveLock()

  /// Runs `body` with no other holder of the lock: the thread count stays what it is unless `body` changes it, and
  /// whatever `body` sets is undone afterwards.
  public static func holding<T>(_ body: () throws -> T) rethrows -> T {
    lock.lock()
    defer { lock.unlock() }
    let before = Threads.count
    defer { Threads.configure(before) }
    return try body()
  }
}
