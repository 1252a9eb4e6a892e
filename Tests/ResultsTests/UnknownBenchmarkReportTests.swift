import Foundation
import Testing
@testable import Results

/// Reports, compare and the reference catalogue read benchmarks and metrics through their types.
@Suite struct TypedIdentityTests {
  @Test func cellKeysOfTypesAreCellKeysOfTheirStrings() {
    #expect(CellKey(benchmark: .cocoMaskRCNN, metric: .ap75, layer: "segm")
              == CellKey(benchmark: "coco-mask-rcnn", metric: "AP75", layer: "segm"))
    #expect(CellKey(benchmark: "voc07-svm", metric: "mAP").benchmarkID == .voc07SVM)
    let unknown = CellKey(benchmark: "b", metric: "m")
    #expect(unknown.benchmarkID == nil && unknown.metricKind == nil)
  }

  @Test func theReferenceCatalogNamesOnlyKnownBenchmarksAndMetrics() throws {
    for reference in ReferenceCatalog.builtIn.references {
      for cell in reference.cells {
        #expect(cell.key.benchmarkID != nil && cell.key.metricKind != nil, "\(reference.name): \(cell.key)")
      }
    }
    let unknown = #"""
      {"protocols": {}, "classes": {}, "references": [{"name": "x", "label": "x", "title": "x", "source": "x",
       "scores": [{"benchmark": "voc07-svn", "metric": "mAP", "layer": "feature5", "values": [1]}]}]}
      """#
    #expect(throws: CompareError.self) { try ReferenceCatalog(json: Data(unknown.utf8)) }
  }
}

/// Scores whose benchmark string this version does not know (or knows but has no table for) beside standard ones.
@Suite struct UnknownBenchmarkReportTests {
  static func store(_ database: TemporaryDatabase) throws -> ResultsStore {
    let store = try ResultsStore(path: database.path)
    let run = try store.beginRun(sampleRun("mixed"))
    try store.addScores([
      Score(benchmark: .voc07SVM, metric: .mAP, layer: "feature5", value: 60),
      Score(benchmark: .voc07SVM, metric: .mAP, layer: "feature4", value: 50),
      Score(benchmark: BenchmarkID(.fashionMNIST, .knn), metric: .top1, k: 20, value: 70),
      Score(benchmark: BenchmarkID(.fashionMNIST, .linear), metric: .top1, layer: "feature5", value: 80),
      Score(benchmark: "mystery-benchmark", metric: "accuracy", layer: "feature5", value: 12.5),
      Score(benchmark: "foo-linear", metric: "top1", layer: "feature5", value: 33),
      Score(benchmark: "mystery-benchmark", metric: "accuracy", layer: "feature5", sample: 1, value: 99),  // detail
      Score(benchmark: BenchmarkID(.cifar10, .svm), metric: .mAP, layer: "feature5", value: 44, std: 1.5),
    ], to: run)
    try store.finishRun(run)
    return store
  }

  @Test func markdownShowsThemUnderOtherScores() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let reports = try StandardReports(store: Self.store(database))
    let markdown = reports.markdown().replacingOccurrences(of: " +", with: " ", options: .regularExpression)
    let headings = markdown.split(separator: "\n").filter { $0.hasPrefix("#") }
    #expect(headings == ["## Results", "### Classification", "#### VOC SVM / Low-shot SVM",
                         "#### Fashion-MNIST Linear Evaluation", "#### Fashion-MNIST Nearest-Neighbor Classification",
                         "### Other", "#### Other scores"])
    #expect(markdown.contains("| [mixed](quick.json) | feature5 | 60.00 |"))
    #expect(reports.otherScores.rows == [
      ["[mixed](quick.json)", "cifar10-svm", "mAP", "feature5", "", "44.00 ±1.50"],
      ["[mixed](quick.json)", "foo-linear", "top1", "feature5", "", "33.00"],
      ["[mixed](quick.json)", "mystery-benchmark", "accuracy", "feature5", "", "12.50"],
    ])
    // Without such scores there is no Other section (the seed tables' document is unchanged).
    #expect(StandardReports(runs: [], scores: [:]).otherScores.rows.isEmpty)
  }

  @Test func htmlAndCompareTakeThemWithoutCrashing() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try Self.store(database)
    let page = try HTMLReport(store: store, references: []).render()
    #expect(page.contains("<td>mystery-benchmark</td><td>accuracy</td><td>feature5</td>"))
    #expect(page.contains("<td>foo-linear</td>") && page.contains("<td>fashion-mnist-knn</td>"))
    let charts = try HTMLReport(store: store, references: []).layerCharts.map(\.title)
    #expect(charts == ["VOC07 SVM mAP per layer", "Linear probe top-1 per layer (fashion-mnist-linear)"])

    let measured = MeasuredScores(name: "mixed", runs: try store.runs(), scores: try store.allScores())
    let mystery = CellKey(benchmark: "mystery-benchmark", metric: "accuracy", layer: "feature5")
    #expect(measured.cells[mystery]?.value == 12.5)
    let comparison = Comparison(measured: measured, baseline: measured)
    // Only headline metrics are compared; the unknown metric is not one.
    #expect(!comparison.cells.contains { $0.key.benchmark == "mystery-benchmark" })
    #expect(comparison.cells.contains { $0.key.benchmark == "foo-linear" })  // top1 is a headline metric
    #expect(comparison.failed.isEmpty)
    #expect(Tolerances().tolerance(for: "mystery-benchmark") == Tolerances.fallback)
    #expect(Tolerances().tolerance(for: "voc07-lowshot-svm") == 2.0)
    let reference = try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")
    _ = Comparison(measured: measured, reference: reference).report()
  }
}
