// COCO mask operations on run-length encodings, with pycocotools' semantics (common/maskApi.c as shipped in
// pycocotools 2.0.11): rleEncode, rleArea, rleToBbox, rleMerge, rleIou and bbIou. Runs are column-major and start
// with a run of 0s (see COCORLE). Every operation walks the runs; no mask is ever decoded.

extension COCORLE {
  /// Encodes a binary mask given column-major (pixel (x, y) at `x · height + y`), as pycocotools' `rleEncode`
  /// on a Fortran-ordered uint8 array; nonzero bytes are foreground. `mask.count` must be height · width.
  public init(columnMajorMask mask: [UInt8], height: Int, width: Int) {
    precondition(mask.count == height * width,
                 "COCORLE(columnMajorMask:): \(mask.count) bytes for a \(height)×\(width) mask")
    var counts: [UInt32] = []
    var current = false  // the value of the run being counted; the first run counts 0s
    var run: UInt32 = 0
    for byte in mask {
      let value = byte != 0
      if value != current {
        counts.append(run)
        run = 0
        current = value
      }
      run += 1
    }
    counts.append(run)
    self.init(height: height, width: width, counts: counts)
  }

  /// Encodes a 1-channel `Image` (row-major, nonzero = foreground): the same RLE as `init(columnMajorMask:…)`.
  public init(mask image: Image) {
    precondition(image.channels == 1, "COCORLE(mask:) takes a 1-channel mask, got \(image.channels) channels")
    var columnMajor = [UInt8](repeating: 0, count: image.width * image.height)
    for y in 0..<image.height {
      for x in 0..<image.width { columnMajor[x * image.height + y] = image.pixels[y * image.width + x] }
    }
    self.init(columnMajorMask: columnMajor, height: image.height, width: image.width)
  }

  /// The tight box [x, y, width, height] around the foreground, as pycocotools 2.0.11's `rleToBbox` computes it:
  /// a foreground run that crosses a column boundary spans the full height; no foreground gives [0, 0, 0, 0] only
  /// when there are fewer than two runs (the C code's unsigned arithmetic is kept for the other degenerate cases).
  public var boundingBox: [Double] {
    let pairedRuns = (counts.count / 2) * 2
    guard pairedRuns > 0, height > 0 else { return [0, 0, 0, 0] }
    let h = UInt32(truncatingIfNeeded: height)
    var xStart = UInt32(truncatingIfNeeded: width), yStart = h, xEnd: UInt32 = 0, yEnd: UInt32 = 0
    var position: UInt32 = 0  // column-major index where the current run starts
    for j in 0..<pairedRuns {
      let start = position
      position &+= counts[j]
      guard j % 2 == 1, counts[j] > 0 else { continue }  // background runs and empty foreground runs
      let last = position &- 1
      let (firstColumn, firstRow) = (start / h, start % h)
      let (lastColumn, lastRow) = (last / h, last % h)
      xStart = min(xStart, firstColumn)
      xEnd = max(xEnd, lastColumn)
      if firstColumn < lastColumn {
        yStart = 0
        yEnd = h - 1
      } else {
        yStart = min(yStart, firstRow)
        yEnd = max(yEnd, lastRow)
      }
    }
    return [Double(xStart), Double(yStart), Double(xEnd &- xStart &+ 1), Double(yEnd &- yStart &+ 1)]
  }

  /// The union (or intersection) of masks of one size, as pycocotools' `merge(rles, intersect)` (`rleMerge`).
  /// No masks gives a 0×0 RLE with no runs; masks of different sizes give a 0×0 RLE with no runs, as in C.
  public static func merge(_ masks: [COCORLE], intersect: Bool = false) -> COCORLE {
    guard let first = masks.first else { return COCORLE(height: 0, width: 0, counts: []) }
    var merged = first
    for other in masks.dropFirst() {
      guard other.height == first.height && other.width == first.width else {
        return COCORLE(height: 0, width: 0, counts: [])
      }
      var result: [UInt32] = []
      result.reserveCapacity(merged.counts.count + other.counts.count)
      var a = RunCursor(merged.counts), b = RunCursor(other.counts)
      var value = false
      var run: UInt32 = 0
      var remaining: UInt32 = 1
      while remaining > 0 {
        let step = min(a.remaining, b.remaining)
        run &+= step
        a.advance(by: step)
        b.advance(by: step)
        remaining = a.remaining &+ b.remaining
        let previous = value
        value = intersect ? (a.value && b.value) : (a.value || b.value)
        if value != previous || remaining == 0 {
          result.append(run)
          run = 0
        }
      }
      merged.counts = result
    }
    return merged
  }

  /// IoU between every detection mask and every ground-truth mask (pycocotools `iou(dt, gt, iscrowd)` on RLEs,
  /// `rleIou`): row-major D × G, `[d · G + g]`. For a crowd ground truth the denominator is the detection's area.
  /// Pairs whose boxes do not overlap are 0 without walking the runs; pairs of different sizes are −1.
  public static func intersectionOverUnion(detections: [COCORLE], groundTruths: [COCORLE],
                                           groundTruthIsCrowd crowd: [Bool]) -> [Double] {
    precondition(crowd.count == groundTruths.count,
                 "intersectionOverUnion: \(crowd.count) crowd flags for \(groundTruths.count) ground truths")
    let detectionBoxes = detections.map(\.boundingBox), truthBoxes = groundTruths.map(\.boundingBox)
    var iou = COCOBoxIoU.matrix(detections: detectionBoxes, groundTruths: truthBoxes, groundTruthIsCrowd: crowd)
    let columns = groundTruths.count
    for d in detections.indices {
      for g in groundTruths.indices where iou[d * columns + g] > 0 {
        iou[d * columns + g] = pairIoU(detections[d], groundTruths[g], crowd: crowd[g])
      }
    }
    return iou
  }

  /// One pair of `rleIou`: intersection / union walking both run lists together; an empty intersection is 0;
  /// crowd: intersection / detection area.
  static func pairIoU(_ detection: COCORLE, _ truth: COCORLE, crowd: Bool) -> Double {
    guard detection.height == truth.height && detection.width == truth.width else { return -1 }
    var a = RunCursor(detection.counts), b = RunCursor(truth.counts)
    var intersection: UInt32 = 0, union: UInt32 = 0
    var remaining: UInt32 = 1
    while remaining > 0 {
      let step = min(a.remaining, b.remaining)
      if a.value || b.value {
        union &+= step
        if a.value && b.value { intersection &+= step }
      }
      a.advance(by: step)
      b.advance(by: step)
      remaining = a.remaining &+ b.remaining
    }
    if intersection == 0 {
      union = 1
    } else if crowd {
      union = UInt32(truncatingIfNeeded: detection.area)
    }
    return Double(intersection) / Double(union)
  }
}

/// Walks a run list the way maskApi.c does: `remaining` pixels left in the current run, whose value is `value`;
/// a finished run moves to the next one (one per step, so zero-length runs are stepped over one at a time).
struct RunCursor {
  private let counts: [UInt32]
  private var next = 1
  private(set) var remaining: UInt32
  private(set) var value = false

  init(_ counts: [UInt32]) {
    self.counts = counts
    remaining = counts.first ?? 0
  }

  mutating func advance(by step: UInt32) {
    remaining -= step
    if remaining == 0 && next < counts.count {
      remaining = counts[next]
      next += 1
      value.toggle()
    }
  }
}

/// Box IoU for COCO boxes [x, y, width, height] (pycocotools `bbIou`): continuous coordinates, no +1 in widths;
/// for a crowd ground truth the denominator is the detection's area.
public enum COCOBoxIoU {
  /// One pair, with bbIou's order of operations (so the result is bit-identical).
  @inline(__always)
  public static func iou(detection d: UnsafePointer<Double>, groundTruth g: UnsafePointer<Double>, crowd: Bool)
    -> Double
  {
    let width = min(d[2] + d[0], g[2] + g[0]) - max(d[0], g[0])
    if width <= 0 { return 0 }
    let height = min(d[3] + d[1], g[3] + g[1]) - max(d[1], g[1])
    if height <= 0 { return 0 }
    let intersection = width * height
    let detectionArea = d[2] * d[3]
    let union = crowd ? detectionArea : detectionArea + g[2] * g[3] - intersection
    return intersection / union
  }

  /// Every detection against every ground truth: row-major D × G, `[d · G + g]`. Each box is 4 values.
  public static func matrix(detections: [[Double]], groundTruths: [[Double]], groundTruthIsCrowd crowd: [Bool])
    -> [Double]
  {
    precondition(crowd.count == groundTruths.count,
                 "COCOBoxIoU.matrix: \(crowd.count) crowd flags for \(groundTruths.count) ground truths")
    let flatDetections = detections.flatMap { box -> [Double] in
      precondition(box.count == 4, "COCOBoxIoU.matrix: a box has \(box.count) values, not 4"); return box
    }
    let flatTruths = groundTruths.flatMap { box -> [Double] in
      precondition(box.count == 4, "COCOBoxIoU.matrix: a box has \(box.count) values, not 4"); return box
    }
    var result = [Double](repeating: 0, count: detections.count * groundTruths.count)
    flatDetections.withUnsafeBufferPointer { dBoxes in
      flatTruths.withUnsafeBufferPointer { gBoxes in
        for d in detections.indices {
          for g in groundTruths.indices {
            result[d * groundTruths.count + g] = iou(detection: dBoxes.baseAddress! + 4 * d,
                                                     groundTruth: gBoxes.baseAddress! + 4 * g, crowd: crowd[g])
          }
        }
      }
    }
    return result
  }
}
