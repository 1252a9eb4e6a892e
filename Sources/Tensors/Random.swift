// Seeded randomness. Every random draw in the engine takes a generator `inout`; there is no global RNG.
import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast, seedable generator whose whole state is one word,
/// so it can be saved in a checkpoint and restored exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable, Codable, Equatable {
  public var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// An independent stream for a sub-task, e.g. `(seed, epoch, index)` for one data sample.
  public static func derived(_ parts: UInt64...) -> SplitMix64 {
    var generator = SplitMix64(seed: 0x5EED)
    for part in parts {
      generator.state ^= part &* 0xD6E8_FEB8_6659_FD93
      _ = generator.next()
    }
    return generator
  }
}

extension RandomNumberGenerator {
  /// A uniform Float in [0, 1) with 24 random bits.
  public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

  /// A standard normal Float (Box–Muller).
  public mutating func nextNormal() -> Float {
    let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), .leastNonzeroMagnitude)
    let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
  }
}

extension Tensor {
  /// Normal(mean, std) samples.
  public static func randomNormal<G: RandomNumberGenerator>(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                                            using generator: inout G) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.product).map { _ in mean + std * generator.nextNormal() })
  }

  /// Uniform(low, high) samples.
  public static func randomUniform<G: RandomNumberGenerator>(_ shape: [Int], low: Float, high: Float,
                                                             using generator: inout G) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.product).map { _ in low + (high - low) * generator.nextUniform() })
  }
}
