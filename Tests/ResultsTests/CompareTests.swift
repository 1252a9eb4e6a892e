import Foundation
import Testing
@testable import Results

/// A run as the store returns it, without a database.
func makeRun(_ id: Int64, label: String = "ours", kind: RunKind = .evaluate, variant: String? = nil,
             status: RunStatus = .finished, config: String = "{}", fingerprint: String? = nil,
             sha: String? = "abc") -> Run {
  Run(id: RunID(id), kind: kind, protocolName: kind == .pretrain ? "simsiam" : "voc07-svm", label: label,
      configFile: nil, config: config, checkpointPath: nil, checkpointSHA256: sha, checkpointLayout: nil,
      datasetPath: nil, datasetFingerprint: fingerprint, protocolVariant: variant, codeVersion: "0.1.0",
      host: "test", pid: 1, processStart: nil, threads: 2, startedAt: Date(timeIntervalSince1970: 1_700_000_000),
      finishedAt: status == .running ? nil : Date(timeIntervalSince1970: 1_700_000_060), status: status,
      message: nil)
}

/// The seed README's 100e VOC and ImageNet-linear numbers as stored scores, with `change` applied to each value.
func seed100eScores(_ change: (CellKey, Double) -> Double = { $1 }) -> [Score] {
  let reference = ReferenceCatalog.builtIn.references.first { $0.name == "mmselfsup-100e" }!
  return reference.cells.filter {
    [Benchmark.voc07SVM, Benchmark.voc07LowShotSVM, Benchmark.imageNetLinear].contains($0.key.benchmark)
  }.map { cell in
    Score(benchmark: cell.key.benchmark, metric: cell.key.metric, layer: cell.key.layer, k: cell.key.k,
          value: change(cell.key, cell.value), count: cell.key.benchmark == Benchmark.voc07LowShotSVM ? 5 : 1)
  }
}

@Suite struct ReferenceCatalogTests {
  @Test func embeddedNumbersDecodeWithSourcesAndTheSeedValues() throws {
    let catalog = ReferenceCatalog.builtIn
    let names = catalog.references.map(\.name)
    #expect(Set(names).count == names.count)
    #expect(names.starts(with: ["mmselfsup-100e", "mmselfsup-200e", "mmselfsup-v0.8.0-100e", "mmselfsup-v0.8.0-200e",
                                "paper-100e", "paper-200e"]))
    for reference in catalog.references {
      #expect(!reference.source.isEmpty && !reference.cells.isEmpty)
      for cell in reference.cells { #expect(catalog.standardProtocols[cell.key.benchmark] != nil, "\(cell.key)") }
    }
    let seed100 = try catalog.reference(named: "mmselfsup-100e")
    #expect(seed100.value(CellKey(benchmark: "voc07-svm", metric: "mAP", layer: "feature5")) == 84.21)
    #expect(seed100.value(CellKey(benchmark: "voc07-lowshot-svm", metric: "mAP", layer: "feature5", k: 96)) == 82.44)
    #expect(seed100.value(CellKey(benchmark: "imagenet-linear", metric: "top1", layer: "avgpool")) == 67.88)
    #expect(seed100.value(CellKey(benchmark: "coco-mask-rcnn", metric: "AP75", layer: "segm")) == 36.9)
    #expect(seed100.cells.count == 1 + 8 + 6 + 1 + 6 + 1)
    let v080 = try catalog.reference(named: "mmselfsup-v0.8.0-100e")
    #expect(v080.value(CellKey(benchmark: "voc07-svm", metric: "mAP", layer: "feature5")) == 84.64)
    #expect(v080.value(CellKey(benchmark: "imagenet-knn", metric: "top1", k: 200)) == 54.2)
    #expect(try catalog.reference(named: "mmselfsup-200e")
      .value(CellKey(benchmark: "imagenet-linear", metric: "top1", layer: "avgpool")) == 69.80)
    #expect(try catalog.reference(named: "paper-200e")
      .value(CellKey(benchmark: "voc0712-faster-rcnn", metric: "AP50")) == 82.0)
    #expect(try catalog.reference(named: "paper-100e")
      .value(CellKey(benchmark: "imagenet-linear", metric: "top1", layer: "avgpool")) == 68.1)
    #expect(catalog.classes["VOC2007"]?.count == 20)
    #expect(catalog.listing.contains("mmselfsup-100e  (23 numbers: voc07-svm, voc07-lowshot-svm, imagenet-linear"))
    #expect(throws: CompareError.self) { try catalog.reference(named: "mmselfsup-300e") }
  }

  @Test func malformedGroupsAreRejected() {
    let json = """
      {"protocols": {}, "classes": {}, "references": [{"name": "x", "label": "x", "title": "x", "source": "s",
       "scores": [{"benchmark": "b", "metric": "m", "layers": ["a", "b"], "values": [1]}]}]}
      """
    #expect(throws: CompareError.self) { try ReferenceCatalog(json: Data(json.utf8)) }
  }

  @Test func variantsParseFromFacetsFlagsAndJSON() {
    let facets = ProtocolFacets(parsing: "costs=1, 10, 100; cached-features pooling=adaptive Image_Size=32")
    #expect(facets.values == ["costs": "1,10,100", "cached-features": "true", "pooling": "adaptive",
                              "image-size": "32"])
    let json = ProtocolFacets(parsing: #"{"costs": [1, 10, 100], "cached_features": true}"#)
    #expect(json.values == ["costs": "1,10,100", "cached-features": "true"])
    #expect(ProtocolFacets(parsing: nil).values.isEmpty && ProtocolFacets(parsing: "  ").values.isEmpty)
    // The same costs in another order and notation are the same list; an unset flag equals false.
    #expect(ProtocolFacets(["costs": "100,1,10"]).differences(from: ProtocolFacets(["costs": "1e0,1e1,1e2"])).isEmpty)
    #expect(ProtocolFacets(["cached-features": "false"]).differences(from: ProtocolFacets()).isEmpty)
    #expect(ProtocolFacets(["dataset": "voc2007"]).differences(from: ProtocolFacets(["dataset": "VOC2007"])).isEmpty)
    #expect(ProtocolFacets(["pooling": "adaptive"]).differences(from: ProtocolFacets(["pooling": "specified"]))
      == [FacetDifference(key: "pooling", measured: "adaptive", reference: "specified")])
  }
}

@Suite struct CompareTests {
  static func measured(_ scores: [Score], variant: String? = nil, fingerprint: String? = nil) -> MeasuredScores {
    MeasuredScores(name: "run 1", runs: [makeRun(1, variant: variant, fingerprint: fingerprint)],
                   scores: [RunID(1): scores])
  }

  @Test func aMatchPassesAndExitsCleanly() throws {
    let comparison = Comparison(measured: Self.measured(seed100eScores()),
                                reference: try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e"))
    #expect(comparison.cells.count == 15)
    #expect(comparison.passed.count == 15 && comparison.failed.isEmpty && comparison.flagged.isEmpty)
    #expect(comparison.notMeasured.count == 8)  // detection, COCO, segmentation
    try comparison.verdict()
    let text = comparison.report()
    #expect(text.contains("voc07-svm          mAP     feature5      84.21     84.21      +0.00  1.00       pass"))
    #expect(text.contains("15 compared: 15 pass, 0 FAIL; 0 flagged (protocol differs); 8 not measured."))
    #expect(text.contains("source: shared/seed/simsiam-README.md"))
  }

  @Test func aPlantedRegressionFailsNamingTheCell() throws {
    let reference = try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")
    // feature5 SVM 2.21 points short (tolerance 1.0); low-shot k=1 exactly at its tolerance (2.0) still passes.
    let scores = seed100eScores { key, value in
      if key.benchmark == Benchmark.voc07SVM { return 82.0 }
      if key.benchmark == Benchmark.voc07LowShotSVM && key.k == 1 { return value - 2.0 }
      return value
    }
    let comparison = Comparison(measured: Self.measured(scores), reference: reference)
    #expect(comparison.failed.map(\.key) == [CellKey(benchmark: "voc07-svm", metric: "mAP", layer: "feature5")])
    #expect(comparison.table.rows.first == ["voc07-svm", "mAP", "feature5", "", "82.00", "84.21", "-2.21", "1.00",
                                            "FAIL"])
    #expect {
      try comparison.verdict()
    } throws: { error in
      guard let error = error as? CompareError, case let .cellsFellShort(name, cells, compared) = error else {
        return false
      }
      return name == "mmselfsup-100e" && compared == 15 && cells == ["voc07-svm mAP feature5 (82.00 vs 84.21, "
        + "Δ -2.21, tolerance 1.00)"] && error.description.contains("1 of 15 compared cells fall short")
    }
    // A wider tolerance for that benchmark lets it pass; a lead demanded everywhere fails every cell.
    try Comparison(measured: Self.measured(scores), reference: reference,
                   tolerances: try Tolerances(parsing: ["voc07-svm=2.5"])).verdict()
    let demanding = Comparison(measured: Self.measured(seed100eScores()), reference: reference,
                               tolerances: try Tolerances(parsing: ["*=-0.5"]))
    #expect(demanding.failed.count == 15)
  }

  @Test func twoSidedFailsCellsFarAbove() throws {
    let scores = seed100eScores { key, value in key.layer == "avgpool" ? value + 3 : value }
    let reference = try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")
    #expect(Comparison(measured: Self.measured(scores), reference: reference).failed.isEmpty)
    let strict = Comparison(measured: Self.measured(scores), reference: reference, twoSided: true)
    #expect(strict.failed.map(\.key.layer) == ["avgpool"])
    #expect(strict.table.rows.last?[7] == "±0.50")
  }

  @Test func tolerancesHaveDefaultsAndRejectBadSettings() throws {
    let tolerances = try Tolerances(parsing: ["voc07-svm=0.25", "*=3"])
    #expect(tolerances.tolerance(for: "voc07-svm") == 0.25)
    #expect(tolerances.tolerance(for: "imagenet-linear") == 3)
    #expect(Tolerances().tolerance(for: "imagenet-linear") == 0.5)
    #expect(Tolerances().tolerance(for: "fashion-mnist-knn") == Tolerances.fallback)
    for bad in ["voc07-svm", "voc07-svm=x", "=1", "voc07-svm=nan"] {
      #expect(throws: CompareError.invalidTolerance(setting: bad)) { try Tolerances(parsing: [bad]) }
    }
  }

  @Test func cellsMeasuredUnderAnotherProtocolAreFlaggedNotJudged() throws {
    let reference = try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")
    // Another cost list and cached features, far below the reference: flagged, never FAIL.
    let scores = seed100eScores { _, value in value - 30 }
    let comparison = Comparison(measured: Self.measured(scores, variant: "costs=1,10,100; cached-features"),
                                reference: reference)
    #expect(comparison.flagged.count == 15 && comparison.failed.isEmpty && comparison.passed.isEmpty)
    guard case let .flagged(differences) = comparison.cells[0].outcome else { Issue.record("not flagged"); return }
    #expect(differences.map(\.key) == ["cached-features", "costs"])
    let text = comparison.report()
    #expect(text.contains("protocol differs [1]"))
    #expect(text.contains("[1] cached-features true vs unset; costs 1,10,100 vs 1,10,100,0.0625,"))
    #expect(throws: CompareError.nothingCompared(reference: "mmselfsup-100e", flagged: 15, notMeasured: 8)) {
      try comparison.verdict()
    }
    #expect(throws: CompareError.self) { try comparison.verdict(strictProtocol: true) }
    // The standard protocol stated explicitly is no departure.
    let explicit = Comparison(measured: Self.measured(seed100eScores(), variant: "pooling=specified image-size=224"),
                              reference: reference)
    #expect(explicit.flagged.isEmpty && explicit.passed.count == 15)
  }

  @Test func anotherDatasetIsRecognisedByItsClasses() throws {
    let reference = try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")
    let scenes = ["T-shirt/top", "Trouser", "Pullover", "Dress"].map { ClassValue(className: $0, value: 50) }
    var scores = seed100eScores()
    scores[0].perClass = scenes  // the voc07-svm feature5 score, on a 4-class scene devkit
    let comparison = Comparison(measured: Self.measured(scores), reference: reference)
    // The same run's low-shot scores (no per-class values) are on that devkit too; ImageNet is another dataset.
    #expect(comparison.flagged.map(\.key.benchmark) == ["voc07-svm"] + Array(repeating: "voc07-lowshot-svm", count: 8))
    #expect(comparison.passed.map(\.key.benchmark) == Array(repeating: "imagenet-linear", count: 6))
    guard case let .flagged(differences) = comparison.flagged[0].outcome else { return }
    #expect(differences == [FacetDifference(key: "dataset", measured: "other (4 classes: T-shirt/top, Trouser, "
                                              + "Pullover, …)", reference: "VOC2007")])
    // VOC's own 20 classes are the reference dataset.
    scores[0].perClass = ReferenceCatalog.builtIn.classes["VOC2007"]!.map { ClassValue(className: $0, value: 84) }
    #expect(Comparison(measured: Self.measured(scores), reference: reference).flagged.isEmpty)
    // A low-shot mean over 3 samples is not the reference's 5.
    scores = seed100eScores()
    for index in scores.indices where scores[index].benchmark == Benchmark.voc07LowShotSVM { scores[index].count = 3 }
    let fewer = Comparison(measured: Self.measured(scores), reference: reference)
    #expect(fewer.flagged.count == 8)
    #expect(fewer.report().contains("[1] samples 3 vs 5"))
  }

  @Test func thePapersDetectionProtocolDiffersFromMMSelfSups() throws {
    let scores = [Score(benchmark: Benchmark.voc0712FasterRCNN, metric: "AP50", value: 82.0),
                  Score(benchmark: Benchmark.imageNetLinear, metric: "top1", layer: "avgpool", value: 70.1)]
    let comparison = Comparison(measured: Self.measured(scores),
                                reference: try ReferenceCatalog.builtIn.reference(named: "paper-200e"))
    #expect(comparison.passed.map(\.key.benchmark) == ["imagenet-linear"])
    #expect(comparison.flagged.map(\.key.benchmark) == ["voc0712-faster-rcnn"])
    #expect(comparison.report().contains("codebase unset vs moco-detectron2; dataset VOC07+12 vs "
                                         + "VOC07trainval+VOC12train"))
  }

  @Test func baselineModeComparesTwoRunsAndFlagsDifferentProtocolsOrData() throws {
    let pretrained = [Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature5", value: 60),
                      Score(benchmark: Benchmark.voc07SVM, metric: "chosen-cost", layer: "feature5", value: 1),
                      Score(benchmark: "fashion-mnist-knn", metric: "top5", k: 20, value: 95),
                      Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature4", value: 40),
                      Score(benchmark: "fashion-mnist-knn", metric: "top1", layer: "avgpool", k: 20, value: 70)]
    let random = [Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature5", value: 30),
                  Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature4", value: 45),
                  Score(benchmark: "fashion-mnist-knn", metric: "top1", layer: "avgpool", k: 20, value: 50,
                        count: 5, std: 1.5),
                  // Detail metrics are not compared, whatever their values.
                  Score(benchmark: Benchmark.voc07SVM, metric: "chosen-cost", layer: "feature5", value: 100),
                  Score(benchmark: "fashion-mnist-knn", metric: "top5", k: 20, value: 99)]
    let runs = [makeRun(1, label: "pretrained", variant: "image-size=32", fingerprint: "f1"),
                makeRun(2, label: "random", variant: "image-size=32", fingerprint: "f1", sha: "def")]
    let all = [RunID(1): pretrained, RunID(2): random]
    let ours = try MeasuredScores.select(runs: runs, scores: all, label: "pretrained", databasePath: "db")
    let base = try MeasuredScores.select(runs: runs, scores: all, runIDs: [RunID(2)], databasePath: "db")
    #expect(base.name == "run 2 (random)" && ours.name == "label 'pretrained' (run 1)")
    let comparison = Comparison(measured: ours, baseline: base)
    #expect(comparison.isBaseline && comparison.cells.count == 3)
    // feature4 is 5 points behind the random baseline: FAIL; the others lead.
    #expect(comparison.failed.map(\.key.layer) == ["feature4"])
    #expect(comparison.passed.count == 2)
    #expect(comparison.table.columns[5] == "Baseline")
    #expect(comparison.table.rows.contains(["fashion-mnist-knn", "top1", "avgpool", "20", "70.00", "50.00 ±1.50",
                                            "+20.00", "1.00", "pass"]))
    #expect(throws: CompareError.self) { try comparison.verdict() }
    // Another variant or dataset fingerprint on one side: flagged.
    let other = [makeRun(1, label: "pretrained", variant: "image-size=32", fingerprint: "f1"),
                 makeRun(2, label: "random", variant: "image-size=64", fingerprint: "f2", sha: "def")]
    let flagged = Comparison(measured: try MeasuredScores.select(runs: other, scores: all, runIDs: [RunID(1)],
                                                                 databasePath: "db"),
                             baseline: try MeasuredScores.select(runs: other, scores: all, runIDs: [RunID(2)],
                                                                 databasePath: "db"))
    #expect(flagged.flagged.count == 3)
    #expect(flagged.report().contains("[1] image-size 32 vs 64; dataset-fingerprint f1 vs f2"))
  }

  @Test func aNoiseBandReportsSmallDifferencesAsWithinNoiseNotFail() throws {
    // Hand-computed bands: the SVM cell has no std → band = its tolerance 1.0; the low-shot cell's stds 0.9 and 1.2
    // give 2·√(0.81 + 1.44) = 3.0 > its tolerance 2.0.
    let pretrained = [Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature5", value: 30.6),
                      Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature4", value: 31.5),
                      Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature3", value: 28.0),
                      Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: 4,
                            value: 27.5, count: 5, std: 0.9),
                      Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: 8,
                            value: 33.5, count: 5, std: 0.9)]
    let random = [Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature5", value: 30.0),
                  Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature4", value: 30.0),
                  Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature3", value: 30.0),
                  Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: 4,
                        value: 30.0, count: 5, std: 1.2),
                  Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: 8,
                        value: 30.0, count: 5, std: 1.2)]
    let runs = [makeRun(1, label: "pretrained"), makeRun(2, label: "random", sha: "def")]
    let all = [RunID(1): pretrained, RunID(2): random]
    let ours = try MeasuredScores.select(runs: runs, scores: all, label: "pretrained", databasePath: "db")
    let base = try MeasuredScores.select(runs: runs, scores: all, label: "random", databasePath: "db")
    let banded = Comparison(measured: ours, baseline: base, noiseBand: true)
    func outcome(_ layer: String, _ k: Int? = nil) -> CellOutcome? {
      banded.cells.first { $0.key.layer == layer && $0.key.k == k }?.outcome
    }
    #expect(outcome("feature5") == .withinNoise)      // +0.6 ≤ 1.0
    #expect(outcome("feature4") == .pass)             // +1.5 > 1.0
    #expect(outcome("feature3") == .fail)             // −2.0 < −1.0
    #expect(outcome("feature5", 4) == .withinNoise)   // −2.5, band 3.0: a FAIL without the band
    #expect(outcome("feature5", 8) == .pass)          // +3.5 > 3.0
    #expect(abs(banded.cells.first { $0.key.k == 4 }!.tolerance - 3.0) < 1e-12)
    #expect(banded.table.rows.contains(["voc07-lowshot-svm", "mAP", "feature5", "4", "27.50 ±0.90", "30.00 ±1.20",
                                        "-2.50", "±3.00", "within noise"]))
    #expect(banded.summary == "5 compared: 2 pass, 2 within noise, 1 FAIL; 0 flagged (protocol differs); "
      + "0 not measured.")
    #expect(throws: CompareError.self) { try banded.verdict() }  // feature3 is really behind
    // Without the band, a zero tolerance fails every cell behind, however little.
    let strict = Comparison(measured: ours, baseline: base, tolerances: try Tolerances(parsing: ["*=0"]))
    #expect(strict.failed.count == 2 && strict.withinNoise.isEmpty)
    // Only cells within noise: nothing fails, and the verdict passes.
    let close = Comparison(measured: ours, baseline: base, tolerances: try Tolerances(parsing: ["*=2.5"]),
                           noiseBand: true)
    #expect(close.failed.isEmpty)
    try close.verdict()
  }

  @Test func runSelectionNeedsFinishedRunsAndOneCheckpoint() throws {
    let runs = [makeRun(1, label: "a"), makeRun(2, label: "b", sha: "x"), makeRun(3, label: "a", status: .failed),
                makeRun(4, label: "a")]
    let scores = [RunID(1): seed100eScores(), RunID(2): seed100eScores(), RunID(3): seed100eScores(),
                  RunID(4): [Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature5", value: 1)]]
    #expect(throws: CompareError.noRunChosen(labels: ["a", "b"], path: "db")) {
      try MeasuredScores.select(runs: runs, scores: scores, databasePath: "db")
    }
    #expect(throws: CompareError.runNotFinished(id: 3, status: "failed", path: "db")) {
      try MeasuredScores.select(runs: runs, scores: scores, runIDs: [RunID(3)], databasePath: "db")
    }
    #expect(throws: ResultsError.unknownRun(id: 9, path: "db")) {
      try MeasuredScores.select(runs: runs, scores: scores, runIDs: [RunID(9)], databasePath: "db")
    }
    #expect(throws: CompareError.unknownLabel(label: "c", known: ["a", "b"], path: "db")) {
      try MeasuredScores.select(runs: runs, scores: scores, label: "c", databasePath: "db")
    }
    // A label gathers its finished runs; the later run's value replaces the earlier one's.
    let a = try MeasuredScores.select(runs: runs, scores: scores, label: "a", databasePath: "db")
    #expect(a.runs == [RunID(1), RunID(4)])
    #expect(a.cells[CellKey(benchmark: "voc07-svm", metric: "mAP", layer: "feature5")]?.value == 1)
    // With a single checkpoint in the database, no choice is needed.
    let only = try MeasuredScores.select(runs: Array(runs.prefix(1)), scores: scores, databasePath: "db")
    #expect(only.cells.count == 15)
  }
}
