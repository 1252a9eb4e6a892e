// COCO detection / instance-segmentation evaluation, as pycocotools' COCOeval (PythonAPI/pycocotools/cocoeval.py)
// with useCats=1: evaluate() per (image, category) cell in parallel over images, accumulate() per category in
// parallel over categories, summarize() into the 12 numbers. Results do not depend on the thread count: every cell
// and every category is computed by one thread in a fixed order.
import Datasets
import Foundation
import Tensors

/// The accumulated evaluation (cocoeval's `self.eval`) and its 12 summary numbers.
public struct COCOEvaluationResult: Sendable {
  public let parameters: COCOEvalParameters
  public let iouType: COCOIoUType
  /// The evaluated category ids, ascending (K of them).
  public let categoryIDs: [Int]
  /// T × R × K × A × M, row-major; −1 where a category has no counted ground truth.
  public let precision: [Double]
  /// T × K × A × M, row-major; −1 likewise.
  public let recall: [Double]
  /// The 12 summary numbers (cocoeval's `stats`), in `COCOSummary.lines` order.
  public var stats: [Double] { COCOSummary.stats(self) }
}

public enum COCOEvaluator {
  /// Evaluates detections against ground truth as `COCOeval(gt, dt, iouType)` → evaluate → accumulate.
  /// Throws for a ground truth without a usable segmentation (segm) or a malformed polygon.
  public static func evaluate(groundTruth: COCOGroundTruth, detections: COCODetections, iouType: COCOIoUType,
                              parameters: COCOEvalParameters = COCOEvalParameters()) throws(COCOEvalError)
    -> COCOEvaluationResult
  {
    var parameters = parameters
    parameters.maxDetections.sort()
    let layout = COCOCellLayout(groundTruth: groundTruth, detections: detections)
    let cells = try evaluateCells(layout, groundTruth: groundTruth, detections: detections, iouType: iouType,
                                  parameters: parameters)
    let (precision, recall) = COCOAccumulator.accumulate(cells, imageCount: layout.imageIDs.count,
                                                         categoryCount: layout.categoryIDs.count,
                                                         parameters: parameters)
    return COCOEvaluationResult(parameters: parameters, iouType: iouType, categoryIDs: layout.categoryIDs,
                                precision: precision, recall: recall)
  }

  /// evaluate(): every nonempty (image, category) cell, parallel over images; `cells[image · K + category]`.
  static func evaluateCells(_ layout: COCOCellLayout, groundTruth: COCOGroundTruth, detections: COCODetections,
                            iouType: COCOIoUType, parameters: COCOEvalParameters) throws(COCOEvalError)
    -> [COCOCellEvaluation?]
  {
    let imageCount = layout.imageIDs.count, categoryCount = layout.categoryIDs.count
    let truths = groundTruth.annotations, results = detections.detections
    let truthBoxes = truths.flatMap(\.bbox), detectionBoxes = results.flatMap(\.bbox)
    let detectionScores = results.map(\.score), detectionAreas = results.map(\.area)
    let keep = parameters.maxDetections.last ?? 0
    var cells = [COCOCellEvaluation?](repeating: nil, count: imageCount * categoryCount)
    var errors = [COCOEvalError?](repeating: nil, count: imageCount)
    cells.withUnsafeMutableBufferPointer { cellSlots in
      errors.withUnsafeMutableBufferPointer { errorSlots in
        truthBoxes.withUnsafeBufferPointer { truthBoxes in
          detectionBoxes.withUnsafeBufferPointer { detectionBoxes in
            parallelForEach(imageCount) { image, _ in
              let size = (layout.imageSizes[image].height, layout.imageSizes[image].width)
              for category in 0..<categoryCount {
                let cellIndex = image * categoryCount + category
                let truthIndices = layout.truths(cellIndex), detectionIndices = layout.detections(cellIndex)
                if truthIndices.isEmpty && detectionIndices.isEmpty { continue }
                let input = COCOCellInput(
                  truthIDs: truthIndices.map { truths[$0].id }, truthAreas: truthIndices.map { truths[$0].area },
                  truthCrowd: truthIndices.map { truths[$0].isCrowd },
                  detectionScores: detectionIndices.map { detectionScores[$0] },
                  detectionAreas: detectionIndices.map { detectionAreas[$0] })
                let ranked = COCOCellEvaluator.rankedDetections(input.detectionScores, limit: keep)
                let iou: [Double]
                switch iouType {
                case .bbox:
                  let cellTruthBoxes = truthIndices.flatMap { Array(truthBoxes[(4 * $0)..<(4 * $0 + 4)]) }
                  iou = cellTruthBoxes.withUnsafeBufferPointer { cellTruthBoxes in
                    let rankedFileIndices = ranked.map { detectionIndices[$0] }
                    return COCOCellEvaluator.boxIoU(
                      detectionBoxes: detectionBoxes.baseAddress!, ranked: rankedFileIndices,
                      truthBoxes: cellTruthBoxes.baseAddress!, crowd: input.truthCrowd)
                  }
                case .segm:
                  do throws(COCOEvalError) {
                    let truthMasks = try truthIndices.map { index throws(COCOEvalError) -> COCORLE in
                      guard let segmentation = truths[index].segmentation else {
                        throw .invalidEntry(path: groundTruth.path, entry: "annotation id \(truths[index].id)",
                                            reason: "it has no segmentation, which a segm evaluation needs")
                      }
                      return try COCOMasks.rle(segmentation, height: size.0, width: size.1, path: groundTruth.path,
                                               entry: "annotation id \(truths[index].id) segmentation")
                    }
                    let detectionMasks = try ranked.map { position throws(COCOEvalError) -> COCORLE in
                      let index = detectionIndices[position]
                      return try COCOMasks.rle(results[index].segmentation!, height: size.0, width: size.1,
                                               path: detections.path, entry: "[\(index)].segmentation")
                    }
                    iou = COCORLE.intersectionOverUnion(detections: detectionMasks, groundTruths: truthMasks,
                                                        groundTruthIsCrowd: input.truthCrowd)
                  } catch {
                    errorSlots[image] = error
                    return
                  }
                }
                cellSlots[cellIndex] = COCOCellEvaluator.evaluate(input, ranked: ranked, iou: iou,
                                                                  parameters: parameters)
              }
            }
          }
        }
      }
    }
    if let first = errors.first(where: { $0 != nil }) { throw first! }
    return cells
  }
}

/// Which ground truths and detections fall in each (image, category) cell, in file order — as pycocotools'
/// getAnnIds(imgIds, catIds) lists them. Images are the ground truth's, ids ascending; categories likewise.
/// Annotations of other images or categories are left out (detections of unknown images were refused on loading).
struct COCOCellLayout: Sendable {
  let imageIDs: [Int]
  let imageSizes: [(height: Int, width: Int)]
  let categoryIDs: [Int]
  private let truthStarts: [Int32], truthIndices: [Int32]
  private let detectionStarts: [Int32], detectionIndices: [Int32]

  init(groundTruth: COCOGroundTruth, detections: COCODetections) {
    let images = groundTruth.images.sorted { $0.id < $1.id }
    imageIDs = images.map(\.id)
    imageSizes = images.map { ($0.height, $0.width) }
    categoryIDs = groundTruth.categoryIDs.sorted()
    let imagePosition = Dictionary(uniqueKeysWithValues: imageIDs.enumerated().map { ($1, $0) })
    let categoryPosition = Dictionary(uniqueKeysWithValues: categoryIDs.enumerated().map { ($1, $0) })
    let categoryCount = categoryIDs.count, cellCount = imageIDs.count * categoryCount
    let cell = { (image: Int, category: Int) -> Int? in
      guard let i = imagePosition[image], let k = categoryPosition[category] else { return nil }
      return i * categoryCount + k
    }
    (truthStarts, truthIndices) = Self.group(groundTruth.annotations.map { cell($0.imageID, $0.categoryID) },
                                             cellCount: cellCount)
    (detectionStarts, detectionIndices) = Self.group(detections.detections.map { cell($0.imageID, $0.categoryID) },
                                                     cellCount: cellCount)
  }

  /// Counting sort of item indices by cell, stable: `starts[c]..<starts[c + 1]` indexes `indices` for cell c.
  private static func group(_ cells: [Int?], cellCount: Int) -> ([Int32], [Int32]) {
    var starts = [Int32](repeating: 0, count: cellCount + 1)
    for case let cell? in cells { starts[cell + 1] += 1 }
    for c in 0..<cellCount { starts[c + 1] += starts[c] }
    var next = starts
    var indices = [Int32](repeating: 0, count: Int(starts[cellCount]))
    for (item, cell) in cells.enumerated() {
      guard let cell else { continue }
      indices[Int(next[cell])] = Int32(item)
      next[cell] += 1
    }
    return (starts, indices)
  }

  func truths(_ cell: Int) -> [Int] { truthIndices[Int(truthStarts[cell])..<Int(truthStarts[cell + 1])].map(Int.init) }
  func detections(_ cell: Int) -> [Int] {
    detectionIndices[Int(detectionStarts[cell])..<Int(detectionStarts[cell + 1])].map(Int.init)
  }
}
