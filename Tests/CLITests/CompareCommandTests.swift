import ArgumentParser
import Foundation
import Testing
import Results
@testable import SimSiamBenchCLI

@Suite struct CompareCommandTests {
  /// Run 1 `match` has the seed README's 100e VOC and linear numbers; run 2 `regressed` the same with the
  /// feature5 SVM 3 points lower; run 3 `random` is far lower everywhere; run 4 `match` failed.
  static func makeDatabase() throws -> (folder: URL, path: String) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-compare-\(UUID().uuidString)")
    let path = folder.appendingPathComponent("results.sqlite").path
    let store = try ResultsStore(path: path)
    let reference = try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")
    let cells = reference.cells.filter {
      [Benchmark.voc07SVM, Benchmark.voc07LowShotSVM, Benchmark.imageNetLinear].contains($0.key.benchmark)
    }
    func scores(_ change: (CellKey, Double) -> Double) -> [Score] {
      cells.map { cell in
        Score(benchmark: cell.key.benchmark, metric: cell.key.metric, layer: cell.key.layer, k: cell.key.k,
              value: change(cell.key, cell.value), count: cell.key.benchmark == Benchmark.voc07LowShotSVM ? 5 : 1)
      }
    }
    for (label, change) in [("match", { (_: CellKey, value: Double) in value }),
                            ("regressed", { (key: CellKey, value: Double) in key.k == nil && key.benchmark == Benchmark.voc07SVM ? value - 3 : value }),
                            ("random", { (_: CellKey, value: Double) in value / 2 })] {
      let id = try store.beginRun(NewRun(kind: .evaluate, protocolName: "voc07-svm", label: label,
                                         checkpointSHA256: label, codeVersion: "0.1.0", threads: 2))
      try store.addScores(scores(change), to: id)
      try store.finishRun(id)
    }
    let failed = try store.beginRun(NewRun(kind: .evaluate, protocolName: "voc07-svm", label: "match",
                                           codeVersion: "0.1.0", threads: 2))
    try store.failRun(failed, message: "test")
    return (folder, path)
  }

  static func command(_ arguments: [String]) throws -> Compare {
    try #require(try SimSiamBench.parseAsRoot(["compare"] + arguments) as? Compare)
  }

  @Test func aMatchExitsZeroAndAPlantedRegressionExitsNonZero() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    let match = try Self.command(["--reference", "mmselfsup-100e", "--label", "match", "--db", database.path])
    let (text, comparison) = try match.compare()
    #expect(text.hasPrefix("Comparing label 'match' (run 1) with mmselfsup-100e\n"))
    #expect(text.contains("15 compared: 15 pass, 0 FAIL"))
    try comparison?.verdict()
    let runnable = match
    try runnable.run()

    let regressed = try Self.command(["--reference", "mmselfsup-100e", "--run", "2", "--db", database.path])
    #expect {
      try regressed.run()
    } throws: { error in
      SimSiamBench.exitCode(for: error) != .success
        && String(describing: error).contains("1 of 15 compared cells fall short of mmselfsup-100e: voc07-svm mAP "
                                              + "feature5 (81.21 vs 84.21, Δ -3.00, tolerance 1.00)")
    }
    // A tolerance from the command line lets the same run pass.
    let tolerant = try Self.command(["--reference", "mmselfsup-100e", "--run", "2", "--tolerance", "voc07-svm=3.5",
                                     "--db", database.path])
    try tolerant.run()
    let markdown = try Self.command(["--reference", "mmselfsup-100e", "--run", "2", "--markdown", "--db", database.path])
    #expect(try markdown.compare().text.contains("| voc07-svm         | mAP    | feature5 |     | 81.21"))
  }

  @Test func baselineComparesTwoOfOurRuns() throws {
    let database = try Self.command(["--list"])  // parses without a database
    #expect(try database.compare().text.contains("paper-200e  (10 numbers"))
    let stored = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: stored.folder) }
    let ahead = try Self.command(["--baseline", "3", "--label", "match", "--db", stored.path])
    try ahead.run()
    #expect(try ahead.compare().text.contains("baseline: run 3 (random)"))
    let behind = try Self.command(["--baseline-label", "match", "--label", "random", "--db", stored.path])
    #expect(throws: CompareError.self) { try behind.run() }
  }

  @Test func badSelectionsAreHelpfulErrors() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["compare", "--db", database.path]) }
    #expect(throws: (any Error).self) {
      try SimSiamBench.parseAsRoot(["compare", "--reference", "mmselfsup-100e", "--baseline", "1"])
    }
    #expect(throws: (any Error).self) {
      try SimSiamBench.parseAsRoot(["compare", "--reference", "mmselfsup-100e", "--run", "1", "--label", "x"])
    }
    let ambiguous = try Self.command(["--reference", "mmselfsup-100e", "--db", database.path])
    #expect(throws: CompareError.noRunChosen(labels: ["match", "regressed", "random"], path: database.path)) {
      try ambiguous.run()
    }
    let failed = try Self.command(["--reference", "mmselfsup-100e", "--run", "4", "--db", database.path])
    #expect(throws: CompareError.runNotFinished(id: 4, status: "failed", path: database.path)) { try failed.run() }
    let unknown = try Self.command(["--reference", "nope", "--run", "1", "--db", database.path])
    #expect(throws: CompareError.self) { try unknown.run() }
    let badTolerance = try Self.command(["--reference", "mmselfsup-100e", "--run", "1", "--tolerance", "svm",
                                         "--db", database.path])
    #expect(throws: CompareError.invalidTolerance(setting: "svm")) { try badTolerance.run() }
    let path = "/nonexistent-\(UUID().uuidString)/r.sqlite"
    let missing = try Self.command(["--reference", "mmselfsup-100e", "--db", path])
    #expect(throws: ResultsError.missingDatabase(path: path)) { try missing.run() }
  }

  @Test func reportHTMLWritesOneSelfContainedPage() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    let output = database.folder.appendingPathComponent("out/report.html").path
    let command = try #require(try SimSiamBench.parseAsRoot(["report", "html", "--output", output,
                                                             "--db", database.path]) as? Report.HTMLPage)
    try command.run()
    let page = try String(contentsOfFile: output, encoding: .utf8)
    #expect(page.hasPrefix("<!DOCTYPE html>"))
    #expect(page.contains("<svg "))
    #expect(page.contains("resnet50_8xb32-coslr-200e (mmselfsup-200e)"))
    #expect(!page.contains("<script"))
    let bare = try #require(try SimSiamBench.parseAsRoot(["report", "html", "--no-references", "--db", database.path])
                              as? Report.HTMLPage)
    #expect(!(try bare.rendered()).contains("mmselfsup-200e"))
    let wrong = try #require(try SimSiamBench.parseAsRoot(["report", "html", "--reference", "x", "--db", database.path])
                               as? Report.HTMLPage)
    #expect(throws: CompareError.self) { try wrong.rendered() }
  }
}
