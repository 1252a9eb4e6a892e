// `simsiam-bench compare`: a run's scores against published numbers or another run, cell by cell, with a
// per-benchmark tolerance; cells measured under another protocol are flagged instead of compared.
import Foundation

/// A stored protocol result with how it was measured.
public struct MeasuredCell: Sendable {
  public var key: CellKey
  public var value: Double
  public var std: Double?
  public var count: Int
  public var run: RunID
  /// The run's departures from MMSelfSup's protocol (its `protocolVariant`), plus what the score itself shows:
  /// `dataset` when its per-class names are not the protocol dataset's, `samples` when a low-shot mean averages
  /// another number of samples.
  public var facets: ProtocolFacets
  public var datasetFingerprint: String?
}

/// The latest protocol result per cell of a set of finished runs (one checkpoint's evaluations).
public struct MeasuredScores: Sendable {
  /// What was selected, e.g. `label 'quick' (runs 2, 3)`.
  public var name: String
  public var runs: [RunID]
  public var cells: [CellKey: MeasuredCell]

  /// The protocol results (`sample` and `cost` nil) of `runs`, oldest run first, so a re-evaluation replaces
  /// an older value.
  public init(name: String, runs: [Run], scores: [RunID: [Score]], catalog: ReferenceCatalog = .builtIn) {
    self.name = name
    self.runs = runs.map(\.runID).sorted()
    var cells: [CellKey: MeasuredCell] = [:]
    for run in runs.sorted(by: { $0.runID < $1.runID }) {
      var base = ProtocolFacets(parsing: run.protocolVariant)
      if base["dataset"] == nil,
         let config = try? JSONSerialization.jsonObject(with: Data(run.config.utf8)) as? [String: Any],
         let dataset = config["dataset"] as? String {
        base["dataset"] = dataset
      }
      // Per-class names that are not the protocol dataset's classes (e.g. the 10 Fashion-MNIST scene classes
      // instead of VOC's 20) reveal another dataset for every score of the run on that protocol dataset.
      var otherDataset: [String: String] = [:]  // protocol dataset → what the run used instead
      for score in scores[run.runID] ?? [] where !score.perClass.isEmpty {
        guard let dataset = catalog.standardProtocols[score.benchmark]?["dataset"],
              let known = catalog.classes.first(where: { $0.key.lowercased() == dataset.lowercased() })?.value,
              Set(score.perClass.map(\.className)) != Set(known) else { continue }
        let names = score.perClass.map(\.className)
        otherDataset[dataset] = otherDataset[dataset] ?? "other (\(names.count) classes: "
          + names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …)" : ")")
      }
      for score in scores[run.runID] ?? [] where score.isProtocolResult {
        var facets = base
        let standard = catalog.standardProtocols[score.benchmark]
        if facets["dataset"] == nil, let dataset = standard?["dataset"], let other = otherDataset[dataset] {
          facets["dataset"] = other
        }
        if facets["samples"] == nil, let samples = standard?["samples"], Int(samples) != score.count {
          facets["samples"] = String(score.count)
        }
        let key = CellKey(score)
        cells[key] = MeasuredCell(key: key, value: score.value, std: score.std, count: score.count, run: run.runID,
                                  facets: facets, datasetFingerprint: run.datasetFingerprint)
      }
    }
    self.cells = cells
  }

  /// The runs `compare` reads: `runIDs` (each must be finished), or every finished run labelled `label`, or,
  /// with neither, the only checkpoint (label and checkpoint hash) with stored scores.
  public static func select(runs: [Run], scores: [RunID: [Score]], runIDs: [RunID] = [], label: String? = nil,
                            databasePath: String, catalog: ReferenceCatalog = .builtIn) throws -> MeasuredScores {
    if !runIDs.isEmpty {
      var chosen: [Run] = []
      for id in runIDs {
        guard let run = runs.first(where: { $0.id == id }) else {
          throw ResultsError.unknownRun(id: id.rawValue, path: databasePath)
        }
        guard run.status == .finished else {
          throw CompareError.runNotFinished(id: id.rawValue, status: run.status.rawValue, path: databasePath)
        }
        if !chosen.contains(where: { $0.id == id }) { chosen.append(run) }
      }
      let labels = chosen.map(\.label).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
      let name = (chosen.count == 1 ? "run " : "runs ") + chosen.map(\.runID.description).joined(separator: ", ")
        + " (\(labels.joined(separator: ", ")))"
      return MeasuredScores(name: name, runs: chosen, scores: scores, catalog: catalog)
    }
    let finished = runs.filter { $0.status == .finished }
    if let label {
      let chosen = finished.filter { $0.label == label }
      guard !chosen.isEmpty else {
        throw CompareError.unknownLabel(label: label, known: Self.labels(finished), path: databasePath)
      }
      return MeasuredScores(name: "label '\(label)' (" + Self.runList(chosen) + ")", runs: chosen, scores: scores,
                            catalog: catalog)
    }
    let scored = finished.filter { run in (scores[run.runID] ?? []).contains(where: \.isProtocolResult) }
    let groups = Dictionary(grouping: scored) { $0.label + "\u{0}" + ($0.checkpointSHA256 ?? "") }
    guard groups.count == 1, let chosen = groups.first?.value else {
      throw CompareError.noRunChosen(labels: Self.labels(scored), path: databasePath)
    }
    return MeasuredScores(name: "label '\(chosen[0].label)' (" + Self.runList(chosen) + ")", runs: chosen,
                          scores: scores, catalog: catalog)
  }

  private static func labels(_ runs: [Run]) -> [String] {
    runs.map(\.label).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
  }

  private static func runList(_ runs: [Run]) -> String {
    (runs.count == 1 ? "run " : "runs ") + runs.map(\.runID.description).joined(separator: ", ")
  }
}

/// How far below its reference a measured value may fall, in percentage points, per benchmark.
public struct Tolerances: Sendable, Equatable {
  /// Documented defaults: about two standard deviations of each protocol's run-to-run spread. The SVMs are
  /// not bit-reproducible even in the reference (liblinear's unseeded coordinate shuffle), low-shot samples
  /// are unseeded, and detection and segmentation fine-tunes vary most.
  public static let defaultsByBenchmark: [BenchmarkID: Double] = [
    .voc07SVM: 1.0, .voc07LowShotSVM: 2.0, .imageNetLinear: 0.5, .places205Linear: 0.5, .imageNetKNN: 0.5,
    .voc0712FasterRCNN: 0.5, .cocoMaskRCNN: 0.5, .voc12AugFCN: 1.0,
  ]
  /// `defaultsByBenchmark` by stored string.
  public static let defaults: [String: Double] = Dictionary(
    uniqueKeysWithValues: defaultsByBenchmark.map { ($0.key.rawValue, $0.value) })
  /// For benchmarks without a default.
  public static let fallback = 1.0

  /// By benchmark name; `*` sets every benchmark not named.
  public var overrides: [String: Double]

  public init(overrides: [String: Double] = [:]) { self.overrides = overrides }

  /// Parses `BENCHMARK=POINTS` (or `*=POINTS`) settings, e.g. `voc07-svm=1.5`. A negative tolerance demands a
  /// lead: `*=-1` passes only cells at least 1 point above the reference.
  public init(parsing settings: [String]) throws {
    var overrides: [String: Double] = [:]
    for setting in settings {
      let parts = setting.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard parts.count == 2, !parts[0].isEmpty, let points = Double(parts[1]), points.isFinite else {
        throw CompareError.invalidTolerance(setting: setting)
      }
      overrides[parts[0]] = points
    }
    self.init(overrides: overrides)
  }

  public func tolerance(for benchmark: String) -> Double {
    overrides[benchmark] ?? overrides["*"] ?? Self.defaults[benchmark] ?? Self.fallback
  }
}

/// One compared cell's result.
public enum CellOutcome: Sendable, Equatable {
  case pass
  /// The measured value falls short by more than the tolerance (or, two-sided, strays further than it).
  case fail
  /// With a noise band (`Comparison(…, noiseBand: true)`): the two values differ by no more than the cell's band,
  /// so the comparison says nothing either way; neither pass nor FAIL.
  case withinNoise
  /// Measured under another protocol than the reference's: shown, not judged.
  case flagged([FacetDifference])
}

/// A measured value beside its reference.
public struct ComparedCell: Sendable {
  public var key: CellKey
  public var measured: MeasuredCell
  public var expected: Double
  public var expectedStd: Double?
  /// Points; with a noise band, the band's half-width (the tolerance, widened by the cells' stds, see `judge`).
  public var tolerance: Double
  public var outcome: CellOutcome
  public var delta: Double { measured.value - expected }
}

/// A cell-by-cell comparison and its verdict.
public struct Comparison: Sendable {
  public var measuredName: String
  /// The reference's name, or `baseline <runs>`.
  public var referenceName: String
  /// The reference's title and source, or the baseline's description.
  public var referenceDetail: String
  public var isBaseline: Bool
  public var isTwoSided: Bool
  /// Cells within ± their band are `withinNoise`; beyond it above `pass`, below `FAIL`.
  public var hasNoiseBand = false
  public var cells: [ComparedCell]
  /// Reference cells the selected runs did not measure.
  public var notMeasured: [CellKey]

  /// `measured` against a published reference: each of the reference's cells that was measured, under the
  /// reference's protocol (MMSelfSup's, with the reference's departures) against the run's.
  public init(measured: MeasuredScores, reference: Reference, tolerances: Tolerances = Tolerances(),
              twoSided: Bool = false, catalog: ReferenceCatalog = .builtIn) {
    measuredName = measured.name
    referenceName = reference.name
    referenceDetail = "\(reference.title)\nsource: \(reference.source)"
    isBaseline = false
    isTwoSided = twoSided
    var cells: [ComparedCell] = []
    var missing: [CellKey] = []
    for cell in reference.cells {
      guard let mine = measured.cells[cell.key] else { missing.append(cell.key); continue }
      let standard = catalog.standardProtocols[cell.key.benchmark] ?? ProtocolFacets()
      let differences = standard.merging(mine.facets).differences(from: reference.protocolFacets(for: cell.key.benchmark))
      cells.append(Self.judge(mine, expected: cell.value, expectedStd: nil, differences: differences,
                              tolerance: tolerances.tolerance(for: cell.key.benchmark), twoSided: twoSided))
    }
    self.cells = cells
    notMeasured = missing
  }

  /// `measured` against another of our runs: every cell both measured, under both runs' stated protocols and
  /// datasets (fingerprints must agree where both have one).
  /// With `noiseBand`, a cell is judged against a band instead of a one-sided tolerance: within ± max(tolerance,
  /// 2·√(σ_measured² + σ_baseline²)) of the baseline (σ: the cells' stored stds, e.g. over low-shot samples;
  /// 0 when absent) it is `withinNoise`, above the band `pass`, below it `fail`. The quickstart compares pretrained
  /// with random init this way, so a difference smaller than the run-to-run spread is not reported as FAIL.
  public init(measured: MeasuredScores, baseline: MeasuredScores, tolerances: Tolerances = Tolerances(),
              twoSided: Bool = false, noiseBand: Bool = false) {
    measuredName = measured.name
    referenceName = "baseline"
    referenceDetail = "baseline: \(baseline.name)"
    isBaseline = true
    isTwoSided = twoSided
    hasNoiseBand = noiseBand
    var cells: [ComparedCell] = []
    var missing: [CellKey] = []
    // Only the metrics the tables report are compared: a run's detail metrics (top-5, min/max over samples, chosen
    // costs) are bookkeeping, and a difference in them is neither a regression nor a gain.
    for key in baseline.cells.keys.sorted() where key.metricKind?.isHeadline == true {
      let theirs = baseline.cells[key]!
      guard let mine = measured.cells[key] else { missing.append(key); continue }
      var differences = mine.facets.differences(from: theirs.facets)
      if let a = mine.datasetFingerprint, let b = theirs.datasetFingerprint, a != b {
        differences.append(FacetDifference(key: "dataset-fingerprint", measured: a, reference: b))
      }
      cells.append(Self.judge(mine, expected: theirs.value, expectedStd: theirs.std, differences: differences,
                              tolerance: tolerances.tolerance(for: key.benchmark), twoSided: twoSided,
                              noiseBand: noiseBand))
    }
    self.cells = cells
    notMeasured = missing
  }

  private static func judge(_ measured: MeasuredCell, expected: Double, expectedStd: Double?,
                            differences: [FacetDifference], tolerance: Double, twoSided: Bool,
                            noiseBand: Bool = false) -> ComparedCell {
    let delta = measured.value - expected
    let slack = 1e-9 * max(1, abs(expected))  // 84.21 − 1.0 must pass a measured 83.21
    var tolerance = tolerance
    let outcome: CellOutcome
    if noiseBand {
      // Two standard errors of the difference when both cells carry a spread, never less than the tolerance.
      let spread = 2 * ((measured.std ?? 0) * (measured.std ?? 0) + (expectedStd ?? 0) * (expectedStd ?? 0)).squareRoot()
      tolerance = max(0, tolerance, spread)
    }
    if !differences.isEmpty {
      outcome = .flagged(differences)
    } else if noiseBand {
      outcome = abs(delta) <= tolerance + slack ? .withinNoise : delta > 0 ? .pass : .fail
    } else if twoSided ? abs(delta) <= tolerance + slack : delta >= -tolerance - slack {
      outcome = .pass
    } else {
      outcome = .fail
    }
    return ComparedCell(key: measured.key, measured: measured, expected: expected, expectedStd: expectedStd,
                        tolerance: tolerance, outcome: outcome)
  }

  public var passed: [ComparedCell] { cells.filter { $0.outcome == .pass } }
  public var failed: [ComparedCell] { cells.filter { $0.outcome == .fail } }
  public var withinNoise: [ComparedCell] { cells.filter { $0.outcome == .withinNoise } }
  public var flagged: [ComparedCell] { cells.filter { if case .flagged = $0.outcome { true } else { false } } }

  /// The distinct protocol differences of flagged cells, in order of first appearance; `[n]` in the table.
  public var protocolNotes: [[FacetDifference]] {
    var notes: [[FacetDifference]] = []
    for cell in cells { if case let .flagged(differences) = cell.outcome, !notes.contains(differences) {
      notes.append(differences)
    } }
    return notes
  }

  /// Benchmark, metric, layer, k, measured (± std), reference, Δ, tolerance and result per cell.
  public var table: Table {
    let notes = protocolNotes
    let columns = ["Benchmark", "Metric", "Layer", "k", "Measured", isBaseline ? "Baseline" : "Reference", "Δ",
                   "Tolerance", "Result"]
    return Table(title: "Comparison", columns: columns, rows: cells.map { cell in
      let result: String
      switch cell.outcome {
      case .pass: result = "pass"
      case .fail: result = "FAIL"
      case .withinNoise: result = "within noise"
      case let .flagged(differences): result = "protocol differs [\((notes.firstIndex(of: differences) ?? 0) + 1)]"
      }
      return [cell.key.benchmark, cell.key.metric, cell.key.layer ?? "", cell.key.k.map(String.init) ?? "",
              Self.value(cell.measured.value, std: cell.measured.std), Self.value(cell.expected, std: cell.expectedStd),
              String(format: "%+.2f", cell.delta),
              (isTwoSided || hasNoiseBand ? "±" : "") + String(format: "%.2f", cell.tolerance), result]
    })
  }

  /// The heading, the table (Markdown or aligned text), the protocol notes and a one-line summary.
  public func report(markdown: Bool = false) -> String {
    var text = "Comparing \(measuredName) with \(referenceName)\n\(referenceDetail)\n\n"
    if cells.isEmpty {
      text += "No cell of the reference was measured.\n"
    } else {
      text += markdown ? table.markdown() : table.text()
    }
    let notes = protocolNotes
    if !notes.isEmpty {
      text += "\nProtocol differences (measured vs \(isBaseline ? "baseline" : "reference"); these cells are not judged):\n"
      for (index, note) in notes.enumerated() {
        text += "  [\(index + 1)] " + note.map(\.description).joined(separator: "; ") + "\n"
      }
    }
    if !notMeasured.isEmpty {
      let benchmarks = notMeasured.map(\.benchmark).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
      text += "\nNot measured by the selected runs: \(notMeasured.count) \(isBaseline ? "baseline" : "reference") "
        + "cells (\(benchmarks.joined(separator: ", "))).\n"
    }
    text += "\n\(summary)\n"
    return text
  }

  /// e.g. `12 compared: 11 pass, 1 FAIL; 3 flagged (protocol differs); 25 not measured.`; with a noise band
  /// `12 compared: 8 pass, 3 within noise, 1 FAIL; …`.
  public var summary: String {
    let judged = passed.count + failed.count + withinNoise.count
    return "\(judged) compared: \(passed.count) pass, "
      + (hasNoiseBand ? "\(withinNoise.count) within noise, " : "")
      + "\(failed.count) FAIL; \(flagged.count) flagged (protocol differs); \(notMeasured.count) not measured."
  }

  /// Throws `CompareError.cellsFellShort` naming every failed cell (and, with `strictProtocol`, every flagged
  /// one), or `.nothingCompared` when no cell could be judged.
  public func verdict(strictProtocol: Bool = false) throws {
    var short = failed.map { cell in
      "\(cell.key) (\(Self.value(cell.measured.value, std: nil)) vs \(Self.value(cell.expected, std: nil)), "
        + String(format: "Δ %+.2f, tolerance %@%.2f)", cell.delta, isTwoSided || hasNoiseBand ? "±" : "",
                 cell.tolerance)
    }
    if strictProtocol {
      short += flagged.map { cell in
        guard case let .flagged(differences) = cell.outcome else { return "" }
        return "\(cell.key) (protocol differs: \(differences.map(\.description).joined(separator: "; ")))"
      }
    }
    if !short.isEmpty {
      throw CompareError.cellsFellShort(reference: referenceName, cells: short,
                                        compared: passed.count + failed.count + withinNoise.count
                                          + (strictProtocol ? flagged.count : 0))
    }
    if passed.isEmpty && withinNoise.isEmpty {
      throw CompareError.nothingCompared(reference: referenceName, flagged: flagged.count,
                                         notMeasured: notMeasured.count)
    }
  }

  static func value(_ value: Double, std: Double?) -> String {
    String(format: "%.2f", value) + (std.map { String(format: " ±%.2f", $0) } ?? "")
  }
}

/// Why `compare` could not run, or why it failed the comparison.
public enum CompareError: Error, CustomStringConvertible, Equatable {
  case unknownReference(name: String, known: [String])
  case malformedReferences(reason: String)
  case invalidTolerance(setting: String)
  case runNotFinished(id: Int64, status: String, path: String)
  case unknownLabel(label: String, known: [String], path: String)
  /// No --run or --label, and the database does not hold exactly one evaluated checkpoint.
  case noRunChosen(labels: [String], path: String)
  /// Compared cells fell short of the reference by more than their tolerance.
  case cellsFellShort(reference: String, cells: [String], compared: Int)
  /// No cell could be judged: nothing measured, or only under another protocol.
  case nothingCompared(reference: String, flagged: Int, notMeasured: Int)

  public var description: String {
    switch self {
    case let .unknownReference(name, known):
      "No reference named '\(name)'. Known: \(known.joined(separator: ", ")). Hint: `simsiam-bench compare --list` "
        + "shows each with its source."
    case let .malformedReferences(reason):
      "The reference numbers are malformed: \(reason)."
    case let .invalidTolerance(setting):
      "Cannot read the tolerance '\(setting)'. Hint: write BENCHMARK=POINTS, e.g. --tolerance voc07-svm=1.5, or "
        + "*=POINTS for every benchmark."
    case let .runNotFinished(id, status, path):
      "Run \(id) in \(path) is \(status), so its scores are not compared. Hint: `simsiam-bench results list --db "
        + "\(path)` shows which runs finished."
    case let .unknownLabel(label, known, path):
      "No finished run in \(path) is labelled '\(label)'. Labels of finished runs: "
        + (known.isEmpty ? "none" : known.joined(separator: ", ")) + "."
    case let .noRunChosen(labels, path):
      (labels.isEmpty ? "No finished run in \(path) has scores to compare."
                      : "\(path) holds scores of several checkpoints (\(labels.joined(separator: ", "))).")
        + " Hint: choose with --run RUN or --label LABEL; `simsiam-bench results list --db \(path)` shows the runs."
    case let .cellsFellShort(reference, cells, compared):
      "\(cells.count) of \(compared) compared cells fall short of \(reference): \(cells.joined(separator: "; ")). "
        + "Hint: --tolerance BENCHMARK=POINTS sets a tolerance (defaults: `simsiam-bench compare --help`)."
    case let .nothingCompared(reference, flagged, notMeasured):
      "No cell was compared with \(reference): \(flagged) measured under another protocol, \(notMeasured) not "
        + "measured. Hint: evaluate with the reference's protocol, or compare with --baseline RUN."
    }
  }
}
