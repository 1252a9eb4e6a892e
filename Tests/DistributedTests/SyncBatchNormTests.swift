import Distributed
import Foundation
import Layers
import Tensors
import TestSupport
import Testing

/// SyncBN over two simulated ranks against one plain BatchNorm on the concatenated batch (the definition of
/// torch.nn.SyncBatchNorm): outputs, input gradients, running statistics and num_batches_tracked must agree, and
/// the ranks' dγ, dβ must add up to the single layer's (the data-parallel average then divides by the world size).
/// The plain layer is itself checked against PyTorch (LayersTests' BatchNorm fixtures) and finite differences.
@Suite struct SyncBatchNormTests {
  /// One layer's state after a training forward and backward.
  struct Outcome: @unchecked Sendable {
    var y: Tensor, dx: Tensor, weightGrad: [Float], biasGrad: [Float], runningMean: [Float], runningVar: [Float]
    var tracked: Float
  }

  static func run(_ layer: BatchNorm, _ x: Tensor, _ dy: Tensor) -> Outcome {
    layer.zeroGrad()
    let (y, cache) = layer.forward(x, mode: .training)
    let dx = layer.backward(dy, cache)
    return Outcome(y: y, dx: dx, weightGrad: layer.weight!.grad.scalars, biasGrad: layer.bias!.grad.scalars,
                   runningMean: layer.runningMean.value.scalars, runningVar: layer.runningVar.value.scalars,
                   tracked: layer.numBatchesTracked.value.scalars[0])
  }

  static func layer(channels: Int, fusesReLU: Bool) -> BatchNorm {
    let layer = BatchNorm(channels: channels)
    var rng = SplitMix64(seed: 3)
    layer.weight!.value = Tensor.randomNormal([channels], mean: 1, std: 0.3, using: &rng)
    layer.bias!.value = Tensor.randomNormal([channels], std: 0.3, using: &rng)
    layer.fusesReLU = fusesReLU
    return layer
  }

  /// Rows of `t` [n, …] from `range` of the first axis.
  static func rows(_ t: Tensor, _ range: Range<Int>) -> Tensor {
    let stride = t.count / t.shape[0]
    return Tensor(shape: [range.count] + t.shape.dropFirst(),
                  scalars: Array(t.scalars[range.lowerBound * stride..<range.upperBound * stride]))
  }

  static func concatenated(_ parts: [Tensor]) -> Tensor {
    Tensor(shape: [parts.map { $0.shape[0] }.reduce(0, +)] + parts[0].shape.dropFirst(),
           scalars: parts.flatMap(\.scalars))
  }

  @Test(arguments: [(false, [8, 5]), (true, [8, 5]), (false, [4, 3, 3, 6]), (true, [6, 2, 3, 4])])
  func twoRanksEqualOneLayerOnTheConcatenatedBatch(fusesReLU: Bool, shape: [Int]) {
    var rng = SplitMix64(seed: 11)
    // A mean far from zero and unequal halves' statistics, so the combination of the ranks' moments matters.
    let x = Tensor.randomNormal(shape, mean: 3, std: 2, using: &rng)
    let dy = Tensor.randomNormal(shape, using: &rng)
    let channels = shape.last!, half = shape[0] / 2
    let single = Self.run(Self.layer(channels: channels, fusesReLU: fusesReLU), x, dy)

    let rendezvous = Rendezvous(size: 2)
    let results = Mutexed<[Int: Outcome]>([:])
    let counts = Mutexed<[Int: Int]>([:])
    rendezvous.run { rank in
      let group = SimulatedProcessGroup(rank: rank, rendezvous: rendezvous)
      let layer = Self.layer(channels: channels, fusesReLU: fusesReLU)
      layer.processGroup = group
      let range = rank == 0 ? 0..<half : half..<shape[0]
      let outcome = Self.run(layer, Self.rows(x, range), Self.rows(dy, range))
      results.update { $0[rank] = outcome }
      counts.update { $0[rank] = group.collectiveCount }
    }
    let ranks = results.value
    let (first, second) = (ranks[0]!, ranks[1]!)
    #expect(counts.value == [0: 2, 1: 2], "one allreduce in forward, one in backward")
    expectClose(Self.concatenated([first.y, second.y]), single.y, rtol: 1e-5, atol: 1e-5, "y")
    expectClose(Self.concatenated([first.dx, second.dx]), single.dx, rtol: 1e-4, atol: 1e-5, "dx")
    for rank in [first, second] {
      expectClose(Tensor(shape: [channels], scalars: rank.runningMean), Tensor(shape: [channels],
                  scalars: single.runningMean), rtol: 1e-6, atol: 1e-6, "running_mean")
      // n/(n − 1) with the global n: a rank-local m/(m − 1) would be 4/3 vs 8/7 here.
      expectClose(Tensor(shape: [channels], scalars: rank.runningVar), Tensor(shape: [channels],
                  scalars: single.runningVar), rtol: 1e-6, atol: 1e-6, "running_var")
      #expect(rank.tracked == 1)
    }
    #expect(first.runningMean == second.runningMean && first.runningVar == second.runningVar,
            "every rank holds the same running statistics, bit for bit")
    expectClose(Tensor(shape: [channels], scalars: zip(first.weightGrad, second.weightGrad).map(+)),
                Tensor(shape: [channels], scalars: single.weightGrad), rtol: 1e-4, atol: 1e-5, "Σ ranks dγ")
    expectClose(Tensor(shape: [channels], scalars: zip(first.biasGrad, second.biasGrad).map(+)),
                Tensor(shape: [channels], scalars: single.biasGrad), rtol: 1e-4, atol: 1e-5, "Σ ranks dβ")
  }

  @Test func aGroupOfOneAndInferenceModeNeverMeet() {
    let rendezvous = Rendezvous(size: 1)
    let group = SimulatedProcessGroup(rank: 0, rendezvous: rendezvous)
    let layer = Self.layer(channels: 3, fusesReLU: false)
    layer.processGroup = group
    var rng = SplitMix64(seed: 1)
    let x = Tensor.randomNormal([4, 3], using: &rng)
    let synced = Self.run(layer, x, x)
    let plain = Self.run(Self.layer(channels: 3, fusesReLU: false), x, x)
    #expect(synced.y.scalars == plain.y.scalars && synced.dx.scalars == plain.dx.scalars)
    _ = layer.forward(x, mode: .inference)
    #expect(group.collectiveCount == 0)
  }
}

/// A value shared by the simulated ranks' threads.
final class Mutexed<Value>: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: Value
  init(_ value: Value) { stored = value }
  var value: Value { lock.withLock { stored } }
  func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
