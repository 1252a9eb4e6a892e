// mmdet 2.x's detection pipelines (configs/_base_/datasets/voc0712.py as MMSelfSup's
// faster_rcnn_r50_c4_mstrain_24k_voc0712 overrides it) as a value, cv2-exact like the segmentation sibling:
//   train: LoadImageFromFile → LoadAnnotations → Resize(img_scale=[(1333, s) for s in 480…800 step 32],
//          multiscale_mode='value', keep_ratio=True) → RandomFlip(0.5) → Normalize(mean, std, to_rgb) →
//          Pad(size_divisor=32)
//   test:  MultiScaleFlipAug((1333, 800), flip=False): Resize(keep_ratio) → Normalize → Pad(size_divisor=32)
// mmdet/datasets/pipelines/transforms.py (v2.x) on top of mmcv 1.x mmcv/image/geometric.py:
//   Resize._resize_img: mmcv.imrescale (rescale_size: factor = min(long / max(h, w), short / min(h, w)), sides
//     int(side · factor + 0.5); cv2 INTER_LINEAR), then w_scale = new_w / w, h_scale = new_h / h (the exact ratio
//     of the integer sizes, not the factor), stored as a float32 array.
//   Resize._resize_bboxes: boxes (float32) · scale_factor (float32), clipped to [0, new_w] × [0, new_h]
//     (bbox_clip_border=True, the default).
//   RandomFlip.bbox_flip('horizontal'): x1' = w − x2, x2' = w − x1 (no −1), w the resized width.
//   Normalize → SegmentationNormalization (mmcv.imnormalize's float32 cv2 arithmetic).
//   Pad(size_divisor): mmcv.impad_to_multiple, zeros bottom/right after Normalize; done by `collateDetectionBatch`
//     (mmcv's collate then pads the batch to its largest image, which is already a multiple of the divisor).
// numpy's stream cannot be matched: the scale (`np.random.randint(len(img_scales))`) and the flip come from
// `SplitMix64.derived(seed, 0xDE7EC7, position)` in mmdet's order (scale, then flip).
import Foundation
import Tensors

/// One pipeline output: the normalised, unpadded image and its targets in the resized (and flipped) frame.
public struct DetectionSample: Sendable {
  /// `[height, width, 3]`, normalised RGB, not padded.
  public var image: Tensor
  public var height: Int
  public var width: Int
  /// Resized size / original size per axis (mmdet's w_scale, h_scale; float64 here, float32 where boxes use it).
  public var scaleFactor: (x: Double, y: Double)
  /// The decoded image's size before resizing.
  public var originalSize: (height: Int, width: Int)
  /// `[g, 4]` boxes (x1, y1, x2, y2) in the resized frame.
  public var boxes: Tensor
  /// Class index of each box.
  public var labels: [Int]
  public var imageID: String
  public var isFlipped: Bool

  public init(image: Tensor, height: Int, width: Int, scaleFactor: (x: Double, y: Double),
              originalSize: (height: Int, width: Int), boxes: Tensor, labels: [Int], imageID: String,
              isFlipped: Bool) {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4 && boxes.shape[0] == labels.count,
                 "A detection sample needs boxes [g, 4] and g labels; got \(boxes.shape) and \(labels.count).")
    self.image = image
    self.height = height
    self.width = width
    self.scaleFactor = scaleFactor
    self.originalSize = originalSize
    self.boxes = boxes
    self.labels = labels
    self.imageID = imageID
    self.isFlipped = isFlipped
  }

  /// Boxes `[k · 4]` of the resized frame mapped back to the original image: mmdet 2.x `get_bboxes(rescale=True)`
  /// divides by the float32 scale factor (no clipping after the division). A test pipeline never flips.
  public func boxesInOriginalFrame(_ boxes: [Float]) -> [Float] {
    precondition(boxes.count % 4 == 0, "Boxes come in fours (x1, y1, x2, y2); got \(boxes.count) values.")
    let sx = Float(scaleFactor.x), sy = Float(scaleFactor.y)
    var mapped = boxes
    for i in stride(from: 0, to: boxes.count, by: 2) { mapped[i] /= sx; mapped[i + 1] /= sy }
    return mapped
  }
}

/// mmdet 2.x's Resize (keep_ratio, multiscale 'value') → RandomFlip → Normalize → Pad(size_divisor).
public struct DetectionPipeline: Sendable, Equatable, Codable {
  /// The short side of each `img_scale` (maxSize, s); one is picked uniformly per image ('value' mode).
  public var shortSides: [Int]
  /// The long side of every `img_scale`: the longer image side never exceeds it.
  public var maxSize: Int
  /// Probability of a horizontal flip (RandomFlip flip_ratio).
  public var flipProbability: Double
  /// Normalize mean and std, RGB on the 0…255 scale.
  public var mean: [Double]
  public var std: [Double]
  /// Pad(size_divisor): padded heights and widths are multiples of this.
  public var padDivisor: Int

  public init(shortSides: [Int], maxSize: Int, flipProbability: Double,
              mean: [Double] = SegmentationNormalization.imagenet.mean,
              std: [Double] = SegmentationNormalization.imagenet.std, padDivisor: Int = 32) {
    self.shortSides = shortSides
    self.maxSize = maxSize
    self.flipProbability = flipProbability
    self.mean = mean
    self.std = std
    self.padDivisor = padDivisor
    precondition(problems.isEmpty, "Invalid detection pipeline: \(problems.joined(separator: "; ")).")
  }

  /// `faster_rcnn_r50_c4_mstrain_24k_voc0712` training: img_scale [(1333, 480), (1333, 512), …, (1333, 800)].
  public static let mmdetVOCTrain = DetectionPipeline(shortSides: Array(stride(from: 480, through: 800, by: 32)),
                                                      maxSize: 1333, flipProbability: 0.5)
  /// Its test pipeline: (1333, 800), no flip.
  public static let mmdetVOCTest = DetectionPipeline(shortSides: [800], maxSize: 1333, flipProbability: 0)
  /// What is wrong with the values (empty when valid), each naming the key.
  public var problems: [String] {
    var found: [String] = []
    if shortSides.isEmpty || shortSides.contains(where: { $0 <= 0 }) {
      found.append("shortSides must be positive sizes, got \(shortSides)")
    }
    if maxSize <= 0 { found.append("maxSize must be positive, got \(maxSize)") }
    if !(0...1).contains(flipProbability) { found.append("flipProbability must be in 0…1, got \(flipProbability)") }
    if mean.count != 3 || !mean.allSatisfy(\.isFinite) { found.append("mean must be 3 finite values, got \(mean)") }
    if std.count != 3 || !std.allSatisfy({ $0 > 0 && $0.isFinite }) {
      found.append("std must be 3 positive values, got \(std)")
    }
    if padDivisor <= 0 { found.append("padDivisor must be positive, got \(padDivisor)") }
    return found
  }

  /// Throws `DatasetError.invalidField` naming `path` (the config file) for the first invalid value.
  public func validate(path: String) throws {
    if let problem = problems.first {
      throw DatasetError.invalidField(path: path, field: "pipeline", value: problem, expected: "a valid detection pipeline")
    }
  }

  // MARK: - Random decisions

  /// Every random decision of one image.
  public struct Decisions: Sendable, Equatable {
    /// Index into `shortSides`.
    public var scaleIndex: Int
    public var flip: Bool
    public init(scaleIndex: Int, flip: Bool) { self.scaleIndex = scaleIndex; self.flip = flip }
  }

  /// The decisions of the image at `position` of a run seeded `seed`: scale index, then flip, from
  /// `SplitMix64.derived(seed, 0xDE7EC7, position)` (both drawn always, so the stream does not depend on options).
  public func decisions(seed: UInt64, position: Int) -> Decisions {
    var generator = SplitMix64.derived(seed, 0xDE7EC7, UInt64(position))
    let scaleIndex = generator.transformIndex(below: shortSides.count)
    let flip = generator.transformUnit() < flipProbability
    return Decisions(scaleIndex: scaleIndex, flip: flip)
  }

  // MARK: - Deterministic application

  /// mmcv `rescale_size((width, height), (maxSize, shortSide))`: the resized (width, height).
  public func resizedSize(width: Int, height: Int, shortSide: Int) -> (width: Int, height: Int) {
    SegmentationResize.rescaledSize(width: width, height: height, scale: (maxSize, shortSide))
  }

  /// The sample for fixed decisions: Resize (cv2 INTER_LINEAR), boxes scaled and clipped, flip, Normalize.
  public func apply(image: Image, objects: [DetectionObject], imageID: String, decisions: Decisions) -> DetectionSample {
    precondition(image.channels == 3, "The detection pipeline needs an RGB image, got \(image.channels) channels.")
    precondition(shortSides.indices.contains(decisions.scaleIndex),
                 "Scale index \(decisions.scaleIndex) is outside the \(shortSides.count) scales.")
    let size = resizedSize(width: image.width, height: image.height, shortSide: shortSides[decisions.scaleIndex])
    var resized = image.resizedLikeOpenCVLinear(width: size.width, height: size.height)
    let scale = (x: Double(size.width) / Double(image.width), y: Double(size.height) / Double(image.height))
    var boxes = Self.scaledAndClipped(objects.flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] },
                                      scaleX: Float(scale.x), scaleY: Float(scale.y),
                                      width: size.width, height: size.height)
    if decisions.flip {
      resized = resized.flippedHorizontally()
      boxes = Self.flippedHorizontally(boxes, width: size.width)
    }
    let normalization = SegmentationNormalization(mean: mean, std: std)
    return DetectionSample(image: normalization.tensor(resized), height: size.height, width: size.width,
                           scaleFactor: scale, originalSize: (image.height, image.width),
                           boxes: Tensor(shape: [objects.count, 4], scalars: boxes),
                           labels: objects.map(\.classIndex), imageID: imageID, isFlipped: decisions.flip)
  }

  /// mmdet `Resize._resize_bboxes`: `[g · 4]` boxes times the float32 scale factors, clipped to [0, width] and
  /// [0, height] (bbox_clip_border=True). Float32 throughout, as numpy computes it.
  public static func scaledAndClipped(_ boxes: [Float], scaleX: Float, scaleY: Float, width: Int,
                                      height: Int) -> [Float] {
    precondition(boxes.count % 4 == 0, "Boxes come in fours (x1, y1, x2, y2); got \(boxes.count) values.")
    let w = Float(width), h = Float(height)
    var result = boxes
    for i in stride(from: 0, to: boxes.count, by: 2) {
      result[i] = min(max(boxes[i] * scaleX, 0), w)
      result[i + 1] = min(max(boxes[i + 1] * scaleY, 0), h)
    }
    return result
  }

  /// mmdet `RandomFlip.bbox_flip(…, 'horizontal')`: x1' = width − x2, x2' = width − x1.
  public static func flippedHorizontally(_ boxes: [Float], width: Int) -> [Float] {
    precondition(boxes.count % 4 == 0, "Boxes come in fours (x1, y1, x2, y2); got \(boxes.count) values.")
    let w = Float(width)
    var result = boxes
    for i in stride(from: 0, to: boxes.count, by: 4) {
      result[i] = w - boxes[i + 2]
      result[i + 2] = w - boxes[i]
    }
    return result
  }

  /// mmcv `impad_to_multiple`: `ceil(size / divisor) · divisor`.
  public static func paddedSize(_ size: Int, divisor: Int) -> Int {
    precondition(divisor > 0 && size >= 0, "Padding needs a positive divisor and a size ≥ 0, got \(divisor), \(size).")
    return (size + divisor - 1) / divisor * divisor
  }
}
