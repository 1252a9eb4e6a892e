// Instance masks through mmdet 2.x's training pipeline (mmdet/core/mask/structures.py `BitmapMasks` on mmcv 1.x
// mmcv/image/geometric.py):
//   LoadAnnotations(with_mask=True, poly2mask=True)._poly2mask: polygons → pycocotools frPyObjects + merge, an
//     uncompressed RLE → frPyObjects (its own size), a compressed RLE as is; `maskUtils.decode` → one uint8
//     [h, w] bitmap per non-crowd target at the annotated image size.
//   Resize(keep_ratio=True) → BitmapMasks.rescale(scale, 'nearest') = mmcv.imrescale per mask: the same
//     rescale_size as the image, then cv2.resize INTER_NEAREST (source index min(floor(x · (1 / (new / old))),
//     old − 1) per axis — `Image.resizedLikeOpenCVNearest`).
//   RandomFlip('horizontal') → BitmapMasks.flip: `masks[:, :, ::-1]`.
//   Pad(size_divisor) → BitmapMasks.pad(results['pad_shape']): zeros at the bottom and right, to the image's OWN
//     padded size (ceil to the divisor). DefaultFormatBundle wraps gt_masks in DataContainer(cpu_only=True), so
//     mmcv's collate does NOT pad them further to the batch's largest image (see `collateInstanceSegmentationBatch`).
import Foundation
import Tensors

/// The instance bitmaps of one image, all of one size: `masks[i]` is row-major `height · width`, 1 inside
/// instance i and 0 outside. Plain arrays, so Models-layer code (the mask head's targets) can take them as they are.
public struct InstanceMasks: Sendable, Equatable {
  public var height: Int
  public var width: Int
  /// One row-major bitmap of `height · width` bytes (0 or 1) per instance, in target order.
  public var masks: [[UInt8]]

  public init(height: Int, width: Int, masks: [[UInt8]]) {
    precondition(height > 0 && width > 0, "Instance masks need a positive size, got \(height)×\(width).")
    for (index, mask) in masks.enumerated() {
      precondition(mask.count == height * width,
                   "Instance mask \(index) has \(mask.count) bytes, not \(height)×\(width) = \(height * width).")
    }
    self.height = height
    self.width = width
    self.masks = masks
  }

  public var count: Int { masks.count }

  /// mmdet `BitmapMasks.pad(out_shape, pad_val=0)` (mmcv.impad): each mask placed at the top-left of a
  /// `height × width` canvas of zeros. The new size must not be smaller.
  public func padded(toHeight newHeight: Int, width newWidth: Int) -> InstanceMasks {
    precondition(newHeight >= height && newWidth >= width,
                 "Padding \(height)×\(width) masks to \(newHeight)×\(newWidth) would crop them.")
    if newHeight == height && newWidth == width { return self }
    let padded = masks.map { mask -> [UInt8] in
      var out = [UInt8](repeating: 0, count: newHeight * newWidth)
      out.withUnsafeMutableBufferPointer { destination in
        mask.withUnsafeBufferPointer { source in
          for y in 0..<height {
            (destination.baseAddress! + y * newWidth).update(from: source.baseAddress! + y * width, count: width)
          }
        }
      }
      return out
    }
    return InstanceMasks(height: newHeight, width: newWidth, masks: padded)
  }

  /// The masks padded to mmdet's `pad_shape`: height and width rounded up to multiples of `divisor`
  /// (mmcv.impad_to_multiple's size, as Pad(size_divisor) computes it for the image).
  public func paddedToMultiple(of divisor: Int) -> InstanceMasks {
    padded(toHeight: DetectionPipeline.paddedSize(height, divisor: divisor),
           width: DetectionPipeline.paddedSize(width, divisor: divisor))
  }

  /// The masks at the original image size through Resize (nearest) and RandomFlip: `resizedHeight ×
  /// resizedWidth` (the size the image was resized to), mirrored left-right when `flip`.
  public static func transformed(_ bitmaps: [Image], resizedHeight: Int, resizedWidth: Int, flip: Bool)
    -> InstanceMasks
  {
    let masks = bitmaps.map { bitmap -> [UInt8] in
      precondition(bitmap.channels == 1, "An instance bitmap has 1 channel, got \(bitmap.channels).")
      var mask = bitmap.resizedLikeOpenCVNearest(width: resizedWidth, height: resizedHeight)
      if flip { mask = mask.flippedHorizontally() }
      return mask.pixels
    }
    return InstanceMasks(height: resizedHeight, width: resizedWidth, masks: masks)
  }
}

/// One training or test sample of an instance-segmentation dataset: the detection sample (normalised unpadded
/// image, boxes and labels in the resized and flipped frame) and the instance masks in the same frame.
public struct InstanceSample: Sendable {
  /// Image, boxes `[g, 4]`, labels (0-based, see `COCOInstanceDataset.categoryIDs`), scale factor, flip.
  /// `detection.imageID` is the COCO image id as text.
  public var detection: DetectionSample
  /// `g` masks of `detection.height × detection.width` (the UNPADDED resized size), in box order.
  public var masks: InstanceMasks
  /// The COCO image id (for results json records).
  public var cocoImageID: Int

  public init(detection: DetectionSample, masks: InstanceMasks, cocoImageID: Int) {
    precondition(masks.height == detection.height && masks.width == detection.width,
                 "Masks of \(masks.height)×\(masks.width) for an image of \(detection.height)×\(detection.width).")
    precondition(masks.count == detection.labels.count,
                 "\(masks.count) masks for \(detection.labels.count) targets.")
    self.detection = detection
    self.masks = masks
    self.cocoImageID = cocoImageID
  }
}

extension DetectionPipeline {
  /// mmdet 2.x's Resize → RandomFlip for an image, its targets and their bitmaps at the original size (one per
  /// object, 1-channel, the image's size): the image and boxes through `apply(image:objects:…)` (cv2 INTER_LINEAR,
  /// float32 boxes clipped), the masks through cv2 INTER_NEAREST to the same size and the same flip.
  public func apply(image: Image, objects: [DetectionObject], masks: [Image], cocoImageID: Int,
                    decisions: Decisions) -> InstanceSample {
    precondition(masks.count == objects.count, "\(masks.count) masks for \(objects.count) objects.")
    for mask in masks {
      precondition(mask.width == image.width && mask.height == image.height,
                   "A \(mask.width)×\(mask.height) mask for a \(image.width)×\(image.height) image.")
    }
    let detection = apply(image: image, objects: objects, imageID: String(cocoImageID), decisions: decisions)
    let instanceMasks = InstanceMasks.transformed(masks, resizedHeight: detection.height,
                                                  resizedWidth: detection.width, flip: decisions.flip)
    return InstanceSample(detection: detection, masks: instanceMasks, cocoImageID: cocoImageID)
  }
}

/// A batch: the images padded and stacked as for Faster R-CNN, and each image's masks padded to its own
/// `pad_shape`.
public struct InstanceSegmentationBatch: Sendable {
  /// `[n, H, W, 3]` images, sizes, boxes, labels, scale factors (`collateDetectionBatch`).
  public var detection: DetectionBatch
  /// Per image: its masks padded with zeros to its own resized size rounded up to the pad divisor (mmdet's
  /// `pad_shape`), which can be smaller than the batch's `H × W`.
  public var masks: [InstanceMasks]
  public var cocoImageIDs: [Int]

  public var count: Int { masks.count }
}

/// mmdet 2.x Pad(size_divisor) + mmcv collate for instance segmentation: images as `collateDetectionBatch`
/// (padded to the batch's largest padded size), masks to each image's OWN padded size. The difference matters for
/// the mask targets: mmdet's `mask_target` clips the positive proposals to the masks' size and samples them with
/// RoIAlign (aligned, sampling ratio 0) — a sample within the last pixel row/column reads the border pixel when nothing
/// is padded there, and interpolates towards 0 when padding follows. To pad to the batch size instead (not what
/// mmdet does), call `InstanceMasks.padded(toHeight:width:)`.
public func collateInstanceSegmentationBatch(_ samples: [InstanceSample], padDivisor: Int)
  -> InstanceSegmentationBatch
{
  let detection = collateDetectionBatch(samples.map(\.detection), padDivisor: padDivisor)
  return InstanceSegmentationBatch(detection: detection,
                                   masks: samples.map { $0.masks.paddedToMultiple(of: padDivisor) },
                                   cocoImageIDs: samples.map(\.cocoImageID))
}
