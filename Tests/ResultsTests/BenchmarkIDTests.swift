import Foundation
import Testing
@testable import Results

/// Typed benchmark ids and metrics: they print exactly the strings the database holds, parse nothing else, and
/// reports keep showing scores whose strings they do not know.
@Suite struct BenchmarkIDTests {
  /// Every benchmark string a producer stores: the seed's (StandardReports, ReferenceNumbers), `run linear` /
  /// `run knn` (`<BenchmarkDataset(ClassificationDataKind)>-linear|knn`: fashion-mnist, cifar10, imagenet, places205,
  /// inat18, synthetic) and the pretraining kNN monitor (`<data.kind>-knn`, which includes image-folder).
  static let stored: [(String, BenchmarkDataset, EvaluationProtocol)] = [
    ("voc07-svm", .voc07, .svm), ("voc07-lowshot-svm", .voc07, .lowShotSVM),
    ("imagenet-linear", .imagenet, .linear), ("places205-linear", .places205, .linear),
    ("imagenet-knn", .imagenet, .knn), ("voc0712-faster-rcnn", .voc0712, .fasterRCNN),
    ("coco-mask-rcnn", .coco, .maskRCNN), ("voc12aug-fcn", .voc12aug, .fcn),
    ("fashion-mnist-linear", .fashionMNIST, .linear), ("fashion-mnist-knn", .fashionMNIST, .knn),
    ("cifar10-linear", .cifar10, .linear), ("cifar10-knn", .cifar10, .knn),
    ("inat18-linear", .inat18, .linear), ("inat18-knn", .inat18, .knn),
    ("places205-knn", .places205, .knn),
    ("synthetic-linear", .synthetic, .linear), ("synthetic-knn", .synthetic, .knn),
    ("image-folder-knn", .imageFolder, .knn),
  ]

  @Test(arguments: stored)
  func everyStoredStringRoundTrips(_ text: String, _ dataset: BenchmarkDataset, _ evaluation: EvaluationProtocol) {
    let id = BenchmarkID(rawValue: text)
    #expect(id == BenchmarkID(dataset, evaluation))
    #expect(id?.rawValue == text && id?.description == text)
    #expect(BenchmarkID.parse(text) == id)
  }

  @Test func everyDatasetAndProtocolRoundTrips() {
    for dataset in BenchmarkDataset.allCases {
      for evaluation in EvaluationProtocol.allCases {
        let id = BenchmarkID(dataset, evaluation)
        #expect(BenchmarkID(rawValue: id.rawValue) == id, "\(id)")
      }
    }
  }

  @Test func theNamedConstantsAreTheSeedStrings() {
    #expect(BenchmarkID.standard.map(\.rawValue) == [
      "voc07-svm", "voc07-lowshot-svm", "imagenet-linear", "places205-linear", "imagenet-knn",
      "voc0712-faster-rcnn", "coco-mask-rcnn", "voc12aug-fcn"])
    #expect([Benchmark.voc07SVM, Benchmark.voc07LowShotSVM, Benchmark.imageNetLinear, Benchmark.places205Linear,
             Benchmark.imageNetKNN, Benchmark.voc0712FasterRCNN, Benchmark.cocoMaskRCNN, Benchmark.voc12AugFCN]
            == BenchmarkID.standard.map(\.rawValue))
    #expect(BenchmarkID.voc07SVM.isStandard && !BenchmarkID(.fashionMNIST, .knn).isStandard)
  }

  @Test(arguments: ["", "b", "voc07", "svm", "-svm", "voc07-", "voc07-svm2", "VOC07-svm", "voc07-SVM",
                    "foo-linear", "voc-svm", "voc07-lowshot", "voc07--svm", "voc07-svm ", " voc07-svm",
                    "imagenet-linear-knn", "fashion_mnist-knn"])
  func unknownStringsParseToNil(_ text: String) {
    #expect(BenchmarkID(rawValue: text) == nil)
    #expect(BenchmarkID.parse(text) == nil)
  }

  @Test func ordersAsTheSeedREADMEThenByName() {
    let ids = ["fashion-mnist-knn", "voc12aug-fcn", "cifar10-linear", "voc07-svm", "imagenet-knn"]
      .compactMap(BenchmarkID.init(rawValue:))
    #expect(ids.sorted().map(\.rawValue) == ["voc07-svm", "imagenet-knn", "voc12aug-fcn", "cifar10-linear",
                                             "fashion-mnist-knn"])
  }

  @Test func codableAsTheStoredString() throws {
    let data = try JSONEncoder().encode([BenchmarkID.voc07LowShotSVM])
    #expect(String(decoding: data, as: UTF8.self) == #"["voc07-lowshot-svm"]"#)
    #expect(try JSONDecoder().decode([BenchmarkID].self, from: data) == [.voc07LowShotSVM])
    #expect(throws: DecodingError.self) { try JSONDecoder().decode([BenchmarkID].self, from: Data(#"["b"]"#.utf8)) }
  }

  @Test func metricsRoundTripTheStoredStringsAndKnowTheHeadlines() {
    let stored = ["mAP", "cv-AP", "chosen-cost", "mAP-min", "mAP-max", "top1", "top5", "AP", "AP50", "AP75", "mIoU", "mAcc", "aAcc"]
    #expect(Metric.allCases.map(\.rawValue) == stored)
    for text in stored { #expect(Metric(rawValue: text)?.rawValue == text) }
    for text in ["m", "map", "MAP", "top-1", "ap50", ""] { #expect(Metric(rawValue: text) == nil, "\(text)") }
    // The set `compare --baseline` used to spell out: what the seed README's tables print.
    #expect(Set(Metric.allCases.filter(\.isHeadline).map(\.rawValue)) == ["mAP", "top1", "AP50", "AP75", "mIoU"])
  }

  @Test func typedScoresAreTheStringScoresAndReadBack() throws {
    let typed = Score(benchmark: .voc07LowShotSVM, metric: .mAPMin, layer: "feature5", k: 8, value: 61.5, count: 5)
    #expect(typed == Score(benchmark: "voc07-lowshot-svm", metric: "mAP-min", layer: "feature5", k: 8, value: 61.5,
                           count: 5))
    #expect(typed.benchmarkID == .voc07LowShotSVM && typed.metricKind == .mAPMin)
    let unknown = Score(benchmark: "mystery-benchmark", metric: "accuracy", value: 1)
    #expect(unknown.benchmarkID == nil && unknown.metricKind == nil)

    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    let run = try store.beginRun(sampleRun())
    try store.addScores([typed, unknown], to: run)
    let read = try store.scores(run: run)
    #expect(read.map(\.benchmark) == ["voc07-lowshot-svm", "mystery-benchmark"])
    #expect(read.map(\.benchmarkID) == [.voc07LowShotSVM, nil] && read.map(\.metricKind) == [.mAPMin, nil])
  }
}
