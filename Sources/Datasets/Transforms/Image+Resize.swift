// Bilinear resizing exactly as Pillow's `Image.resize(size, Image.BILINEAR)` (what torchvision's Resize and
// RandomResizedCrop call on PIL images), and torchvision's short-side Resize.
//
// Pillow ≥ 7 (libImaging/Resample.c, `ImagingResample`): a separable convolution with the triangle filter
// (support 1) widened by the downscale factor, which is its antialiasing. Weights are computed in double
// (`precompute_coeffs`), rounded to 22-bit fixed point (`normalize_coeffs_8bpc`, PRECISION_BITS = 32 − 8 − 2),
// and applied in two passes (order below), each pass rounding (+ 2^21, >> 22) and clipping to 0…255 into
// 8 bits. The first pass only covers the rows (columns) the second one reads.

/// Which Pillow's pass order a two-pass bilinear resize follows (issue 14 item 13). The 8-bit rounding between the
/// passes makes the order visible: ±1 on some pixels of portrait resizes, up to 1e-3 relative in features.
///
/// - `pillow9`: the horizontal pass always runs first, as in Pillow ≤ 12 (libImaging/Resample.c,
///   `ImagingResampleInner`, read at 9.5.0 and 12.3.0): the Pillow behind the published SimSiam / MMSelfSup numbers.
/// - `pillow13`: Pillow 13 runs the vertical pass first when 2 · max(W − w, 0) < max(H − h, 0) (portrait squashes).
///
/// The default is `pillow13`: the Pillow of this machine's reference environment, which made every committed
/// PyTorch/torchvision fixture (transforms, features, parity tests) and which a fresh `pip install torchvision`
/// gets. `pillow9` reproduces the preprocessing of the published numbers (`data.resize_rule: pillow9` in
/// `run voc-svm`'s config); the rule is recorded with the run and keys the feature cache.
public enum ResizeRule: String, CaseIterable, Sendable, Codable {
  case pillow9
  case pillow13

  public static let `default` = ResizeRule.pillow13

  /// Whether the vertical pass runs first for a `boxWidth × boxHeight → outputWidth × outputHeight` resize that
  /// changes both sides.
  func verticalFirst(boxWidth: Int, boxHeight: Int, outputWidth: Int, outputHeight: Int) -> Bool {
    switch self {
    case .pillow9: false
    case .pillow13: 2 * max(boxWidth - outputWidth, 0) < max(boxHeight - outputHeight, 0)
    }
  }
}

/// Pillow's fixed-point resampling weights for one axis: output i reads `count[i]` inputs from `first[i]`
/// with weights `weights[i · taps ..< i · taps + count[i]]` (sum ≈ 2^22).
struct ResampleWeights {
  static let precisionBits: Int32 = 22

  let outputSize: Int
  let taps: Int        // Pillow's ksize: the most weights any output uses
  var first: [Int]     // [outputSize]
  var count: [Int]     // [outputSize]
  var weights: [Int32] // [outputSize · taps]

  /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter, mapping input
  /// coordinates `[0, inputSize)` onto `outputSize` pixels.
  init(inputSize: Int, outputSize: Int) {
    precondition(inputSize > 0 && outputSize > 0,
                 "Resampling needs positive sizes; got \(inputSize) → \(outputSize).")
    self.outputSize = outputSize
    let scale = Double(inputSize) / Double(outputSize)
    let filterScale = max(scale, 1.0)
    let support = 1.0 * filterScale  // the triangle filter's support is 1
    let taps = Int(support.rounded(.up)) * 2 + 1
    self.taps = taps
    first = [Int](repeating: 0, count: outputSize)
    count = [Int](repeating: 0, count: outputSize)
    weights = [Int32](repeating: 0, count: outputSize * taps)
    let inverseFilterScale = 1.0 / filterScale
    var raw = [Double](repeating: 0, count: taps)
    for i in 0..<outputSize {
      let center = (Double(i) + 0.5) * scale
      // Pillow rounds with a truncating (int) cast of value + 0.5, then clamps.
      let low = max(Int(center - support + 0.5), 0)
      let high = min(Int(center + support + 0.5), inputSize)
      let n = high - low
      var total = 0.0
      for k in 0..<n {
        let distance = abs((Double(k + low) - center + 0.5) * inverseFilterScale)
        let w = distance < 1.0 ? 1.0 - distance : 0.0
        raw[k] = w
        total += w
      }
      let one = Double(1 << ResampleWeights.precisionBits)
      for k in 0..<n {
        let w = total != 0.0 ? raw[k] / total : raw[k]
        weights[i * taps + k] = Int32(w < 0 ? -0.5 + w * one : 0.5 + w * one)  // truncation toward zero
      }
      first[i] = low
      count[i] = n
    }
  }
}

/// Pillow's `clip8`: a fixed-point sum with 22 fraction bits (rounding bias already added) → 0…255.
@inline(__always) private func clip8(_ sum: Int32) -> UInt8 {
  let value = sum >> ResampleWeights.precisionBits
  return value <= 0 ? 0 : (value >= 255 ? 255 : UInt8(truncatingIfNeeded: value))
}

extension Image {
  /// `Image.resize((width, height), Image.BILINEAR)` of Pillow ≥ 7, pixel for pixel, passes in `rule`'s order.
  public func resized(width: Int, height: Int, rule: ResizeRule = .default) -> Image {
    resampled(x: 0, y: 0, width: self.width, height: self.height, outputWidth: width, outputHeight: height,
              rule: rule)
  }

  /// torchvision `Resize(size)` with an int size: the short side becomes `size`, the long side
  /// `int(size · long / short)` (true division, truncated), as `_compute_resized_output_size` computes it;
  /// an image already that size is returned unchanged.
  public func resizedShortSide(to size: Int, rule: ResizeRule = .default) -> Image {
    let (w, h) = Image.shortSideSize(width: width, height: height, size: size)
    return (w == width && h == height) ? self : resized(width: w, height: h, rule: rule)
  }

  /// The (width, height) torchvision's `Resize(size)` produces for a `width × height` image.
  public static func shortSideSize(width: Int, height: Int, size: Int) -> (width: Int, height: Int) {
    precondition(width > 0 && height > 0 && size > 0,
                 "Short-side resize of a \(width)×\(height) image to \(size) needs positive sizes.")
    let short = min(width, height), long = max(width, height)
    let newLong = Int(Double(size * long) / Double(short))
    return width <= height ? (size, newLong) : (newLong, size)
  }

  /// Pillow's `crop((x, y, x + width, y + height))` followed by `resize((outputWidth, outputHeight), BILINEAR)`
  /// for a box inside the image, without materialising the crop (the crop is a plain copy, so the result is
  /// the same). Pillow skips a pass whose size does not change.
  func resampled(x: Int, y: Int, width boxWidth: Int, height boxHeight: Int,
                 outputWidth: Int, outputHeight: Int, rule: ResizeRule = .default) -> Image {
    precondition(x >= 0 && y >= 0 && boxWidth > 0 && boxHeight > 0 && x + boxWidth <= width
                   && y + boxHeight <= height,
                 "Resample box (\(x), \(y)) \(boxWidth)×\(boxHeight) must lie inside the \(width)×\(height) image.")
    precondition(outputWidth > 0 && outputHeight > 0,
                 "Resize to \(outputWidth)×\(outputHeight) needs a positive size.")
    let c = channels
    let needsHorizontal = outputWidth != boxWidth
    let needsVertical = outputHeight != boxHeight
    if !needsHorizontal && !needsVertical {
      return cropped(x: x, y: y, width: boxWidth, height: boxHeight)
    }
    let origin = (y * width + x) * c  // element offset of the box's top-left pixel
    let rowStride = width * c
    if !needsVertical {
      let horizontal = ResampleWeights(inputSize: boxWidth, outputSize: outputWidth)
      return horizontal.resampleRows(pixels, origin: origin, rowStride: rowStride, rows: boxHeight, channels: c)
    }
    let vertical = ResampleWeights(inputSize: boxHeight, outputSize: outputHeight)
    if !needsHorizontal {
      return vertical.resampleColumns(pixels, origin: origin, rowStride: rowStride, columns: boxWidth, channels: c)
    }
    let horizontal = ResampleWeights(inputSize: boxWidth, outputSize: outputWidth)
    // The order of the passes is `rule`'s (ResizeRule). Pillow 13's: the vertical pass first when it removes more
    // than twice as many rows as the horizontal pass removes columns, 2 · max(W − w, 0) < max(H − h, 0).
    // [inferred: fitted on Pillow 13.0.0 outputs — every order decision on ~3,000 random sizes, and on sizes
    // within ±3 of the boundary up to 400 px, matched.] Pillow 9's: always horizontal first (resize_rule fixtures
    // from Pillow 9.5.0 and 13.0.0, scripts/reference/make_resize_rule_fixtures.py).
    if rule.verticalFirst(boxWidth: boxWidth, boxHeight: boxHeight, outputWidth: outputWidth,
                          outputHeight: outputHeight) {
      // Vertical pass over the columns the horizontal pass reads only.
      let columnFirst = horizontal.first[0]
      let columnEnd = horizontal.first[outputWidth - 1] + horizontal.count[outputWidth - 1]
      let intermediate = vertical.resampleColumns(pixels, origin: origin + columnFirst * c, rowStride: rowStride,
                                                  columns: columnEnd - columnFirst, channels: c)
      return horizontal.resampleRows(intermediate.pixels, origin: -columnFirst * c,
                                     rowStride: intermediate.width * c, rows: outputHeight, channels: c)
    }
    // Horizontal pass over the rows the vertical pass reads only.
    let rowFirst = vertical.first[0]
    let rowEnd = vertical.first[outputHeight - 1] + vertical.count[outputHeight - 1]
    let intermediate = horizontal.resampleRows(pixels, origin: origin + rowFirst * rowStride, rowStride: rowStride,
                                               rows: rowEnd - rowFirst, channels: c)
    return vertical.resampleColumns(intermediate.pixels, origin: -rowFirst * intermediate.width * c,
                                    rowStride: intermediate.width * c, columns: outputWidth, channels: c)
  }
}

extension ResampleWeights {
  /// The horizontal pass: `rows` rows of `source` resampled to `outputSize` pixels each. Input pixel i of row r
  /// sits at `source[origin + r · rowStride + i · channels]` (i as counted by `first`; `origin` may be
  /// negative when the row buffer starts at a later column).
  func resampleRows(_ source: [UInt8], origin: Int, rowStride: Int, rows: Int, channels c: Int) -> Image {
    let pixels = [UInt8](unsafeUninitializedCapacity: rows * outputSize * c) { buffer, initialized in
      source.withUnsafeBufferPointer { source in
        weights.withUnsafeBufferPointer { weights in
          horizontalPass(source: source.baseAddress!, origin: origin, sourceRowStride: rowStride, rows: rows,
                         channels: c, weights: weights.baseAddress!, first: first, count: count, taps: taps,
                         output: buffer.baseAddress!, outputWidth: outputSize)
        }
      }
      initialized = rows * outputSize * c
    }
    return Image(width: outputSize, height: rows, channels: c, pixels: pixels)
  }

  /// The vertical pass: rows resampled to `outputSize` rows of `columns` pixels. Input row r (as counted by
  /// `first`) starts at `source[origin + r · rowStride]`.
  func resampleColumns(_ source: [UInt8], origin: Int, rowStride: Int, columns: Int, channels c: Int) -> Image {
    let pixels = [UInt8](unsafeUninitializedCapacity: outputSize * columns * c) { buffer, initialized in
      source.withUnsafeBufferPointer { source in
        weights.withUnsafeBufferPointer { weights in
          verticalPass(source: source.baseAddress!, origin: origin, sourceRowStride: rowStride,
                       rowElements: columns * c, weights: weights.baseAddress!, first: first, count: count,
                       taps: taps, output: buffer.baseAddress!, outputHeight: outputSize)
        }
      }
      initialized = outputSize * columns * c
    }
    return Image(width: columns, height: outputSize, channels: c, pixels: pixels)
  }
}

/// Pillow's `ImagingResampleHorizontal_8bpc`: every output pixel of a row is a weighted sum of `count[i]`
/// consecutive input pixels. source: [rows, sourceRowStride] bytes (interleaved), output: [rows, outputWidth, c].
private func horizontalPass(source: UnsafePointer<UInt8>, origin: Int, sourceRowStride: Int, rows: Int,
                            channels c: Int,
                            weights: UnsafePointer<Int32>, first: [Int], count: [Int], taps: Int,
                            output: UnsafeMutablePointer<UInt8>, outputWidth: Int) {
  let bias: Int32 = 1 << (ResampleWeights.precisionBits - 1)
  first.withUnsafeBufferPointer { first in
    count.withUnsafeBufferPointer { count in
      for row in 0..<rows {
        let rowStart = origin + row * sourceRowStride
        var out = output + row * outputWidth * c
        for i in 0..<outputWidth {
          let k = weights + i * taps
          let n = count[i]
          var p = source + (rowStart + first[i] * c)
          if c == 3 {
            var s0 = bias, s1 = bias, s2 = bias
            for t in 0..<n {
              let w = k[t]
              s0 &+= Int32(p[0]) &* w
              s1 &+= Int32(p[1]) &* w
              s2 &+= Int32(p[2]) &* w
              p += 3
            }
            out[0] = clip8(s0); out[1] = clip8(s1); out[2] = clip8(s2)
            out += 3
          } else {
            var s0 = bias
            for t in 0..<n {
              s0 &+= Int32(p[t]) &* k[t]
            }
            out[0] = clip8(s0)
            out += 1
          }
        }
      }
    }
  }
}

/// Pillow's `ImagingResampleVertical_8bpc`: every output row is a weighted sum of `count[j]` consecutive input
/// rows. Row r of the input starts at `source + origin + r · sourceRowStride`; rows are `rowElements` bytes.
private func verticalPass(source: UnsafePointer<UInt8>, origin: Int, sourceRowStride: Int, rowElements: Int,
                          weights: UnsafePointer<Int32>, first: [Int], count: [Int], taps: Int,
                          output: UnsafeMutablePointer<UInt8>, outputHeight: Int) {
  let bias: Int32 = 1 << (ResampleWeights.precisionBits - 1)
  // One Int32 accumulator per element of a row, reused for every output row.
  let sums = UnsafeMutablePointer<Int32>.allocate(capacity: rowElements)
  defer { sums.deallocate() }
  for j in 0..<outputHeight {
    let k = weights + j * taps
    let n = count[j]
    sums.initialize(repeating: bias, count: rowElements)
    for t in 0..<n {
      let w = k[t]
      let input = source + (origin + (first[j] + t) * sourceRowStride)
      for e in 0..<rowElements {
        sums[e] &+= Int32(input[e]) &* w
      }
    }
    let out = output + j * rowElements
    for e in 0..<rowElements {
      out[e] = clip8(sums[e])
    }
  }
}
