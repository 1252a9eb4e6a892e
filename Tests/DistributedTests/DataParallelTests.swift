import Datasets
import Foundation
import Layers
import Tensors
import Testing
@testable import Training

/// The pieces of data-parallel pretraining that need no MPI (Pretrainer+DataParallel.swift): the sampler's shard,
/// the gradient averaging over simulated ranks, SyncBN on every BatchNorm, and the global batch's divisibility.
struct DataParallelTests {
  /// DistributedSampler's `indices[rank::world]` of one global batch, written out by hand.
  @Test func rankRTakesPositionsRRPlusNOfTheGlobalBatch() {
    let batch = [40, 7, 19, 3, 28, 11]
    #expect(Pretrainer.shard(batch, rank: 0, of: 2) == [40, 19, 28])
    #expect(Pretrainer.shard(batch, rank: 1, of: 2) == [7, 3, 11])
    #expect(Pretrainer.shard(batch, rank: 2, of: 3) == [19, 11])
    #expect(Pretrainer.shard(batch, rank: 0, of: 1) == batch)
    // Every image of the global batch goes to exactly one rank.
    let union = (0..<3).flatMap { Pretrainer.shard(batch, rank: $0, of: 3) }
    #expect(union.sorted() == batch.sorted())
  }

  /// Two simulated ranks with different gradients end with their mean (DDP: allreduce / world); a frozen
  /// parameter's gradient is left alone and a buffer has none.
  @Test func gradientsBecomeTheirMeanOverRanks() {
    let rendezvous = Rendezvous(size: 2)
    let results = Mutexed<[[Float]]>([[], []])
    rendezvous.run { rank in
      let weight = Parameter(Tensor(shape: [3], scalars: [0, 0, 0]))
      let bias = Parameter(Tensor(shape: [2], scalars: [0, 0]))
      let frozen = Parameter(Tensor(shape: [1], scalars: [0]), isTrainable: false)
      let running = Parameter(Tensor(shape: [2], scalars: [1, 1]), isBuffer: true)
      weight.grad = Tensor(shape: [3], scalars: rank == 0 ? [1, 2, 3] : [3, 6, -1])
      bias.grad = Tensor(shape: [2], scalars: rank == 0 ? [0.5, -4] : [1.5, 8])
      frozen.grad = Tensor(shape: [1], scalars: [Float(rank + 7)])
      let averager = GradientAverager([weight, frozen, running, bias],
                                      over: SimulatedProcessGroup(rank: rank, rendezvous: rendezvous))
      try! averager.average()
      results.update { $0[rank] = weight.grad.scalars + bias.grad.scalars + frozen.grad.scalars }
    }
    #expect(results.value[0] == [2, 4, 1, 1, 2, 7])
    #expect(results.value[1] == [2, 4, 1, 1, 2, 8])
  }

  /// Buckets hold the trainable parameters in reverse order (the order the backward finishes them), each at most
  /// DDP's 25 MiB of floats unless one parameter alone is larger.
  @Test func bucketsFollowTheBackwardOrderAndTheSizeCap() {
    let limit = GradientAverager.bucketElements
    #expect(limit == 25 * 1024 * 1024 / 4)
    let small = Parameter(Tensor.zeros([10])), large = Parameter(Tensor.zeros([limit - 5]))
    let huge = Parameter(Tensor.zeros([limit + 1])), last = Parameter(Tensor.zeros([4]))
    let averager = GradientAverager([small, large, huge, last],
                                    over: SimulatedProcessGroup(rank: 0, rendezvous: Rendezvous(size: 1)))
    let identities = averager.buckets.map { $0.map(ObjectIdentifier.init) }
    #expect(identities == [[ObjectIdentifier(last)], [ObjectIdentifier(huge)],
                           [ObjectIdentifier(large)], [ObjectIdentifier(small)]])
  }

  /// Under a group of more than one process every BatchNorm of backbone, projector and predictor is SyncBN: as
  /// many as the state dict has running means, all on the trainer's group; a single process keeps plain BN.
  @Test func everyBatchNormIsSynchronisedWhenDistributed() throws {
    let config = try tinyConfig()
    let dataset = try PretrainDataset.open(config.data, channels: config.model.inChannels)
    let group = SimulatedProcessGroup(rank: 1, rendezvous: Rendezvous(size: 2))
    let trainer = try Pretrainer(config: config, dataset: dataset, workDirectory: nil, processGroup: group)
    let runningMeans = trainer.model.namedParameters.filter { $0.name.hasSuffix(".running_mean") }
    #expect(runningMeans.count == trainer.batchNorms.count && runningMeans.count > 20)
    #expect(Set(trainer.batchNorms.map { ObjectIdentifier($0.runningMean) })
              == Set(runningMeans.map { ObjectIdentifier($0.parameter) }))
    #expect(trainer.batchNorms.allSatisfy { $0.processGroup === group })
    let single = try Pretrainer(config: config, dataset: dataset, workDirectory: nil)
    #expect(single.batchNorms.allSatisfy { $0.processGroup == nil })
  }

  /// schedule.batch_size is the global batch: 8 over 3 ranks is refused with the typed error naming both.
  @Test func aGlobalBatchNotDivisibleByTheRanksIsRefused() throws {
    let config = try tinyConfig()
    let dataset = try PretrainDataset.open(config.data, channels: config.model.inChannels)
    let group = SimulatedProcessGroup(rank: 0, rendezvous: Rendezvous(size: 3))
    #expect(throws: PretrainError.batchNotDivisible(batchSize: 8, worldSize: 3)) {
      try Pretrainer(config: config, dataset: dataset, workDirectory: nil, processGroup: group)
    }
    #expect(PretrainError.batchNotDivisible(batchSize: 8, worldSize: 3).description.contains("mpirun -np"))
  }

  func tinyConfig() throws -> PretrainConfig {
    try PretrainConfig.load(yaml: nil, source: "tiny", overrides: [
      "model.width_multiplier=0.125", "model.projector_hidden=32", "model.features=32", "model.predictor_hidden=8",
      "data.kind=synthetic", "data.limit=16", "data.image_size=16", "schedule.batch_size=8",
    ])
  }
}
