// The FPN ROI extractor: each roi is pooled from the one pyramid level its size picks.
// Reference: mmdet 2.x roi_heads/roi_extractors/single_level_roi_extractor.py (`SingleRoIExtractor.map_roi_levels`,
// `forward`) and base_roi_extractor.py (`build_roi_layers`: one `RoIAlign(spatial_scale=1/stride)` per level), with
// mmcv 1.x `RoIAlign(output_size, sampling_ratio=0, aligned=True)` (its avg-mode CPU kernel is torchvision's, which
// `ROIAlign` follows). mask_rcnn_r50_fpn.py sets neither `roi_scale_factor` nor `gpu_assign_thr`, so rois are pooled
// as given. Forward and backward side by side.
import Foundation
import Tensors
import Layers

/// mmdet `SingleRoIExtractor` over several pyramid levels (P2…P5 for mask_rcnn_r50_fpn; P6 feeds only the RPN).
///
/// A roi (image index, x1, y1, x2, y2 in input pixels) of scale s = √((x2 − x1)·(y2 − y1)) goes to level
/// ⌊log2(s / finestScale + 1e-6)⌋ clamped to [0, levelCount − 1]: below 112 pixels P2, below 224 P3, below 448 P4,
/// larger P5 with finestScale 56. Its features come from `ROIAlign` on that level with spatial scale 1 / stride.
public struct MultiLevelROIExtractor: Sendable, Equatable {
  /// Input pixels per feature pixel of each level (`featmap_strides`), finest first.
  public let featureStrides: [Int]
  /// `finest_scale`: the roi scale (pixels) that separates level 0 from level 1 is twice this.
  public let finestScale: Float
  /// One aligned ROIAlign per level, all with the same output size and sampling ratio.
  public let aligners: [ROIAlign]

  /// `SingleRoIExtractor(roi_layer=dict(type='RoIAlign', output_size=outputSize, sampling_ratio=samplingRatio),
  /// featmap_strides=featureStrides, finest_scale=finestScale)`.
  public init(outputSize: Int, featureStrides: [Int] = [4, 8, 16, 32], samplingRatio: Int = 0,
              finestScale: Float = 56) {
    precondition(outputSize > 0 && !featureStrides.isEmpty && featureStrides.allSatisfy { $0 > 0 }
                   && samplingRatio >= 0 && finestScale > 0,
                 "MultiLevelROIExtractor needs a positive output size, strides and finest scale and a sampling "
                   + "ratio ≥ 0, got \(outputSize), \(featureStrides), \(finestScale), \(samplingRatio).")
    self.featureStrides = featureStrides
    self.finestScale = finestScale
    aligners = featureStrides.map {
      ROIAlign(outputHeight: outputSize, outputWidth: outputSize, spatialScale: 1 / Float($0),
               samplingRatio: samplingRatio, aligned: true)
    }
  }

  /// mask_rcnn_r50_fpn's `bbox_roi_extractor`: 7×7 over strides 4, 8, 16, 32.
  public static let mmdetBox = MultiLevelROIExtractor(outputSize: 7)
  /// mask_rcnn_r50_fpn's `mask_roi_extractor`: 14×14 over strides 4, 8, 16, 32.
  public static let mmdetMask = MultiLevelROIExtractor(outputSize: 14)

  public var levelCount: Int { featureStrides.count }
  public var outputSize: Int { aligners[0].outputHeight }

  /// `map_roi_levels`: the level of each roi of `rois` `[k, 5]`, in Float32 as mmdet computes it.
  public func levels(of rois: Tensor) -> [Int] {
    precondition(rois.rank == 2 && rois.shape[1] == 5,
                 "MultiLevelROIExtractor expects rois [k, 5] (image index, x1, y1, x2, y2), got \(rois.shape).")
    let r = rois.scalars
    return (0..<rois.shape[0]).map { roi in
      let scale = ((r[5 * roi + 3] - r[5 * roi + 1]) * (r[5 * roi + 4] - r[5 * roi + 2])).squareRoot()
      let level = Foundation.log2(scale / finestScale + 1e-6).rounded(.down)
      // A negative area gives NaN (torch's `.long()` of it is undefined); such a roi is invalid for aligned RoIAlign
      // anyway (mmcv asserts a non-negative size), so it goes to level 0 rather than trapping.
      guard !level.isNaN else { return 0 }
      return Int(min(max(level, 0), Float(levelCount - 1)))
    }
  }

  /// What backward needs: the rois of each level (rows of the input, and their positions in it) and level shapes.
  public struct Cache {
    let levelRows: [[Int]]        // per level, the positions of its rois in the input order
    let levelROIs: [Tensor]       // per level, [k_l, 5]
    let featureShapes: [[Int]]    // per level, [n, h_l, w_l, c]
  }

  /// Pooled features `[k, S, S, c]` in roi order for `rois` `[k, 5]`, each from its level of `features` (NHWC
  /// `[n, h_l, w_l, c]`, finest first). Only the first `levelCount` levels are read (mmdet passes
  /// `x[:num_inputs]`, so the RPN-only P6 may be included and is ignored).
  public func forward(features: [Tensor], rois: Tensor) -> (Tensor, Cache) {
    let shapes = checkLevels(features)
    let channels = shapes[0][3]
    let roiCount = rois.shape[0]
    let levelOfROI = levels(of: rois)
    var levelRows = [[Int]](repeating: [], count: levelCount)
    for (roi, level) in levelOfROI.enumerated() { levelRows[level].append(roi) }
    let levelROIs = levelRows.map { gatherRows(rois, $0) }
    let binValues = outputSize * outputSize * channels  // floats per pooled roi
    var output = Tensor.zeros([roiCount, outputSize, outputSize, channels])
    for level in 0..<levelCount where !levelRows[level].isEmpty {
      let pooled = aligners[level].forward(features: features[level], rois: levelROIs[level])
      output.scalars.withUnsafeMutableBufferPointer { out in
        pooled.scalars.withUnsafeBufferPointer { source in
          for (position, roi) in levelRows[level].enumerated() {
            (out.baseAddress! + roi * binValues).update(from: source.baseAddress! + position * binValues,
                                                        count: binValues)
          }
        }
      }
    }
    return (output, Cache(levelRows: levelRows, levelROIs: levelROIs, featureShapes: shapes))
  }

  /// ∂L/∂features of each level (`levelCount` tensors, zeros where no roi pooled) from ∂L/∂output `[k, S, S, c]`:
  /// each level's rois scatter back through that level's ROIAlign.
  public func backward(outputGradient: Tensor, _ cache: Cache) -> [Tensor] {
    let roiCount = cache.levelRows.reduce(0) { $0 + $1.count }
    let channels = cache.featureShapes[0][3]
    precondition(outputGradient.shape == [roiCount, outputSize, outputSize, channels],
                 "MultiLevelROIExtractor.backward: the output gradient \(outputGradient.shape) should be "
                   + "\([roiCount, outputSize, outputSize, channels]).")
    let binValues = outputSize * outputSize * channels
    return (0..<levelCount).map { level in
      let rows = cache.levelRows[level]
      guard !rows.isEmpty else { return Tensor.zeros(cache.featureShapes[level]) }
      let levelGradient = Tensor(uninitializedShape: [rows.count, outputSize, outputSize, channels]) { out in
        outputGradient.scalars.withUnsafeBufferPointer { source in
          for (position, roi) in rows.enumerated() {
            (out.baseAddress! + position * binValues).update(from: source.baseAddress! + roi * binValues,
                                                             count: binValues)
          }
        }
      }
      return aligners[level].backward(outputGradient: levelGradient, rois: cache.levelROIs[level],
                                      featureShape: cache.featureShapes[level])
    }
  }

  /// The first `levelCount` level shapes, checked: NHWC, one batch size and channel count.
  private func checkLevels(_ features: [Tensor]) -> [[Int]] {
    precondition(features.count >= levelCount,
                 "MultiLevelROIExtractor with strides \(featureStrides) needs \(levelCount) feature levels, got "
                   + "\(features.count).")
    let shapes = features.prefix(levelCount).map(\.shape)
    precondition(shapes.allSatisfy { $0.count == 4 && $0[0] == shapes[0][0] && $0[3] == shapes[0][3] },
                 "MultiLevelROIExtractor expects NHWC levels with one batch size and channel count, got \(shapes).")
    return Array(shapes)
  }
}
