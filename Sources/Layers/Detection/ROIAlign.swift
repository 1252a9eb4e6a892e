// ROIAlign on NHWC features, forward and backward.
// Reference: torchvision csrc/ops/cpu/roi_align_kernel.cpp (`roi_align_forward_kernel_impl`, `pre_calc_for_bilinear_
// interpolate`, `bilinear_interpolate_gradient`) and the pure-python `_roi_align` in torchvision/ops/roi_align.py;
// PROTOCOLS §5.5 gives the edge rules. Arithmetic is Float32 in the kernel's order of operations.
import Foundation
import Tensors

/// torchvision `roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)` with NHWC features.
///
/// Features `[n, h, w, c]`; rois `[k, 5]` = (batch index, x1, y1, x2, y2) in input-image pixels, mapped to the feature
/// map by `spatialScale` (1/16 for a stride-16 map). Output `[k, outputHeight, outputWidth, c]`.
/// With `aligned`, a roi starts at x1·scale − 0.5 (pixel centres; ROIAlignV2); without, its size is at least 1.
/// `samplingRatio` 0 means an adaptive grid of ceil(roi height / outputHeight) × ceil(roi width / outputWidth) samples
/// per bin, averaged.
public struct ROIAlign: Sendable, Equatable {
  public var outputHeight: Int
  public var outputWidth: Int
  public var spatialScale: Float
  public var samplingRatio: Int
  public var aligned: Bool

  public init(outputHeight: Int, outputWidth: Int, spatialScale: Float, samplingRatio: Int = 0, aligned: Bool = true) {
    precondition(outputHeight > 0 && outputWidth > 0 && spatialScale > 0 && samplingRatio >= 0,
                 "ROIAlign needs a positive output size and scale and a sampling ratio ≥ 0, got "
                   + "\(outputHeight)×\(outputWidth), \(spatialScale), \(samplingRatio).")
    self.outputHeight = outputHeight
    self.outputWidth = outputWidth
    self.spatialScale = spatialScale
    self.samplingRatio = samplingRatio
    self.aligned = aligned
  }

  /// Pooled features `[k, outputHeight, outputWidth, c]`. Parallel over rois.
  public func forward(features: Tensor, rois: Tensor) -> Tensor {
    let (n, height, width, channels) = checkShapes(featureShape: features.shape, rois: rois)
    let roiCount = rois.shape[0]
    let bins = outputHeight * outputWidth
    return Tensor(uninitializedShape: [roiCount, outputHeight, outputWidth, channels]) { out in
      features.scalars.withUnsafeBufferPointer { featureBuffer in
        let fp = featureBuffer.baseAddress!, op = out.baseAddress!
        parallelForEach(roiCount) { roi, _ in
          let plan = samplingPlan(rois.scalars, roi: roi, batchCount: n, height: height, width: width)
          let image = fp + plan.batchIndex * height * width * channels
          let inverseCount = 1 / Float(plan.count)
          for ph in 0..<outputHeight {
            for pw in 0..<outputWidth {
              let output = op + ((roi * bins) + ph * outputWidth + pw) * channels
              output.update(repeating: 0, count: channels)
              for iy in 0..<plan.gridH {
                let y = plan.rows[ph * plan.gridH + iy]
                for ix in 0..<plan.gridW {
                  let x = plan.columns[pw * plan.gridW + ix]
                  // The kernel's per-sample sum w1·v1 + w2·v2 + w3·v3 + w4·v4, one pass over the channels.
                  let (w1, w2) = (y.lowWeight * x.lowWeight, y.lowWeight * x.highWeight)
                  let (w3, w4) = (y.highWeight * x.lowWeight, y.highWeight * x.highWeight)
                  let p1 = UnsafePointer(image + (y.low * width + x.low) * channels)
                  let p2 = UnsafePointer(image + (y.low * width + x.high) * channels)
                  let p3 = UnsafePointer(image + (y.high * width + x.low) * channels)
                  let p4 = UnsafePointer(image + (y.high * width + x.high) * channels)
                  for ch in 0..<channels { output[ch] += w1 * p1[ch] + w2 * p2[ch] + w3 * p3[ch] + w4 * p4[ch] }
                }
              }
              for ch in 0..<channels { output[ch] *= inverseCount }
            }
          }
        }
      }
    }
  }

  /// ∂L/∂features `[n, h, w, c]` from ∂L/∂output `[k, outputHeight, outputWidth, c]`: each sample's bilinear weights
  /// scatter the bin's gradient / count back (the forward is linear in the features, so this is its exact adjoint).
  ///
  /// Deterministic whatever the thread count: threads split the channels, and every element accumulates its
  /// contributions in the same order (roi, bin, sample, corner) as a single thread would.
  public func backward(outputGradient: Tensor, rois: Tensor, featureShape: [Int]) -> Tensor {
    let (n, height, width, channels) = checkShapes(featureShape: featureShape, rois: rois)
    let roiCount = rois.shape[0]
    precondition(outputGradient.shape == [roiCount, outputHeight, outputWidth, channels],
                 "ROIAlign.backward: the output gradient \(outputGradient.shape) should be "
                   + "\([roiCount, outputHeight, outputWidth, channels]).")
    let bins = outputHeight * outputWidth
    let plans = (0..<roiCount).map { samplingPlan(rois.scalars, roi: $0, batchCount: n, height: height, width: width) }
    return Tensor(uninitializedShape: featureShape) { out in
      out.update(repeating: 0)
      outputGradient.scalars.withUnsafeBufferPointer { gradientBuffer in
        let gp = gradientBuffer.baseAddress!, dp = out.baseAddress!
        parallelFor(0..<channels, minimumChunk: 16) { channelRange in
          let (c0, cCount) = (channelRange.lowerBound, channelRange.count)
          for roi in 0..<roiCount {
            let plan = plans[roi]
            let image = dp + plan.batchIndex * height * width * channels + c0
            let inverseCount = 1 / Float(plan.count)
            for ph in 0..<outputHeight {
              for pw in 0..<outputWidth {
                let dy = gp + ((roi * bins) + ph * outputWidth + pw) * channels + c0
                plan.forEachSample(ph: ph, pw: pw, width: width) { offset, weight in
                  let row = image + offset * channels
                  for ch in 0..<cCount { row[ch] += dy[ch] * inverseCount * weight }
                }
              }
            }
          }
        }
      }
    }
  }

  private func checkShapes(featureShape: [Int], rois: Tensor) -> (Int, Int, Int, Int) {
    precondition(featureShape.count == 4, "ROIAlign expects NHWC features [n, h, w, c], got \(featureShape).")
    precondition(rois.rank == 2 && rois.shape[1] == 5,
                 "ROIAlign expects rois [k, 5] (batch index, x1, y1, x2, y2), got \(rois.shape).")
    return (featureShape[0], featureShape[1], featureShape[2], featureShape[3])
  }

  /// Where one roi samples: per output row (ph, iy) and column (pw, ix), the two neighbours and their weights.
  /// Bilinear weights are separable (w = wy · wx), so rows and columns are computed once per roi.
  private func samplingPlan(_ r: [Float], roi: Int, batchCount: Int, height: Int, width: Int) -> SamplingPlan {
    let base = 5 * roi
    let batchIndex = Int(r[base])
    precondition(batchIndex >= 0 && batchIndex < batchCount,
                 "ROIAlign: roi \(roi) names image \(batchIndex) of a batch of \(batchCount).")
    let offset: Float = aligned ? 0.5 : 0
    let startX = r[base + 1] * spatialScale - offset, startY = r[base + 2] * spatialScale - offset
    let endX = r[base + 3] * spatialScale - offset, endY = r[base + 4] * spatialScale - offset
    var roiWidth = endX - startX, roiHeight = endY - startY
    if !aligned {
      roiWidth = max(roiWidth, 1)
      roiHeight = max(roiHeight, 1)
    }
    let binHeight = roiHeight / Float(outputHeight), binWidth = roiWidth / Float(outputWidth)
    let gridH = samplingRatio > 0 ? samplingRatio : Int((roiHeight / Float(outputHeight)).rounded(.up))
    let gridW = samplingRatio > 0 ? samplingRatio : Int((roiWidth / Float(outputWidth)).rounded(.up))
    let (gh, gw) = (max(gridH, 0), max(gridW, 0))
    // yy = roi_start_h + ph·bin_size_h + (iy + .5)·bin_size_h / roi_bin_grid_h, in this order.
    var rows = [AxisSample]()
    rows.reserveCapacity(outputHeight * gh)
    for ph in 0..<outputHeight {
      for iy in 0..<gh {
        let along: Float = (Float(iy) + 0.5) * binHeight / Float(gridH)
        rows.append(axisSample(startY + Float(ph) * binHeight + along, size: height))
      }
    }
    var columns = [AxisSample]()
    columns.reserveCapacity(outputWidth * gw)
    for pw in 0..<outputWidth {
      for ix in 0..<gw {
        let along: Float = (Float(ix) + 0.5) * binWidth / Float(gridW)
        columns.append(axisSample(startX + Float(pw) * binWidth + along, size: width))
      }
    }
    return SamplingPlan(batchIndex: batchIndex, gridH: gh, gridW: gw, count: max(gridH * gridW, 1), rows: rows,
                        columns: columns)
  }

  /// One coordinate of a sample: out of range (< −1 or > size) contributes nothing; otherwise clamped to ≥ 0 and
  /// snapped to the last pixel at the far edge.
  private func axisSample(_ coordinate: Float, size: Int) -> AxisSample {
    if coordinate < -1 || coordinate > Float(size) { return AxisSample(low: 0, high: 0, lowWeight: 0, highWeight: 0) }
    var v = max(coordinate, 0)
    var low = Int(v), high: Int
    if low >= size - 1 {
      low = size - 1
      high = low
      v = Float(low)
    } else {
      high = low + 1
    }
    let fraction = v - Float(low)
    return AxisSample(low: low, high: high, lowWeight: 1 - fraction, highWeight: fraction)
  }
}

private struct AxisSample {
  var low: Int, high: Int
  var lowWeight: Float, highWeight: Float  // hy and ly (hx and lx) in the kernel
}

private struct SamplingPlan {
  var batchIndex: Int
  var gridH: Int, gridW: Int, count: Int
  var rows: [AxisSample]     // [outputHeight · gridH]
  var columns: [AxisSample]  // [outputWidth · gridW]

  /// Calls `body(pixel offset y·width + x, weight)` for the four corners of every sample of bin (ph, pw), in the
  /// kernel's order: iy, ix, then (low, low), (low, high), (high, low), (high, high).
  @inline(__always)
  func forEachSample(ph: Int, pw: Int, width: Int, _ body: (Int, Float) -> Void) {
    for iy in 0..<gridH {
      let y = rows[ph * gridH + iy]
      for ix in 0..<gridW {
        let x = columns[pw * gridW + ix]
        body(y.low * width + x.low, y.lowWeight * x.lowWeight)
        body(y.low * width + x.high, y.lowWeight * x.highWeight)
        body(y.high * width + x.low, y.highWeight * x.lowWeight)
        body(y.high * width + x.high, y.highWeight * x.highWeight)
      }
    }
  }
}
