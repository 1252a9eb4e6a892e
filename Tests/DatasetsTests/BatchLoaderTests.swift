import Foundation
import Testing
import Tensors
import Datasets

@Suite struct BatchLoaderTests {
  @Test func epochPlanDropsTheLastIncompleteBatchAndCoversEachSampleOnce() {
    let plan = EpochPlan(sampleCount: 10, batchSize: 3, shuffle: true, dropLast: true, seed: 1, epoch: 0)
    #expect(plan.batches.count == 3)
    #expect(Set(plan.batches.joined()).count == 9)
    let keep = EpochPlan(sampleCount: 10, batchSize: 3, shuffle: false, dropLast: false, seed: 1, epoch: 0)
    #expect(keep.batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]])
  }

  @Test func shuffleDependsOnSeedAndEpochOnly() {
    let a = EpochPlan(sampleCount: 50, batchSize: 5, shuffle: true, dropLast: false, seed: 7, epoch: 3)
    let b = EpochPlan(sampleCount: 50, batchSize: 5, shuffle: true, dropLast: false, seed: 7, epoch: 3)
    let c = EpochPlan(sampleCount: 50, batchSize: 5, shuffle: true, dropLast: false, seed: 7, epoch: 4)
    #expect(a == b)
    #expect(a != c)
  }

  /// Each sample's "augmentation" draws from SplitMix64.derived(seed, epoch, index): batches are identical for
  /// 1 and 4 workers, and arrive in order even when later batches finish first.
  @Test func outputIsIdenticalForAnyWorkerCount() throws {
    let plan = EpochPlan(sampleCount: 40, batchSize: 4, shuffle: true, dropLast: true, seed: 5, epoch: 2)
    func collect(workers: Int) throws -> [[Float]] {
      let loader = BatchLoader<[Float]>(plan: plan, workers: workers, prefetch: 3) { indices, batchNumber in
        if batchNumber % 3 == 0 { Thread.sleep(forTimeInterval: 0.002) }  // finish out of order
        return indices.map { index in
          var rng = SplitMix64.derived(5, 2, UInt64(index))
          return Float(index) + rng.nextUniform()
        }
      }
      var batches: [[Float]] = []
      while let batch = try loader.next() { batches.append(batch) }
      return batches
    }
    let single = try collect(workers: 1)
    #expect(single.count == 10)
    #expect(try collect(workers: 4) == single)
  }

  struct Broken: Error {}

  @Test func anErrorInABatchIsRethrownInOrder() throws {
    let plan = EpochPlan(sampleCount: 6, batchSize: 2, shuffle: false, dropLast: false, seed: 0, epoch: 0)
    let loader = BatchLoader<Int>(plan: plan, workers: 2) { _, batchNumber in
      if batchNumber == 1 { throw Broken() }
      return batchNumber
    }
    #expect(try loader.next() == 0)
    #expect(throws: Broken.self) { try loader.next() }
    #expect(try loader.next() == nil)
  }
}
