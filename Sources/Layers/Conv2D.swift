// 2-D convolution over NHWC activations as im2col + one GEMM per chunk of output pixels (PyTorch `nn.Conv2d`).
import Tensors

/// How `Conv2D` draws its initial weights.
public enum ConvInitialization: Sendable {
  /// torchvision ResNet / mmcv Kaiming: `kaiming_normal_(mode='fan_out', nonlinearity='relu')`,
  /// std = √(2 / (out·kh·kw)).
  case kaimingNormalFanOut
  /// `nn.Conv2d.reset_parameters`: `kaiming_uniform_(a=√5)`, i.e. U(±1/√fan_in) with fan_in = in·kh·kw.
  case pytorchDefault
}

/// A square-kernel 2-D convolution (PyTorch `nn.Conv2d`, groups = 1) on `[n, h, w, inChannels]` inputs.
///
/// The weight is stored OHWI `[out, kh, kw, in]`, so flattened it is `[out, kh·kw·in]` and multiplies
/// im2col rows directly. A 1×1 stride-1 unpadded convolution is a single GEMM over the input itself.
public final class Conv2D: Layer {
  public let inChannels: Int, outChannels: Int
  public let kernelSize: Int, stride: Int, padding: Int, dilation: Int
  public let weight: Parameter   // [out, kh, kw, in]
  public let bias: Parameter?    // [out]
  /// False for a layer whose input needs no gradient (the stem): `backward` then skips dcols and col2im
  /// and returns an empty tensor of shape `[0]`.
  public var computesInputGradient = true
  /// The largest im2col buffer, in floats (16 MB); larger inputs are processed in chunks of output rows.
  var maximumColumnElements = 1 << 22
  /// Benchmarks only: `maximumColumnElements`, for tuning the chunk size.
  @_spi(Benchmarks) public var columnBufferElements: Int {
    get { maximumColumnElements }
    set { maximumColumnElements = newValue }
  }
  /// Benchmarks only: when non-nil, seconds spent in im2col / col2im are added to it (on the paths that lower
  /// the whole layer on all cores before one GEMM; the per-thread pipeline below does not time its lowering).
  @_spi(Benchmarks) public var loweringSeconds: Double?
  /// Whether the per-thread pipelined paths are used: `.automatic` when the layer is large enough (see
  /// `pipelinePlan`), `.always` / `.never` for tests that compare the paths on tiny tensors.
  enum PipelineMode { case automatic, always, never }
  var pipelineMode = PipelineMode.automatic
  /// Whether stride-1 convolutions with few outputs run row-folded (Conv2D+RowFolded.swift); tests set it.
  var rowFoldingMode = RowFoldingMode.automatic
  /// Whether 3×3 stride-1 pad-1 convolutions run on the direct AVX2/FMA kernel (Conv2D+Direct.swift); tests set it.
  var directMode = DirectMode.automatic
  /// Whether directly convolved layers run by Winograd F(2×2, 3×3) (Conv2D+Direct.swift); tests set it.
  var winogradMode = WinogradMode.automatic
  /// Target size of one per-thread im2col chunk in floats (1 MB: about a core's L2), see `pipelinePlan`.
  static var pipelineColumnElements: Int { pipelineColumnElementsSetting }
  nonisolated(unsafe) static var pipelineColumnElementsSetting = 1 << 18
  /// Benchmarks only: `pipelineColumnElements`, for tuning the per-thread chunk size (set before any layer runs).
  @_spi(Benchmarks) public static var pipelineChunkElements: Int {
    get { pipelineColumnElementsSetting }
    set { pipelineColumnElementsSetting = newValue }
  }
  /// Partial weight gradients in the pipelined backward: a fixed count, so the sum's rounding does not depend on
  /// the number of threads.
  static let weightGradientPartials = 8

  /// What backward needs: the input, not its columns (k² times larger; backward rebuilds them).
  public struct Cache {
    let x: Tensor  // [n, h, w, inChannels]
  }

  public init<G: RandomNumberGenerator>(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                                        padding: Int = 0, dilation: Int = 1, hasBias: Bool = false,
                                        initialization: ConvInitialization = .kaimingNormalFanOut,
                                        using generator: inout G) {
    precondition(inChannels >= 1 && outChannels >= 1 && kernelSize >= 1 && stride >= 1 && padding >= 0
                   && dilation >= 1,
                 "Conv2D(in: \(inChannels), out: \(outChannels), kernel: \(kernelSize), stride: \(stride), padding: \(padding), dilation: \(dilation)) is not a valid convolution.")
    self.inChannels = inChannels; self.outChannels = outChannels
    self.kernelSize = kernelSize; self.stride = stride; self.padding = padding; self.dilation = dilation
    let shape = [outChannels, kernelSize, kernelSize, inChannels]
    let fanIn = Float(inChannels * kernelSize * kernelSize)
    let fanOut = Float(outChannels * kernelSize * kernelSize)
    let weightValue: Tensor
    switch initialization {
    case .kaimingNormalFanOut:
      weightValue = .randomNormal(shape, std: (2 / fanOut).squareRoot(), using: &generator)
    case .pytorchDefault:
      let bound = 1 / fanIn.squareRoot()
      weightValue = .randomUniform(shape, low: -bound, high: bound, using: &generator)
    }
    weight = Parameter(weightValue, exportLayout: .convOHWI)
    // Both schemes keep nn.Conv2d's default bias U(±1/√fan_in): torchvision re-initialises only the weight.
    if hasBias {
      let bound = 1 / fanIn.squareRoot()
      bias = Parameter(.randomUniform([outChannels], low: -bound, high: bound, using: &generator))
    } else {
      bias = nil
    }
  }

  public var namedParameters: [NamedParameter] {
    var result: [NamedParameter] = [("weight", weight)]
    if let bias { result.append(("bias", bias)) }
    return result
  }

  /// True when the input itself is the im2col matrix `[n·h·w, in]`.
  private var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

  private func geometry(_ inputShape: [Int]) -> ConvGeometry {
    precondition(inputShape.count == 4 && inputShape[3] == inChannels,
                 "Conv2D expects an input [n, h, w, \(inChannels)], got shape \(inputShape).")
    return ConvGeometry(inputShape: inputShape, kernelSize: kernelSize, stride: stride, padding: padding,
                        dilation: dilation)
  }

  /// Output rows per im2col chunk: whole images while they fit in the buffer, else as many rows as fit.
  private func chunkRows(_ g: ConvGeometry) -> Int {
    let imageElements = g.outputPixelsPerImage * g.columnWidth
    let rows = imageElements <= maximumColumnElements
      ? (maximumColumnElements / imageElements) * g.outputPixelsPerImage
      : maximumColumnElements / g.columnWidth
    return max(1, min(g.rows, rows))
  }

  /// How the per-thread pipeline splits `rows` column rows: `chunks` chunks of `rowsPerChunk` rows (the last one
  /// shorter), each about `pipelineColumnElements` floats of columns and at least 8 chunks in all. The split
  /// depends only on the shapes, never on the thread count. Nil when there are too few rows for every thread to
  /// get at least two chunks: one multi-threaded GEMM is then faster.
  struct PipelinePlan {
    let totalRows: Int, rowsPerChunk: Int, chunks: Int
    func rows(_ chunk: Int) -> Range<Int> {
      (chunk * rowsPerChunk)..<min(totalRows, (chunk + 1) * rowsPerChunk)
    }
  }

  func pipelinePlan(rows: Int, columnWidth: Int) -> PipelinePlan? {
    let byCache = max(1, Self.pipelineColumnElements / max(columnWidth, 1))
    let rowsPerChunk = max(1, min(byCache, (rows + 7) / 8))
    let chunks = (rows + rowsPerChunk - 1) / rowsPerChunk
    switch pipelineMode {
    case .never: return nil
    case .always: break
    case .automatic: guard chunks >= 2 * Threads.count && rowsPerChunk >= 32 else { return nil }
    }
    return PipelinePlan(totalRows: rows, rowsPerChunk: rowsPerChunk, chunks: chunks)
  }

  @inline(__always)
  private func timeLowering(_ body: () -> Void) {
    guard let elapsed = loweringSeconds else { return body() }
    let start = ContinuousClock.now
    body()
    let duration = (ContinuousClock.now - start).components
    loweringSeconds = elapsed + Double(duration.seconds) + Double(duration.attoseconds) * 1e-18
  }

  // MARK: - Forward

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    let y = weight.value.scalars.withUnsafeBufferPointer { wb in
      guard let bias else { return convolve(x, weight: wb.baseAddress!, bias: nil) }
      return bias.value.scalars.withUnsafeBufferPointer { convolve(x, weight: wb.baseAddress!, bias: $0.baseAddress!) }
    }
    return (y, Cache(x: x))
  }

  /// Inference with the following BatchNorm folded into the weights (no cache, no BN pass):
  /// y = conv(x; W·diag(scale)) + (scale ⊙ b + shift), then ReLU if `appliesReLU`.
  /// `scale`, `shift`: [outChannels], from `BatchNorm.foldedScaleShift()`.
  public func forwardFolded(_ x: Tensor, scale: [Float], shift: [Float], appliesReLU: Bool) -> Tensor {
    precondition(scale.count == outChannels && shift.count == outChannels,
                 "Folding needs \(outChannels) scales and shifts, got \(scale.count) and \(shift.count).")
    let perOutput = weight.value.count / outChannels  // kh·kw·in
    let foldedWeight = Tensor(uninitializedShape: weight.value.shape) { folded in
      weight.value.scalars.withUnsafeBufferPointer { w in
        for o in 0..<outChannels {
          for i in 0..<perOutput { folded[o * perOutput + i] = w[o * perOutput + i] * scale[o] }
        }
      }
    }
    var foldedBias = shift
    if let bias {
      for o in 0..<outChannels { foldedBias[o] += scale[o] * bias.value.scalars[o] }
    }
    var y = foldedWeight.scalars.withUnsafeBufferPointer { wb in
      foldedBias.withUnsafeBufferPointer { convolve(x, weight: wb.baseAddress!, bias: $0.baseAddress!) }
    }
    if appliesReLU {
      let count = y.count
      y.scalars.withUnsafeMutableBufferPointer { yb in
        let yp = yb.baseAddress!
        parallelFor(0..<count, minimumChunk: 1 << 16) { range in
          for i in range { yp[i] = max(yp[i], 0) }
        }
      }
    }
    return y
  }

  /// The convolution itself: `weight` is [out, kh·kw·in], `bias` [out] or nil.
  private func convolve(_ x: Tensor, weight wp: UnsafePointer<Float>, bias: UnsafePointer<Float>?) -> Tensor {
    let g = geometry(x.shape)
    let (rowCount, k, out) = (g.rows, g.columnWidth, outChannels)
    return Tensor(uninitializedShape: [g.batchSize, g.outputHeight, g.outputWidth, out]) { yBuffer in
      let yp = yBuffer.baseAddress!
      adviseHugePages(yp, bytes: yBuffer.count * MemoryLayout<Float>.stride)
      if usesDirectConvolution(g, outputs: out) {
        x.scalars.withUnsafeBufferPointer { directForward($0.baseAddress!, g, weight: wp, bias: bias, into: yp) }
        return
      }
      if !isPointwise && usesRowFolding(g, outputs: out) {
        x.scalars.withUnsafeBufferPointer { xb in
          rowFoldedConvolution(xb.baseAddress!, g, weight: wp, outputs: out, bias: bias, into: yp)
        }
        return
      }
      if !isPointwise, let plan = pipelinePlan(rows: rowCount, columnWidth: k) {
        // Per-thread pipeline: each chunk's columns stay in the core's cache between im2col and its GEMM.
        x.scalars.withUnsafeBufferPointer { xb in
          let xp = xb.baseAddress!
          withSingleThreadedBLAS {
            // columns: the running worker's buffer, [rows, kh·kw·in]
            parallelForEachWithScratch(plan.chunks, floatsPerWorker: plan.rowsPerChunk * k) { chunk, columns in
              let rows = plan.rows(chunk)
              let yChunk = yp + rows.lowerBound * out  // [rows, out]
              if let bias {
                fillRows(yChunk, rows: rows.count, width: out, with: bias)
              }
              im2colOnThisThread(xp, g, rows: rows, into: columns)
              gemmOnThisThread(m: rows.count, n: out, k: k, columns, wp, transposeB: true, into: yChunk,
                   beta: bias == nil ? 0 : 1)
            }
          }
        }
        return
      }
      var beta: Float = 0
      if let bias {
        // Pre-fill every output row with the bias; the GEMMs then accumulate onto it.
        parallelFor(0..<rowCount, minimumChunk: max(1, 65_536 / out)) { range in
          fillRows(yp + range.lowerBound * out, rows: range.count, width: out, with: bias)
        }
        beta = 1
      }
      x.scalars.withUnsafeBufferPointer { xb in
        let xp = xb.baseAddress!
        if isPointwise {
          // y[n·h·w, out] = x[n·h·w, in] · Wᵀ
          gemm(m: rowCount, n: out, k: k, xp, wp, transposeB: true, into: yp, beta: beta)
          return
        }
        let chunk = chunkRows(g)
        let columns = allocateScratch(chunk * k)  // [chunk, kh·kw·in]
        defer { columns.deallocate() }
        for start in Swift.stride(from: 0, to: rowCount, by: chunk) {
          let rows = start..<min(rowCount, start + chunk)
          timeLowering { im2col(xp, g, rows: rows, into: columns) }
          gemm(m: rows.count, n: out, k: k, columns, wp, transposeB: true, into: yp + start * out, beta: beta)
        }
      }
    }
  }

  // MARK: - Backward

  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    let x = cache.x
    let g = geometry(x.shape)
    let (rowCount, k, out) = (g.rows, g.columnWidth, outChannels)
    precondition(dy.shape == [g.batchSize, g.outputHeight, g.outputWidth, out],
                 "Conv2D backward expects dy [\(g.batchSize), \(g.outputHeight), \(g.outputWidth), \(out)] for input \(x.shape), got \(dy.shape).")
    if let bias, bias.isTrainable {
      precondition(bias.grad.shape == [out], "Conv2D bias gradient has shape \(bias.grad.shape), expected [\(out)].")
      dy.scalars.withUnsafeBufferPointer { db in
        bias.grad.scalars.withUnsafeMutableBufferPointer { gb in
          addColumnSums(db.baseAddress!, rows: rowCount, columns: out, into: gb.baseAddress!)
        }
      }
    }
    let computesWeightGradient = weight.isTrainable
    if computesWeightGradient {
      precondition(weight.grad.shape == weight.value.shape,
                   "Conv2D weight gradient has shape \(weight.grad.shape), expected \(weight.value.shape).")
    }
    guard computesWeightGradient || computesInputGradient else { return Tensor(shape: [0], scalars: []) }

    if isPointwise {
      return pointwiseBackward(dy, x, rows: rowCount, weightGradient: computesWeightGradient)
    }

    // Which path computes each gradient (all give the same values up to float rounding):
    // - 3×3 stride 1 pad 1: the direct kernel (Conv2D+Direct.swift) for dx when in % 8 = 0 and for dW of small
    //   layers (see usesDirectConvolution / usesDirectWeightGradient);
    // - dW: per-thread im2col chunks, each thread adding into its own partial dW (pipelined), or the
    //   whole-layer loop below;
    // - dx, stride 1: dx is itself a convolution of dy with the flipped, transposed kernel (needs
    //   p ≤ d·(k − 1)), so it is im2col(dy) times a small weight (or row-folded): no k²-times-larger dcols and
    //   no col2im;
    // - dx, otherwise: dcols = dY·W folded back by col2im, per thread over whole images (pipelined) or in
    //   the whole-layer loop.
    let winogradWeight = computesWeightGradient && usesWinogradWeightGradient(g)
    let directWeight = computesWeightGradient && !winogradWeight && usesDirectWeightGradient(g)
    let weightPlan = computesWeightGradient && !directWeight && !winogradWeight
      ? pipelinePlan(rows: rowCount, columnWidth: k) : nil
    let transposedGeometry: ConvGeometry? =
      computesInputGradient && stride == 1 && padding <= dilation * (kernelSize - 1)
      ? ConvGeometry(inputShape: dy.shape, kernelSize: kernelSize, stride: 1,
                     padding: dilation * (kernelSize - 1) - padding, dilation: dilation)
      : nil
    // dx = conv(dy; W̃) over dy's geometry with `inChannels` outputs: on the direct kernel or row-folded when that
    // qualifies.
    let directTransposed = transposedGeometry.map { usesDirectConvolution($0, outputs: inChannels) } ?? false
    let foldsTransposed = !directTransposed
      && (transposedGeometry.map { usesRowFolding($0, outputs: inChannels) } ?? false)
    let transposedPlan = directTransposed || foldsTransposed ? nil
      : transposedGeometry.flatMap { pipelinePlan(rows: $0.rows, columnWidth: $0.columnWidth) }
    let imagePlan = computesInputGradient && transposedGeometry == nil ? imagePipelinePlan(g) : nil
    let legacyWeight = computesWeightGradient && !directWeight && !winogradWeight && weightPlan == nil
    let legacyInput = computesInputGradient && !directTransposed && !foldsTransposed && transposedPlan == nil
      && imagePlan == nil

    let chunk = chunkRows(g)
    // Chunks of whole images let col2im gather: it then writes every element of dx once, so no zero-fill.
    let gathers = chunk % g.outputPixelsPerImage == 0
    var dx: Tensor
    if !computesInputGradient {
      dx = Tensor(shape: [0], scalars: [])
    } else if !legacyInput || gathers {
      dx = Tensor(uninitializedShape: x.shape) { adviseHugePages($0.baseAddress!, bytes: $0.count * 4) }
    } else {
      dx = Tensor.zeros(x.shape)
    }
    dy.scalars.withUnsafeBufferPointer { dyb in
      x.scalars.withUnsafeBufferPointer { xb in
        weight.value.scalars.withUnsafeBufferPointer { wb in
          dx.scalars.withUnsafeMutableBufferPointer { dxb in
            let (dyp, xp, wp) = (dyb.baseAddress!, xb.baseAddress!, wb.baseAddress!)
            if winogradWeight {
              weight.grad.scalars.withUnsafeMutableBufferPointer { gb in
                winogradWeightGradient(dyp, xp, g, into: gb.baseAddress!)
              }
            } else if directWeight {
              weight.grad.scalars.withUnsafeMutableBufferPointer { gb in
                directWeightGradient(dyp, xp, g, into: gb.baseAddress!)
              }
            } else if let weightPlan {
              weight.grad.scalars.withUnsafeMutableBufferPointer { gb in
                pipelinedWeightGradient(dyp, xp, g, plan: weightPlan, into: gb.baseAddress!)
              }
            }
            if let transposedGeometry, directTransposed {
              directInputGradient(dyp, transposedGeometry, weight: wp, into: dxb.baseAddress!)
            } else if let transposedGeometry, foldsTransposed {
              let flipped = flippedTransposedWeight(wp)  // W̃ [in, kh, kw, out]
              defer { flipped.deallocate() }
              rowFoldedConvolution(dyp, transposedGeometry, weight: flipped, outputs: inChannels, bias: nil,
                                   into: dxb.baseAddress!)
            } else if let transposedGeometry, let transposedPlan {
              pipelinedTransposedInputGradient(dyp, transposedGeometry, plan: transposedPlan, weight: wp,
                                               into: dxb.baseAddress!)
            } else if let imagePlan {
              pipelinedCol2imInputGradient(dyp, g, plan: imagePlan, weight: wp, into: dxb.baseAddress!)
            }
            guard legacyWeight || legacyInput else { return }
            // The whole-layer loop: im2col and col2im on all cores around multi-threaded GEMMs, one buffer per
            // call (im2col columns for dW, then overwritten by dcols for col2im).
            let columns = allocateScratch(chunk * k)  // [chunk, kh·kw·in]
            defer { columns.deallocate() }
            for start in Swift.stride(from: 0, to: rowCount, by: chunk) {
              let rows = start..<min(rowCount, start + chunk)
              let dyChunk = dyp + start * out  // [rows, out]
              if legacyWeight {
                timeLowering { im2col(xp, g, rows: rows, into: columns) }
                // dW[out, kh·kw·in] += dYᵀ[out, rows] · cols[rows, kh·kw·in], accumulated over chunks
                weight.grad.scalars.withUnsafeMutableBufferPointer { gb in
                  gemm(m: out, n: k, k: rows.count, dyChunk, transposeA: true, columns, into: gb.baseAddress!,
                       beta: 1)
                }
              }
              if legacyInput {
                // dcols[rows, kh·kw·in] = dY[rows, out] · W[out, kh·kw·in], then folded into dx
                gemm(m: rows.count, n: k, k: out, dyChunk, wp, into: columns)
                if gathers {
                  let images = (rows.lowerBound / g.outputPixelsPerImage)..<(rows.upperBound / g.outputPixelsPerImage)
                  timeLowering { col2im(columns, g, images: images, into: dxb.baseAddress!) }
                } else {
                  timeLowering { col2imAdd(columns, g, rows: rows, into: dxb.baseAddress!) }
                }
              }
            }
          }
        }
      }
    }
    return dx
  }

  /// A 1×1 stride-1 unpadded convolution: the input is its own column matrix, so both gradients are one GEMM.
  private func pointwiseBackward(_ dy: Tensor, _ x: Tensor, rows rowCount: Int, weightGradient: Bool) -> Tensor {
    let (k, out) = (inChannels, outChannels)
    var dx = computesInputGradient
      ? Tensor(uninitializedShape: x.shape) { adviseHugePages($0.baseAddress!, bytes: $0.count * 4) }
      : Tensor(shape: [0], scalars: [])
    dy.scalars.withUnsafeBufferPointer { dyb in
      x.scalars.withUnsafeBufferPointer { xb in
        let (dyp, xp) = (dyb.baseAddress!, xb.baseAddress!)
        if weightGradient {
          // dW[out, in] += dYᵀ[out, n·h·w] · x[n·h·w, in]
          weight.grad.scalars.withUnsafeMutableBufferPointer { gb in
            gemm(m: out, n: k, k: rowCount, dyp, transposeA: true, xp, into: gb.baseAddress!, beta: 1)
          }
        }
        if computesInputGradient {
          // dx[n·h·w, in] = dY[n·h·w, out] · W[out, in]
          weight.value.scalars.withUnsafeBufferPointer { wb in
            dx.scalars.withUnsafeMutableBufferPointer { dxb in
              gemm(m: rowCount, n: k, k: out, dyp, wb.baseAddress!, into: dxb.baseAddress!)
            }
          }
        }
      }
    }
    return dx
  }

  /// dW[out, kh·kw·in] += Σ over chunks of dYᵀ[out, rows] · cols[rows, kh·kw·in], each chunk's im2col and GEMM on
  /// one thread. Chunks are grouped into `weightGradientPartials` contiguous groups, each summed into its own
  /// partial dW; the partials are then added to `gradient` in group order.
  private func pipelinedWeightGradient(_ dyp: UnsafePointer<Float>, _ xp: UnsafePointer<Float>, _ g: ConvGeometry,
                                       plan: PipelinePlan, into gradient: UnsafeMutablePointer<Float>) {
    let (k, out) = (g.columnWidth, outChannels)
    let size = out * k
    let groups = min(Self.weightGradientPartials, plan.chunks)
    let partials = UnsafeMutablePointer<Float>.allocate(capacity: groups * size)  // [groups, out, kh·kw·in]
    defer { partials.deallocate() }
    withSingleThreadedBLAS {
      // columns: the running worker's buffer, [rows, kh·kw·in]
      parallelForEachWithScratch(groups, floatsPerWorker: plan.rowsPerChunk * k) { group, columns in
        let partial = partials + group * size
        let chunks = (plan.chunks * group / groups)..<(plan.chunks * (group + 1) / groups)
        for chunk in chunks {
          let rows = plan.rows(chunk)
          im2colOnThisThread(xp, g, rows: rows, into: columns)
          // The group's first chunk overwrites the partial (beta 0), the others accumulate.
          gemmOnThisThread(m: out, n: k, k: rows.count, dyp + rows.lowerBound * out, transposeA: true, columns,
               into: partial, beta: chunk == chunks.lowerBound ? 0 : 1)
        }
      }
    }
    parallelFor(0..<size, minimumChunk: RowGroups.elementwiseChunk) { range in
      for i in range {
        var total: Float = 0
        for group in 0..<groups { total += partials[group * size + i] }
        gradient[i] += total
      }
    }
  }

  /// Stride 1: dx = conv(dy; W̃) with W̃[in, ky, kx, out] = W[out, k−1−ky, k−1−kx, in], padding d·(k−1) − p and
  /// the same dilation (`gT` is that convolution's geometry over dy). Each chunk's im2col(dy) and GEMM run on one
  /// thread and write their rows of dx once.
  private func pipelinedTransposedInputGradient(_ dyp: UnsafePointer<Float>, _ gT: ConvGeometry,
                                                plan: PipelinePlan, weight wp: UnsafePointer<Float>,
                                                into dxp: UnsafeMutablePointer<Float>) {
    let (cin, cout) = (inChannels, outChannels)
    precondition(gT.outputHeight * gT.outputWidth * gT.batchSize == plan.totalRows && gT.channels == cout,
                 "Conv2D transposed backward geometry \(gT) does not match the input gradient's \(plan.totalRows) pixels.")
    let width = gT.columnWidth  // kh·kw·out
    let flipped = flippedTransposedWeight(wp)  // W̃ [in, kh, kw, out]
    defer { flipped.deallocate() }
    let flippedWeight = UnsafePointer(flipped)
    withSingleThreadedBLAS {
      // columns: the running worker's buffer, [rows, kh·kw·out]
      parallelForEachWithScratch(plan.chunks, floatsPerWorker: plan.rowsPerChunk * width) { chunk, columns in
        let rows = plan.rows(chunk)
        im2colOnThisThread(dyp, gT, rows: rows, into: columns)
        // dx[rows, in] = cols(dy)[rows, kh·kw·out] · W̃ᵀ
        gemmOnThisThread(m: rows.count, n: cin, k: width, columns, flippedWeight, transposeB: true,
             into: dxp + rows.lowerBound * cin)
      }
    }
  }

  /// W̃[in, ky, kx, out] = W[out, k−1−ky, k−1−kx, in]: the weight of the convolution that maps dy to dx at stride 1.
  /// The caller deallocates it.
  private func flippedTransposedWeight(_ wp: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
    let (kk, cin, cout) = (kernelSize, inChannels, outChannels)
    let flipped = UnsafeMutablePointer<Float>.allocate(capacity: cin * kk * kk * cout)
    for ci in 0..<cin {
      for ky in 0..<kk {
        for kx in 0..<kk {
          let target = flipped + ((ci * kk + ky) * kk + kx) * cout
          let source = wp + ((kk - 1 - ky) * kk + (kk - 1 - kx)) * cin + ci  // W[·, k−1−ky, k−1−kx, ci]
          for co in 0..<cout { target[co] = source[co * kk * kk * cin] }
        }
      }
    }
    return flipped
  }

  /// Images per chunk for the pipelined dcols + col2im (whole images, so col2im gathers and each thread writes
  /// only its own images of dx); nil when an image's columns exceed the whole-layer buffer or there are too few
  /// images to give every thread two chunks.
  private func imagePipelinePlan(_ g: ConvGeometry) -> PipelinePlan? {
    let perImage = g.outputPixelsPerImage * g.columnWidth
    guard perImage <= maximumColumnElements else { return nil }
    let imagesPerChunk = max(1, min(Self.pipelineColumnElements / perImage, (g.batchSize + 7) / 8))
    let chunks = (g.batchSize + imagesPerChunk - 1) / imagesPerChunk
    switch pipelineMode {
    case .never: return nil
    case .always: break
    case .automatic: guard chunks >= 2 * Threads.count else { return nil }
    }
    return PipelinePlan(totalRows: g.batchSize, rowsPerChunk: imagesPerChunk, chunks: chunks)
  }

  /// dcols[image rows, kh·kw·in] = dY · W, then gathered into those images of dx, per chunk of whole images on one
  /// thread. `plan` counts images, not rows.
  private func pipelinedCol2imInputGradient(_ dyp: UnsafePointer<Float>, _ g: ConvGeometry, plan: PipelinePlan,
                                            weight wp: UnsafePointer<Float>, into dxp: UnsafeMutablePointer<Float>) {
    let (k, out, perImage) = (g.columnWidth, outChannels, g.outputPixelsPerImage)
    withSingleThreadedBLAS {
      let chunkElements = plan.rowsPerChunk * perImage * k
      // columns: the running worker's buffer, dcols [rows, kh·kw·in]
      parallelForEachWithScratch(plan.chunks, floatsPerWorker: chunkElements) { chunk, columns in
        let images = plan.rows(chunk)
        let rowCount = images.count * perImage
        gemmOnThisThread(m: rowCount, n: k, k: out, dyp + images.lowerBound * perImage * out, wp, into: columns)
        col2imOnThisThread(columns, g, images: images, into: dxp)
      }
    }
  }
}

/// target[j] += Σᵢ matrix[i, j] for a row-major `[rows, columns]` matrix, in Double per thread.
private func addColumnSums(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int,
                           into target: UnsafeMutablePointer<Float>) {
  let tasks = max(1, min(Threads.count, rows * columns / 65_536))
  let partial = UnsafeMutablePointer<Double>.allocate(capacity: tasks * columns)  // [tasks, columns]
  defer { partial.deallocate() }
  partial.initialize(repeating: 0, count: tasks * columns)
  parallelFor(0..<tasks, minimumChunk: 1) { taskRange in
    for task in taskRange {
      let sums = partial + task * columns
      for row in (rows * task / tasks)..<(rows * (task + 1) / tasks) {
        let source = matrix + row * columns
        for j in 0..<columns { sums[j] += Double(source[j]) }
      }
    }
  }
  for j in 0..<columns {
    var total = 0.0
    for task in 0..<tasks { total += partial[task * columns + j] }
    target[j] += Float(total)
  }
}

/// Copies `row` (`[width]`) into each of `rows` consecutive rows at `target` (`[rows, width]`). A plain loop rather
/// than `update(from:count:)` per row: that one checks for overlap and calls memmove, which costs more than the copy
/// for the narrow rows (16–128 channels) of small networks.
@inline(__always)
private func fillRows(_ target: UnsafeMutablePointer<Float>, rows: Int, width: Int, with row: UnsafePointer<Float>) {
  var destination = target
  for _ in 0..<rows {
    for j in 0..<width { destination[j] = row[j] }
    destination += width
  }
}
