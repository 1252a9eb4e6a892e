// Declared valid ranges of the configs' numeric keys (pretraining and evaluators), checked when a config is loaded
// (issue 14 item 4): a value outside its range is a ConfigError naming the key, the value and the range, never a
// precondition failure deep in a run or a silently wrong number.
import Foundation

/// Range checks for one config; `prefix` is prepended to every key (e.g. `data`).
public struct ConfigRanges: Sendable {
  public var prefix = ""

  public init(prefix: String = "") { self.prefix = prefix }

  private func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

  public func fail(_ name: String, _ reason: String) throws -> Never {
    throw ConfigError.invalidValue(key: key(name), reason: reason)
  }

  /// `lower ≤ value ≤ upper`.
  public func check(_ name: String, _ value: Int, in range: ClosedRange<Int>) throws {
    if !range.contains(value) {
      try fail(name, "must be in \(range.lowerBound)…\(range.upperBound), got \(value)")
    }
  }

  /// `value ≥ lower`.
  public func check(_ name: String, _ value: Int, atLeast lower: Int) throws {
    if value < lower { try fail(name, "must be ≥ \(lower), got \(value)") }
  }

  /// Every element in `range`, and at least one element (`allowEmpty` false).
  public func check(_ name: String, _ values: [Int], eachIn range: ClosedRange<Int>, allowEmpty: Bool = false) throws {
    if values.isEmpty && !allowEmpty {
      try fail(name, "must list at least one value in \(range.lowerBound)…\(range.upperBound), got []")
    }
    for value in values where !range.contains(value) {
      try fail(name, "must list values in \(range.lowerBound)…\(range.upperBound), got \(value)")
    }
  }

  /// Finite and `> 0` (`≥ 0` when `orZero`).
  public func check<T: BinaryFloatingPoint>(_ name: String, _ value: T, positive orZero: Bool = false) throws {
    if !value.isFinite || value < 0 || (!orZero && value == 0) {
      try fail(name, "must be finite and \(orZero ? "≥ 0" : "> 0"), got \(value)")
    }
  }

  /// Finite and in `lower … upper`, with `upperOpen` excluding the upper end (`[0, 1)` for a momentum).
  public func check<T: BinaryFloatingPoint>(_ name: String, _ value: T, from lower: T, to upper: T,
                                     upperOpen: Bool = false, lowerOpen: Bool = false) throws {
    let low = lowerOpen ? value > lower : value >= lower
    let high = upperOpen ? value < upper : value <= upper
    if !value.isFinite || !low || !high {
      try fail(name, "must be in \(lowerOpen ? "(" : "[")\(lower), \(upper)\(upperOpen ? ")" : "]"), got \(value)")
    }
  }

  /// A per-channel mean and std: 1 or 3 entries each (the same number), finite means, finite stds > 0.
  public func checkNormalization(mean: [Float], std: [Float], meanKey: String = "mean", stdKey: String = "std") throws {
    if !(mean.count == 1 || mean.count == 3) {
      try fail(meanKey, "must have 1 or 3 entries (one per input channel), got \(mean.count)")
    }
    if std.count != mean.count {
      try fail(stdKey, "must have as many entries as \(key(meanKey)) (\(mean.count)), got \(std.count)")
    }
    for value in mean where !value.isFinite { try fail(meanKey, "must hold finite numbers, got \(value)") }
    for value in std where !(value.isFinite && value > 0) {
      try fail(stdKey, "must hold finite numbers > 0, got \(value)")
    }
  }
}
