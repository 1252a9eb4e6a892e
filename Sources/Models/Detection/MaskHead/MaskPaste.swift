// Test-time masks: mmdet 2.x `FCNMaskHead.get_seg_masks` + `_do_paste_mask` as they run on CPU (one box per chunk,
// skip_empty=True): sigmoid, the detected class's 28×28 map, the box rescaled to the original image, the map
// bilinearly resampled (torch `F.grid_sample`, align_corners=False, zero padding) at the pixel centres of the box's
// integer window, then `>= mask_thr_binary`. The binary masks go to COCO RLE in Datasets (`COCORLE(columnMajorMask:)`),
// which sits above Models: callers encode `PastedMask.columnMajorPixels`.
import Foundation
import Tensors

/// One detection's binary mask over the whole original image: `height × width`, row-major (index y·width + x),
/// 1 inside the instance.
public struct PastedMask: Sendable, Equatable {
  public let height: Int
  public let width: Int
  public var pixels: [UInt8]

  public init(height: Int, width: Int, pixels: [UInt8]) {
    precondition(pixels.count == height * width,
                 "PastedMask: \(pixels.count) pixels for a \(height)×\(width) mask.")
    self.height = height
    self.width = width
    self.pixels = pixels
  }

  /// The same mask column-major (index x·height + y), as pycocotools' `encode(np.asfortranarray(mask))` reads it.
  public var columnMajorPixels: [UInt8] {
    var result = [UInt8](repeating: 0, count: pixels.count)
    for y in 0..<height {
      for x in 0..<width { result[x * height + y] = pixels[y * width + x] }
    }
    return result
  }
}

/// mmdet 2.x `FCNMaskHead.get_seg_masks(mask_pred, det_bboxes, det_labels, rcnn_test_cfg, ori_shape, scale_factor,
/// rescale=True)` on CPU.
///
/// - `logits`: `[d, S, S, classCount]` mask logits of the d detections (the head's output, before the sigmoid).
/// - `boxes`: `[d, 4]` (x1, y1, x2, y2) in the network input's frame (the boxes the mask ROIs were pooled from);
///   divided by `scaleFactor` (mmdet's float32 `[w_scale, h_scale, w_scale, h_scale]`) to the original image.
///   Callers holding boxes already in the original frame pass a scale factor of 1.
/// - `labels`: each detection's class (0-based).
/// - `originalHeight`, `originalWidth`: `ori_shape`, the size of the returned masks.
/// - `threshold`: `mask_thr_binary` (0.5): a pixel is in the mask when its pasted probability is ≥ it.
///
/// Parallel over detections.
public func pasteMasks(logits: Tensor, boxes: Tensor, labels: [Int], scaleFactor: (width: Float, height: Float),
                       originalHeight: Int, originalWidth: Int, threshold: Float = 0.5) -> [PastedMask] {
  pasteEach(logits: logits, boxes: boxes, labels: labels, scaleFactor: scaleFactor, originalHeight: originalHeight,
            originalWidth: originalWidth) { window in
    var pixels = [UInt8](repeating: 0, count: originalHeight * originalWidth)
    window.forEachPixel { offset, probability in pixels[offset] = probability >= threshold ? 1 : 0 }
    return PastedMask(height: originalHeight, width: originalWidth, pixels: pixels)
  }
}

/// The pasted probabilities behind `pasteMasks`: per detection `[originalHeight·originalWidth]` row-major, 0 outside
/// the box's window (`skip_empty`: rows floor(y1) − 1 ..< ceil(y2) + 1, columns likewise, clamped to the image).
public func pastedProbabilities(logits: Tensor, boxes: Tensor, labels: [Int], scaleFactor: (width: Float, height: Float),
                                originalHeight: Int, originalWidth: Int) -> [[Float]] {
  pasteEach(logits: logits, boxes: boxes, labels: labels, scaleFactor: scaleFactor, originalHeight: originalHeight,
            originalWidth: originalWidth) { window in
    var image = [Float](repeating: 0, count: originalHeight * originalWidth)
    window.forEachPixel { offset, probability in image[offset] = probability }
    return image
  }
}

/// Checks the inputs, then builds each detection's `PasteWindow` and hands it to `body`, parallel over detections.
private func pasteEach<Result>(logits: Tensor, boxes: Tensor, labels: [Int],
                               scaleFactor: (width: Float, height: Float), originalHeight: Int, originalWidth: Int,
                               _ body: (PasteWindow) -> Result) -> [Result] {
  precondition(logits.rank == 4 && logits.shape[1] >= 1 && logits.shape[2] >= 1,
               "pasteMasks expects logits [d, S, S, classes], got \(logits.shape).")
  let (d, maskHeight, maskWidth, classes) = (logits.shape[0], logits.shape[1], logits.shape[2], logits.shape[3])
  precondition(boxes.shape == [d, 4] && labels.count == d,
               "pasteMasks: \(d) mask maps need boxes [\(d), 4] and \(d) labels, got \(boxes.shape) and \(labels.count).")
  precondition(originalHeight >= 1 && originalWidth >= 1 && scaleFactor.width > 0 && scaleFactor.height > 0,
               "pasteMasks needs a positive image size and scale factor, got \(originalHeight)×\(originalWidth), "
                 + "\(scaleFactor).")
  for (index, label) in labels.enumerated() {
    precondition(label >= 0 && label < classes, "pasteMasks: detection \(index) has label \(label) of \(classes) classes.")
  }
  let slots = UnsafeMutablePointer<Result>.allocate(capacity: d)
  defer { slots.deinitialize(count: d); slots.deallocate() }
  logits.scalars.withUnsafeBufferPointer { logitBuffer in
    let lp = logitBuffer.baseAddress!
    parallelForEach(d) { detection, _ in
      // mask_pred.sigmoid()[i, label]: the S×S probability map, row-major
      var map = [Float](repeating: 0, count: maskHeight * maskWidth)
      let base = detection * maskHeight * maskWidth * classes + labels[detection]
      for pixel in 0..<(maskHeight * maskWidth) { map[pixel] = sigmoid(lp[base + pixel * classes]) }
      let b = Array(boxes.scalars[(4 * detection)..<(4 * detection + 4)])
      let window = PasteWindow(map: map, maskHeight: maskHeight, maskWidth: maskWidth,
                               box: (b[0] / scaleFactor.width, b[1] / scaleFactor.height,
                                     b[2] / scaleFactor.width, b[3] / scaleFactor.height),
                               imageHeight: originalHeight, imageWidth: originalWidth)
      (slots + detection).initialize(to: body(window))
    }
  }
  return Array(UnsafeBufferPointer(start: slots, count: d))
}

/// `_do_paste_mask(masks[i:i+1], boxes[i:i+1], img_h, img_w, skip_empty=True)`: the probabilities of the pixels in
/// the box's integer window (the rest of the image is 0).
private struct PasteWindow {
  let map: [Float]  // [S·S] probabilities, row-major
  let maskWidth: Int
  let imageWidth: Int
  let rowStart: Int, columnStart: Int
  let rows: [BilinearTap], columns: [BilinearTap]

  init(map: [Float], maskHeight: Int, maskWidth: Int, box: (x0: Float, y0: Float, x1: Float, y1: Float),
       imageHeight: Int, imageWidth: Int) {
    self.map = map
    self.maskWidth = maskWidth
    self.imageWidth = imageWidth
    // x0_int = clamp(floor(x0) − 1, min=0); x1_int = clamp(ceil(x1) + 1, max=img_w) (only these two bounds).
    columnStart = max(Int(clampedForConversion(box.x0.rounded(.down) - 1)), 0)
    rowStart = max(Int(clampedForConversion(box.y0.rounded(.down) - 1)), 0)
    let columnEnd = min(Int(clampedForConversion(box.x1.rounded(.up) + 1)), imageWidth)
    let rowEnd = min(Int(clampedForConversion(box.y1.rounded(.up) + 1)), imageHeight)
    // Grid coordinates in [−1, 1]: (i + 0.5 − x0) / (x1 − x0) · 2 − 1, an infinite one set to 0, then unnormalised
    // as grid_sample does (align_corners=False), in the map's pixels.
    columns = columnStart < columnEnd
      ? (columnStart..<columnEnd).map {
          BilinearTap(sourceCoordinate(Float($0) + 0.5, box.x0, box.x1, size: maskWidth), size: maskWidth)
        }
      : []
    rows = rowStart < rowEnd
      ? (rowStart..<rowEnd).map {
          BilinearTap(sourceCoordinate(Float($0) + 0.5, box.y0, box.y1, size: maskHeight), size: maskHeight)
        }
      : []
  }

  /// Calls `body(y·imageWidth + x, probability)` for every pixel of the window.
  func forEachPixel(_ body: (Int, Float) -> Void) {
    for (row, rowTap) in rows.enumerated() {
      let target = (rowStart + row) * imageWidth + columnStart
      for (column, columnTap) in columns.enumerated() {
        body(target + column, rowTap.sample(map, width: maskWidth, columns: columnTap))
      }
    }
  }
}

/// Keeps a rounded box coordinate convertible to Int (boxes are finite; this only guards absurd values).
@inline(__always)
private func clampedForConversion(_ value: Float) -> Float { min(max(value, -1e9), 1e9) }

@inline(__always)
private func sourceCoordinate(_ pixelCentre: Float, _ start: Float, _ end: Float, size: Int) -> Float {
  var grid = (pixelCentre - start) / (end - start) * 2 - 1
  if grid.isInfinite { grid = 0 }
  return (grid + 1) * (Float(size) / 2) - 0.5
}

/// The two neighbours along one axis and their weights, as torch's CPU grid sampler computes them
/// (GridSamplerKernel.cpp `ApplyGridSample<…, Bilinear, Zeros>`): low = floor(c), w_high = c − low, w_low = 1 − w_high;
/// a neighbour outside [0, size) reads 0.
private struct BilinearTap {
  let low: Int
  let lowWeight: Float, highWeight: Float
  let lowInside: Bool, highInside: Bool

  init(_ coordinate: Float, size: Int) {
    let floor = coordinate.rounded(.down)
    highWeight = coordinate - floor
    lowWeight = 1 - highWeight
    // Huge or NaN coordinates (a degenerate box) read nothing, like torch's masked gathers.
    guard floor.isFinite && abs(floor) < 1e9 else {
      low = 0; lowInside = false; highInside = false
      return
    }
    low = Int(floor)
    lowInside = low >= 0 && low < size
    highInside = low + 1 >= 0 && low + 1 < size
  }

  /// nw·s·e + ne·s·w + sw·n·e + se·n·w in torch's order, with `self` the rows and `columns` the columns.
  @inline(__always)
  func sample(_ map: [Float], width: Int, columns c: BilinearTap) -> Float {
    func value(_ y: Int, _ yInside: Bool, _ x: Int, _ xInside: Bool) -> Float {
      yInside && xInside ? map[y * width + x] : 0
    }
    // ((nw + ne) + sw) + se, as the kernel adds them
    var total = value(low, lowInside, c.low, c.lowInside) * (lowWeight * c.lowWeight)
    total += value(low, lowInside, c.low + 1, c.highInside) * (lowWeight * c.highWeight)
    total += value(low + 1, highInside, c.low, c.lowInside) * (highWeight * c.lowWeight)
    total += value(low + 1, highInside, c.low + 1, c.highInside) * (highWeight * c.highWeight)
    return total
  }
}
