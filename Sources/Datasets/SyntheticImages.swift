// Generated labelled images for tests and smoke runs: the `synthetic` data kind of pretraining, the probes and kNN.
import Tensors

/// `count` generated images in 4 classes: a bright square, disc, horizontal bar or vertical bar at a random
/// position and size on a noisy background. Small enough for tests, structured enough for SimSiam to learn.
public func makeSyntheticImages(count: Int, size: Int, channels: Int,
                                using rng: inout SplitMix64) -> (images: [Image], labels: [Int]) {
  var images: [Image] = [], labels: [Int] = []
  for index in 0..<count {
    let label = index % 4
    let radius = Float(size) * (0.15 + 0.15 * rng.nextUniform())
    let cx = Float(size) * (0.3 + 0.4 * rng.nextUniform()), cy = Float(size) * (0.3 + 0.4 * rng.nextUniform())
    let tint = (0..<channels).map { _ in 150 + 100 * rng.nextUniform() }
    var pixels = [UInt8](repeating: 0, count: size * size * channels)
    for y in 0..<size {
      for x in 0..<size {
        let dx = Float(x) + 0.5 - cx, dy = Float(y) + 0.5 - cy
        let inside: Bool = switch label {
        case 0: abs(dx) < radius && abs(dy) < radius
        case 1: dx * dx + dy * dy < radius * radius
        case 2: abs(dx) < 1.6 * radius && abs(dy) < 0.4 * radius
        default: abs(dx) < 0.4 * radius && abs(dy) < 1.6 * radius
        }
        for c in 0..<channels {
          let noise = 30 * rng.nextUniform()
          pixels[(y * size + x) * channels + c] = UInt8(min(255, (inside ? tint[c] : 20) + noise))
        }
      }
    }
    images.append(Image(width: size, height: size, channels: channels, pixels: pixels))
    labels.append(label)
  }
  return (images, labels)
}
