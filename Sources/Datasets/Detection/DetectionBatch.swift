// A training or test batch of detection samples: mmdet 2.x Pad(size_divisor) on each image, then mmcv 1.x
// `collate` (mmcv/parallel/collate.py: DataContainer stack=True, pad_dims=2) padding every image to the batch's
// largest height and width with 0 at the bottom and right. Both pads write the normalised image's 0.
import Tensors

/// Images padded to one size, and each image's own size and targets.
public struct DetectionBatch: Sendable {
  /// `[n, H, W, 3]`: H, W = the largest padded height and width of the batch (multiples of the divisor).
  public var images: Tensor
  /// Each image's unpadded (resized) size; its pixels are `images[i, 0..<height, 0..<width]`.
  public var sizes: [(height: Int, width: Int)]
  /// `[g_i, 4]` boxes of each image in its resized frame.
  public var boxes: [Tensor]
  public var labels: [[Int]]
  public var scaleFactors: [(x: Double, y: Double)]
  public var originalSizes: [(height: Int, width: Int)]
  public var imageIDs: [String]

  public var count: Int { sizes.count }
}

/// Pads every sample to a multiple of `padDivisor` and then to the batch's largest size (zeros bottom and right),
/// stacking them into `[n, H, W, 3]`.
public func collateDetectionBatch(_ samples: [DetectionSample], padDivisor: Int) -> DetectionBatch {
  precondition(!samples.isEmpty, "A detection batch needs at least one sample.")
  for sample in samples {
    precondition(sample.image.shape == [sample.height, sample.width, 3],
                 "Sample \(sample.imageID) has an image of shape \(sample.image.shape), not [\(sample.height), "
                   + "\(sample.width), 3].")
  }
  let height = samples.map { DetectionPipeline.paddedSize($0.height, divisor: padDivisor) }.max()!
  let width = samples.map { DetectionPipeline.paddedSize($0.width, divisor: padDivisor) }.max()!
  let imageSize = height * width * 3
  let images = Tensor(uninitializedShape: [samples.count, height, width, 3]) { buffer in
    let out = buffer.baseAddress!
    out.initialize(repeating: 0, count: samples.count * imageSize)
    for (n, sample) in samples.enumerated() {
      let rowLength = sample.width * 3
      sample.image.scalars.withUnsafeBufferPointer { source in
        for y in 0..<sample.height {
          (out + n * imageSize + y * width * 3).update(from: source.baseAddress! + y * rowLength, count: rowLength)
        }
      }
    }
  }
  return DetectionBatch(images: images, sizes: samples.map { ($0.height, $0.width) }, boxes: samples.map(\.boxes),
                        labels: samples.map(\.labels), scaleFactors: samples.map(\.scaleFactor),
                        originalSizes: samples.map(\.originalSize), imageIDs: samples.map(\.imageID))
}
