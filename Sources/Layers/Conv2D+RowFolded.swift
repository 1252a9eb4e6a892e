// Stride-1 convolutions of few output channels as "row-folded" GEMMs: im2col over the kernel rows only, one GEMM
// that produces every kernel column's partial output, then a shift-add along the image row.
//
// Why: at 16 channels (the quick config's first stage) a plain im2col GEMM is [pixels, k²·in] × [k²·in, out] with
// out = 16: OpenBLAS then spends as much time repacking the k²-times-larger column matrix as im2col spent writing it
// (benchmarks/README.md, issue 19 item 1). Folding the kernel columns into the GEMM's N gives
// [pixels, k·in] × [k·in, k·out]: a k-times smaller column matrix to write and pack, a wider N for the GEMM kernel,
// and one pass over a [pixels, k·out] partial output to shift and add.
import Tensors

extension Conv2D {
  /// Whether the row-folded path is used: `.automatic` for stride-1 undilated convolutions with at most
  /// `rowFoldingMaximumOutput` output channels (none while that is 0) on enough images, `.always` / `.never` for tests comparing the paths.
  enum RowFoldingMode { case automatic, always, never }

  /// Output channels up to which `.automatic` folds (the GEMM's N is then k·out ≤ 96 for k = 3 at 32).
  ///
  /// 0 — off — by default for now: with folding on, two rounding-sensitive whole-model tests move (the SimSiam
  /// finite-difference check's smallest stem-BN slope, 0.157 relative error against its 0.1 tolerance, and the
  /// no-stop-gradient collapse run's final std, 0.176 against < 0.1), while every kernel test here agrees with the
  /// im2col paths to 1e-5. Benchmarks set it (`--fold-max`, `--row-fold-max`) to measure the path.
  static var rowFoldingMaximumOutput: Int { rowFoldingMaximumOutputSetting }
  nonisolated(unsafe) static var rowFoldingMaximumOutputSetting = 0
  /// Benchmarks only: `rowFoldingMaximumOutput` (0: never fold), set before any layer runs.
  @_spi(Benchmarks) public static var rowFoldingMaximumOutputs: Int {
    get { rowFoldingMaximumOutputSetting }
    set { rowFoldingMaximumOutputSetting = newValue }
  }

  /// Whether a convolution with this geometry, `outputs` output channels (the GEMM's N / k) and no bias runs
  /// row-folded. Stride 1 and dilation 1 only (the shift-add assumes adjacent taps); whole images per chunk, so
  /// at least two images per thread for `.automatic`, and one image's scratch must fit the column buffer.
  func usesRowFolding(_ g: ConvGeometry, outputs: Int) -> Bool {
    guard g.stride == 1 && g.dilation == 1 && g.kernelSize > 1 else { return false }
    switch rowFoldingMode {
    case .never: return false
    case .always: return true
    case .automatic:
      return outputs <= Self.rowFoldingMaximumOutput && g.batchSize >= 2 * Threads.count
        && rowFoldedScratchPerImage(g, outputs: outputs) <= maximumColumnElements
    }
  }

  /// Floats of one image's scratch: the row columns `[outH·w, k·in]` and the partial outputs `[outH·w, k·out]`.
  func rowFoldedScratchPerImage(_ g: ConvGeometry, outputs: Int) -> Int {
    g.outputHeight * g.width * g.kernelSize * (g.channels + outputs)
  }

  /// y = conv(x; W) (+ bias) for a stride-1 undilated convolution, per image on one thread each.
  ///
  /// - x: `[n, h, w, in]` (geometry `g`); weight: OHWI `[outputs, k, k, in]`; bias: `[outputs]` or nil;
  ///   y: `[n, outH, outW, outputs]`, every element written once.
  /// Per image: rowColumns[(oy, jx), (ky, c)] = x[oy − p + ky, jx, c] (0 outside), partial = rowColumns · W′ with
  /// W′[(ky, c), (kx, o)] = W[o, ky, kx, c], then y[oy, ox, o] = bias[o] + Σ_kx partial[(oy, ox − p + kx), (kx, o)]
  /// over the kx whose column ox − p + kx lies inside the image.
  func rowFoldedConvolution(_ x: UnsafePointer<Float>, _ g: ConvGeometry, weight: UnsafePointer<Float>,
                            outputs: Int, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
    precondition(g.stride == 1 && g.dilation == 1,
                 "The row-folded convolution needs stride 1 and dilation 1, got \(g.stride) and \(g.dilation).")
    let (k, c, w, p) = (g.kernelSize, g.channels, g.width, g.padding)
    let (outH, outW) = (g.outputHeight, g.outputWidth)
    let foldedWidth = k * c, foldedOutputs = k * outputs
    let rowsPerImage = outH * w
    // W′ᵀ[(kx, o), (ky, c)] = W[o, ky, kx, c]: the GEMM's B, stored [k·outputs, k·in] (transposeB).
    let folded = UnsafeMutablePointer<Float>.allocate(capacity: foldedOutputs * foldedWidth)
    defer { folded.deallocate() }
    for kx in 0..<k {
      for o in 0..<outputs {
        let target = folded + (kx * outputs + o) * foldedWidth
        for ky in 0..<k {
          let source = weight + ((o * k + ky) * k + kx) * c
          for channel in 0..<c { target[ky * c + channel] = source[channel] }
        }
      }
    }
    let foldedWeight = UnsafePointer(folded)
    let columnFloats = rowsPerImage * foldedWidth
    withSingleThreadedBLAS {
      // scratch: the running worker's row columns [outH·w, k·in], then its partial outputs [outH·w, k·outputs]
      parallelForEachWithScratch(g.batchSize, floatsPerWorker: rowFoldedScratchPerImage(g, outputs: outputs)) {
        image, scratch in
        let columns = scratch, partial = scratch + columnFloats
        let imageBase = x + image * g.height * w * c
        for oy in 0..<outH {
          for ky in 0..<k {
            let iy = oy - p + ky
            let target = columns + oy * w * foldedWidth + ky * c
            if iy < 0 || iy >= g.height {
              for jx in 0..<w {
                let row = target + jx * foldedWidth
                for channel in 0..<c { row[channel] = 0 }
              }
            } else {
              let source = imageBase + iy * w * c
              for jx in 0..<w {
                let row = target + jx * foldedWidth, pixel = source + jx * c
                for channel in 0..<c { row[channel] = pixel[channel] }
              }
            }
          }
        }
        gemmOnThisThread(m: rowsPerImage, n: foldedOutputs, k: foldedWidth, columns, foldedWeight,
                         transposeB: true, into: partial)
        let imageOutput = y + image * outH * outW * outputs
        for oy in 0..<outH {
          for ox in 0..<outW {
            let target = imageOutput + (oy * outW + ox) * outputs
            if let bias {
              for o in 0..<outputs { target[o] = bias[o] }
            } else {
              for o in 0..<outputs { target[o] = 0 }
            }
            for kx in 0..<k {
              let jx = ox - p + kx
              if jx < 0 || jx >= w { continue }
              let source = partial + (oy * w + jx) * foldedOutputs + kx * outputs
              for o in 0..<outputs { target[o] += source[o] }
            }
          }
        }
      }
    }
  }
}
