// The random halves of the augmentations: parameter draws as torchvision / MMSelfSup make them, from a
// generator passed in. The draws cannot reproduce torch's generator; the distributions and the control flow
// (attempt counts, fallbacks, inclusive bounds) are the same.
import Foundation

extension RandomNumberGenerator {
  /// Uniform Double in [0, 1) with 53 random bits.
  mutating func transformUnit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

  /// Uniform Double in [range.lowerBound, range.upperBound) (torch `uniform_(low, high)`).
  mutating func transformUniform(_ range: ClosedRange<Double>) -> Double {
    range.lowerBound + (range.upperBound - range.lowerBound) * transformUnit()
  }

  /// Uniform Int in 0..<bound (Lemire's multiply-high; bias < bound / 2^64).
  mutating func transformIndex(below bound: Int) -> Int {
    precondition(bound > 0, "A random index needs a positive bound, got \(bound).")
    return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
  }

  /// `torch.rand(1) < p`: true with probability p.
  mutating func transformCoin(_ probability: Double) -> Bool { transformUnit() < probability }
}

// MARK: - RandomResizedCrop

/// A crop box in pixels: columns x..<x+width, rows y..<y+height.
public struct CropBox: Sendable, Equatable {
  public var x: Int, y: Int, width: Int, height: Int
  public init(x: Int, y: Int, width: Int, height: Int) {
    self.x = x; self.y = y; self.width = width; self.height = height
  }
}

/// torchvision `RandomResizedCrop(size, scale, ratio)` with bilinear interpolation.
public struct RandomResizedCrop: Sendable, Equatable {
  public var outputWidth: Int
  public var outputHeight: Int
  public var scale: ClosedRange<Double>
  public var ratio: ClosedRange<Double>

  public init(size: Int, scale: ClosedRange<Double> = 0.08...1.0, ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0)) {
    self.init(width: size, height: size, scale: scale, ratio: ratio)
  }

  public init(width: Int, height: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>) {
    precondition(width > 0 && height > 0, "RandomResizedCrop output \(width)×\(height) must be positive.")
    precondition(scale.lowerBound > 0 && ratio.lowerBound > 0,
                 "RandomResizedCrop scale \(scale) and ratio \(ratio) must be positive.")
    outputWidth = width; outputHeight = height; self.scale = scale; self.ratio = ratio
  }

  /// `RandomResizedCrop.get_params`: up to 10 tries of area ~ U(scale) · W·H and log-ratio ~ U(log ratio),
  /// w = int(round(sqrt(area · ratio))), h = int(round(sqrt(area / ratio))) (round half to even), accepted when
  /// 0 < w ≤ W and 0 < h ≤ H, placed uniformly; otherwise the whole image clipped to the ratio range, centred.
  public static func parameters<G: RandomNumberGenerator>(width: Int, height: Int, scale: ClosedRange<Double>,
                                                          ratio: ClosedRange<Double>,
                                                          using generator: inout G) -> CropBox {
    let area = Double(width * height)
    let logRatio = Foundation.log(ratio.lowerBound)...Foundation.log(ratio.upperBound)
    for _ in 0..<10 {
      let targetArea = area * generator.transformUniform(scale)
      let aspect = Foundation.exp(generator.transformUniform(logRatio))
      let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
      let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
      if w > 0 && w <= width && h > 0 && h <= height {
        let y = generator.transformIndex(below: height - h + 1)
        let x = generator.transformIndex(below: width - w + 1)
        return CropBox(x: x, y: y, width: w, height: h)
      }
    }
    let inputRatio = Double(width) / Double(height)
    var w = width, h = height
    if inputRatio < ratio.lowerBound {
      h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
    } else if inputRatio > ratio.upperBound {
      w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
    }
    return CropBox(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
  }

  public func parameters<G: RandomNumberGenerator>(for image: Image, using generator: inout G) -> CropBox {
    Self.parameters(width: image.width, height: image.height, scale: scale, ratio: ratio, using: &generator)
  }

  public func callAsFunction<G: RandomNumberGenerator>(_ image: Image, using generator: inout G) -> Image {
    let box = parameters(for: image, using: &generator)
    return resizedCrop(image, x: box.x, y: box.y, width: box.width, height: box.height,
                       outputWidth: outputWidth, outputHeight: outputHeight)
  }
}

// MARK: - ColorJitter

/// One draw of torchvision `ColorJitter.get_params`: the order of the four ops (0 brightness, 1 contrast,
/// 2 saturation, 3 hue; `torch.randperm(4)`) and their factors (nil = op disabled).
public struct ColorJitterParameters: Sendable, Equatable {
  public var order: [Int]
  public var brightness: Float?
  public var contrast: Float?
  public var saturation: Float?
  public var hue: Float?

  public init(order: [Int] = [0, 1, 2, 3], brightness: Float? = nil, contrast: Float? = nil,
              saturation: Float? = nil, hue: Float? = nil) {
    precondition(order.sorted() == [0, 1, 2, 3], "ColorJitter order \(order) is not a permutation of 0...3.")
    self.order = order
    self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.hue = hue
  }
}

/// torchvision `ColorJitter.forward` with fixed parameters: the ops in `order`, skipping disabled ones.
public func colorJitter(_ image: Image, _ parameters: ColorJitterParameters) -> Image {
  var image = image
  for op in parameters.order {
    switch op {
    case 0: if let f = parameters.brightness { image = adjustBrightness(image, factor: f) }
    case 1: if let f = parameters.contrast { image = adjustContrast(image, factor: f) }
    case 2: if let f = parameters.saturation { image = adjustSaturation(image, factor: f) }
    default: if let f = parameters.hue { image = adjustHue(image, factor: f) }
    }
  }
  return image
}

/// torchvision `ColorJitter(brightness, contrast, saturation, hue)`: factors ~ U[max(0, 1 − v), 1 + v] for the
/// first three and U[−hue, hue] for hue; a zero strength disables its op (torchvision's `_check_input` → None).
public struct ColorJitter: Sendable, Equatable {
  public var brightness: Float
  public var contrast: Float
  public var saturation: Float
  public var hue: Float

  public init(brightness: Float = 0, contrast: Float = 0, saturation: Float = 0, hue: Float = 0) {
    precondition(brightness >= 0 && contrast >= 0 && saturation >= 0 && hue >= 0 && hue <= 0.5,
                 "ColorJitter strengths must be ≥ 0 and hue ≤ 0.5; got \(brightness), \(contrast), \(saturation), \(hue).")
    self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.hue = hue
  }

  public func parameters<G: RandomNumberGenerator>(using generator: inout G) -> ColorJitterParameters {
    // torch.randperm(4): a uniform permutation (Fisher–Yates here).
    var order = [0, 1, 2, 3]
    for i in stride(from: 3, to: 0, by: -1) {
      order.swapAt(i, generator.transformIndex(below: i + 1))
    }
    func factor(_ strength: Float, _ generator: inout G) -> Float? {
      strength == 0 ? nil
        : Float(generator.transformUniform(Double(max(0, 1 - strength))...Double(1 + strength)))
    }
    let b = factor(brightness, &generator)
    let c = factor(contrast, &generator)
    let s = factor(saturation, &generator)
    let h: Float? = hue == 0 ? nil : Float(generator.transformUniform(Double(-hue)...Double(hue)))
    return ColorJitterParameters(order: order, brightness: b, contrast: c, saturation: s, hue: h)
  }

  public func callAsFunction<G: RandomNumberGenerator>(_ image: Image, using generator: inout G) -> Image {
    colorJitter(image, parameters(using: &generator))
  }
}

// MARK: - Blur

/// MMSelfSup's `GaussianBlur(sigma_min, sigma_max, p)` (= official SimSiam's): with probability p,
/// Pillow's GaussianBlur with radius σ ~ U(sigma_min, sigma_max).
public struct RandomGaussianBlur: Sendable, Equatable {
  public var sigma: ClosedRange<Float>
  public var probability: Double

  public init(sigma: ClosedRange<Float> = 0.1...2.0, probability: Double = 0.5) {
    self.sigma = sigma; self.probability = probability
  }

  /// σ, or nil when the blur is skipped.
  public func parameters<G: RandomNumberGenerator>(using generator: inout G) -> Float? {
    guard generator.transformCoin(probability) else { return nil }
    return Float(generator.transformUniform(Double(sigma.lowerBound)...Double(sigma.upperBound)))
  }

  public func callAsFunction<G: RandomNumberGenerator>(_ image: Image, using generator: inout G) -> Image {
    guard let radius = parameters(using: &generator) else { return image }
    return gaussianBlur(image, radius: radius)
  }
}
