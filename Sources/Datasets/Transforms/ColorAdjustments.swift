// torchvision's colour functions on PIL images (transforms/functional_pil.py), which hand the work to Pillow:
// brightness, contrast and saturation are `ImageEnhance` blends (libImaging/Blend.c), hue is an HSV round trip
// (libImaging/Convert.c), greyscale is `convert("L")`. The float/double mix below follows Pillow's C code,
// because the truncations to 8 bits make the last bit of every intermediate matter.
import Foundation

/// Pillow's `convert("L")` of one RGB pixel (Convert.c `L24`): ITU-R 601-2 luma in 16-bit fixed point,
/// (R·19595 + G·38470 + B·7471 + 2^15) >> 16, Pillow's exact rounding of (R·299 + G·587 + B·114) / 1000.
@inline(__always) func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
  UInt8(truncatingIfNeeded: (UInt32(r) &* 19595 &+ UInt32(g) &* 38470 &+ UInt32(b) &* 7471 &+ 0x8000) >> 16)
}

/// Pillow's `ImagingBlend(degenerate, image, alpha)` for one byte: `degenerate + alpha · (image − degenerate)`
/// in float, truncated; clipped to 0…255 when alpha lies outside [0, 1] (the extrapolation branch).
@inline(__always) func blendByte(_ degenerate: UInt8, _ value: UInt8, _ alpha: Float) -> UInt8 {
  let blended = Float(Int32(degenerate)) + alpha * Float(Int32(value) - Int32(degenerate))
  if alpha >= 0 && alpha <= 1 { return UInt8(blended) }
  if blended <= 0 { return 0 }
  if blended >= 255 { return 255 }
  return UInt8(blended)
}

extension Image {
  /// `self` with every byte replaced through a 256-entry table.
  func mappingBytes(_ table: [UInt8]) -> Image {
    let output = [UInt8](unsafeUninitializedCapacity: pixels.count) { buffer, initialized in
      pixels.withUnsafeBufferPointer { source in
        table.withUnsafeBufferPointer { table in
          let out = buffer.baseAddress!, input = source.baseAddress!, lut = table.baseAddress!
          for i in 0..<source.count { out[i] = lut[Int(input[i])] }
        }
      }
      initialized = pixels.count
    }
    return Image(width: width, height: height, channels: channels, pixels: output)
  }

  /// The `convert("L")` plane, [height, width]; a grey image is returned as is.
  var lumaPlane: [UInt8] {
    if channels == 1 { return pixels }
    return [UInt8](unsafeUninitializedCapacity: width * height) { buffer, initialized in
      pixels.withUnsafeBufferPointer { source in
        let input = source.baseAddress!, out = buffer.baseAddress!
        for i in 0..<(width * height) { out[i] = luma(input[3 * i], input[3 * i + 1], input[3 * i + 2]) }
      }
      initialized = width * height
    }
  }
}

/// torchvision `F.adjust_brightness` on PIL = `ImageEnhance.Brightness(img).enhance(factor)`: a blend with a
/// black image, i.e. trunc(factor · value), clipped.
public func adjustBrightness(_ image: Image, factor: Float) -> Image {
  if factor == 1 { return image }  // Blend.c copies the image for alpha == 1
  return image.mappingBytes((0..<256).map { blendByte(0, UInt8($0), factor) })
}

/// torchvision `F.adjust_contrast` on PIL = `ImageEnhance.Contrast(img).enhance(factor)`: a blend with the
/// constant image `int(mean(img.convert("L")) + 0.5)`.
public func adjustContrast(_ image: Image, factor: Float) -> Image {
  if factor == 1 { return image }
  let plane = image.lumaPlane
  var histogram = [Int](repeating: 0, count: 256)
  plane.withUnsafeBufferPointer { plane in
    for value in plane { histogram[Int(value)] += 1 }
  }
  var sum = 0
  for (value, n) in histogram.enumerated() { sum += value * n }
  // ImageStat.Stat(...).mean[0] is sum / count in double; int() truncates the non-negative value + 0.5.
  let mean = UInt8(Double(sum) / Double(max(plane.count, 1)) + 0.5)
  return image.mappingBytes((0..<256).map { blendByte(mean, UInt8($0), factor) })
}

/// torchvision `F.adjust_saturation` on PIL = `ImageEnhance.Color(img).enhance(factor)`: a blend with
/// `img.convert("L").convert(img.mode)`. A grey image is its own degenerate, so it comes back unchanged.
public func adjustSaturation(_ image: Image, factor: Float) -> Image {
  if factor == 1 || image.channels == 1 { return image }
  let count = image.width * image.height
  let output = [UInt8](unsafeUninitializedCapacity: count * 3) { buffer, initialized in
    image.pixels.withUnsafeBufferPointer { source in
      let input = source.baseAddress!, out = buffer.baseAddress!
      for i in 0..<count {
        let r = input[3 * i], g = input[3 * i + 1], b = input[3 * i + 2]
        let l = luma(r, g, b)
        out[3 * i] = blendByte(l, r, factor)
        out[3 * i + 1] = blendByte(l, g, factor)
        out[3 * i + 2] = blendByte(l, b, factor)
      }
    }
    initialized = count * 3
  }
  return Image(width: image.width, height: image.height, channels: 3, pixels: output)
}

/// torchvision `F.adjust_hue` on PIL: `img.convert("HSV")`, the H byte shifted by `uint8(factor · 255)` with
/// wrap-around (the float → uint8 cast truncates toward zero, then wraps), then `convert("RGB")`. The round
/// trip itself is lossy, so factor 0 still changes pixels, exactly as in torchvision. Grey images are returned
/// unchanged. `factor` must lie in [−0.5, 0.5].
public func adjustHue(_ image: Image, factor: Float) -> Image {
  precondition(factor >= -0.5 && factor <= 0.5, "Hue factor \(factor) is not in [-0.5, 0.5].")
  if image.channels == 1 { return image }
  // torchvision: hue_factor (a Python float holding the float32 draw) · 255 in double, cast to uint8.
  let shift = UInt8(truncatingIfNeeded: Int(Double(factor) * 255))
  let count = image.width * image.height
  let output = [UInt8](unsafeUninitializedCapacity: count * 3) { buffer, initialized in
    image.pixels.withUnsafeBufferPointer { source in
      hueSectors.withUnsafeBufferPointer { sectors in
        saturationFractions.withUnsafeBufferPointer { fractions in
          var input = source.baseAddress!, out = buffer.baseAddress!
          let tables = (sectors.baseAddress!, fractions.baseAddress!)
          for _ in 0..<count {
            let (h, s, v) = pillowRGBToHSV(input[0], input[1], input[2])
            let (r, g, b) = pillowHSVToRGB(h &+ shift, s, v, tables: tables)
            out[0] = r; out[1] = g; out[2] = b
            input += 3; out += 3
          }
        }
      }
    }
    initialized = count * 3
  }
  return Image(width: image.width, height: image.height, channels: 3, pixels: output)
}

/// torchvision `F.rgb_to_grayscale(img, num_output_channels=3)` on PIL: `convert("L")` copied into three
/// channels. A grey image stays one channel (RandomGrayscale keeps the input's channel count).
public func rgbToGrayscale(_ image: Image) -> Image {
  if image.channels == 1 { return image }
  let count = image.width * image.height
  let output = [UInt8](unsafeUninitializedCapacity: count * 3) { buffer, initialized in
    image.pixels.withUnsafeBufferPointer { source in
      let input = source.baseAddress!, out = buffer.baseAddress!
      for i in 0..<count {
        let l = luma(input[3 * i], input[3 * i + 1], input[3 * i + 2])
        out[3 * i] = l; out[3 * i + 1] = l; out[3 * i + 2] = l
      }
    }
    initialized = count * 3
  }
  return Image(width: image.width, height: image.height, channels: 3, pixels: output)
}

// MARK: - Pillow's HSV conversions (Convert.c `rgb2hsv_row`, `hsv2rgb`), C float/double promotions kept

@inline(__always) private func clip8(_ value: Int) -> UInt8 {
  value <= 0 ? 0 : (value >= 255 ? 255 : UInt8(truncatingIfNeeded: value))
}

/// C `round()` (half away from zero) for x ≥ 0, without a libm call: the fraction x − trunc(x) is exact.
@inline(__always) private func roundHalfUp(_ x: Double) -> Int {
  let n = Int(x)
  return x - Double(n) >= 0.5 ? n + 1 : n
}

/// hsv2rgb's per-hue sector `i % 6` for i = floor(h · 6.0 / 255.0), and fraction f = h · 6.0 / 255.0 − i (a
/// float), for h = 0…255 (h = 255 gives i = 6: sector 0 with f = 0).
private let hueSectors: [(sector: Int, fraction: Float)] = (0..<256).map { h in
  let h6 = Double(h) * 6.0 / 255.0
  let i = Int(h6.rounded(.down))
  return (i % 6, Float(h6 - Double(i)))
}

/// hsv2rgb's fs = s / 255.0 stored in a float, for s = 0…255.
private let saturationFractions: [Float] = (0..<256).map { Float(Double($0) / 255.0) }

/// Convert.c `rgb2hsv_row`: h, s in 0…255 from a float hue in [0, 1) and saturation, v = max.
/// (Differences from the maximum are ≥ 0, hence the wrapping `&-`: no overflow check in the per-pixel loop.)
@inline(__always) func pillowRGBToHSV(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (UInt8, UInt8, UInt8) {
  let maxc = max(r, g, b), minc = min(r, g, b)
  if maxc == minc { return (0, 0, maxc) }
  let cr = Float(maxc &- minc)
  let s: Float = cr / Float(maxc)
  let rc = Float(maxc &- r) / cr, gc = Float(maxc &- g) / cr, bc = Float(maxc &- b) / cr
  var h: Float
  if r == maxc {
    h = bc - gc                                                  // float
  } else if g == maxc {
    h = Float(2.0 + Double(rc) - Double(bc))                     // 2.0 + rc − bc in double
  } else {
    h = Float(4.0 + Double(gc) - Double(rc))                     // 4.0 + gc − rc in double
  }
  // fmod(h / 6.0 + 1.0, 1.0) with h / 6 + 1 in (5/6, 11/6]: subtracting 1 is exact, like fmod.
  let wrapped = Double(h) / 6.0 + 1.0
  h = Float(wrapped >= 1.0 ? wrapped - 1.0 : wrapped)
  return (clip8(Int(Double(h) * 255.0)), clip8(Int(Double(s) * 255.0)), maxc)
}

/// Convert.c `hsv2rgb`.
/// `tables` are the base addresses of `hueSectors` and `saturationFractions` (256 entries each, indexed by a byte).
@inline(__always) func pillowHSVToRGB(_ h: UInt8, _ s: UInt8, _ v: UInt8,
                                      tables: (UnsafePointer<(sector: Int, fraction: Float)>, UnsafePointer<Float>))
  -> (UInt8, UInt8, UInt8) {
  if s == 0 { return (v, v, v) }
  let (sector, f) = tables.0[Int(h)]                                   // 0 ≤ f < 1
  let fs = tables.1[Int(s)]
  let vd = Double(v)
  let p = clip8(roundHalfUp(vd * (1.0 - Double(fs))))
  let q = clip8(roundHalfUp(vd * (1.0 - Double(fs * f))))              // fs · f is a float product
  let t = clip8(roundHalfUp(vd * (1.0 - Double(fs) * (1.0 - Double(f)))))
  switch sector {
  case 0: return (v, t, p)
  case 1: return (q, v, p)
  case 2: return (p, v, t)
  case 3: return (p, q, v)
  case 4: return (t, p, v)
  default: return (v, p, q)
  }
}

extension Image {
  /// Pillow's `convert("RGB")`: a grey image's value copied to three channels; an RGB image unchanged.
  public func convertedToRGB() -> Image {
    if channels == 3 { return self }
    let count = width * height
    let output = [UInt8](unsafeUninitializedCapacity: count * 3) { buffer, initialized in
      pixels.withUnsafeBufferPointer { source in
        let input = source.baseAddress!, out = buffer.baseAddress!
        for i in 0..<count { out[3 * i] = input[i]; out[3 * i + 1] = input[i]; out[3 * i + 2] = input[i] }
      }
      initialized = count * 3
    }
    return Image(width: width, height: height, channels: 3, pixels: output)
  }
}
