// mmseg 0.x's segmentation transforms (mmseg/datasets/pipelines/transforms.py) on an RGB image and its label map,
// with mmcv 1.x's image ops underneath (mmcv/image/geometric.py, photometric.py). Each random transform splits into
// the random decision (a plain value a test can fix) and a deterministic application, as the classification
// pipelines in Transforms/Pipelines.swift do. numpy's stream cannot be matched, so draws come from the caller's
// generator in mmseg's order.
import Foundation
import Tensors

/// An (image, label map) pair of the same size: RGB image, 1-channel class indices (255 = ignore).
public struct SegmentationPair: Sendable, Equatable {
  public var image: Image
  public var label: Image

  public init(image: Image, label: Image) {
    precondition(image.channels == 3 && label.channels == 1,
                 "A segmentation pair is an RGB image and a 1-channel label map; got \(image.channels) and "
                   + "\(label.channels) channels.")
    precondition(image.width == label.width && image.height == label.height,
                 "Image \(image.width)×\(image.height) and label \(label.width)×\(label.height) differ in size.")
    self.image = image
    self.label = label
  }
}

// MARK: - Resize

/// mmseg `Resize(img_scale=(long, short), ratio_range=…, keep_ratio=True)`.
public struct SegmentationResize: Sendable, Equatable {
  /// `img_scale`, e.g. (2048, 512); with keep_ratio only its longer and shorter value matter.
  public var scale: (Int, Int)
  /// `ratio_range`, e.g. 0.5…2.0; nil for the test pipeline (the scale as given).
  public var ratioRange: ClosedRange<Double>?

  public init(scale: (Int, Int), ratioRange: ClosedRange<Double>? = nil) {
    precondition(scale.0 > 0 && scale.1 > 0, "Resize scale must be positive, got \(scale).")
    self.scale = scale
    self.ratioRange = ratioRange
  }

  public static func == (a: Self, b: Self) -> Bool { a.scale == b.scale && a.ratioRange == b.ratioRange }

  /// `random_sample_ratio`: `ratio = random_sample() · (max − min) + min`, nil without a ratio range.
  public func randomRatio<G: RandomNumberGenerator>(using generator: inout G) -> Double? {
    guard let range = ratioRange else { return nil }
    return generator.transformUnit() * (range.upperBound - range.lowerBound) + range.lowerBound
  }

  /// The target scale for `ratio`: `(int(scale[0] · ratio), int(scale[1] · ratio))`, or the scale itself.
  public func targetScale(ratio: Double?) -> (Int, Int) {
    guard let ratio else { return scale }
    return (Int(Double(scale.0) * ratio), Int(Double(scale.1) * ratio))
  }

  /// mmcv `rescale_size((w, h), scale)`: factor = min(long / max(h, w), short / min(h, w)), each side
  /// `int(side · factor + 0.5)`.
  public static func rescaledSize(width: Int, height: Int, scale: (Int, Int)) -> (width: Int, height: Int) {
    let long = Double(max(scale.0, scale.1)), short = Double(min(scale.0, scale.1))
    let factor = min(long / Double(max(height, width)), short / Double(min(height, width)))
    return (Int(Double(width) * factor + 0.5), Int(Double(height) * factor + 0.5))
  }

  /// `mmcv.imrescale`: image bilinear (cv2 INTER_LINEAR), label nearest.
  public func apply(_ pair: SegmentationPair, ratio: Double?) -> SegmentationPair {
    let size = Self.rescaledSize(width: pair.image.width, height: pair.image.height, scale: targetScale(ratio: ratio))
    return SegmentationPair(image: pair.image.resizedLikeOpenCVLinear(width: size.width, height: size.height),
                            label: pair.label.resizedLikeOpenCVNearest(width: size.width, height: size.height))
  }
}

// MARK: - RandomCrop

/// The top-left corner of a crop.
public struct CropOffset: Sendable, Equatable {
  public var y: Int
  public var x: Int
  public init(y: Int, x: Int) { self.y = y; self.x = x }
}

/// mmseg `RandomCrop(crop_size=(h, w), cat_max_ratio, ignore_index=255)`.
public struct SegmentationRandomCrop: Sendable, Equatable {
  public var height: Int
  public var width: Int
  public var catMaxRatio: Double
  public var ignoreIndex: UInt8

  /// mmseg tries a crop, and up to 10 more when the check fails: at most 11 candidates.
  public static let maximumCandidates = 11

  public init(height: Int, width: Int, catMaxRatio: Double = 0.75, ignoreIndex: UInt8 = 255) {
    precondition(height > 0 && width > 0, "Crop size must be positive, got \(height)×\(width).")
    self.height = height
    self.width = width
    self.catMaxRatio = catMaxRatio
    self.ignoreIndex = ignoreIndex
  }

  /// `get_crop_bbox`: offsets uniform in 0…max(size − crop, 0) (y drawn first).
  public func randomOffset<G: RandomNumberGenerator>(imageWidth: Int, imageHeight: Int,
                                                     using generator: inout G) -> CropOffset {
    let y = generator.transformIndex(below: max(imageHeight - height, 0) + 1)
    let x = generator.transformIndex(below: max(imageWidth - width, 0) + 1)
    return CropOffset(y: y, x: x)
  }

  /// The crop mmseg keeps: with cat_max_ratio < 1, the first candidate whose label crop holds more than one class
  /// (ignoring `ignoreIndex`) with the most frequent below `catMaxRatio` of the counted pixels, else the 11th;
  /// `candidates` supplies the draws in order (`nextCandidate` is called at most 11 times).
  public func chooseOffset(label: Image, nextCandidate: () -> CropOffset) -> CropOffset {
    var offset = nextCandidate()
    guard catMaxRatio < 1 else { return offset }
    for _ in 0..<(Self.maximumCandidates - 1) {
      if accepts(label: label, offset: offset) { break }
      offset = nextCandidate()
    }
    return offset
  }

  /// The random crop of `pair`'s label, drawing candidates from `generator`.
  public func randomOffset<G: RandomNumberGenerator>(for pair: SegmentationPair, using generator: inout G) -> CropOffset {
    chooseOffset(label: pair.label) {
      randomOffset(imageWidth: pair.image.width, imageHeight: pair.image.height, using: &generator)
    }
  }

  /// mmseg's check: `np.unique(crop, return_counts)`, ignore index dropped, `len(cnt) > 1 and max/sum < ratio`.
  public func accepts(label: Image, offset: CropOffset) -> Bool {
    var counts = [Int](repeating: 0, count: 256)
    let crop = croppedLabel(label, offset: offset)
    for value in crop.pixels { counts[Int(value)] += 1 }
    counts[Int(ignoreIndex)] = 0
    let present = counts.filter { $0 > 0 }
    guard present.count > 1 else { return false }
    return Double(present.max()!) / Double(present.reduce(0, +)) < catMaxRatio
  }

  /// `img[y1:y2, x1:x2]`: numpy slicing clips at the image edge, so a crop larger than the image keeps all of it.
  public func apply(_ pair: SegmentationPair, offset: CropOffset) -> SegmentationPair {
    SegmentationPair(image: cropClipped(pair.image, offset: offset), label: croppedLabel(pair.label, offset: offset))
  }

  private func croppedLabel(_ label: Image, offset: CropOffset) -> Image { cropClipped(label, offset: offset) }

  private func cropClipped(_ image: Image, offset: CropOffset) -> Image {
    let w = min(width, image.width - offset.x), h = min(height, image.height - offset.y)
    precondition(w > 0 && h > 0, "Crop at (\(offset.x), \(offset.y)) lies outside the \(image.width)×\(image.height) image.")
    return image.cropped(x: offset.x, y: offset.y, width: w, height: h)
  }
}

// MARK: - PhotoMetricDistortion

/// mmseg `PhotoMetricDistortion(brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5),
/// hue_delta=18)`.
public struct PhotoMetricDistortion: Sendable, Equatable {
  public var brightnessDelta: Double
  public var contrastRange: ClosedRange<Double>
  public var saturationRange: ClosedRange<Double>
  public var hueDelta: Int

  public init(brightnessDelta: Double = 32, contrastRange: ClosedRange<Double> = 0.5...1.5,
              saturationRange: ClosedRange<Double> = 0.5...1.5, hueDelta: Int = 18) {
    self.brightnessDelta = brightnessDelta
    self.contrastRange = contrastRange
    self.saturationRange = saturationRange
    self.hueDelta = hueDelta
  }

  /// Every random decision of one call; nil means the step was skipped (its coin came up 0).
  public struct Parameters: Sendable, Equatable {
    /// `beta` added to every byte, uniform in ±brightness_delta.
    public var brightness: Double?
    /// mmseg's `mode == 1`: contrast right after brightness; otherwise after hue.
    public var contrastFirst: Bool
    /// `alpha` multiplying every byte.
    public var contrast: Double?
    /// `alpha` multiplying the HSV saturation.
    public var saturation: Double?
    /// Added to the HSV hue (mod 180), an integer in −hue_delta ..< hue_delta.
    public var hue: Int?

    public init(brightness: Double? = nil, contrastFirst: Bool = false, contrast: Double? = nil,
                saturation: Double? = nil, hue: Int? = nil) {
      self.brightness = brightness; self.contrastFirst = contrastFirst; self.contrast = contrast
      self.saturation = saturation; self.hue = hue
    }
  }

  /// The draws in mmseg's order: brightness coin (+ value), mode, [contrast coin (+ value) if mode 1], saturation
  /// coin (+ value), hue coin (+ value), [contrast coin (+ value) if mode 0].
  public func parameters<G: RandomNumberGenerator>(using generator: inout G) -> Parameters {
    func coin() -> Bool { generator.transformIndex(below: 2) == 1 }
    func uniform(_ range: ClosedRange<Double>) -> Double { generator.transformUniform(range) }
    var p = Parameters()
    if coin() { p.brightness = uniform(-brightnessDelta...brightnessDelta) }
    p.contrastFirst = coin()
    if p.contrastFirst, coin() { p.contrast = uniform(contrastRange) }
    if coin() { p.saturation = uniform(saturationRange) }
    if coin() { p.hue = generator.transformIndex(below: 2 * hueDelta) - hueDelta }  // randint(−d, d)
    if !p.contrastFirst, coin() { p.contrast = uniform(contrastRange) }
    return p
  }

  /// The distorted image for fixed parameters, step by step as mmseg applies them.
  public func apply(_ image: Image, parameters p: Parameters) -> Image {
    var result = image
    if let beta = p.brightness { result = Self.convert(result, alpha: 1, beta: beta) }
    if p.contrastFirst, let alpha = p.contrast { result = Self.convert(result, alpha: alpha, beta: 0) }
    if let alpha = p.saturation { result = Self.saturated(result, alpha: alpha) }
    if let delta = p.hue { result = Self.hueShifted(result, delta: delta) }
    if !p.contrastFirst, let alpha = p.contrast { result = Self.convert(result, alpha: alpha, beta: 0) }
    return result
  }

  /// mmseg `convert`: `clip(img.astype(float32) · alpha + beta, 0, 255).astype(uint8)`: float32 arithmetic
  /// (numpy casts the Python floats to float32), two roundings (no fused multiply-add), truncation to uint8.
  public static func convert(_ image: Image, alpha: Double, beta: Double) -> Image {
    var result = image
    result.pixels = convertBytes(image.pixels, alpha: alpha, beta: beta)
    return result
  }

  static func convertBytes(_ bytes: [UInt8], alpha: Double, beta: Double) -> [UInt8] {
    let a = Float(alpha), b = Float(beta)
    var table = [UInt8](repeating: 0, count: 256)
    for value in 0..<256 {
      let product = Float(value) * a
      let x = product + b
      table[value] = x <= 0 ? 0 : (x >= 255 ? 255 : UInt8(x.rounded(.towardZero)))
    }
    return bytes.map { table[Int($0)] }
  }

  /// mmseg `saturation`: RGB → HSV, S converted with `alpha`, HSV → RGB (cv2 uint8 conversions).
  public static func saturated(_ image: Image, alpha: Double) -> Image {
    var hsv = openCVRGBToHSV(image)
    let table = convertBytes(Array(0...255), alpha: alpha, beta: 0)
    for i in 0..<(hsv.width * hsv.height) { hsv.pixels[3 * i + 1] = table[Int(hsv.pixels[3 * i + 1])] }
    return openCVHSVToRGB(hsv)
  }

  /// mmseg `hue`: RGB → HSV, H ← (H + delta) mod 180 (Python's non-negative modulo), HSV → RGB.
  public static func hueShifted(_ image: Image, delta: Int) -> Image {
    var hsv = openCVRGBToHSV(image)
    for i in 0..<(hsv.width * hsv.height) {
      let shifted = (Int(hsv.pixels[3 * i]) + delta) % 180
      hsv.pixels[3 * i] = UInt8(shifted < 0 ? shifted + 180 : shifted)
    }
    return openCVHSVToRGB(hsv)
  }
}

// MARK: - Normalize and Pad

/// mmseg `Normalize(mean, std, to_rgb=True)` on 0…255 values (mmcv.imnormalize_: cv2.subtract then cv2.multiply
/// by 1/std, both in float32 with the constants rounded to float32).
public struct SegmentationNormalization: Sendable, Equatable {
  public var mean: [Double]
  public var std: [Double]

  public init(mean: [Double], std: [Double]) {
    precondition(mean.count == 3 && std.count == 3 && std.allSatisfy { $0 > 0 },
                 "Normalization needs 3 means and 3 positive stds, got \(mean) and \(std).")
    self.mean = mean
    self.std = std
  }

  /// `img_norm_cfg` of every mmseg config: ImageNet statistics in RGB, 0…255 scale.
  public static let imagenet = SegmentationNormalization(mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375])

  /// The 256 normalised values of each channel: `table[value · 3 + channel]`.
  func table() -> [Float] {
    var table = [Float](repeating: 0, count: 256 * 3)
    for channel in 0..<3 {
      let mean = Float(self.mean[channel]), inverse = Float(1 / std[channel])
      for value in 0..<256 { table[value * 3 + channel] = (Float(value) - mean) * inverse }
    }
    return table
  }

  /// Normalises `image` into a `[paddedHeight, paddedWidth, 3]` tensor, padding bottom and right with 0 (mmseg's
  /// `Pad(size=crop, pad_val=0)` after Normalize pads the normalised image with 0).
  public func tensor(_ image: Image, paddedHeight: Int? = nil, paddedWidth: Int? = nil) -> Tensor {
    precondition(image.channels == 3, "Normalize needs an RGB image, got \(image.channels) channels.")
    let h = max(paddedHeight ?? image.height, image.height), w = max(paddedWidth ?? image.width, image.width)
    let lut = table()
    return Tensor(uninitializedShape: [h, w, 3]) { buffer in
      let out = buffer.baseAddress!
      out.initialize(repeating: 0, count: h * w * 3)
      image.pixels.withUnsafeBufferPointer { source in
        for y in 0..<image.height {
          for i in 0..<(image.width * 3) {
            out[y * w * 3 + i] = lut[Int(source[y * image.width * 3 + i]) * 3 + i % 3]
          }
        }
      }
    }
  }
}

/// `mmcv.impad(label, shape=(height, width), pad_val)`: bottom and right padding, never cropping.
public func paddedLabel(_ label: Image, height: Int, width: Int, value: UInt8 = 255) -> [UInt8] {
  let h = max(height, label.height), w = max(width, label.width)
  var bytes = [UInt8](repeating: value, count: h * w)
  for y in 0..<label.height {
    for x in 0..<label.width { bytes[y * w + x] = label.pixels[y * label.width + x] }
  }
  return bytes
}
