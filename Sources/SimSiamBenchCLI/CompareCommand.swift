// `simsiam-bench compare`: a checkpoint's stored scores against published numbers or another run; the work is in
// Results (Compare.swift, Reference.swift).
import ArgumentParser
import Foundation
import Results

struct Compare: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Compare stored results with the published MMSelfSup and paper numbers, or with another run.",
    discussion: """
      Prints measured, reference, Δ and pass/FAIL per cell, and exits with a failure status when any compared \
      cell falls short of its reference by more than the tolerance (percentage points). Default tolerances: \
      \(Tolerances.defaults.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); \
      others \(Tolerances.fallback). Cells measured under another protocol than the reference's (the run's \
      protocol variant, e.g. another cost list, cached features, adaptive pooling, another dataset) are flagged \
      and not judged. Without --run or --label, the database must hold exactly one evaluated checkpoint.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The reference to compare with (see --list).") var reference: String?
  @Option(help: "Compare with this run of ours instead of a reference (repeatable).") var baseline: [Int64] = []
  @Option(help: "Compare with the finished runs with this label instead of a reference.") var baselineLabel: String?
  @Option(name: .customLong("run"), help: "The run whose scores are measured (repeatable).") var runs: [Int64] = []
  @Option(help: "Measure every finished run with this label (one checkpoint's evaluations).") var label: String?
  @Option(help: ArgumentHelp("Tolerance in points, BENCHMARK=POINTS or *=POINTS (repeatable).",
                             valueName: "benchmark=points"))
  var tolerance: [String] = []
  @Flag(help: "Fail cells that stray above the reference by more than the tolerance too.") var twoSided = false
  @Flag(help: "Fail cells measured under another protocol instead of only flagging them.") var strictProtocol = false
  @Flag(help: ArgumentHelp("With --baseline: report cells within ± the tolerance (widened to 2·√(σ²+σ²) when the "
                            + "cells carry a std, e.g. low-shot means) as 'within noise' instead of pass or FAIL; "
                            + "beyond it, above passes and below fails."))
  var noiseBand = false
  @Flag(help: "Print the table as Markdown.") var markdown = false
  @Flag(help: "List the references with their sources.") var list = false

  func validate() throws {
    let modes = [reference != nil, !baseline.isEmpty || baselineLabel != nil, list].filter { $0 }.count
    guard modes == 1 else {
      throw ValidationError("Choose one of --reference NAME, --baseline RUN (or --baseline-label LABEL), --list.")
    }
    guard runs.isEmpty || label == nil else { throw ValidationError("Choose --run or --label, not both.") }
    guard baseline.isEmpty || baselineLabel == nil else {
      throw ValidationError("Choose --baseline or --baseline-label, not both.")
    }
    guard !noiseBand || !baseline.isEmpty || baselineLabel != nil else {
      throw ValidationError("--noise-band applies to --baseline or --baseline-label only.")
    }
  }

  /// The comparison's report, and the comparison (nil for --list).
  func compare() throws -> (text: String, comparison: Comparison?) {
    let catalog = ReferenceCatalog.builtIn
    if list { return (catalog.listing, nil) }
    let tolerances = try Tolerances(parsing: tolerance)
    let store = try openForReading(common.db)
    let allRuns = try store.runs()
    let scores = try store.allScores()
    let measured = try MeasuredScores.select(runs: allRuns, scores: scores, runIDs: runs.map { RunID($0) },
                                             label: label, databasePath: common.db, catalog: catalog)
    let comparison: Comparison
    if let reference {
      comparison = Comparison(measured: measured, reference: try catalog.reference(named: reference),
                              tolerances: tolerances, twoSided: twoSided, catalog: catalog)
    } else {
      let base = try MeasuredScores.select(runs: allRuns, scores: scores, runIDs: baseline.map { RunID($0) },
                                           label: baselineLabel, databasePath: common.db, catalog: catalog)
      comparison = Comparison(measured: measured, baseline: base, tolerances: tolerances, twoSided: twoSided,
                              noiseBand: noiseBand)
    }
    return (comparison.report(markdown: markdown), comparison)
  }

  func run() throws {
    let (text, comparison) = try compare()
    print(text, terminator: "")
    try comparison?.verdict(strictProtocol: strictProtocol)
  }
}
