// Double-precision oracles of 3×3 stride-1 pad-1 convolutions and their weight gradient, and the summation bound
// the direct and Winograd kernels are judged by (Conv2DDirectTests, Conv2DWinogradTests).
import Testing
import Tensors

/// Calls `body(outputPixel, tap, inputPixel)` for every output pixel of a 3×3 stride-1 pad-1 convolution over
/// `[n, h, w]` and every tap whose input pixel lies inside the image (pixels as flat indices `(image·h + y)·w + x`,
/// tap = 3·ky + kx).
private func forEachTerm(_ n: Int, _ h: Int, _ w: Int, _ body: (Int, Int, Int) -> Void) {
  for image in 0..<n {
    for oy in 0..<h {
      for ox in 0..<w {
        for tap in 0..<9 {
          let (iy, ix) = (oy + tap / 3 - 1, ox + tap % 3 - 1)
          guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
          body((image * h + oy) * w + ox, tap, (image * h + iy) * w + ix)
        }
      }
    }
  }
}

/// out[n, y, x, o] = Σ_{ky, kx, i} input[n, y + ky − 1, x + kx − 1, i] · kernel(o, ky, kx, i) in Double (zero
/// padding), and Σ|terms| of each element. input: `[n, h, w, in]`; both results `[n, h, w, outChannels]`.
public func convolutionOracle(_ input: Tensor, outChannels: Int,
                              kernel: (Int, Int, Int, Int) -> Double) -> ([Double], [Double]) {
  let (n, h, w, cin) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
  var sums = [Double](repeating: 0, count: n * h * w * outChannels), magnitudes = sums
  forEachTerm(n, h, w) { outputPixel, tap, inputPixel in
    for o in 0..<outChannels {
      for i in 0..<cin {
        let term = Double(input.scalars[inputPixel * cin + i]) * kernel(o, tap / 3, tap % 3, i)
        sums[outputPixel * outChannels + o] += term
        magnitudes[outputPixel * outChannels + o] += abs(term)
      }
    }
  }
  return (sums, magnitudes)
}

/// dW[o, ky, kx, i] = Σ_{n, y, x} dy[n, y, x, o] · x[n, y + ky − 1, x + kx − 1, i] in Double (zero padding), and
/// Σ|terms| of each element. x: `[n, h, w, in]`, dy: `[n, h, w, out]`; both results OHWI `[out, 3, 3, in]`.
public func weightGradientOracle(_ x: Tensor, _ dy: Tensor, inChannels cin: Int,
                                 outChannels cout: Int) -> ([Double], [Double]) {
  var sums = [Double](repeating: 0, count: cout * 9 * cin), magnitudes = sums
  forEachTerm(x.shape[0], x.shape[1], x.shape[2]) { outputPixel, tap, inputPixel in
    for o in 0..<cout {
      let gradient = Double(dy.scalars[outputPixel * cout + o])
      for i in 0..<cin {
        let term = gradient * Double(x.scalars[inputPixel * cin + i])
        sums[(o * 9 + tap) * cin + i] += term
        magnitudes[(o * 9 + tap) * cin + i] += abs(term)
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
