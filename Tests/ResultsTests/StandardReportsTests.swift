import Foundation
import Testing
@testable import Results

/// The seed README (shared/seed/simsiam-README.md, = MMSelfSup configs/selfsup/simsiam/README.md with the
/// 100e row of PROTOCOLS §0) rebuilt from its own numbers stored as scores.
@Suite struct StandardReportsTests {
  static let configs = [
    ("resnet50_8xb32-coslr-100e", "simsiam_resnet50_8xb32-coslr-100e_in1k.py"),
    ("resnet50_8xb32-coslr-200e", "simsiam_resnet50_8xb32-coslr-200e_in1k.py"),
  ]

  /// The seed's numbers, per config, as the scores evaluators store. feature1–4 SVM values are invented (lower
  /// than feature5) so the best-layer choice is exercised; so are the feature4 low-shot values.
  static func seedScores(_ config: Int) -> [String: [Score]] {
    let svm = [[52.1, 66.3, 75.9, 80.4, 84.21], [51.7, 67.0, 76.2, 81.3, 85.20]][config]
    let lowShot = [[39.71, 49.65, 62.79, 69.97, 74.73, 78.30, 81.06, 82.44],
                   [39.85, 50.44, 63.73, 70.93, 75.74, 79.42, 82.02, 83.44]][config]
    let linear = [[15.85, 34.02, 46.00, 60.90, 67.92, 67.88], [15.57, 37.21, 47.28, 62.21, 69.85, 69.80]][config]
    let places = [[21.32, 35.66, 43.05, 50.79, 53.27], [21.17, 35.85, 43.49, 50.99, 54.10]][config]  // v0.8.0
    let knn = [[57.4, 57.6, 55.8, 54.2], [60.2, 60.4, 58.8, 57.4]][config]  // v0.8.0
    let coco = [[38.3, 57.6, 41.7, 34.4, 54.8, 36.9], [38.8, 58.0, 42.3, 34.9, 55.3, 37.6]][config]

    var scores: [String: [Score]] = [:]
    scores["voc07-svm"] = zip(Benchmark.features, svm).map {
      Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: $0, value: $1)
    } + zip(Benchmark.lowShotK, lowShot).flatMap { k, value in [
      Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: k, value: value, count: 5,
            std: 0.3),
      Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature4", k: k, value: value + 1),
      // Per-sample detail, above the mean: must not be read as the protocol result.
      Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: k, sample: 0,
            value: value + 5),
    ] }
    scores["imagenet-linear"] = zip(Benchmark.features + ["avgpool"], linear).map {
      Score(benchmark: Benchmark.imageNetLinear, metric: "top1", layer: $0, value: $1)
    }
    scores["places205-linear"] = zip(Benchmark.features, places).map {
      Score(benchmark: Benchmark.places205Linear, metric: "top1", layer: $0, value: $1)
    }
    scores["imagenet-knn"] = zip(Benchmark.knnK, knn).map {
      Score(benchmark: Benchmark.imageNetKNN, metric: "top1", k: $0, value: $1)
    }
    scores["voc0712-faster-rcnn"] = [Score(benchmark: Benchmark.voc0712FasterRCNN, metric: "AP50",
                                           value: [79.97, 79.85][config])]
    scores["coco-mask-rcnn"] = zip(["bbox", "bbox", "bbox", "segm", "segm", "segm"].indices, coco).map { index, value in
      Score(benchmark: Benchmark.cocoMaskRCNN, metric: ["mAP", "AP50", "AP75"][index % 3],
            layer: index < 3 ? "bbox" : "segm", value: value)
    }
    scores["voc12aug-fcn"] = [Score(benchmark: Benchmark.voc12AugFCN, metric: "mIoU", value: [46.11, 46.27][config])]
    return scores
  }

  /// One finished evaluation run per (config, protocol), stored in the order the evaluations might have run.
  static func makeSeedStore(_ database: TemporaryDatabase) throws -> ResultsStore {
    let store = try ResultsStore(path: database.path)
    let protocols = ["voc07-svm", "imagenet-linear", "places205-linear", "imagenet-knn", "voc0712-faster-rcnn",
                     "coco-mask-rcnn", "voc12aug-fcn"]
    for protocolName in protocols {
      for (config, (label, file)) in configs.enumerated() {
        let id = try store.beginRun(NewRun(kind: .evaluate, protocolName: protocolName, label: label,
                                           configFile: file, checkpointSHA256: "sha-\(config)", codeVersion: "test",
                                           threads: 1))
        try store.addScores(seedScores(config)[protocolName]!, to: id)
        try store.finishRun(id)
      }
    }
    return store
  }

  @Test func reproducesTheSeedTablesLineForLine() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let reports = try StandardReports(store: Self.makeSeedStore(database))

    // Transcribed from shared/seed/simsiam-README.md, padding included.
    let voc = """
      | Self-Supervised Config                                                 | Best Layer | SVM   | k=1   | k=2   | k=4   | k=8   | k=16  | k=32  | k=64  | k=96  |
      | ---------------------------------------------------------------------- | ---------- | ----- | ----- | ----- | ----- | ----- | ----- | ----- | ----- | ----- |
      | [resnet50_8xb32-coslr-100e](simsiam_resnet50_8xb32-coslr-100e_in1k.py) | feature5   | 84.21 | 39.71 | 49.65 | 62.79 | 69.97 | 74.73 | 78.30 | 81.06 | 82.44 |
      | [resnet50_8xb32-coslr-200e](simsiam_resnet50_8xb32-coslr-200e_in1k.py) | feature5   | 85.20 | 39.85 | 50.44 | 63.73 | 70.93 | 75.74 | 79.42 | 82.02 | 83.44 |

      """
    let linear = """
      | Self-Supervised Config                                                 | Feature1 | Feature2 | Feature3 | Feature4 | Feature5 | AvgPool |
      | ---------------------------------------------------------------------- | -------- | -------- | -------- | -------- | -------- | ------- |
      | [resnet50_8xb32-coslr-100e](simsiam_resnet50_8xb32-coslr-100e_in1k.py) | 15.85    | 34.02    | 46.00    | 60.90    | 67.92    | 67.88   |
      | [resnet50_8xb32-coslr-200e](simsiam_resnet50_8xb32-coslr-200e_in1k.py) | 15.57    | 37.21    | 47.28    | 62.21    | 69.85    | 69.80   |

      """
    let voc0712 = """
      | Self-Supervised Config                                                 | AP50  |
      | ---------------------------------------------------------------------- | ----- |
      | [resnet50_8xb32-coslr-100e](simsiam_resnet50_8xb32-coslr-100e_in1k.py) | 79.97 |
      | [resnet50_8xb32-coslr-200e](simsiam_resnet50_8xb32-coslr-200e_in1k.py) | 79.85 |

      """
    let coco = """
      | Self-Supervised Config                                                 | mAP(Box) | AP50(Box) | AP75(Box) | mAP(Mask) | AP50(Mask) | AP75(Mask) |
      | ---------------------------------------------------------------------- | -------- | --------- | --------- | --------- | ---------- | ---------- |
      | [resnet50_8xb32-coslr-100e](simsiam_resnet50_8xb32-coslr-100e_in1k.py) | 38.3     | 57.6      | 41.7      | 34.4      | 54.8       | 36.9       |
      | [resnet50_8xb32-coslr-200e](simsiam_resnet50_8xb32-coslr-200e_in1k.py) | 38.8     | 58.0      | 42.3      | 34.9      | 55.3       | 37.6       |

      """
    let segmentation = """
      | Self-Supervised Config                                                 | mIOU  |
      | ---------------------------------------------------------------------- | ----- |
      | [resnet50_8xb32-coslr-100e](simsiam_resnet50_8xb32-coslr-100e_in1k.py) | 46.11 |
      | [resnet50_8xb32-coslr-200e](simsiam_resnet50_8xb32-coslr-200e_in1k.py) | 46.27 |

      """
    let pairs = [(reports.vocSVM, voc), (reports.imageNetLinear, linear), (reports.voc0712Detection, voc0712),
                 (reports.cocoDetection, coco), (reports.voc12AugSegmentation, segmentation)]
    for (table, expected) in pairs {
      let rendered = table.markdown().split(separator: "\n")
      let lines = expected.split(separator: "\n")
      #expect(rendered.count == lines.count, "\(table.title)")
      for (line, expectedLine) in zip(rendered, lines) { #expect(line == expectedLine, "\(table.title)") }
    }

    // The same tables, headings and order in the whole document (plus issue 16's AP/AP75 table after the seed's).
    let document = reports.markdown()
    let headings = document.split(separator: "\n").filter { $0.hasPrefix("#") }
    #expect(headings == ["## Results", "### Classification", "#### VOC SVM / Low-shot SVM",
                         "#### ImageNet Linear Evaluation", "#### Places205 Linear Evaluation",
                         "#### ImageNet Nearest-Neighbor Classification", "### Detection",
                         "#### Pascal VOC 2007 + 2012", "#### Pascal VOC 2007 + 2012 (paper Table 5 columns)",
                         "#### COCO2017", "### Segmentation",
                         "#### Pascal VOC 2012 + Aug"])
    for (_, expected) in pairs { #expect(document.contains(expected)) }
  }

  /// Places205 and kNN are not in the seed; v0.8.0's README prints them with 2 and 1 decimals (PROTOCOLS §0).
  @Test func rebuildsTheV080PlacesAndKNNTables() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let reports = try StandardReports(store: Self.makeSeedStore(database))
    let label = "[resnet50_8xb32-coslr-100e](simsiam_resnet50_8xb32-coslr-100e_in1k.py)"
    #expect(reports.places205Linear.columns == ["Self-Supervised Config", "Feature1", "Feature2", "Feature3",
                                                "Feature4", "Feature5"])
    #expect(reports.places205Linear.rows.first == [label, "21.32", "35.66", "43.05", "50.79", "53.27"])
    #expect(reports.imageNetKNN.columns == ["Self-Supervised Config", "k=10", "k=20", "k=100", "k=200"])
    #expect(reports.imageNetKNN.rows.map { Array($0.dropFirst()) } == [["57.4", "57.6", "55.8", "54.2"],
                                                                        ["60.2", "60.4", "58.8", "57.4"]])
  }

  @Test func missingScoresAreDashesAndOnlyFinishedRunsCount() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    func evaluate(_ label: String, _ scores: [Score], finish: Bool = true) throws {
      let id = try store.beginRun(NewRun(kind: .evaluate, protocolName: "p", label: label, codeVersion: "test",
                                         threads: 1))
      try store.addScores(scores, to: id)
      if finish { try store.finishRun(id) } else { try store.failRun(id, message: "stopped") }
    }
    try evaluate("random-init", [Score(benchmark: Benchmark.imageNetLinear, metric: "top1", layer: "feature2",
                                       value: 12.345)])
    try evaluate("pretrained", [Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature3",
                                      k: 2, value: 30), 
                                Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature4",
                                      k: 2, value: 31.5)])
    try evaluate("pretrained", [Score(benchmark: Benchmark.imageNetLinear, metric: "top1", layer: "feature2",
                                      value: 40)])
    try evaluate("pretrained", [Score(benchmark: Benchmark.imageNetLinear, metric: "top1", layer: "feature2",
                                      value: 41)])  // a re-evaluation replaces the first
    try evaluate("crashed", [Score(benchmark: Benchmark.imageNetLinear, metric: "top1", layer: "avgpool",
                                   value: 99)], finish: false)

    let reports = try StandardReports(store: store)
    #expect(reports.imageNetLinear.rows == [["random-init", "–", "12.35", "–", "–", "–", "–"],
                                            ["pretrained", "–", "41.00", "–", "–", "–", "–"]])
    // No full-SVM score names a best layer, so each k takes the best layer for that k.
    #expect(reports.vocSVM.rows == [["pretrained", "–", "–", "–", "31.50", "–", "–", "–", "–", "–", "–"]])
    #expect(reports.voc0712Detection.rows.isEmpty)
    let document = reports.markdown(source: "results/x.sqlite")
    #expect(document.contains("results/x.sqlite") && !document.contains("COCO2017") && !document.contains("crashed"))

    let empty = StandardReports(runs: [], scores: [:]).markdown()
    #expect(empty.contains("No finished run"))
  }
}

@Suite struct TableTests {
  @Test func markdownPadsColumnsAndEscapesPipes() {
    let table = Table(title: "t", columns: ["a", "long header"], rows: [["x|y", "1"], ["", "22"]])
    #expect(table.markdown() == """
      | a    | long header |
      | ---- | ----------- |
      | x\\|y | 1           |
      |      | 22          |

      """)
  }

  @Test func csvQuotesOnlyWhatNeedsIt() {
    let table = Table(title: "t", columns: ["name", "value"], rows: [["a,b", "1"], ["say \"hi\"", "2"], ["plain", "3"]])
    #expect(table.csv() == "name,value\r\n\"a,b\",1\r\n\"say \"\"hi\"\"\",2\r\nplain,3\r\n")
  }

  @Test func textAlignsColumns() {
    let table = Table(title: "t", columns: ["id", "status"], rows: [["1", "running"], ["12", "died"]])
    #expect(table.text() == "id  status\n1   running\n12  died\n")
  }
}
