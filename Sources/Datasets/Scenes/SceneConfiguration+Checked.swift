// The ranges a scene design may take, checked before anything is drawn (`data make-scenes` options, configs).
import Foundation

/// A scene-design value outside its range. `option` is the key as `data make-scenes` spells it (`max-scale`), so
/// the command line can name its own flag.
public struct SceneConfigurationError: Error, Equatable, CustomStringConvertible {
  public let option: String
  public let problem: String
  public var description: String { "\(option) \(problem)" }
}

extension SceneConfiguration {
  /// The default design with these bounds, after checking each against the range the generator supports: item
  /// scales 0.25…16 (the largest at least 1, so that 28 px items can reach full size), scene sides 8…4096 px,
  /// 0…32 objects, brightness and tint probability 0…1, every lower bound at most its upper bound. The bounds are
  /// taken separately because `ClosedRange` traps on a reversed pair.
  public static func checked(minScale: Double, maxScale: Double, minSide: Int, maxSide: Int, minObjects: Int,
                             maxObjects: Int, backgroundBrightness: Double,
                             tintProbability: Double) throws -> SceneConfiguration {
    func fail(_ option: String, _ problem: String) -> SceneConfigurationError {
      SceneConfigurationError(option: option, problem: problem)
    }
    guard maxScale.isFinite && (1...16).contains(maxScale) else {
      throw fail("max-scale", "must be in 1…16, got \(maxScale).")
    }
    guard minScale.isFinite && (0.25...16).contains(minScale) && minScale <= maxScale else {
      throw fail("min-scale", "must be in 0.25…16 and at most max-scale (\(maxScale)), got \(minScale).")
    }
    guard (8...4096).contains(minSide) else { throw fail("min-side", "must be in 8…4096, got \(minSide).") }
    guard (minSide...4096).contains(maxSide) else {
      throw fail("max-side", "must be in min-side (\(minSide))…4096, got \(maxSide).")
    }
    guard (0...32).contains(minObjects) else { throw fail("min-objects", "must be in 0…32, got \(minObjects).") }
    guard (minObjects...32).contains(maxObjects) else {
      throw fail("max-objects", "must be in min-objects (\(minObjects))…32, got \(maxObjects).")
    }
    guard backgroundBrightness.isFinite && (0...1).contains(backgroundBrightness) else {
      throw fail("background-brightness", "must be in 0…1, got \(backgroundBrightness).")
    }
    guard tintProbability.isFinite && (0...1).contains(tintProbability) else {
      throw fail("tint-probability", "must be in 0…1, got \(tintProbability).")
    }
    var configuration = SceneConfiguration()
    configuration.scales = minScale...maxScale
    configuration.imageSizes = minSide...maxSide
    configuration.objectCounts = minObjects...maxObjects
    configuration.backgroundBrightness = backgroundBrightness
    configuration.tintProbability = tintProbability
    return configuration
  }
}
