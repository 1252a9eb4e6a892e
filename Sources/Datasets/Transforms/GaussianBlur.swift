// Pillow's `ImageFilter.GaussianBlur(radius)` (libImaging/BoxBlur.c), which MMSelfSup's and the official
// SimSiam GaussianBlur call with radius = σ: three "extended box" blurs per direction (Gwosdek et al., "Theoretical
// foundations of Gaussian convolution by extended box filtering", SSVM 2011), horizontal passes first, each pass
// rounding to 8 bits. Edges repeat the border pixel.

/// BoxBlur.c `_gaussian_blur_radius`: the extended box radius r + α whose `passes`-fold repetition has the
/// variance σ² of the Gaussian. Float and double steps as in the C code.
func pillowBoxRadius(sigma radius: Float, passes: Int) -> Float {
  let sigma2: Float = radius * radius / Float(passes)
  let boxLength = Float((12.0 * Double(sigma2) + 1.0).squareRoot())        // [7]
  let l = Float(((Double(boxLength) - 1.0) / 2.0).rounded(.down))          // [11] integer part
  var a: Float = (2 * l + 1) * (l * (l + 1) - 3 * sigma2)                   // [14] fractional part
  a /= 6 * (sigma2 - (l + 1) * (l + 1))
  return l + a
}

/// `img.filter(ImageFilter.GaussianBlur(radius))` of Pillow: what MMSelfSup's `GaussianBlur` applies with
/// radius = σ ~ U(0.1, 2.0). Gray or RGB.
public func gaussianBlur(_ image: Image, radius: Float) -> Image {
  precondition(radius >= 0, "Gaussian blur radius \(radius) is negative.")
  if radius == 0 || image.width == 0 || image.height == 0 { return image }
  let passes = 3
  let boxRadius = pillowBoxRadius(sigma: radius, passes: passes)
  if boxRadius == 0 { return image }
  let kernel = ExtendedBox(radius: boxRadius)
  var output = image.pixels
  let w = image.width, h = image.height, c = image.channels
  let longest = max(w, h)
  // One padded line (edge pixels repeated r + 1 times on each side) and its blurred copy, reused for all lines.
  let pad = kernel.radius + 1
  let lineA = UnsafeMutablePointer<UInt32>.allocate(capacity: longest + 2 * pad)
  let lineB = UnsafeMutablePointer<UInt32>.allocate(capacity: longest + 2 * pad)
  defer { lineA.deallocate(); lineB.deallocate() }
  output.withUnsafeMutableBufferPointer { buffer in
    let pixels = buffer.baseAddress!
    // Horizontal: every row, channel by channel (element stride c); then vertical: every column.
    for row in 0..<h {
      for channel in 0..<c {
        kernel.blurLine(pixels + row * w * c + channel, count: w, stride: c, passes: passes,
                        lineA: lineA, lineB: lineB)
      }
    }
    for column in 0..<w {
      for channel in 0..<c {
        kernel.blurLine(pixels + column * c + channel, count: h, stride: w * c, passes: passes,
                        lineA: lineA, lineB: lineB)
      }
    }
  }
  return Image(width: w, height: h, channels: c, pixels: output)
}

/// BoxBlur.c `ImagingHorizontalBoxBlur` / `ImagingLineBoxBlur8`: the box covers 2r + 1 pixels at weight ww and
/// the two next ones at weight fw, in 24-bit fixed point:
/// out[x] = (ww · Σ_{|k−x|≤r} in[k] + fw · (in[x−r−1] + in[x+r+1]) + 2^23) >> 24, indices clamped to the line.
struct ExtendedBox {
  let radius: Int      // r = (int)floatRadius
  let ww: UInt32
  let fw: UInt32

  init(radius floatRadius: Float) {
    radius = Int(floatRadius)
    ww = UInt32(Float(1 << 24) / (floatRadius * 2 + 1))  // float division, truncated
    fw = (UInt32(1 << 24) - UInt32(radius * 2 + 1) * ww) / 2
  }

  /// Blurs `count` bytes at `line[0], line[stride], …` in place, `passes` times. The loops walk pointers rather
  /// than indices, so the per-pixel work has no overflow checks in -O builds.
  func blurLine(_ line: UnsafeMutablePointer<UInt8>, count n: Int, stride: Int, passes: Int,
                lineA: UnsafeMutablePointer<UInt32>, lineB: UnsafeMutablePointer<UInt32>) {
    let r = radius, pad = r + 1
    var source = lineA, target = lineB
    var byte = line, value = source + pad
    for _ in 0..<n { value.pointee = UInt32(byte.pointee); byte += stride; value += 1 }
    for pass in 0..<passes {
      // Repeat the edge pixels into the padding.
      let left = source[pad], right = source[pad + n - 1]
      source.update(repeating: left, count: pad)
      (source + pad + n).update(repeating: right, count: pad)
      // Window sum over padded positions [x + pad − r, x + pad + r] for x = 0.
      var sum: UInt32 = 0
      for k in (pad - r)...(pad + r) { sum &+= source[k] }
      // For output x (padded position c = pad + x): `behind` = c − r − 1, `ahead` = c + r + 1. The last step's
      // sum update reads positions pad + n + r and pad + n − 1 − r, both inside the padded line, and is unused.
      var behind = source + (pad - r - 1), ahead = source + (pad + r + 1), out = target + pad
      for _ in 0..<n {
        let bulk = sum &* ww &+ (behind.pointee &+ ahead.pointee) &* fw
        out.pointee = (bulk &+ (1 << 23)) >> 24
        sum = sum &+ ahead.pointee &- behind[1]
        behind += 1; ahead += 1; out += 1
      }
      if pass + 1 < passes { swap(&source, &target) } else { source = target }
    }
    byte = line; value = source + pad
    for _ in 0..<n { byte.pointee = UInt8(truncatingIfNeeded: value.pointee); byte += stride; value += 1 }
  }
}
