// The engine's one place that runs a loop body on several threads.
//
// Threading rule: GEMMs run on OpenBLAS's own thread pool (all cores); every other kernel runs through
// `parallelFor`. The two never nest: never call BLAS from inside a `parallelFor` body.
import Dispatch
import Foundation
import COpenBLAS

/// Engine-wide thread settings.
public enum Threads {
  nonisolated(unsafe) private static var configuredCount = ProcessInfo.processInfo.activeProcessorCount

  /// Worker threads for our kernels and for OpenBLAS (default: all active cores).
  public static var count: Int { configuredCount }

  /// Sets the thread count for both our kernels and OpenBLAS; 0 means all active cores.
  /// Call it once at start-up, before any kernel runs.
  public static func configure(_ requested: Int) {
    let available = ProcessInfo.processInfo.activeProcessorCount
    configuredCount = requested > 0 ? requested : available
    openblas_set_num_threads(Int32(configuredCount))
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

/// Carries a non-Sendable closure into `concurrentPerform`. Safe here because `parallelFor` waits for
/// every chunk before returning, and each chunk writes a disjoint part of the output.
private struct UncheckedSendableBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
