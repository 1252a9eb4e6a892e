// The decode-head loss of mmseg 0.x: logits resized to the label size, then softmax cross-entropy with an ignore
// index, averaged over ALL pixels (BaseDecodeHead.losses → CrossEntropyLoss(avg_non_ignore=False)).
import Foundation
import Tensors

/// What `segmentationCrossEntropy` returns.
public struct SegmentationLoss: Sendable {
  /// loss weight × Σ_{pixels not ignored} −log softmax(logit)[label] / (n·H·W).
  public var loss: Float
  /// ∂loss/∂logits at the logits' own resolution `[n, h, w, C]` (before the resize).
  public var gradient: Tensor
}

/// mmseg 0.x `BaseDecodeHead.losses` with `CrossEntropyLoss(use_sigmoid=False, loss_weight=weight)`:
///
/// 1. `resize(logits, size=label size, mode='bilinear', align_corners)` (our `bilinearResize`);
/// 2. `F.cross_entropy(reduction='none', ignore_index)`: an ignored pixel's loss is 0;
/// 3. `weight_reduce_loss(reduction='mean', avg_factor=None)`: `loss.mean()`, i.e. the sum over the
///    non-ignored pixels divided by n·H·W, ignored pixels included (avg_non_ignore=False, mmseg's default and the
///    setting of every config here; mmseg/models/losses/cross_entropy_loss.py, utils.py);
/// 4. times `weight` (1.0 for the decode head, 0.4 for the auxiliary head).
///
/// `logits` is NHWC `[n, h, w, C]` at the head's output stride; `labels` holds n·H·W class indices row-major
/// (`[n, H, W]`), each < C or equal to `ignoreIndex`. When h = H and w = W the resize is the identity and is skipped.
public func segmentationCrossEntropy(logits: Tensor, labels: [UInt8], labelHeight: Int, labelWidth: Int,
                                     alignCorners: Bool, ignoreIndex: Int = 255,
                                     weight: Float = 1) -> SegmentationLoss {
  precondition(logits.rank == 4, "segmentationCrossEntropy expects NHWC logits [n, h, w, C], got \(logits.shape).")
  let (n, classes) = (logits.shape[0], logits.shape[3])
  let pixels = n * labelHeight * labelWidth
  precondition(labelHeight >= 1 && labelWidth >= 1 && labels.count == pixels,
               "segmentationCrossEntropy: \(labels.count) labels for logits \(logits.shape) resized to \(labelHeight)×\(labelWidth) (needs \(pixels)).")
  let needsResize = logits.shape[1] != labelHeight || logits.shape[2] != labelWidth
  let resized = needsResize
    ? bilinearResize(logits, height: labelHeight, width: labelWidth, alignCorners: alignCorners)
    : logits
  // Every pixel, ignored or not, counts in the denominator.
  let scale = Double(weight) / Double(pixels)
  let groups = RowGroups.count(rows: pixels, elementsPerRow: classes)
  var partials = [Double](repeating: 0, count: groups)
  var badLabels = [Int](repeating: -1, count: groups)  // per group: a label out of range, or −1
  let resizedGradient = Tensor(uninitializedShape: resized.shape) { out in
    resized.scalars.withUnsafeBufferPointer { logitBuffer in
      labels.withUnsafeBufferPointer { labelBuffer in
        partials.withUnsafeMutableBufferPointer { partialBuffer in
          badLabels.withUnsafeMutableBufferPointer { badBuffer in
            let (xp, gp, lp, pp) = (logitBuffer.baseAddress!, out.baseAddress!, labelBuffer.baseAddress!,
                                    partialBuffer.baseAddress!)
            let bp = badBuffer.baseAddress!
            RowGroups.forEach(rows: pixels, groups: groups) { group, range in
              var partial = 0.0
              for pixel in range {
                let (xr, gr) = (xp + pixel * classes, gp + pixel * classes)
                let label = Int(lp[pixel])
                if label == ignoreIndex {
                  gr.update(repeating: 0, count: classes)
                  continue
                }
                if label >= classes {
                  bp[group] = label  // reported after the loop
                  gr.update(repeating: 0, count: classes)
                  continue
                }
                // ∂/∂x_j = weight · (softmax_j − [j = label]) / (n·H·W)
                partial += softmaxCrossEntropyRow(xr, gradient: gr, classes: classes, label: label, scale: scale)
              }
              pp[group] = partial
            }
          }
        }
      }
    }
  }
  let badLabel = badLabels.max() ?? -1
  precondition(badLabel < 0,
               "segmentationCrossEntropy: label \(badLabel) is neither a class in 0..<\(classes) nor the ignore index \(ignoreIndex).")
  let gradient = needsResize
    ? bilinearResizeBackward(resizedGradient, inputShape: logits.shape, alignCorners: alignCorners)
    : resizedGradient
  return SegmentationLoss(loss: Float(partials.reduce(0, +) * scale), gradient: gradient)
}
