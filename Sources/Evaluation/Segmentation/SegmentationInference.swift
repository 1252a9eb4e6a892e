// Test-time inference of a segmentation model as MMSegmentation 0.x runs it (mmseg/models/segmentors/
// encoder_decoder.py: `whole_inference`, `slide_inference`, then `simple_test`'s argmax). The model is a closure
// from an NHWC image crop `[1, h, w, 3]` to logits `[1, h, w, C]` already resized to the crop (`encode_decode`
// resizes the decoder's output to its input), so this file does not depend on the FCN model.
import Layers
import Tensors

/// mmseg's `test_cfg.mode`.
public enum SegmentationTestMode: Sendable, Equatable, Codable {
  /// The whole (test-scale) image at once (`mode='whole'`; the VOC configs).
  case whole
  /// Overlapping crops averaged (`mode='slide'`, `crop_size`, `stride`; the Cityscapes configs).
  case slide(cropHeight: Int, cropWidth: Int, strideHeight: Int, strideWidth: Int)

  /// `fcn_r50-d8_769x769_40k_cityscapes`: `test_cfg=dict(mode='slide', crop_size=(769, 769), stride=(513, 513))`.
  public static let cityscapes769 = SegmentationTestMode.slide(cropHeight: 769, cropWidth: 769,
                                                               strideHeight: 513, strideWidth: 513)
}

/// One crop of `slide_inference`: rows `y` and columns `x` of the (test-scale) image.
public struct SlideWindow: Sendable, Equatable, CustomStringConvertible {
  public var y: Range<Int>
  public var x: Range<Int>

  public init(y: Range<Int>, x: Range<Int>) {
    self.y = y
    self.x = x
  }

  public var description: String { "y \(y.lowerBound)..<\(y.upperBound), x \(x.lowerBound)..<\(x.upperBound)" }
}

/// A model for inference: `[1, h, w, 3]` NHWC crop → `[1, h, w, C]` logits.
public typealias SegmentationLogits = (Tensor) throws -> Tensor

public enum SegmentationInference {
  /// The crops of `slide_inference`, in its order (rows of crops top to bottom, each left to right):
  /// `grids = max(size − crop + stride − 1, 0) / stride + 1`; crop i starts at `i·stride`, ends at
  /// `min(start + crop, size)`, and is moved back to start at `max(end − crop, 0)`, so the last crop of a row
  /// ends at the image border and a crop is smaller than `crop` only when the image is.
  public static func slideWindows(height: Int, width: Int, cropHeight: Int, cropWidth: Int,
                                  strideHeight: Int, strideWidth: Int) -> [SlideWindow] {
    precondition(height >= 1 && width >= 1 && cropHeight >= 1 && cropWidth >= 1 && strideHeight >= 1
                   && strideWidth >= 1,
                 "slideWindows needs positive sizes, got image \(height)×\(width), crop \(cropHeight)×\(cropWidth), "
                   + "stride \(strideHeight)×\(strideWidth).")
    func spans(_ size: Int, _ crop: Int, _ stride: Int) -> [Range<Int>] {
      let grids = max(size - crop + stride - 1, 0) / stride + 1
      return (0..<grids).map { index in
        let end = min(index * stride + crop, size)
        return max(end - crop, 0)..<end
      }
    }
    let columns = spans(width, cropWidth, strideWidth)
    return spans(height, cropHeight, strideHeight).flatMap { y in columns.map { SlideWindow(y: y, x: $0) } }
  }

  /// `whole_inference` with `rescale=True`: the model on `image` (`[1, h, w, 3]`, already at the test scale),
  /// its logits resized to `originalHeight × originalWidth` (bilinear, `align_corners` of the decode head).
  /// Returns `[1, originalHeight, originalWidth, C]`. (The last 0.x releases first crop the logits to `img_shape`
  /// to drop test-time padding; the VOC and Cityscapes test pipelines do not pad, so there is nothing to crop.)
  public static func whole(image: Tensor, originalHeight: Int, originalWidth: Int, alignCorners: Bool,
                           model: SegmentationLogits) rethrows -> Tensor {
    checkImage(image)
    let logits = try model(image)
    checkLogits(logits, height: image.shape[1], width: image.shape[2])
    return resized(logits, height: originalHeight, width: originalWidth, alignCorners: alignCorners)
  }

  /// `slide_inference` with `rescale=True`: the logits of every crop of `slideWindows` added into a full-size
  /// float32 buffer in crop order, divided by the number of crops covering each pixel, then resized to
  /// `originalHeight × originalWidth` (bilinear, `alignCorners`) when the image was rescaled. `image` is
  /// `[1, h, w, 3]` at the test scale; returns `[1, originalHeight, originalWidth, C]`.
  public static func slide(image: Tensor, cropHeight: Int, cropWidth: Int, strideHeight: Int, strideWidth: Int,
                           originalHeight: Int, originalWidth: Int, alignCorners: Bool,
                           model: SegmentationLogits) rethrows -> Tensor {
    checkImage(image)
    let (height, width, channels) = (image.shape[1], image.shape[2], image.shape[3])
    let windows = slideWindows(height: height, width: width, cropHeight: cropHeight, cropWidth: cropWidth,
                               strideHeight: strideHeight, strideWidth: strideWidth)
    var sum: [Float] = []  // [h, w, C], allocated once the first crop tells C
    var count = [Float](repeating: 0, count: height * width)
    var classes = 0
    for window in windows {
      let crop = cropped(image, window, channels: channels)
      let logits = try model(crop)
      checkLogits(logits, height: window.y.count, width: window.x.count)
      if sum.isEmpty {
        classes = logits.shape[3]
        sum = [Float](repeating: 0, count: height * width * classes)
      }
      precondition(logits.shape[3] == classes,
                   "The model gave \(logits.shape[3]) classes for crop \(window) after \(classes) for the first.")
      // preds += F.pad(crop_seg_logit, …): one float32 addition per element and crop, in crop order.
      let rowLength = window.x.count * classes
      logits.scalars.withUnsafeBufferPointer { source in
        sum.withUnsafeMutableBufferPointer { target in
          for (row, y) in window.y.enumerated() {
            let from = source.baseAddress! + row * rowLength
            let to = target.baseAddress! + (y * width + window.x.lowerBound) * classes
            for i in 0..<rowLength { to[i] += from[i] }
          }
        }
      }
      for y in window.y { for x in window.x { count[y * width + x] += 1 } }
    }
    // preds / count_mat (every pixel is covered: the last crop of each row and column ends at the border).
    sum.withUnsafeMutableBufferPointer { target in
      for pixel in 0..<(height * width) {
        let covering = count[pixel]
        for c in 0..<classes { target[pixel * classes + c] /= covering }
      }
    }
    let logits = Tensor(shape: [1, height, width, classes], scalars: sum)
    return resized(logits, height: originalHeight, width: originalWidth, alignCorners: alignCorners)
  }

  /// `whole` or `slide` as `mode` says; `[1, originalHeight, originalWidth, C]` logits.
  public static func logits(image: Tensor, mode: SegmentationTestMode, originalHeight: Int, originalWidth: Int,
                            alignCorners: Bool, model: SegmentationLogits) rethrows -> Tensor {
    switch mode {
    case .whole:
      return try whole(image: image, originalHeight: originalHeight, originalWidth: originalWidth,
                       alignCorners: alignCorners, model: model)
    case let .slide(cropHeight, cropWidth, strideHeight, strideWidth):
      return try slide(image: image, cropHeight: cropHeight, cropWidth: cropWidth, strideHeight: strideHeight,
                       strideWidth: strideWidth, originalHeight: originalHeight, originalWidth: originalWidth,
                       alignCorners: alignCorners, model: model)
    }
  }

  /// The predicted class of every original pixel (`simple_test`: `seg_logit.argmax(dim=1)`), row-major.
  public static func labels(image: Tensor, mode: SegmentationTestMode, originalHeight: Int, originalWidth: Int,
                            alignCorners: Bool, model: SegmentationLogits) rethrows -> [UInt8] {
    argmaxLabels(logits: try logits(image: image, mode: mode, originalHeight: originalHeight,
                                     originalWidth: originalWidth, alignCorners: alignCorners, model: model))
  }

  // MARK: - Pieces

  /// `resize(…, mode='bilinear')` to the original size; the identity (as F.interpolate's same-size copy) when the
  /// image was not rescaled.
  private static func resized(_ logits: Tensor, height: Int, width: Int, alignCorners: Bool) -> Tensor {
    if logits.shape[1] == height && logits.shape[2] == width { return logits }
    return bilinearResize(logits, height: height, width: width, alignCorners: alignCorners)
  }

  /// `img[:, :, y1:y2, x1:x2]` of an NHWC `[1, h, w, c]` image.
  private static func cropped(_ image: Tensor, _ window: SlideWindow, channels: Int) -> Tensor {
    let width = image.shape[2]
    let rowLength = window.x.count * channels
    return Tensor(uninitializedShape: [1, window.y.count, window.x.count, channels]) { target in
      image.scalars.withUnsafeBufferPointer { source in
        for (row, y) in window.y.enumerated() {
          let from = source.baseAddress! + (y * width + window.x.lowerBound) * channels
          (target.baseAddress! + row * rowLength).update(from: from, count: rowLength)
        }
      }
    }
  }

  private static func checkImage(_ image: Tensor) {
    precondition(image.rank == 4 && image.shape[0] == 1 && image.shape[1] >= 1 && image.shape[2] >= 1,
                 "Segmentation inference takes one NHWC image [1, h, w, c], got \(image.shape).")
  }

  private static func checkLogits(_ logits: Tensor, height: Int, width: Int) {
    precondition(logits.rank == 4 && logits.shape[0] == 1 && logits.shape[1] == height && logits.shape[2] == width
                   && logits.shape[3] >= 1,
                 "The model must return [1, \(height), \(width), C] logits for a \(height)×\(width) crop, got "
                   + "\(logits.shape).")
  }
}
