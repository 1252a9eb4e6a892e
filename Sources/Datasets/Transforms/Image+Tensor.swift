// 8-bit images → normalised Float tensors: torchvision's ToTensor + Normalize, MMSelfSup's Lighting, and the
// batch collate. Output layout is the engine's NHWC: one image is [h, w, c], a batch [n, h, w, c].
import Tensors

/// Per-channel mean and standard deviation for `(x / 255 − mean) / std`.
public struct Normalization: Sendable, Equatable {
  public var mean: [Float]
  public var std: [Float]

  public init(mean: [Float], std: [Float]) {
    precondition(mean.count == std.count && !mean.isEmpty && std.allSatisfy { $0 != 0 },
                 "Normalization needs as many non-zero stds (\(std.count)) as means (\(mean.count)).")
    self.mean = mean
    self.std = std
  }

  /// torchvision's ImageNet statistics, RGB (PROTOCOLS §1.1 step 6).
  public static let imagenet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

  /// x / 255 only (mean 0, std 1), for `channels` channels.
  public static func unit(channels: Int) -> Normalization {
    Normalization(mean: [Float](repeating: 0, count: channels), std: [Float](repeating: 1, count: channels))
  }
}

/// MMSelfSup's `Lighting` (AlexNet PCA colour noise, PROTOCOLS §4.1): the per-channel offset
/// `rgb[i] = Σ_j eigvec[i][j] · alpha[j] · eigval[j]` (float32, in that order) added to the 0–1 tensor before
/// Normalize. `alpha` is drawn from N(0, alphastd = 0.1) by the random wrapper.
public enum Lighting {
  public static let eigenvalues: [Float] = [0.2175, 0.0188, 0.0045]
  public static let eigenvectors: [[Float]] = [[-0.5675, 0.7192, 0.4009],
                                               [-0.5808, -0.0045, -0.8140],
                                               [-0.5836, -0.6948, 0.4203]]
  public static let alphaStandardDeviation: Float = 0.1

  /// The RGB offsets for a given alpha (three N(0, 0.1) draws).
  public static func offsets(alpha: [Float]) -> [Float] {
    precondition(alpha.count == 3, "Lighting needs 3 alphas, got \(alpha.count).")
    return (0..<3).map { i in
      var sum: Float = 0
      for j in 0..<3 { sum += eigenvectors[i][j] * alpha[j] * eigenvalues[j] }
      return sum
    }
  }

  /// Offsets for alpha drawn from N(0, 0.1).
  public static func randomOffsets<G: RandomNumberGenerator>(using generator: inout G) -> [Float] {
    offsets(alpha: (0..<3).map { _ in alphaStandardDeviation * generator.nextNormal() })
  }
}

extension Image {
  /// torchvision `ToTensor` then `Normalize(mean, std)`: `(Float(x) / 255 + offset[c] − mean[c]) / std[c]` in
  /// float32, laid out [height, width, channels]. `offsets` (e.g. `Lighting.offsets`) is added before Normalize,
  /// as MMSelfSup's linear-probe pipeline does; empty means none.
  public func toTensor(normalization: Normalization = .imagenet, offsets: [Float] = []) -> Tensor {
    Tensor(uninitializedShape: [height, width, channels]) { buffer in
      writeNormalized(into: buffer.baseAddress!, normalization: normalization, offsets: offsets)
    }
  }

  /// `toTensor` with explicit mean and std.
  public func toTensor(mean: [Float], std: [Float]) -> Tensor {
    toTensor(normalization: Normalization(mean: mean, std: std))
  }

  /// Writes `toTensor(normalization:offsets:)`'s height · width · channels floats to `destination` (e.g. one
  /// slot of a batch being filled by a loader thread).
  public func writeNormalized(into destination: UnsafeMutablePointer<Float>, normalization: Normalization = .imagenet,
                              offsets: [Float] = []) {
    let c = channels
    precondition(normalization.mean.count == c,
                 "Normalization has \(normalization.mean.count) channels; the image has \(c).")
    precondition(offsets.isEmpty || offsets.count == c, "Got \(offsets.count) offsets for \(c) channels.")
    // A 256-entry table per channel: every pixel value maps to one float, computed with torch's op order.
    var table = [Float](repeating: 0, count: 256 * c)
    for channel in 0..<c {
      let mean = normalization.mean[channel], std = normalization.std[channel]
      let offset = offsets.isEmpty ? nil : offsets[channel]
      for value in 0..<256 {
        var x = Float(value) / 255
        if let offset { x = x + offset }
        table[value * c + channel] = (x - mean) / std
      }
    }
    pixels.withUnsafeBufferPointer { source in
      table.withUnsafeBufferPointer { table in
        let input = source.baseAddress!, lut = table.baseAddress!
        if c == 3 {
          for i in 0..<(width * height) {
            destination[3 * i] = lut[Int(input[3 * i]) * 3]
            destination[3 * i + 1] = lut[Int(input[3 * i + 1]) * 3 + 1]
            destination[3 * i + 2] = lut[Int(input[3 * i + 2]) * 3 + 2]
          }
        } else {
          for i in 0..<source.count { destination[i] = lut[Int(input[i]) * c + i % c] }
        }
      }
    }
  }
}

/// Stacks same-shaped [h, w, c] tensors into one [n, h, w, c] batch (torch's default collate, NHWC).
public func collate(_ samples: [Tensor]) -> Tensor {
  precondition(!samples.isEmpty, "Cannot collate an empty batch.")
  let shape = samples[0].shape
  for sample in samples {
    precondition(sample.shape == shape, "Collate needs equal shapes; got \(shape) and \(sample.shape).")
  }
  let size = shape.product
  return Tensor(uninitializedShape: [samples.count] + shape) { buffer in
    for (index, sample) in samples.enumerated() {
      sample.scalars.withUnsafeBufferPointer { source in
        (buffer.baseAddress! + index * size).initialize(from: source.baseAddress!, count: size)
      }
    }
  }
}

/// Normalises same-sized images straight into one [n, h, w, c] batch.
public func collate(_ images: [Image], normalization: Normalization = .imagenet) -> Tensor {
  precondition(!images.isEmpty, "Cannot collate an empty batch.")
  let (w, h, c) = (images[0].width, images[0].height, images[0].channels)
  for image in images {
    precondition(image.width == w && image.height == h && image.channels == c,
                 "Collate needs equal image sizes; got \(w)×\(h)×\(c) and \(image.width)×\(image.height)×\(image.channels).")
  }
  return Tensor(uninitializedShape: [images.count, h, w, c]) { buffer in
    for (index, image) in images.enumerated() {
      image.writeNormalized(into: buffer.baseAddress! + index * w * h * c, normalization: normalization)
    }
  }
}
