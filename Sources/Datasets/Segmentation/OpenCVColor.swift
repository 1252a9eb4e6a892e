// cv2.cvtColor between RGB and HSV on uint8 images (H in 0..<180, S and V in 0…255), as mmcv.bgr2hsv /
// hsv2bgr call it inside mmseg's PhotoMetricDistortion. Reference: OpenCV modules/imgproc/src/color_hsv.simd.hpp
// (RGB2HSV_b, HSV2RGB_b with HSV2RGB_simd).
//
// mmseg works on BGR images and converts with COLOR_BGR2HSV / COLOR_HSV2BGR; ours are RGB, and COLOR_RGB2HSV of
// an RGB image is the same HSV image, so the channel order is the only difference.
import Foundation

/// RGB2HSV_b's fixed-point tables (hsv_shift = 12): `255·2^12 / v` and `180·2^12 / (6·diff)`, rounded half to
/// even (saturate_cast<int> of a double); index 0 holds 0.
private let hsvShift: Int32 = 12
private let saturationDivisors: [Int32] = (0..<256).map { $0 == 0 ? 0 : Int32((Double(255 << 12) / Double($0)).rounded(.toNearestOrEven)) }
private let hueDivisors: [Int32] = (0..<256).map { $0 == 0 ? 0 : Int32((Double(180 << 12) / (6 * Double($0))).rounded(.toNearestOrEven)) }

/// `cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)`, 8-bit: H = hue / 2 (0..<180), S = 255·(max − min)/max, V = max, each
/// rounded in 12-bit fixed point as RGB2HSV_b does.
public func openCVRGBToHSV(_ image: Image) -> Image {
  precondition(image.channels == 3, "RGB → HSV needs a 3-channel image, got \(image.channels) channels.")
  let count = image.width * image.height
  let output = image.pixels.withUnsafeBufferPointer { source in
    makePixels(count: count * 3) { destination in
      let half: Int32 = 1 << (hsvShift - 1)
      for i in 0..<count {
        let r = Int32(source[3 * i]), g = Int32(source[3 * i + 1]), b = Int32(source[3 * i + 2])
        let v = max(r, g, b), diff = v - min(r, g, b)
        let s = (diff * saturationDivisors[Int(v)] + half) >> hsvShift
        let numerator = v == r ? g - b : (v == g ? b - r + 2 * diff : r - g + 4 * diff)
        var h = (numerator * hueDivisors[Int(diff)] + half) >> hsvShift
        if h < 0 { h += 180 }
        destination[3 * i] = UInt8(truncatingIfNeeded: h)
        destination[3 * i + 1] = UInt8(truncatingIfNeeded: s)
        destination[3 * i + 2] = UInt8(truncatingIfNeeded: v)
      }
    }
  }
  return Image(width: image.width, height: image.height, channels: 3, pixels: output)
}

/// `cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)`, 8-bit, as OpenCV's vector path (HSV2RGB_b + HSV2RGB_simd) computes it:
/// s, v scaled by 1/255 and h by 6/180 in float32; sector = ⌊h⌋ mod 6; tab = (v, v·(1−s), v·(1−s·f), v·(1−s·(1−f)))
/// with `1 − s·f` fused (the AVX2 build contracts it into an FMA); each channel `trunc(value · 255)`.
///
/// OpenCV's scalar tail (the last `width mod 16` or `mod 32` pixels of a row, by SIMD width) rounds instead of
/// truncating, and builds without FMA round `s·f` first: both change a value by at most 1 and are not reproduced.
public func openCVHSVToRGB(_ image: Image) -> Image {
  precondition(image.channels == 3, "HSV → RGB needs a 3-channel image, got \(image.channels) channels.")
  let count = image.width * image.height
  let hueScale: Float = 6 / 180, byteScale: Float = 1 / 255
  let output = image.pixels.withUnsafeBufferPointer { source in
    makePixels(count: count * 3) { destination in
      for i in 0..<count {
        let hue = Float(source[3 * i]) * hueScale
        let s = Float(source[3 * i + 1]) * byteScale, v = Float(source[3 * i + 2]) * byteScale
        let whole = hue.rounded(.towardZero)
        let fraction = hue - whole
        let sector = Int(whole) % 6
        let tab0 = v
        let tab1 = v * (1 - s)
        let tab2 = v * Float(1).addingProduct(-s, fraction)        // v · fma(−s, f, 1)
        let tab3 = v * Float(1).addingProduct(-s, 1 - fraction)    // v · fma(−s, 1 − f, 1)
        let (red, green, blue): (Float, Float, Float) = switch sector {
        case 0: (tab0, tab3, tab1)
        case 1: (tab2, tab0, tab1)
        case 2: (tab1, tab0, tab3)
        case 3: (tab1, tab2, tab0)
        case 4: (tab3, tab1, tab0)
        default: (tab0, tab1, tab2)
        }
        destination[3 * i] = truncatedByte(red * 255)
        destination[3 * i + 1] = truncatedByte(green * 255)
        destination[3 * i + 2] = truncatedByte(blue * 255)
      }
    }
  }
  return Image(width: image.width, height: image.height, channels: 3, pixels: output)
}

/// v_trunc then the saturating packs to uint8.
@inline(__always) private func truncatedByte(_ value: Float) -> UInt8 {
  let integer = Int32(value.rounded(.towardZero))
  return integer <= 0 ? 0 : (integer >= 255 ? 255 : UInt8(truncatingIfNeeded: integer))
}
