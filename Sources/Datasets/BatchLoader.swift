// Batches prepared by worker threads ahead of the training step (PyTorch DataLoader with num_workers and
// prefetch_factor), deterministic whatever the number of workers.
import Foundation
import Tensors

/// Which samples form each batch of an epoch: a seeded shuffle, cut into batches, optionally dropping the last
/// incomplete one (MMSelfSup pretraining uses `drop_last=True`).
public struct EpochPlan: Sendable, Equatable {
  public let batches: [[Int]]

  /// - Parameters: `seed` and `epoch` fix the permutation, so a resumed run sees the same order.
  public init(sampleCount: Int, batchSize: Int, shuffle: Bool, dropLast: Bool, seed: UInt64, epoch: Int) {
    precondition(sampleCount >= 0 && batchSize >= 1,
                 "An epoch plan needs a sample count ≥ 0 and a batch size ≥ 1, got \(sampleCount) and \(batchSize).")
    var order = Array(0..<sampleCount)
    if shuffle {
      var rng = SplitMix64.derived(seed, UInt64(epoch), 0x5AFF1E)
      order.shuffle(using: &rng)  // Fisher–Yates driven by our generator only
    }
    var batches: [[Int]] = []
    var start = 0
    while start < sampleCount {
      let end = min(sampleCount, start + batchSize)
      if end - start < batchSize && dropLast { break }
      batches.append(Array(order[start..<end]))
      start = end
    }
    self.batches = batches
  }
}

/// Prepares the batches of one epoch on `workers` threads, at most `prefetch` batches ahead of the consumer, and
/// hands them out in order.
///
/// `makeBatch(indices, batchNumber)` must be a pure function of its arguments (derive a sample's randomness from
/// `SplitMix64.derived(seed, epoch, index)`), which makes the output identical for any number of workers. An error
/// thrown by `makeBatch` is rethrown by `next()` for that batch; later batches are not handed out.
public final class BatchLoader<Batch: Sendable>: @unchecked Sendable {
  // @unchecked: every mutable field below is read and written only while holding `condition`. Not a
  // Synchronization.Mutex: workers and the consumer wait on the condition for each other, which Mutex cannot do.
  private let plan: EpochPlan
  private let makeBatch: @Sendable ([Int], Int) throws -> Batch
  private let prefetch: Int
  private let condition = NSCondition()
  private var ready: [Int: Result<Batch, Error>] = [:]
  private var nextToStart = 0
  private var nextToHand = 0
  private var isCancelled = false
  private var runningWorkers = 0

  public init(plan: EpochPlan, workers: Int, prefetch: Int = 2,
              makeBatch: @escaping @Sendable (_ indices: [Int], _ batchNumber: Int) throws -> Batch) {
    precondition(workers >= 1 && prefetch >= 1, "BatchLoader needs ≥ 1 worker and prefetch ≥ 1, got \(workers) and \(prefetch).")
    self.plan = plan
    self.makeBatch = makeBatch
    self.prefetch = max(prefetch, workers)
    runningWorkers = workers
    for _ in 0..<workers {
      let thread = Thread { [self] in work() }
      thread.name = "simsiam-bench loader"
      thread.start()
    }
  }

  deinit { cancel() }

  /// Number of batches in the epoch.
  public var count: Int { plan.batches.count }

  /// The next batch in order, waiting for it if needed; nil after the last one.
  public func next() throws -> Batch? {
    condition.lock()
    defer { condition.unlock() }
    guard nextToHand < plan.batches.count, !isCancelled else { return nil }
    while ready[nextToHand] == nil && !isCancelled { condition.wait() }
    guard !isCancelled || ready[nextToHand] != nil else { return nil }
    let result = ready.removeValue(forKey: nextToHand)!
    nextToHand += 1
    if case .failure = result { isCancelled = true }  // a failed epoch stops; nothing after it is handed out
    condition.broadcast()  // a worker may now start a batch further ahead, or stop
    return try result.get()
  }

  /// Stops the workers after their current batch (called automatically when the loader is released).
  public func cancel() {
    condition.lock()
    isCancelled = true
    condition.broadcast()
    condition.unlock()
  }

  private func work() {
    while true {
      condition.lock()
      while !isCancelled && nextToStart < plan.batches.count && nextToStart >= nextToHand + prefetch {
        condition.wait()
      }
      guard !isCancelled, nextToStart < plan.batches.count else {
        runningWorkers -= 1
        condition.unlock()
        return
      }
      let batchNumber = nextToStart
      nextToStart += 1
      condition.unlock()

      let result = Result { try makeBatch(plan.batches[batchNumber], batchNumber) }

      condition.lock()
      ready[batchNumber] = result
      condition.broadcast()
      condition.unlock()
    }
  }
}
