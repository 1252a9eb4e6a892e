// `simsiam-bench report html`: one self-contained page (inline CSS and SVG, no scripts, no network) with the
// charts and the same tables as `report markdown`.
import Foundation

/// The HTML report of a results database.
public struct HTMLReport: Sendable {
  public var runs: [Run]
  public var scores: [RunID: [Score]]
  public var epochs: [RunID: [EpochMetric]]
  /// Drawn as dashed reference curves where they have numbers for a chart.
  public var references: [Reference]
  /// Shown in the heading, e.g. the database path.
  public var source: String?

  /// The references drawn by default: the seed README's two rows.
  public static let defaultReferences = ["mmselfsup-100e", "mmselfsup-200e"]

  public init(runs: [Run], scores: [RunID: [Score]], epochs: [RunID: [EpochMetric]], references: [Reference],
              source: String? = nil) {
    self.runs = runs.sorted { $0.runID < $1.runID }
    self.scores = scores
    self.epochs = epochs
    self.references = references
    self.source = source
  }

  /// Reads every run, score and pretraining epoch from `store`.
  public init(store: ResultsStore, references: [Reference], source: String? = nil) throws {
    let runs = try store.runs()
    var epochs: [RunID: [EpochMetric]] = [:]
    for run in runs where run.kind == .pretrain { epochs[run.runID] = try store.epochMetrics(run: run.runID) }
    self.init(runs: runs, scores: try store.allScores(), epochs: epochs, references: references, source: source)
  }

  var reports: StandardReports { StandardReports(runs: runs, scores: scores) }

  // MARK: - Charts

  /// Low-shot mAP against k (log₂ axis) per checkpoint, at the table's layer, with ± std bars and the references.
  public var lowShotChart: SVGChart? {
    let measured = reports.checkpoints.compactMap { checkpoint -> ChartSeries? in
      let svm = latest(checkpoint.scores, .voc07SVM, metric: .mAP)
      let best = svm.max { $0.value < $1.value }?.layer  // first of equal maxima, as the table picks
      let points = Benchmark.lowShotK.compactMap { k -> ChartPoint? in
        let values = latest(checkpoint.scores, .voc07LowShotSVM, metric: .mAP, k: k)
        let score = best.flatMap { layer in values.first { $0.layer == layer } } ?? values.max { $0.value < $1.value }
        return score.map { ChartPoint(x: Double(k), y: $0.value, error: $0.std) }
      }
      return points.isEmpty ? nil : ChartSeries(name: checkpoint.label, points: points)
    }
    guard !measured.isEmpty else { return nil }
    let reference = references.compactMap { reference -> ChartSeries? in
      let points = reference.cells.filter { $0.key.benchmarkID == .voc07LowShotSVM && $0.key.metricKind == .mAP }
        .compactMap { cell in cell.key.k.map { ChartPoint(x: Double($0), y: cell.value) } }
      return points.isEmpty ? nil : ChartSeries(name: "\(reference.label) (\(reference.name))", points: points,
                                                isReference: true)
    }
    return SVGChart(title: "Low-shot VOC07 SVM", xLabel: "k (positives per class)", yLabel: "mAP (%)",
                    xScale: .log2, series: measured + reference)
  }

  /// Per-layer charts: VOC07 SVM mAP, then top-1 of every linear-probe benchmark stored.
  public var layerCharts: [SVGChart] {
    var benchmarks: [(BenchmarkID, Metric, String, String)] = [(.voc07SVM, .mAP, "VOC07 SVM mAP per layer",
                                                                 "mAP (%)")]
    let stored = Set(reports.checkpoints.flatMap {
      $0.scores.filter { $0.layer != nil && $0.k == nil }.compactMap(\.benchmarkID)
    })
    for benchmark in stored.sorted() where benchmark.protocol == .linear {
      benchmarks.append((benchmark, .top1, "Linear probe top-1 per layer (\(benchmark))", "top-1 (%)"))
    }
    return benchmarks.compactMap { benchmark, metric, title, yLabel in
      layerChart(benchmark: benchmark, metric: metric, title: title, yLabel: yLabel)
    }
  }

  private func layerChart(benchmark: BenchmarkID, metric: Metric, title: String, yLabel: String) -> SVGChart? {
    let perCheckpoint = reports.checkpoints.map { ($0.label, latest($0.scores, benchmark, metric: metric)) }
      .filter { !$0.1.isEmpty }
    guard !perCheckpoint.isEmpty else { return nil }
    let referenceCells = references.map { reference in
      (reference, reference.cells.filter {
        $0.key.benchmark == benchmark.rawValue && $0.key.metric == metric.rawValue && $0.key.k == nil
      })
    }.filter { !$0.1.isEmpty }
    var layers = Set(perCheckpoint.flatMap { $0.1.compactMap(\.layer) })
    layers.formUnion(referenceCells.flatMap { $0.1.compactMap(\.key.layer) })
    let ordered = layers.sorted { CellKey(benchmark: "", metric: "", layer: $0) < CellKey(benchmark: "", metric: "", layer: $1) }
    func index(_ layer: String?) -> Double? { layer.flatMap(ordered.firstIndex(of:)).map(Double.init) }
    let measured = perCheckpoint.map { label, scores in
      ChartSeries(name: label, points: scores.compactMap { score in
        index(score.layer).map { ChartPoint(x: $0, y: score.value, error: score.std) }
      })
    }
    let reference = referenceCells.map { reference, cells in
      ChartSeries(name: "\(reference.label) (\(reference.name))", points: cells.compactMap { cell in
        index(cell.key.layer).map { ChartPoint(x: $0, y: cell.value) }
      }, isReference: true)
    }
    return SVGChart(title: title, xLabel: "layer", yLabel: yLabel, xScale: .categorical(ordered),
                    series: measured + reference)
  }

  /// Pretraining loss, learning rate and collapse std per epoch, one series per pretraining run; the std chart
  /// has a 1/√d guide for every output dimension d read from the runs' configs (`model.features`).
  public var pretrainingCharts: [SVGChart] {
    let pretraining = runs.filter { $0.kind == .pretrain && !(epochs[$0.runID] ?? []).isEmpty }
    guard !pretraining.isEmpty else { return [] }
    func name(_ run: Run) -> String {
      "run \(run.runID): \(run.label)" + (run.status == .finished ? "" : " (\(run.status.rawValue))")
    }
    func series(_ value: (EpochMetric) -> Double?) -> [ChartSeries] {
      pretraining.map { run in
        ChartSeries(name: name(run), points: (epochs[run.runID] ?? []).compactMap { metric in
          value(metric).map { ChartPoint(x: Double(metric.epoch), y: $0) }
        })
      }
    }
    let dimensions = Set(pretraining.compactMap { Self.outputDimension(config: $0.config) }).sorted()
    let guides = dimensions.map { d in
      ChartGuide(y: 1 / Double(d).squareRoot(), label: "1/√d, d = \(d): " + String(format: "%.4f", 1 / Double(d).squareRoot()))
    }
    var charts = [
      SVGChart(title: "Pretraining loss", xLabel: "epoch", yLabel: "loss", xScale: .linear,
               series: series { $0.loss }),
      SVGChart(title: "Learning rate", xLabel: "epoch", yLabel: "learning rate", xScale: .linear,
               series: series { $0.learningRate }),
    ]
    let std = series { $0.outputStd }
    if std.contains(where: { !$0.points.isEmpty }) {
      charts.append(SVGChart(title: "Collapse check: std of the normalised output", xLabel: "epoch",
                             yLabel: "std per channel", xScale: .linear, series: std, guides: guides))
    }
    return charts
  }

  /// The projector's output dimension from a pretraining config JSON: `model.features`, else `features` or `dim`.
  static func outputDimension(config: String) -> Int? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any] else { return nil }
    let model = object["model"] as? [String: Any]
    let value = model?["features"] ?? object["features"] ?? object["dim"]
    return (value as? NSNumber)?.intValue ?? (value as? String).flatMap { Int($0) }
  }

  /// The latest protocol result per layer of `benchmark`/`metric` at `k`, in layer order.
  private func latest(_ scores: [Score], _ benchmark: BenchmarkID, metric: Metric, k: Int? = nil) -> [Score] {
    var byLayer: [String: Score] = [:]
    let benchmark = benchmark.rawValue, metric = metric.rawValue  // compared as stored
    for score in scores where score.benchmark == benchmark && score.metric == metric && score.k == k {
      if let layer = score.layer { byLayer[layer] = score }
    }
    return byLayer.values.sorted { CellKey($0) < CellKey($1) }
  }

  // MARK: - Page

  /// The page.
  public func render() -> String {
    let reports = self.reports
    var body = "<h1>simsiam-bench results</h1>\n"
    let finished = runs.filter { $0.status == .finished }.count
    body += "<p class=\"source\">Generated by <code>simsiam-bench report html</code>"
      + (source.map { " from <code>\(HTML.escape($0))</code>" } ?? "")
      + ": \(runs.count) runs, \(finished) finished. Do not edit by hand.</p>\n"

    var charts: [SVGChart] = []
    if let lowShot = lowShotChart { charts.append(lowShot) }
    charts += layerCharts
    let pretraining = pretrainingCharts
    body += "<h2>Charts</h2>\n"
    if charts.isEmpty && pretraining.isEmpty {
      body += "<p>No finished run has scores or pretraining epochs to plot yet.</p>\n"
    }
    if !charts.isEmpty {
      body += "<div class=\"charts\">\n" + charts.map { "<figure>\n\($0.render())</figure>\n" }.joined() + "</div>\n"
    }
    if !pretraining.isEmpty {
      body += "<h3>Pretraining</h3>\n<div class=\"charts\">\n"
        + pretraining.map { "<figure>\n\($0.render())</figure>\n" }.joined() + "</div>\n"
    }
    if !references.isEmpty {
      body += "<p class=\"note\">Dashed grey curves are published numbers (ResNet-50 on ImageNet, evaluated on the "
        + "full datasets): " + references.map { "<b>\(HTML.escape($0.name))</b>: \(HTML.escape($0.source))" }
        .joined(separator: "; ") + ".</p>\n"
    }

    for section in reports.sections {
      let tables = section.tables.filter { !$0.rows.isEmpty }
      guard !tables.isEmpty else { continue }
      body += "<h2>\(HTML.escape(section.title))</h2>\n"
      for table in tables { body += "<h3>\(HTML.escape(table.title))</h3>\n" + Self.html(table) }
    }
    if let other = otherScores {
      body += "<h2>Other scores</h2>\n<p>Protocol results outside the reference README's tables.</p>\n"
        + Self.html(other)
    }
    if !runs.isEmpty {
      var counts: [RunID: Int] = [:]
      for (id, list) in scores { counts[id] = list.count }
      body += "<h2>Runs</h2>\n" + Self.html(RunTables.list(runs, scoreCounts: counts))
    }
    return """
      <!DOCTYPE html>
      <html lang="en">
      <head>
      <meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <title>simsiam-bench results</title>
      <style>
      \(Self.style)
      </style>
      </head>
      <body>
      \(body)</body>
      </html>

      """
  }

  /// Finished runs' protocol results whose benchmark is not one of the seed README's (e.g. Fashion-MNIST kNN, or a
  /// benchmark string this version does not know).
  var otherScores: Table? {
    var rows: [[String]] = []
    for checkpoint in reports.checkpoints {
      var latest: [CellKey: Score] = [:]
      for score in checkpoint.scores where !(score.benchmarkID?.isStandard ?? false) {
        latest[CellKey(score)] = score
      }
      for (key, score) in latest.sorted(by: { $0.key < $1.key }) {
        rows.append([checkpoint.label, key.benchmark, key.metric, key.layer ?? "", key.k.map(String.init) ?? "",
                     String(format: "%.2f", score.value) + (score.std.map { String(format: " ±%.2f", $0) } ?? "")])
      }
    }
    return rows.isEmpty ? nil : Table(title: "Other scores", columns: ["Checkpoint", "Benchmark", "Metric", "Layer",
                                                                       "k", "Value"], rows: rows)
  }

  /// A table as HTML; a `[label](config)` cell (the Markdown tables' checkpoint link) shows the label with the
  /// config file beside it.
  static func html(_ table: Table) -> String {
    var text = "<table>\n<thead><tr>" + table.columns.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
    for row in table.rows {
      text += "<tr>" + row.map { cell in
        if let (label, target) = markdownLink(cell) {
          return "<td>\(HTML.escape(label)) <span class=\"config\">\(HTML.escape(target))</span></td>"
        }
        let numeric = Double(cell) != nil || cell == StandardReports.missing
        return numeric ? "<td class=\"number\">\(HTML.escape(cell))</td>" : "<td>\(HTML.escape(cell))</td>"
      }.joined() + "</tr>\n"
    }
    return text + "</tbody>\n</table>\n"
  }

  /// `[label](target)` → (label, target).
  static func markdownLink(_ cell: String) -> (String, String)? {
    guard cell.hasPrefix("["), cell.hasSuffix(")"), let middle = cell.range(of: "](", options: .backwards) else {
      return nil
    }
    return (String(cell[cell.index(after: cell.startIndex)..<middle.lowerBound]),
            String(cell[middle.upperBound..<cell.index(before: cell.endIndex)]))
  }

  static let style = """
    body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 24px auto;
           max-width: 1240px; padding: 0 16px; background: #fff; }
    h1 { font-size: 24px; margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
    h3 { margin-bottom: 6px; } .source, .note { color: #555; } code { font-size: 13px; }
    .charts { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; border: 1px solid #e3e3e3;
           border-radius: 6px; padding: 6px; background: #fcfcfc; }
    table { border-collapse: collapse; margin: 6px 0 14px; } th, td { border: 1px solid #d6d6d6; padding: 3px 8px; }
    th { background: #f2f2f2; text-align: left; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
    .config { color: #777; font-size: 12px; }
    svg.chart text { font: 11px system-ui, sans-serif; fill: #333; } svg.chart .chart-title { font-size: 13px;
           font-weight: 600; } svg.chart .axis-label { font-size: 12px; fill: #444; }
    svg.chart .grid { stroke: #e6e6e6; } svg.chart .axis { stroke: #777; } svg.chart .guide { stroke: #c0392b;
           stroke-dasharray: 3 3; stroke-width: 1.5; } svg.chart .error { stroke-width: 1.5; }
    """
}
