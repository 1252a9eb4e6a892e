// mmseg 0.x's train and test pipelines (configs/_base_/datasets/pascal_voc12.py, cityscapes.py,
// cityscapes_769x769.py) as values:
//   train: Resize(img_scale, ratio_range=(0.5, 2.0)) → RandomCrop(crop, cat_max_ratio=0.75) → RandomFlip(0.5)
//          → PhotoMetricDistortion → Normalize → Pad(crop, pad_val=0, seg_pad_val=255)
//   test:  Resize(img_scale, keep_ratio=True) → Normalize            (whole-image inference; the label stays as read)
import Tensors

/// One pipeline output, ready to batch: a normalised `[height, width, 3]` tensor and its label bytes `[height · width]`
/// (class index, 255 = ignore).
public struct SegmentationExample: Sendable {
  public var image: Tensor
  public var label: [UInt8]
  public var height: Int { image.shape[0] }
  public var width: Int { image.shape[1] }
}

/// mmseg's training pipeline. Every training example comes out `crop.height × crop.width`.
public struct SegmentationTrainPipeline: Sendable, Equatable {
  public var resize: SegmentationResize
  public var crop: SegmentationRandomCrop
  public var flipProbability: Double
  public var photometric: PhotoMetricDistortion
  /// False drops PhotoMetricDistortion from the pipeline (no draws, no change); recorded by the caller as a departure.
  public var appliesPhotometricDistortion = true
  public var normalization: SegmentationNormalization

  /// `scale` is img_scale ((2048, 512) for VOC, (2048, 1024) or (2049, 1025) for Cityscapes), `cropSize` (h, w).
  public init(scale: (Int, Int), ratioRange: ClosedRange<Double> = 0.5...2.0, cropSize: (Int, Int),
              catMaxRatio: Double = 0.75, flipProbability: Double = 0.5,
              photometric: PhotoMetricDistortion = PhotoMetricDistortion(),
              normalization: SegmentationNormalization = .imagenet) {
    resize = SegmentationResize(scale: scale, ratioRange: ratioRange)
    crop = SegmentationRandomCrop(height: cropSize.0, width: cropSize.1, catMaxRatio: catMaxRatio)
    self.flipProbability = flipProbability
    self.photometric = photometric
    self.normalization = normalization
  }

  /// `fcn_r50-d8_512x512_20k_voc12aug`: img_scale (2048, 512), crop 512×512.
  public static let voc12Aug = SegmentationTrainPipeline(scale: (2048, 512), cropSize: (512, 512))
  /// `fcn_r50-d8_769x769_40k_cityscapes`: img_scale (2049, 1025), crop 769×769.
  public static let cityscapes769 = SegmentationTrainPipeline(scale: (2049, 1025), cropSize: (769, 769))

  /// Every random decision of one example. `cropCandidates` are the crop draws in order (the first accepted by
  /// cat_max_ratio is used; at most 11 are read; missing ones repeat the last).
  public struct Decisions: Sendable, Equatable {
    public var ratio: Double?
    public var cropCandidates: [CropOffset]
    public var flip: Bool
    public var photometric: PhotoMetricDistortion.Parameters

    public init(ratio: Double?, cropCandidates: [CropOffset], flip: Bool,
                photometric: PhotoMetricDistortion.Parameters) {
      self.ratio = ratio; self.cropCandidates = cropCandidates; self.flip = flip; self.photometric = photometric
    }
  }

  /// The augmented pair before Normalize and Pad, for fixed decisions.
  public func augmentedPair(_ pair: SegmentationPair, decisions: Decisions) -> SegmentationPair {
    precondition(!decisions.cropCandidates.isEmpty, "Training decisions need at least one crop candidate.")
    var result = resize.apply(pair, ratio: decisions.ratio)
    var next = 0
    let offset = crop.chooseOffset(label: result.label) {
      defer { next += 1 }
      return decisions.cropCandidates[min(next, decisions.cropCandidates.count - 1)]
    }
    result = crop.apply(result, offset: offset)
    return finishAugmenting(result, flip: decisions.flip, photometric: decisions.photometric)
  }

  /// The augmented pair, drawing every decision from `generator` in mmseg's order (ratio, crops, flip, photometric).
  public func augmentedPair<G: RandomNumberGenerator>(_ pair: SegmentationPair, using generator: inout G) -> SegmentationPair {
    var result = resize.apply(pair, ratio: resize.randomRatio(using: &generator))
    result = crop.apply(result, offset: crop.randomOffset(for: result, using: &generator))
    let flip = generator.transformUnit() < flipProbability
    return finishAugmenting(result, flip: flip,
                            photometric: appliesPhotometricDistortion ? photometric.parameters(using: &generator) : nil)
  }

  private func finishAugmenting(_ pair: SegmentationPair, flip: Bool,
                                photometric parameters: PhotoMetricDistortion.Parameters?) -> SegmentationPair {
    var result = pair
    if flip {
      result = SegmentationPair(image: result.image.flippedHorizontally(), label: result.label.flippedHorizontally())
    }
    if let parameters { result.image = photometric.apply(result.image, parameters: parameters) }
    return result
  }

  /// Normalize, then Pad to the crop size (image 0, label 255).
  public func example(_ augmented: SegmentationPair) -> SegmentationExample {
    SegmentationExample(
      image: normalization.tensor(augmented.image, paddedHeight: crop.height, paddedWidth: crop.width),
      label: paddedLabel(augmented.label, height: crop.height, width: crop.width, value: crop.ignoreIndex))
  }

  public func callAsFunction(_ pair: SegmentationPair, decisions: Decisions) -> SegmentationExample {
    example(augmentedPair(pair, decisions: decisions))
  }

  public func callAsFunction<G: RandomNumberGenerator>(_ pair: SegmentationPair, using generator: inout G) -> SegmentationExample {
    example(augmentedPair(pair, using: &generator))
  }

  public static func == (a: Self, b: Self) -> Bool {
    a.resize == b.resize && a.crop == b.crop && a.flipProbability == b.flipProbability
      && a.photometric == b.photometric && a.normalization == b.normalization
  }
}

/// mmseg's test pipeline: keep-ratio Resize to `scale`, Normalize. The label is not transformed (mmseg evaluates
/// against the label as read, after resizing the logits back to it).
public struct SegmentationTestPipeline: Sendable, Equatable {
  public var resize: SegmentationResize
  public var normalization: SegmentationNormalization

  public init(scale: (Int, Int), normalization: SegmentationNormalization = .imagenet) {
    resize = SegmentationResize(scale: scale)
    self.normalization = normalization
  }

  public static let voc12Aug = SegmentationTestPipeline(scale: (2048, 512))
  public static let cityscapes769 = SegmentationTestPipeline(scale: (2049, 1025))

  /// The resized image (INTER_LINEAR), before Normalize.
  public func resizedImage(_ image: Image) -> Image {
    let size = SegmentationResize.rescaledSize(width: image.width, height: image.height, scale: resize.scale)
    return image.resizedLikeOpenCVLinear(width: size.width, height: size.height)
  }

  /// The normalised `[h, w, 3]` input of whole-image inference.
  public func callAsFunction(_ image: Image) -> Tensor { normalization.tensor(resizedImage(image)) }
}
