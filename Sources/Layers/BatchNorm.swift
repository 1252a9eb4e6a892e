// Batch normalisation over the channel (last) axis, with an optional fused ReLU: torch.nn.BatchNorm1d on
// [n, c] and torch.nn.BatchNorm2d on NHWC [n, h, w, c] (Ioffe & Szegedy 2015, Algorithm 1).
import Distributed
import Foundation
import Tensors

/// Batch normalisation of the last axis, with statistics over all other axes (`m = n·h·w` rows).
///
/// Matches `torch.nn.BatchNorm1d` / `BatchNorm2d` with `track_running_stats=True`: in training mode the batch
/// mean and biased variance normalise, and the running statistics move by `momentum` towards the batch mean
/// and the **unbiased** variance (`·m/(m−1)`); `num_batches_tracked` counts the steps. In inference mode the
/// running statistics normalise. With `fusesReLU` the layer returns `relu(bn(x))` in the same pass.
///
/// With a `processGroup` of more than one process it is `torch.nn.SyncBatchNorm`: training statistics are those of
/// the batch of all ranks together (BatchNorm+Sync.swift).
public final class BatchNorm: Layer {
  public let channels: Int
  /// Weight of the batch statistic in the running-statistics update (PyTorch's `momentum`, default 0.1).
  public var momentum: Float
  public let epsilon: Float
  public let weight: Parameter?  // γ [c], ones; nil when not affine
  public let bias: Parameter?  // β [c], zeros; nil when not affine
  public let runningMean: Parameter  // [c] buffer, zeros
  public let runningVar: Parameter  // [c] buffer, ones
  public let numBatchesTracked: Parameter  // [] int64 buffer
  /// When true, `forward` returns `relu(bn(x))` and `backward` masks `dy` by `output > 0` first.
  public var fusesReLU = false
  /// SyncBN mode: when this group has more than one process, training-mode statistics (forward) and the
  /// gradient through them (backward) are over the concatenated batch of every rank; nil or one process is plain
  /// BatchNorm. Every rank must run the same layers in the same order (they meet in an allreduce).
  public var processGroup: (any ProcessGroup)?

  public init(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, isAffine: Bool = true) {
    precondition(channels > 0, "BatchNorm needs a positive channel count, got \(channels).")
    self.channels = channels
    self.momentum = momentum
    self.epsilon = epsilon
    weight = isAffine ? Parameter(Tensor(repeating: 1, shape: [channels])) : nil
    bias = isAffine ? Parameter(Tensor.zeros([channels])) : nil
    runningMean = Parameter(Tensor.zeros([channels]), isBuffer: true)
    runningVar = Parameter(Tensor(repeating: 1, shape: [channels]), isBuffer: true)
    numBatchesTracked = Parameter(Tensor.zeros([]), isBuffer: true, storageType: .int64)
  }

  public var isAffine: Bool { weight != nil }

  public var namedParameters: [NamedParameter] {
    var named: [NamedParameter] = []
    if let weight { named.append((name: "weight", parameter: weight)) }
    if let bias { named.append((name: "bias", parameter: bias)) }
    named.append((name: "running_mean", parameter: runningMean))
    named.append((name: "running_var", parameter: runningVar))
    named.append((name: "num_batches_tracked", parameter: numBatchesTracked))
    return named
  }

  /// What backward needs.
  ///
  /// The input itself rather than x̂: keeping `x` is a reference to a tensor that already exists, while x̂
  /// would be a second activation-sized buffer and an extra write in forward; backward recomputes
  /// x̂ = (x − mean)·invStd on the fly (one subtract and multiply per element, free next to the memory
  /// traffic). The ReLU mask is recomputed from `x·scale + shift` with the forward's own `scale`/`shift`.
  public struct Cache {
    let x: Tensor  // [m, c] rows (any leading shape)
    let mean: [Float]  // [c] the statistics that normalised x: batch (training) or running (inference)
    let invStd: [Float]  // [c] 1/√(var + ε)
    let scale: [Float]  // [c] γ·invStd, as applied in forward
    let shift: [Float]  // [c] β − mean·scale, as applied in forward
    let usedBatchStatistics: Bool
    let fusedReLU: Bool
    /// Rows the batch statistics were taken over: this input's `m`, or all ranks' together under SyncBN.
    let statisticsRows: Int
    /// The group the statistics were synchronised over (SyncBN), whose backward must meet again.
    let synchronizedOver: (any ProcessGroup)?
  }

  // MARK: - Forward

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    precondition(x.rank >= 2 && x.shape.last == channels,
                 "BatchNorm(\(channels)) expects an input of shape [n, \(channels)] or [n, h, w, \(channels)], "
                   + "got \(x.shape).")
    let c = channels
    let m = x.count / c
    var mean: [Float]
    var invStd: [Float]
    var statisticsRows = m
    let synchronizedGroup = mode == .training ? processGroup.flatMap { $0.isDistributed ? $0 : nil } : nil
    switch mode {
    case .training:
      var (batchMean, batchVar) = Self.meanAndBiasedVariance(x, rows: m, channels: c)
      if let synchronizedGroup {
        (batchMean, batchVar, statisticsRows) = Self.groupStatistics(mean: batchMean, biasedVariance: batchVar,
                                                                     rows: m, over: synchronizedGroup)
      }
      precondition(statisticsRows > 1,
                   "BatchNorm in training mode needs more than one value per channel; input shape \(x.shape)"
                     + (synchronizedGroup == nil ? "." : ", \(statisticsRows) rows over all ranks."))
      mean = batchMean.map { Float($0) }
      invStd = batchVar.map { Float(1 / ($0 + Double(epsilon)).squareRoot()) }
      updateRunningStatistics(mean: batchMean, biasedVariance: batchVar, rows: statisticsRows)
    case .inference:
      mean = runningMean.value.scalars
      invStd = runningVar.value.scalars.map { Float(1 / (Double($0) + Double(epsilon)).squareRoot()) }
    }
    var scale = invStd
    var shift = [Float](repeating: 0, count: c)
    for ch in 0..<c {
      let gamma = weight?.value.scalars[ch] ?? 1
      let beta = bias?.value.scalars[ch] ?? 0
      scale[ch] = gamma * invStd[ch]
      shift[ch] = beta - mean[ch] * scale[ch]
    }
    let y = Self.applyScaleShift(x, rows: m, channels: c, scale: scale, shift: shift, relu: fusesReLU)
    let cache = Cache(x: x, mean: mean, invStd: invStd, scale: scale, shift: shift,
                      usedBatchStatistics: mode == .training, fusedReLU: fusesReLU, statisticsRows: statisticsRows,
                      synchronizedOver: synchronizedGroup)
    return (y, cache)
  }

  /// Inference-mode `y = x·scale + shift` per channel, for folding this layer into the conv before it.
  public func foldedScaleShift() -> (scale: [Float], shift: [Float]) {
    var scale = [Float](repeating: 0, count: channels)
    var shift = [Float](repeating: 0, count: channels)
    for ch in 0..<channels {
      let invStd = Float(1 / (Double(runningVar.value.scalars[ch]) + Double(epsilon)).squareRoot())
      scale[ch] = (weight?.value.scalars[ch] ?? 1) * invStd
      shift[ch] = (bias?.value.scalars[ch] ?? 0) - runningMean.value.scalars[ch] * scale[ch]
    }
    return (scale, shift)
  }

  /// running ← (1 − momentum)·running + momentum·batch, with the unbiased variance (torch.nn.BatchNorm).
  private func updateRunningStatistics(mean: [Double], biasedVariance: [Double], rows m: Int) {
    let unbiasing = Double(m) / Double(m - 1)
    for ch in 0..<channels {
      runningMean.value.scalars[ch] = (1 - momentum) * runningMean.value.scalars[ch] + momentum * Float(mean[ch])
      runningVar.value.scalars[ch] = (1 - momentum) * runningVar.value.scalars[ch]
        + momentum * Float(biasedVariance[ch] * unbiasing)
    }
    numBatchesTracked.value.scalars[0] += 1
  }

  /// Per-channel mean and biased variance in one pass over `x` [m, c].
  ///
  /// Shifted sums Σ(x − K), Σ(x − K)² with K = the first row avoid the cancellation of Σx² − (Σx)²/m when
  /// |mean| ≫ std. Each row group adds Float sums over ≤ 64-row blocks into Double partials.
  private static func meanAndBiasedVariance(_ x: Tensor, rows m: Int, channels c: Int) -> ([Double], [Double]) {
    let groups = RowGroups.count(rows: m, elementsPerRow: c)
    var partials = [Double](repeating: 0, count: groups * 2 * c)  // [groups, 2, c]: Σ(x−K), Σ(x−K)²
    var blockSums = [Float](repeating: 0, count: groups * 2 * c)  // [groups, 2, c] scratch
    x.scalars.withUnsafeBufferPointer { xBuffer in
      partials.withUnsafeMutableBufferPointer { partialBuffer in
        blockSums.withUnsafeMutableBufferPointer { blockBuffer in
          let xp = xBuffer.baseAddress!, shiftRow = xBuffer.baseAddress!
          let pp = partialBuffer.baseAddress!, bp = blockBuffer.baseAddress!
          RowGroups.forEach(rows: m, groups: groups) { group, rows in
            let s = bp + group * 2 * c, q = s + c
            let ds = pp + group * 2 * c, dq = ds + c
            var blockStart = rows.lowerBound
            while blockStart < rows.upperBound {
              let blockEnd = min(blockStart + RowGroups.rowsPerFloatBlock, rows.upperBound)
              s.update(repeating: 0, count: 2 * c)
              for row in blockStart..<blockEnd {
                let xr = xp + row * c
                for ch in 0..<c {
                  let d = xr[ch] - shiftRow[ch]
                  s[ch] += d
                  q[ch] += d * d
                }
              }
              for ch in 0..<c {
                ds[ch] += Double(s[ch])
                dq[ch] += Double(q[ch])
              }
              blockStart = blockEnd
            }
          }
        }
      }
    }
    var mean = [Double](repeating: 0, count: c)
    var variance = [Double](repeating: 0, count: c)
    for ch in 0..<c {
      var sum = 0.0, squares = 0.0
      for group in 0..<groups {
        sum += partials[group * 2 * c + ch]
        squares += partials[group * 2 * c + c + ch]
      }
      let shiftedMean = sum / Double(m)
      mean[ch] = Double(x.scalars[ch]) + shiftedMean
      variance[ch] = max(squares / Double(m) - shiftedMean * shiftedMean, 0)
    }
    return (mean, variance)
  }

  /// y = x·scale + shift per channel, then relu if asked: one read and one write of the activation.
  private static func applyScaleShift(_ x: Tensor, rows m: Int, channels c: Int,
                                      scale: [Float], shift: [Float], relu: Bool) -> Tensor {
    Tensor(uninitializedShape: x.shape) { out in
      x.scalars.withUnsafeBufferPointer { xBuffer in
        scale.withUnsafeBufferPointer { scaleBuffer in
          shift.withUnsafeBufferPointer { shiftBuffer in
            let xp = xBuffer.baseAddress!, yp = out.baseAddress!
            let a = scaleBuffer.baseAddress!, b = shiftBuffer.baseAddress!
            parallelFor(0..<m, minimumChunk: max(1, RowGroups.elementwiseChunk / c)) { rows in
              for row in rows {
                let xr = xp + row * c, yr = yp + row * c
                if relu {
                  for ch in 0..<c { yr[ch] = max(xr[ch] * a[ch] + b[ch], 0) }
                } else {
                  for ch in 0..<c { yr[ch] = xr[ch] * a[ch] + b[ch] }
                }
              }
            }
          }
        }
      }
    }
  }

  // MARK: - Backward

  /// Training mode: dx = (γ·invStd)·(dy − mean(dy) − x̂·mean(dy·x̂)), the gradient through the batch
  /// statistics; inference mode: dx = γ·invStd·dy. Both add dγ = Σ dy·x̂ and dβ = Σ dy (dy masked by
  /// `output > 0` first when the ReLU is fused).
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    precondition(dy.shape == cache.x.shape,
                 "BatchNorm backward: dy has shape \(dy.shape) but the forward input had shape \(cache.x.shape).")
    let c = channels
    let m = dy.count / c
    let needsParameterGradients = (weight?.isTrainable ?? false) || (bias?.isTrainable ?? false)
    // sums[ch] = Σ dy, sums[c + ch] = Σ dy·x̂ (masked dy), only when someone needs them.
    var sums: [Double]? = nil
    let dx: Tensor
    if cache.usedBatchStatistics {
      // SyncBN: dx needs the sums of every rank over the statistics' rows; dγ and dβ stay this rank's own sums
      // (the data-parallel gradient average adds the ranks' parameter gradients), as torch.nn.SyncBatchNorm.
      let local = Self.reduceGradient(dy, cache, rows: m, channels: c)
      sums = local
      let reduced = cache.synchronizedOver.map { Self.groupSums(local, over: $0) } ?? local
      let rows = Double(cache.statisticsRows)
      var a = [Float](repeating: 0, count: c)  // γ·invStd
      var b = [Float](repeating: 0, count: c)  // −γ·invStd²·mean(dy·x̂), the coefficient of (x − mean)
      var offset = [Float](repeating: 0, count: c)  // −γ·invStd·mean(dy)
      for ch in 0..<c {
        let k = Double(weight?.value.scalars[ch] ?? 1) * Double(cache.invStd[ch])
        a[ch] = Float(k)
        b[ch] = Float(-k * Double(cache.invStd[ch]) * reduced[c + ch] / rows)
        offset[ch] = Float(-k * reduced[ch] / rows)
      }
      dx = Self.batchStatisticsInputGradient(dy, cache, rows: m, channels: c, a: a, b: b, offset: offset)
    } else {
      var a = [Float](repeating: 0, count: c)
      for ch in 0..<c { a[ch] = (weight?.value.scalars[ch] ?? 1) * cache.invStd[ch] }
      dx = Self.runningStatisticsInputGradient(dy, cache, rows: m, channels: c, a: a)
      if needsParameterGradients { sums = Self.reduceGradient(dy, cache, rows: m, channels: c) }
    }
    if let sums {
      if let weight, weight.isTrainable {
        for ch in 0..<c { weight.grad.scalars[ch] += Float(sums[c + ch]) }
      }
      if let bias, bias.isTrainable {
        for ch in 0..<c { bias.grad.scalars[ch] += Float(sums[ch]) }
      }
    }
    return dx
  }

  /// Σ dy and Σ dy·x̂ per channel in one pass (dy masked by the fused ReLU), returned as [Σdy | Σdy·x̂].
  private static func reduceGradient(_ dy: Tensor, _ cache: Cache, rows m: Int, channels c: Int) -> [Double] {
    let groups = RowGroups.count(rows: m, elementsPerRow: c)
    var partials = [Double](repeating: 0, count: groups * 2 * c)  // [groups, 2, c]: Σdy, Σdy·(x − mean)
    var blockSums = [Float](repeating: 0, count: groups * 2 * c)  // [groups, 2, c] scratch
    let relu = cache.fusedReLU
    dy.scalars.withUnsafeBufferPointer { dyBuffer in
      cache.x.scalars.withUnsafeBufferPointer { xBuffer in
        cache.mean.withUnsafeBufferPointer { meanBuffer in
          cache.scale.withUnsafeBufferPointer { scaleBuffer in
            cache.shift.withUnsafeBufferPointer { shiftBuffer in
              partials.withUnsafeMutableBufferPointer { partialBuffer in
                blockSums.withUnsafeMutableBufferPointer { blockBuffer in
                  let dyp = dyBuffer.baseAddress!, xp = xBuffer.baseAddress!, mu = meanBuffer.baseAddress!
                  let a = scaleBuffer.baseAddress!, b = shiftBuffer.baseAddress!
                  let pp = partialBuffer.baseAddress!, bp = blockBuffer.baseAddress!
                  RowGroups.forEach(rows: m, groups: groups) { group, rows in
                    let s = bp + group * 2 * c, sx = s + c
                    let ds = pp + group * 2 * c, dsx = ds + c
                    var blockStart = rows.lowerBound
                    while blockStart < rows.upperBound {
                      let blockEnd = min(blockStart + RowGroups.rowsPerFloatBlock, rows.upperBound)
                      s.update(repeating: 0, count: 2 * c)
                      for row in blockStart..<blockEnd {
                        let xr = xp + row * c, dyr = dyp + row * c
                        if relu {
                          for ch in 0..<c {
                            let d = dyr[ch]  // loaded unconditionally so the select vectorises
                            let g = xr[ch] * a[ch] + b[ch] > 0 ? d : 0
                            s[ch] += g
                            sx[ch] += g * (xr[ch] - mu[ch])
                          }
                        } else {
                          for ch in 0..<c {
                            let g = dyr[ch]
                            s[ch] += g
                            sx[ch] += g * (xr[ch] - mu[ch])
                          }
                        }
                      }
                      for ch in 0..<c {
                        ds[ch] += Double(s[ch])
                        dsx[ch] += Double(sx[ch])
                      }
                      blockStart = blockEnd
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    var sums = [Double](repeating: 0, count: 2 * c)
    for group in 0..<groups {
      for ch in 0..<c {
        sums[ch] += partials[group * 2 * c + ch]
        sums[c + ch] += partials[group * 2 * c + c + ch]
      }
    }
    for ch in 0..<c { sums[c + ch] *= Double(cache.invStd[ch]) }  // Σ dy·(x − mean) → Σ dy·x̂
    return sums
  }

  /// dx = a·dy + b·(x − mean) + offset per channel (dy masked by the fused ReLU): one write pass.
  private static func batchStatisticsInputGradient(_ dy: Tensor, _ cache: Cache, rows m: Int, channels c: Int,
                                                   a: [Float], b: [Float], offset: [Float]) -> Tensor {
    let relu = cache.fusedReLU
    return Tensor(uninitializedShape: dy.shape) { out in
      dy.scalars.withUnsafeBufferPointer { dyBuffer in
        cache.x.scalars.withUnsafeBufferPointer { xBuffer in
          cache.mean.withUnsafeBufferPointer { meanBuffer in
            cache.scale.withUnsafeBufferPointer { scaleBuffer in
              cache.shift.withUnsafeBufferPointer { shiftBuffer in
                a.withUnsafeBufferPointer { aBuffer in
                  b.withUnsafeBufferPointer { bBuffer in
                    offset.withUnsafeBufferPointer { offsetBuffer in
                      let dyp = dyBuffer.baseAddress!, xp = xBuffer.baseAddress!, dxp = out.baseAddress!
                      let mu = meanBuffer.baseAddress!, fs = scaleBuffer.baseAddress!, fb = shiftBuffer.baseAddress!
                      let ka = aBuffer.baseAddress!, kb = bBuffer.baseAddress!, ko = offsetBuffer.baseAddress!
                      parallelFor(0..<m, minimumChunk: max(1, RowGroups.elementwiseChunk / c)) { rows in
                        for row in rows {
                          let xr = xp + row * c, dyr = dyp + row * c, dxr = dxp + row * c
                          if relu {
                            for ch in 0..<c {
                              let d = dyr[ch]  // loaded unconditionally so the select vectorises
                              let g = xr[ch] * fs[ch] + fb[ch] > 0 ? d : 0
                              dxr[ch] = ka[ch] * g + kb[ch] * (xr[ch] - mu[ch]) + ko[ch]
                            }
                          } else {
                            for ch in 0..<c {
                              dxr[ch] = ka[ch] * dyr[ch] + kb[ch] * (xr[ch] - mu[ch]) + ko[ch]
                            }
                          }
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// dx = a·dy per channel (dy masked by the fused ReLU): the running statistics are constants.
  private static func runningStatisticsInputGradient(_ dy: Tensor, _ cache: Cache, rows m: Int, channels c: Int,
                                                     a: [Float]) -> Tensor {
    let relu = cache.fusedReLU
    return Tensor(uninitializedShape: dy.shape) { out in
      dy.scalars.withUnsafeBufferPointer { dyBuffer in
        cache.x.scalars.withUnsafeBufferPointer { xBuffer in
          cache.scale.withUnsafeBufferPointer { scaleBuffer in
            cache.shift.withUnsafeBufferPointer { shiftBuffer in
              a.withUnsafeBufferPointer { aBuffer in
                let dyp = dyBuffer.baseAddress!, xp = xBuffer.baseAddress!, dxp = out.baseAddress!
                let fs = scaleBuffer.baseAddress!, fb = shiftBuffer.baseAddress!, ka = aBuffer.baseAddress!
                parallelFor(0..<m, minimumChunk: max(1, RowGroups.elementwiseChunk / c)) { rows in
                  for row in rows {
                    let xr = xp + row * c, dyr = dyp + row * c, dxr = dxp + row * c
                    if relu {
                      for ch in 0..<c {
                        let g = ka[ch] * dyr[ch]  // computed unconditionally so the select vectorises
                        dxr[ch] = xr[ch] * fs[ch] + fb[ch] > 0 ? g : 0
                      }
                    } else {
                      for ch in 0..<c { dxr[ch] = ka[ch] * dyr[ch] }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

// MARK: - Row-group reductions (shared by the layers and losses in this module)

/// Shared sizes and the row-group split behind this module's parallel reductions (internal; namespaced so it
/// cannot clash with other files of the module).
enum RowGroups {
  /// Elements per `parallelFor` chunk below which an elementwise kernel stays on one thread.
  static let elementwiseChunk = 1 << 14

  /// Rows summed in Float before the block sum is added to a Double partial (bounds Float rounding growth).
  static let rowsPerFloatBlock = 64

  /// How many contiguous row groups a reduction over `rows` rows uses: at most 32, at least ~16 K elements each.
  ///
  /// The count depends only on the problem size, never on `Threads.count`, so reductions built from
  /// per-group partials give the same bits on any number of cores.
  static func count(rows: Int, elementsPerRow: Int) -> Int {
    max(1, min(rows, 32, rows * max(elementsPerRow, 1) / elementwiseChunk))
  }

  /// Calls `body(group, rowRange)` for each of `groups` contiguous slices of `0..<rows`, in parallel.
  static func forEach(rows: Int, groups: Int, _ body: (Int, Range<Int>) -> Void) {
    parallelFor(0..<groups, minimumChunk: 1) { groupRange in
      for group in groupRange {
        body(group, rows * group / groups ..< rows * (group + 1) / groups)
      }
    }
  }
}
