// DDP's gradient averaging over a ProcessGroup, shared by every data-parallel trainer (pretraining today; the
// fine-tuning protocols when they run under mpirun): after the backward, every trainable gradient becomes its mean
// over the ranks, in DDP's 25 MiB buckets.
import Distributed

/// Averages trainable parameters' gradients over a group after the backward (DDP's allreduce / world): the
/// gradients are packed into buckets of at most `bucketElements` floats (DDP's 25 MiB default), in reverse
/// parameter order — the order the backward finishes them — and each bucket is one allreduce.
///
/// The buckets are reduced after the backward, not overlapped with it: our backward is not split into hooks per
/// parameter, and on one machine's shared memory the allreduce of a ResNet-18 (11 M floats) takes ~20 ms against
/// seconds of backward (benchmarks/scaling). Across machines, overlapping would hide part of the transfer.
public final class GradientAverager {
  public static let bucketElements = 25 * (1 << 20) / MemoryLayout<Float>.size

  public let group: any ProcessGroup
  /// Buckets of parameters, each at most `bucketElements` floats in total (a larger parameter is a bucket alone).
  public let buckets: [[Parameter]]
  private var scratch: [Float]

  public init(_ parameters: [Parameter], over group: any ProcessGroup) {
    self.group = group
    var buckets: [[Parameter]] = [], current: [Parameter] = [], size = 0
    for parameter in parameters.reversed() where parameter.isTrainable {
      let count = parameter.value.count
      if size + count > Self.bucketElements && !current.isEmpty {
        buckets.append(current)
        (current, size) = ([], 0)
      }
      current.append(parameter)
      size += count
    }
    if !current.isEmpty { buckets.append(current) }
    self.buckets = buckets
    scratch = [Float](repeating: 0, count: buckets.map { $0.map(\.value.count).reduce(0, +) }.max() ?? 0)
  }

  /// Every trainable gradient becomes its mean over the ranks, each rank's gradient multiplied by its `weight`
  /// first: Σᵣ wᵣ·gᵣ / N. DDP's plain mean is weight 1; a rank holding nᵣ of a batch of n images whose loss
  /// is the mean over its own images passes wᵣ = nᵣ·N / n, so the result is the gradient of the whole batch's mean
  /// even when the ranks' shares differ (the last batch of an epoch that does not divide by N).
  public func average(weight: Float = 1) throws {
    let scale = 1 / Float(group.size)
    for bucket in buckets {
      try scratch.withUnsafeMutableBufferPointer { packed in
        var offset = 0
        for parameter in bucket {
          parameter.grad.scalars.withUnsafeBufferPointer { grad in
            if weight == 1 {
              (packed.baseAddress! + offset).update(from: grad.baseAddress!, count: grad.count)
            } else {
              for i in 0..<grad.count { packed[offset + i] = grad[i] * weight }
            }
          }
          offset += parameter.grad.count
        }
        try group.allreduceSum(UnsafeMutableBufferPointer(rebasing: packed[0..<offset]))
        offset = 0
        for parameter in bucket {
          parameter.grad.scalars.withUnsafeMutableBufferPointer { grad in
            for i in 0..<grad.count { grad[i] = packed[offset + i] * scale }
          }
          offset += parameter.grad.count
        }
      }
    }
  }
}
