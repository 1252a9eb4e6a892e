// SyncBN (torch.nn.SyncBatchNorm, PROTOCOLS §9): the collectives that make a BatchNorm's training statistics those
// of every rank's batch together. Forward combines (Σx, Σx², n) per channel, backward (Σdy, Σdy·x̂); both are one
// allreduce of Double sums, so every rank gets the same statistics bit for bit.
import Distributed

extension BatchNorm {
  /// Forward: this rank's (mean, biased variance) over `rows` rows → the group's, and the group's row count.
  ///
  /// Allreduces [Σx | Σx² | n] in Double, rebuilt from the local statistics (Σx = m·mean, Σx² = m·(var + mean²)),
  /// which are themselves shifted sums (no cancellation); the global variance Σx²/n − mean² then cancels in
  /// Double, whose 53 bits leave ~1e-16·mean²/var of relative error: negligible unless |mean|/std ≫ 10⁶.
  /// - Returns: the group's mean and biased variance per channel, and n = Σ rows (the running variance's
  ///   unbiasing uses n/(n − 1) with this global n, as SyncBatchNorm does).
  static func groupStatistics(mean: [Double], biasedVariance: [Double], rows: Int,
                              over group: any ProcessGroup) -> ([Double], [Double], Int) {
    let c = mean.count
    var sums = [Double](repeating: 0, count: 2 * c + 1)  // [Σx (c) | Σx² (c) | n]
    let m = Double(rows)
    for ch in 0..<c {
      sums[ch] = m * mean[ch]
      sums[c + ch] = m * (biasedVariance[ch] + mean[ch] * mean[ch])
    }
    sums[2 * c] = m
    allreduce(&sums, over: group)
    let n = sums[2 * c]
    var groupMean = [Double](repeating: 0, count: c), groupVariance = [Double](repeating: 0, count: c)
    for ch in 0..<c {
      groupMean[ch] = sums[ch] / n
      groupVariance[ch] = max(sums[c + ch] / n - groupMean[ch] * groupMean[ch], 0)
    }
    return (groupMean, groupVariance, Int(n.rounded()))
  }

  /// Backward: this rank's [Σdy | Σdy·x̂] (2c) → the group's, for the input gradient through the shared statistics.
  static func groupSums(_ local: [Double], over group: any ProcessGroup) -> [Double] {
    var sums = local
    allreduce(&sums, over: group)
    return sums
  }

  /// A collective inside a layer cannot throw through `forward`/`backward`: a failure ends the job with the
  /// error (MPI_Abort in an MPI group), since the other ranks cannot continue without this one either.
  private static func allreduce(_ values: inout [Double], over group: any ProcessGroup) {
    do { try group.allreduceSum(&values) } catch { group.abort(error) }
  }
}
