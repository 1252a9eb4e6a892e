// The three preprocessing pipelines of the protocols, as values. Each random pipeline splits into
// `parameters(for:using:)` (every random draw, in torchvision's order) and a deterministic
// `augmentedImage(_:parameters:)`, so a test or a preview can replay a view exactly.
import Tensors

/// SimSiam / MoCo v2 pretraining view (PROTOCOLS §1.1, MMSelfSup `imagenet_mocov2.py`, official SimSiam):
/// RandomResizedCrop(size, scale, ratio) → ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.8 → RandomGrayscale(0.2)
/// → GaussianBlur(σ ~ U(0.1, 2.0)) with p = 0.5 → RandomHorizontalFlip → ToTensor → Normalize.
/// One call makes one view; two calls on the same image make the two independent views.
public struct SimSiamAugmentation: Sendable, Equatable {
  public var crop: RandomResizedCrop
  public var colorJitter: ColorJitter
  public var colorJitterProbability: Double
  public var grayscaleProbability: Double
  public var blur: RandomGaussianBlur
  public var flipProbability: Double
  public var normalization: Normalization

  public init(size: Int = 224, scale: ClosedRange<Double> = 0.2...1.0,
              ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0),
              colorJitter: ColorJitter = ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1),
              colorJitterProbability: Double = 0.8, grayscaleProbability: Double = 0.2,
              blur: RandomGaussianBlur = RandomGaussianBlur(sigma: 0.1...2.0, probability: 0.5),
              flipProbability: Double = 0.5, normalization: Normalization = .imagenet) {
    self.crop = RandomResizedCrop(size: size, scale: scale, ratio: ratio)
    self.colorJitter = colorJitter
    self.colorJitterProbability = colorJitterProbability
    self.grayscaleProbability = grayscaleProbability
    self.blur = blur
    self.flipProbability = flipProbability
    self.normalization = normalization
  }

  /// Every random choice of one view.
  public struct Parameters: Sendable, Equatable {
    public var crop: CropBox
    public var colorJitter: ColorJitterParameters?  // nil: not applied
    public var grayscale: Bool
    public var blurRadius: Float?                    // nil: not applied
    public var flip: Bool

    public init(crop: CropBox, colorJitter: ColorJitterParameters?, grayscale: Bool, blurRadius: Float?,
                flip: Bool) {
      self.crop = crop; self.colorJitter = colorJitter; self.grayscale = grayscale
      self.blurRadius = blurRadius; self.flip = flip
    }
  }

  public func parameters<G: RandomNumberGenerator>(for image: Image, using generator: inout G) -> Parameters {
    let box = crop.parameters(for: image, using: &generator)
    let jitter = generator.transformCoin(colorJitterProbability) ? colorJitter.parameters(using: &generator) : nil
    let grayscale = generator.transformCoin(grayscaleProbability)
    let radius = blur.parameters(using: &generator)
    let flip = generator.transformCoin(flipProbability)
    return Parameters(crop: box, colorJitter: jitter, grayscale: grayscale, blurRadius: radius, flip: flip)
  }

  /// The 8-bit view for given parameters (before ToTensor).
  public func augmentedImage(_ image: Image, parameters p: Parameters) -> Image {
    var view = resizedCrop(image, x: p.crop.x, y: p.crop.y, width: p.crop.width, height: p.crop.height,
                           outputWidth: crop.outputWidth, outputHeight: crop.outputHeight)
    if let jitter = p.colorJitter { view = Datasets.colorJitter(view, jitter) }
    if p.grayscale { view = rgbToGrayscale(view) }
    if let radius = p.blurRadius { view = gaussianBlur(view, radius: radius) }
    if p.flip { view = view.flippedHorizontally() }
    return view
  }

  public func augmentedImage<G: RandomNumberGenerator>(_ image: Image, using generator: inout G) -> Image {
    augmentedImage(image, parameters: parameters(for: image, using: &generator))
  }

  /// One normalised view, [size, size, channels].
  public func callAsFunction<G: RandomNumberGenerator>(_ image: Image, using generator: inout G) -> Tensor {
    augmentedImage(image, using: &generator).toTensor(normalization: normalization)
  }
}

/// Linear-probe training (PROTOCOLS §4.1, MMSelfSup `imagenet.py` for the multi-head benchmark):
/// RandomResizedCrop(size, scale 0.08…1) → RandomHorizontalFlip → ColorJitter(0.4, 0.4, 0.4, 0), always →
/// ToTensor → Lighting (AlexNet PCA noise, alphastd 0.1) → Normalize. Set `lighting = false` and
/// `colorJitter = ColorJitter()` for the plain RandomResizedCrop + flip recipe (§4.2, §4.4).
public struct LinearProbeAugmentation: Sendable, Equatable {
  public var crop: RandomResizedCrop
  public var flipProbability: Double
  public var colorJitter: ColorJitter
  public var lighting: Bool
  public var normalization: Normalization

  public init(size: Int = 224, scale: ClosedRange<Double> = 0.08...1.0,
              ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0), flipProbability: Double = 0.5,
              colorJitter: ColorJitter = ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0),
              lighting: Bool = true, normalization: Normalization = .imagenet) {
    self.crop = RandomResizedCrop(size: size, scale: scale, ratio: ratio)
    self.flipProbability = flipProbability
    self.colorJitter = colorJitter
    self.lighting = lighting
    self.normalization = normalization
  }

  public struct Parameters: Sendable, Equatable {
    public var crop: CropBox
    public var flip: Bool
    public var colorJitter: ColorJitterParameters
    public var lightingOffsets: [Float]  // empty: no Lighting

    public init(crop: CropBox, flip: Bool, colorJitter: ColorJitterParameters, lightingOffsets: [Float]) {
      self.crop = crop; self.flip = flip; self.colorJitter = colorJitter; self.lightingOffsets = lightingOffsets
    }
  }

  public func parameters<G: RandomNumberGenerator>(for image: Image, using generator: inout G) -> Parameters {
    let box = crop.parameters(for: image, using: &generator)
    let flip = generator.transformCoin(flipProbability)
    let jitter = colorJitter.parameters(using: &generator)
    let offsets = lighting ? Lighting.randomOffsets(using: &generator) : []
    return Parameters(crop: box, flip: flip, colorJitter: jitter, lightingOffsets: offsets)
  }

  public func augmentedImage(_ image: Image, parameters p: Parameters) -> Image {
    var view = resizedCrop(image, x: p.crop.x, y: p.crop.y, width: p.crop.width, height: p.crop.height,
                           outputWidth: crop.outputWidth, outputHeight: crop.outputHeight)
    if p.flip { view = view.flippedHorizontally() }
    return Datasets.colorJitter(view, p.colorJitter)
  }

  public func tensor(_ image: Image, parameters p: Parameters) -> Tensor {
    augmentedImage(image, parameters: p).toTensor(normalization: normalization, offsets: p.lightingOffsets)
  }

  /// One normalised training view, [size, size, channels].
  public func callAsFunction<G: RandomNumberGenerator>(_ image: Image, using generator: inout G) -> Tensor {
    tensor(image, parameters: parameters(for: image, using: &generator))
  }
}

/// Deterministic evaluation preprocessing: `Resize(resize)` on the short side, then either a squash to
/// `size × size` (the VOC07 SVM features, PROTOCOLS §2.2: `Resize(256)` then `Resize((224, 224))`) or
/// `CenterCrop(size)` (linear and kNN evaluation, §4.1, §4.5), then ToTensor + Normalize.
public struct EvaluationTransform: Sendable, Equatable {
  public enum Mode: Sendable, Equatable { case squash, centerCrop }

  public var resize: Int
  public var size: Int
  public var mode: Mode
  public var normalization: Normalization
  /// The bilinear passes' order in both resizes (ResizeRule: default pillow13, pillow9 for the published numbers).
  public var resizeRule: ResizeRule

  public init(resize: Int = 256, size: Int = 224, mode: Mode, normalization: Normalization = .imagenet,
              resizeRule: ResizeRule = .default) {
    precondition(resize > 0 && size > 0, "Evaluation resize \(resize) and size \(size) must be positive.")
    self.resize = resize; self.size = size; self.mode = mode; self.normalization = normalization
    self.resizeRule = resizeRule
  }

  /// §2.2: Resize(256) → Resize((224, 224)).
  public static let svm = EvaluationTransform(mode: .squash)
  /// §4.1 / §4.5: Resize(256) → CenterCrop(224).
  public static let centerCrop = EvaluationTransform(mode: .centerCrop)

  public func image(_ image: Image) -> Image {
    let scaled = image.resizedShortSide(to: resize, rule: resizeRule)
    switch mode {
    case .squash:
      return scaled.width == size && scaled.height == size
        ? scaled : scaled.resized(width: size, height: size, rule: resizeRule)
    case .centerCrop:
      return scaled.centerCropped(size: size)
    }
  }

  /// [size, size, channels].
  public func callAsFunction(_ image: Image) -> Tensor {
    self.image(image).toTensor(normalization: normalization)
  }
}
