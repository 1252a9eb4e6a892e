// Double-precision oracles of 3×3 stride-1 pad-1 convolutions and their weight gradient, and the summation bound
// the direct and Winograd kernels are judged by (Conv2DDirectTests, Conv2DWinogradTests).
import Testing
import Tensors

/// dW[o, ky, kx, i] = Σ_{n, y, x} dy[n, y, x, o] · x[n, y + ky − 1, x + kx − 1, i] in Double (zero padding), and
/// Σ|terms| of each element. x: `[n, h, w, in]`, dy: `[n, h, w, out]`; both results OHWI `[out, 3, 3, in]`.
public func weightGradientOracle(_ x: Tensor, _ dy: Tensor, inChannels cin: Int,
                                 outChannels cout: Int) -> ([Double], [Double]) {
  let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
  var sums = [Double](repeating: 0, count: cout * 9 * cin), magnitudes = sums
  for image in 0..<n {
    for oy in 0..<h {
      for ox in 0..<w {
        for tap in 0..<9 {
          let (iy, ix) = (oy + tap / 3 - 1, ox + tap % 3 - 1)
          guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
          for o in 0..<cout {
            let gradient = Double(dy.scalars[((image * h + oy) * w + ox) * cout + o])
            for i in 0..<cin {
              let term = gradient * Double(x.scalars[((image * h + iy) * w + ix) * cin + i])
              sums[(o * 9 + tap) * cin + i] += term
              magnitudes[(o * 9 + tap) * cin + i] += abs(term)
            }
          }
        }
      }
    }
  }
  return (sums, magnitudes)
}

/// Expects every element of `actual` within 1e-5·Σ|terms| (+ 1e-7) of its Double oracle: float32 rounding of any
/// summation order of terms of either sign is a fraction of Σ|terms|, not of the (possibly much smaller) sum.
public func expectWithinSummationBound(_ actual: Tensor, _ oracle: [Double], _ magnitude: [Double], _ what: String,
                                       sourceLocation: SourceLocation = #_sourceLocation) {
  let worst = zip(actual.scalars, zip(oracle, magnitude)).map { value, reference in
    abs(Double(value) - reference.0) / (1e-5 * reference.1 + 1e-7)
  }.max() ?? 0
  #expect(worst <= 1, "\(what): worst error \(worst) of the bound 1e-5·Σ|terms|", sourceLocation: sourceLocation)
}
