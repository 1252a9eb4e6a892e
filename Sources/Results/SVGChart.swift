// A line chart as inline SVG text: axes, grid, series with markers and error bars, reference lines and a legend.
// No scripts and no external resources; the same input gives the same bytes.
import Foundation

/// How the x axis maps values.
public enum ChartScale: Sendable, Equatable {
  /// Linear in x.
  case linear
  /// Linear in log₂ x (low-shot k = 1 … 96); ticks at the data's x values.
  case log2
  /// Evenly spaced categories; a point's x is the category's index.
  case categorical([String])
}

/// One point; `error` draws a bar of ± error (e.g. a standard deviation).
public struct ChartPoint: Sendable, Equatable {
  public var x: Double
  public var y: Double
  public var error: Double?
  public init(x: Double, y: Double, error: Double? = nil) {
    self.x = x
    self.y = y
    self.error = error
  }
}

/// A named polyline. Reference series are drawn dashed in grey with hollow markers.
public struct ChartSeries: Sendable, Equatable {
  public var name: String
  public var points: [ChartPoint]
  public var isReference: Bool
  public init(name: String, points: [ChartPoint], isReference: Bool = false) {
    self.name = name
    self.points = points
    self.isReference = isReference
  }
}

/// A horizontal guide line across the plot, e.g. the collapse std's 1/√d.
public struct ChartGuide: Sendable, Equatable {
  public var y: Double
  public var label: String
  public init(y: Double, label: String) {
    self.y = y
    self.label = label
  }
}

/// A line chart. The plot area is fixed (`plotLeft`, `plotTop`, `plotWidth`, `plotHeight`); the legend goes below.
public struct SVGChart: Sendable {
  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var xScale: ChartScale
  public var series: [ChartSeries]
  public var guides: [ChartGuide]
  /// The y range; nil: nice round bounds around the data and guides.
  public var yDomain: ClosedRange<Double>?

  public static let plotLeft = 64.0, plotTop = 32.0, plotWidth = 380.0, plotHeight = 200.0
  static let rightMargin = 16.0, legendRowHeight = 18.0, legendTop = 48.0
  /// Series colours in order (Tableau 10); reference series use `referenceColors`.
  static let colors = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
                       "#9c755f", "#bab0ac"]
  static let referenceColors = ["#555555", "#999999", "#333333", "#bbbbbb"]

  public init(title: String, xLabel: String, yLabel: String, xScale: ChartScale, series: [ChartSeries],
              guides: [ChartGuide] = [], yDomain: ClosedRange<Double>? = nil) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.xScale = xScale
    self.series = series
    self.guides = guides
    self.yDomain = yDomain
  }

  public var width: Double { Self.plotLeft + Self.plotWidth + Self.rightMargin }
  public var height: Double {
    Self.plotTop + Self.plotHeight + Self.legendTop + Double(series.count + guides.count) * Self.legendRowHeight
  }

  // MARK: - Geometry

  /// The y ticks; the first and last are the y domain's bounds.
  public var yTicks: [Double] {
    if let yDomain { return Self.niceTicks(yDomain.lowerBound, yDomain.upperBound, exact: true) }
    let values = series.flatMap { $0.points.flatMap { [$0.y - ($0.error ?? 0), $0.y + ($0.error ?? 0)] } }
      + guides.map(\.y)
    guard let low = values.min(), let high = values.max() else { return [0, 1] }
    return Self.niceTicks(low, high, exact: false)
  }

  /// The x ticks as (value, label).
  public var xTicks: [(value: Double, label: String)] {
    switch xScale {
    case let .categorical(names):
      return names.enumerated().map { (Double($0.offset), $0.element) }
    case .log2:
      let xs = Set(series.flatMap { $0.points.map(\.x) }).filter { $0 > 0 }.sorted()
      return xs.map { ($0, Self.number($0, decimals: $0 == $0.rounded() ? 0 : 2)) }
    case .linear:
      let xs = series.flatMap { $0.points.map(\.x) }
      guard let low = xs.min(), let high = xs.max() else { return [(0, "0"), (1, "1")] }
      let ticks = low == high ? [low - 1, low, low + 1] : Self.niceTicks(low, high, exact: false, minimumStep: 1)
      let decimals = Self.decimals(forStep: ticks.count > 1 ? ticks[1] - ticks[0] : 1)
      return ticks.map { ($0, Self.number($0, decimals: decimals)) }
    }
  }

  /// The horizontal pixel position of `x`.
  public func xPosition(_ x: Double) -> Double {
    switch xScale {
    case let .categorical(names):
      return Self.plotLeft + (x + 0.5) * Self.plotWidth / Double(max(names.count, 1))
    case .log2:
      let ticks = xTicks.map(\.value)
      guard let low = ticks.first, let high = ticks.last, high > low else { return Self.plotLeft + Self.plotWidth / 2 }
      return Self.plotLeft + (Foundation.log2(x) - Foundation.log2(low)) / (Foundation.log2(high) - Foundation.log2(low))
        * Self.plotWidth
    case .linear:
      let ticks = xTicks.map(\.value)
      guard let low = ticks.first, let high = ticks.last, high > low else { return Self.plotLeft + Self.plotWidth / 2 }
      return Self.plotLeft + (x - low) / (high - low) * Self.plotWidth
    }
  }

  /// The vertical pixel position of `y` (up is larger y).
  public func yPosition(_ y: Double) -> Double {
    let ticks = yTicks
    let low = ticks.first!, high = ticks.last!
    return Self.plotTop + (high - y) / (high - low) * Self.plotHeight
  }

  /// Ticks at a round step (1, 2, 2.5 or 5 × 10ⁿ) about five apart, covering low … high; with `exact`, the domain
  /// is low … high itself and ticks fall inside it.
  static func niceTicks(_ low: Double, _ high: Double, exact: Bool, minimumStep: Double = 0) -> [Double] {
    var low = low, high = high
    if low == high {
      let pad = low == 0 ? 1 : abs(low) * 0.1
      low -= pad
      high += pad
    }
    let raw = (high - low) / 5
    let magnitude = pow(10, (Foundation.log10(raw)).rounded(.down))
    let normalized = raw / magnitude
    var unit: Double = normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 2.5 ? 2.5 : normalized <= 5 ? 5 : 10
    if minimumStep >= 1 && unit == 2.5 && magnitude == 1 { unit = 2 }  // whole steps (epochs): 0, 2, 4 …, not 2.5
    let step = max(unit * magnitude, minimumStep)
    // Ticks are multiples of the step, rounded to its decimals so 23 × 0.2 reads 4.6, not 4.6000000000000005.
    let scale = pow(10, Double(decimals(forStep: step)))
    func tick(_ index: Double) -> Double { (index * step * scale).rounded() / scale }
    if exact {
      var ticks = [low]
      var index = (low / step).rounded(.down) + 1
      while index * step < high - step * 1e-6 {
        if index * step > low + step * 1e-6 { ticks.append(tick(index)) }
        index += 1
      }
      return ticks + [high]
    }
    let first = (low / step + 1e-9).rounded(.down), last = (high / step - 1e-9).rounded(.up)
    return stride(from: first, through: last, by: 1).map(tick)
  }

  /// Decimals that show a tick step exactly enough (0.01 → 2, 2.5 → 1, 5 → 0).
  static func decimals(forStep step: Double) -> Int {
    guard step > 0, step.isFinite else { return 0 }
    var decimals = 0
    while decimals < 8, abs(step * pow(10, Double(decimals)) - (step * pow(10, Double(decimals))).rounded()) > 1e-6 {
      decimals += 1
    }
    return decimals
  }

  static func number(_ value: Double, decimals: Int) -> String {
    let text = String(format: "%.\(decimals)f", value)
    return text == "-0" || text.hasPrefix("-0.") && Double(text) == 0 ? String(text.dropFirst()) : text
  }

  /// A pixel coordinate with at most two decimals and no trailing zeros: 246, 132.5, 87.25.
  static func coordinate(_ value: Double) -> String {
    var text = String(format: "%.2f", value)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text == "-0" ? "0" : text
  }

  // MARK: - Rendering

  /// The `<svg>` element.
  public func render() -> String {
    let c = Self.coordinate
    let left = Self.plotLeft, top = Self.plotTop, right = Self.plotLeft + Self.plotWidth
    let bottom = Self.plotTop + Self.plotHeight
    var svg = "<svg class=\"chart\" width=\"\(c(width))\" height=\"\(c(height))\" viewBox=\"0 0 \(c(width)) "
      + "\(c(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">\n"
    svg += "<title>\(HTML.escape(title))</title>\n"
    svg += "<text class=\"chart-title\" x=\"\(c(left))\" y=\"18\">\(HTML.escape(title))</text>\n"

    // Grid and y ticks.
    let ticks = yTicks
    let decimals = Self.decimals(forStep: ticks.count > 2 ? ticks[2] - ticks[1] : (ticks.last! - ticks.first!))
    for tick in ticks {
      let y = c(yPosition(tick))
      svg += "<line class=\"grid\" x1=\"\(c(left))\" y1=\"\(y)\" x2=\"\(c(right))\" y2=\"\(y)\"/>"
      svg += "<text class=\"tick\" x=\"\(c(left - 6))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\">"
        + "\(Self.number(tick, decimals: decimals))</text>\n"
    }
    for tick in xTicks {
      let x = c(xPosition(tick.value))
      svg += "<line class=\"axis\" x1=\"\(x)\" y1=\"\(c(bottom))\" x2=\"\(x)\" y2=\"\(c(bottom + 4))\"/>"
      svg += "<text class=\"tick\" x=\"\(x)\" y=\"\(c(bottom + 16))\" text-anchor=\"middle\">"
        + "\(HTML.escape(tick.label))</text>\n"
    }
    svg += "<line class=\"axis\" x1=\"\(c(left))\" y1=\"\(c(bottom))\" x2=\"\(c(right))\" y2=\"\(c(bottom))\"/>"
    svg += "<line class=\"axis\" x1=\"\(c(left))\" y1=\"\(c(top))\" x2=\"\(c(left))\" y2=\"\(c(bottom))\"/>\n"
    svg += "<text class=\"axis-label\" x=\"\(c(left + Self.plotWidth / 2))\" y=\"\(c(bottom + 34))\" "
      + "text-anchor=\"middle\">\(HTML.escape(xLabel))</text>\n"
    svg += "<text class=\"axis-label\" transform=\"translate(16 \(c(top + Self.plotHeight / 2))) rotate(-90)\" "
      + "text-anchor=\"middle\">\(HTML.escape(yLabel))</text>\n"

    // Guides, then series (references first so measured lines sit on top).
    for guide in guides {
      let y = c(yPosition(guide.y))
      svg += "<line class=\"guide\" x1=\"\(c(left))\" y1=\"\(y)\" x2=\"\(c(right))\" y2=\"\(y)\"/>\n"
    }
    let styled = styledSeries
    for (line, color) in styled.sorted(by: { $0.0.isReference && !$1.0.isReference }) where !line.points.isEmpty {
      svg += render(line, color: color)
    }

    // Legend.
    var row = bottom + Self.legendTop
    for (line, color) in styled {
      let dash = line.isReference ? " stroke-dasharray=\"6 4\"" : ""
      svg += "<line x1=\"\(c(left))\" y1=\"\(c(row - 4))\" x2=\"\(c(left + 24))\" y2=\"\(c(row - 4))\" "
        + "stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>"
      svg += "<text class=\"legend\" x=\"\(c(left + 30))\" y=\"\(c(row))\">\(HTML.escape(line.name))</text>\n"
      row += Self.legendRowHeight
    }
    for guide in guides {
      svg += "<line class=\"guide\" x1=\"\(c(left))\" y1=\"\(c(row - 4))\" x2=\"\(c(left + 24))\" y2=\"\(c(row - 4))\"/>"
      svg += "<text class=\"legend\" x=\"\(c(left + 30))\" y=\"\(c(row))\">\(HTML.escape(guide.label))</text>\n"
      row += Self.legendRowHeight
    }
    return svg + "</svg>\n"
  }

  /// Each series with its colour: measured series take `colors` in order, references `referenceColors`.
  var styledSeries: [(ChartSeries, String)] {
    var measured = 0, reference = 0
    return series.map { line in
      if line.isReference {
        defer { reference += 1 }
        return (line, Self.referenceColors[reference % Self.referenceColors.count])
      }
      defer { measured += 1 }
      return (line, Self.colors[measured % Self.colors.count])
    }
  }

  private func render(_ line: ChartSeries, color: String) -> String {
    let c = Self.coordinate
    let points = line.points.sorted { $0.x < $1.x }
    var svg = "<g class=\"series\(line.isReference ? " reference" : "")\">"
    let coordinates = points.map { "\(c(xPosition($0.x))),\(c(yPosition($0.y)))" }.joined(separator: " ")
    let dash = line.isReference ? " stroke-dasharray=\"6 4\"" : ""
    svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(coordinates)\"/>"
    for point in points {
      let x = c(xPosition(point.x))
      if let error = point.error, error > 0 {
        svg += "<line class=\"error\" x1=\"\(x)\" y1=\"\(c(yPosition(point.y - error)))\" x2=\"\(x)\" "
          + "y2=\"\(c(yPosition(point.y + error)))\" stroke=\"\(color)\"/>"
      }
      let fill = line.isReference ? "#ffffff" : color
      let detail = HTML.escape("\(line.name): \(xLabel) \(xName(point.x)), \(yLabel) \(Self.number(point.y, decimals: 4))"
                               + (point.error.map { " ± " + Self.number($0, decimals: 4) } ?? ""))
      svg += "<circle cx=\"\(x)\" cy=\"\(c(yPosition(point.y)))\" r=\"3.5\" fill=\"\(fill)\" stroke=\"\(color)\">"
        + "<title>\(detail)</title></circle>"
    }
    return svg + "</g>\n"
  }

  private func xName(_ x: Double) -> String {
    if case let .categorical(names) = xScale, let index = Int(exactly: x), names.indices.contains(index) {
      return names[index]
    }
    return Self.number(x, decimals: x == x.rounded() ? 0 : 4)
  }
}

/// HTML text escaping.
public enum HTML {
  /// `&`, `<`, `>`, `"` and `'` as character references, for text and attribute values.
  public static func escape(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.count)
    for character in text {
      switch character {
      case "&": escaped += "&amp;"
      case "<": escaped += "&lt;"
      case ">": escaped += "&gt;"
      case "\"": escaped += "&quot;"
      case "'": escaped += "&#39;"
      default: escaped.append(character)
      }
    }
    return escaped
  }
}
