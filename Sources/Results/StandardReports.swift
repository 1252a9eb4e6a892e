// The reference README's tables (MMSelfSup configs/selfsup/simsiam/README.md, v0.7.0–v0.8.0), rebuilt from
// stored scores: one row per evaluated checkpoint, "–" where a score is missing.
import Foundation

/// The stored strings of the seed README's benchmarks (`BenchmarkID`'s, for code that writes strings), and the
/// layers and k each table reads.
///
/// Values are percentages. Tables read only a run's protocol result (`sample` and `cost` nil).
public enum Benchmark {
  /// VOC07 linear SVM, metric `mAP`, layer `feature1` … `feature5`.
  public static let voc07SVM = BenchmarkID.voc07SVM.rawValue
  /// VOC07 low-shot SVM, metric `mAP`, layer `feature1` … `feature5`, `k` in 1 … 96 (mean over samples).
  public static let voc07LowShotSVM = BenchmarkID.voc07LowShotSVM.rawValue
  /// ImageNet linear probes, metric `top1`, layer `feature1` … `feature5` (multi-head) or `avgpool`.
  public static let imageNetLinear = BenchmarkID.imageNetLinear.rawValue
  /// Places205 linear probes, metric `top1`, layer `feature1` … `feature5`.
  public static let places205Linear = BenchmarkID.places205Linear.rawValue
  /// ImageNet weighted kNN on GAP features, metric `top1`, `k` in 10, 20, 100, 200.
  public static let imageNetKNN = BenchmarkID.imageNetKNN.rawValue
  /// Faster R-CNN R50-C4 on VOC07+12, metric `AP50`.
  public static let voc0712FasterRCNN = BenchmarkID.voc0712FasterRCNN.rawValue
  /// Mask R-CNN R50-FPN 1x on COCO2017, metrics `mAP`, `AP50`, `AP75`, layer (head) `bbox` or `segm`.
  public static let cocoMaskRCNN = BenchmarkID.cocoMaskRCNN.rawValue
  /// FCN R50-D8 on VOC12 + Aug, metric `mIoU`.
  public static let voc12AugFCN = BenchmarkID.voc12AugFCN.rawValue

  /// The backbone features, stem to layer4, as MMSelfSup names them in the tables.
  public static let features = (1...5).map { "feature\($0)" }
  /// The low-shot SVM's samples per class.
  public static let lowShotK = [1, 2, 4, 8, 16, 32, 64, 96]
  /// The kNN classifier's neighbour counts.
  public static let knnK = [10, 20, 100, 200]
}

/// Builds the standard tables from finished runs and their scores.
public struct StandardReports: Sendable {
  /// A checkpoint's evaluations: finished runs sharing a label and checkpoint hash, oldest first.
  struct Checkpoint: Sendable {
    var label: String
    var configFile: String?
    var runs: [Run]
    var scores: [Score]  // protocol results only, oldest run first

    /// The label as a Markdown link to its config file, as the seed writes it.
    var cell: String { configFile.map { "[\(label)](\($0))" } ?? label }
  }

  let checkpoints: [Checkpoint]

  /// Groups `runs` (only finished ones count) by label and checkpoint hash, in order of their first run.
  public init(runs: [Run], scores: [RunID: [Score]]) {
    var groups: [Checkpoint] = []
    var index: [String: Int] = [:]
    for run in runs.sorted(by: { $0.runID < $1.runID }) where run.status == .finished {
      let key = run.label + "\u{0}" + (run.checkpointSHA256 ?? "")
      let results = (scores[run.runID] ?? []).filter(\.isProtocolResult)
      if let position = index[key] {
        groups[position].runs.append(run)
        groups[position].scores += results
        groups[position].configFile = groups[position].configFile ?? run.configFile
      } else {
        index[key] = groups.count
        groups.append(Checkpoint(label: run.label, configFile: run.configFile, runs: [run], scores: results))
      }
    }
    checkpoints = groups
  }

  /// Reads every finished run and its scores from `store`.
  public init(store: ResultsStore) throws {
    self.init(runs: try store.runs(), scores: try store.allScores())
  }

  // MARK: - Tables

  /// Best layer by full-SVM mAP, its mAP, and low-shot mAP at k = 1 … 96 at that layer (at the best layer for
  /// each k when no full-SVM score names one).
  public var vocSVM: Table {
    let columns = ["Self-Supervised Config", "Best Layer", "SVM"] + Benchmark.lowShotK.map { "k=\($0)" }
    return table("VOC SVM / Low-shot SVM", columns: columns) { checkpoint in
      let svm = layerValues(checkpoint, .voc07SVM, metric: .mAP)
      let best = svm.max { $0.value < $1.value }  // first of equal maxima, in layer order
      let lowShot = Benchmark.lowShotK.map { k -> Double? in
        let values = layerValues(checkpoint, .voc07LowShotSVM, metric: .mAP, k: k)
        if let best { return values.first { $0.layer == best.layer }?.value }
        return values.map(\.value).max()
      }
      return [best?.layer, format(best?.value, decimals: 2)] + lowShot.map { format($0, decimals: 2) }
    }
  }

  /// Multi-head linear probes on feature1 … feature5 and the GAP linear probe.
  public var imageNetLinear: Table {
    table("ImageNet Linear Evaluation", columns: ["Self-Supervised Config"] + (1...5).map { "Feature\($0)" }
          + ["AvgPool"]) { checkpoint in
      (Benchmark.features + ["avgpool"]).map {
        format(value(checkpoint, .imageNetLinear, metric: .top1, layer: $0), decimals: 2)
      }
    }
  }

  /// Multi-head linear probes on Places205.
  public var places205Linear: Table {
    table("Places205 Linear Evaluation", columns: ["Self-Supervised Config"] + (1...5).map { "Feature\($0)" }) {
      checkpoint in
      Benchmark.features.map {
        format(value(checkpoint, .places205Linear, metric: .top1, layer: $0), decimals: 2)
      }
    }
  }

  /// Weighted kNN top-1 for k = 10, 20, 100, 200.
  public var imageNetKNN: Table {
    table("ImageNet Nearest-Neighbor Classification",
          columns: ["Self-Supervised Config"] + Benchmark.knnK.map { "k=\($0)" }) { checkpoint in
      Benchmark.knnK.map { format(value(checkpoint, .imageNetKNN, metric: .top1, k: $0), decimals: 1) }
    }
  }

  /// Linear-probe and kNN tables for datasets other than the seed's (e.g. `fashion-mnist-linear`,
  /// `cifar10-knn`), in the seed's layouts, one table per benchmark present, by name.
  public var otherDatasetTables: [Table] {
    let present = Set(checkpoints.flatMap { $0.scores.compactMap(\.benchmarkID) }).filter(Self.hasOtherDatasetTable)
    var tables: [Table] = []
    // Linear tables first, then kNN (the seed's order), each by dataset name.
    for benchmark in present.sorted(by: {
      ($0.protocol == .knn ? 1 : 0, $0.rawValue) < ($1.protocol == .knn ? 1 : 0, $1.rawValue)
    }) {
      let dataset = benchmark.dataset.title
      switch benchmark.protocol {
      case .linear:
        tables.append(table("\(dataset) Linear Evaluation",
                            columns: ["Self-Supervised Config"] + (1...5).map { "Feature\($0)" } + ["AvgPool"]) {
          checkpoint in
          (Benchmark.features + ["avgpool"]).map {
            format(value(checkpoint, benchmark, metric: .top1, layer: $0), decimals: 2)
          }
        })
      case .knn:
        tables.append(table("\(dataset) Nearest-Neighbor Classification",
                            columns: ["Self-Supervised Config"] + Benchmark.knnK.map { "k=\($0)" }) { checkpoint in
          Benchmark.knnK.map { format(value(checkpoint, benchmark, metric: .top1, k: $0), decimals: 1) }
        })
      default:
        break
      }
    }
    return tables
  }

  /// A linear-probe or kNN benchmark the seed has no table for gets one in the seed's layout.
  static func hasOtherDatasetTable(_ benchmark: BenchmarkID) -> Bool {
    !benchmark.isStandard && (benchmark.protocol == .linear || benchmark.protocol == .knn)
  }

  /// Whether some table shows `benchmark`'s protocol results.
  static func hasTable(_ benchmark: BenchmarkID) -> Bool { benchmark.isStandard || hasOtherDatasetTable(benchmark) }

  /// Protocol results no table shows: benchmarks this version does not know (a string stored by a newer or other
  /// tool), and known ones without a table (e.g. an SVM on another dataset). Nothing stored is hidden.
  public var otherScores: Table {
    var rows: [[String]] = []
    for checkpoint in checkpoints {
      var latest: [CellKey: Score] = [:]
      for score in checkpoint.scores where !(score.benchmarkID.map(Self.hasTable) ?? false) {
        latest[CellKey(score)] = score
      }
      for (key, score) in latest.sorted(by: { $0.key < $1.key }) {
        rows.append([checkpoint.cell, key.benchmark, key.metric, key.layer ?? "", key.k.map(String.init) ?? "",
                     String(format: "%.2f", score.value) + (score.std.map { String(format: " ±%.2f", $0) } ?? "")])
      }
    }
    return Table(title: "Other scores", columns: ["Self-Supervised Config", "Benchmark", "Metric", "Layer", "k",
                                                  "Value"], rows: rows)
  }

  /// Faster R-CNN C4 on VOC07+12.
  public var voc0712Detection: Table {
    table("Pascal VOC 2007 + 2012", columns: ["Self-Supervised Config", "AP50"]) { checkpoint in
      [format(value(checkpoint, .voc0712FasterRCNN, metric: .ap50), decimals: 2)]
    }
  }

  /// Faster R-CNN C4 on VOC07+12 in the paper's Table 5 columns: AP50, AP (IoU 0.50:0.95) and AP75.
  public var voc0712DetectionPaper: Table {
    table("Pascal VOC 2007 + 2012 (paper Table 5 columns)", columns: ["Self-Supervised Config", "AP50", "AP", "AP75"]) {
      checkpoint in
      [Metric.ap50, .mAP, .ap75].map { format(value(checkpoint, .voc0712FasterRCNN, metric: $0), decimals: 1) }
    }
  }

  /// Mask R-CNN FPN 1x on COCO2017, box then mask.
  public var cocoDetection: Table {
    let heads = [("bbox", "Box"), ("segm", "Mask")]
    let metrics: [Metric] = [.mAP, .ap50, .ap75]
    let columns = heads.flatMap { head in metrics.map { "\($0.rawValue)(\(head.1))" } }
    return table("COCO2017", columns: ["Self-Supervised Config"] + columns) { checkpoint in
      heads.flatMap { head in
        metrics.map {
          format(value(checkpoint, .cocoMaskRCNN, metric: $0, layer: head.0), decimals: 1)
        }
      }
    }
  }

  /// FCN on VOC12 + Aug.
  public var voc12AugSegmentation: Table {
    table("Pascal VOC 2012 + Aug", columns: ["Self-Supervised Config", "mIOU"]) { checkpoint in
      [format(value(checkpoint, .voc12AugFCN, metric: .mIoU), decimals: 2)]
    }
  }

  /// The tables in the seed README's order, under its section headings.
  public var sections: [(title: String, tables: [Table])] {
    [("Classification", [vocSVM, imageNetLinear, places205Linear, imageNetKNN] + otherDatasetTables),
     ("Detection", [voc0712Detection, voc0712DetectionPaper, cocoDetection]),
     ("Segmentation", [voc12AugSegmentation])]
  }

  /// `sections` and, when some protocol result has no table, an "Other" section with `otherScores`.
  public var sectionsWithOther: [(title: String, tables: [Table])] {
    let other = otherScores
    return sections + (other.rows.isEmpty ? [] : [("Other", [other])])
  }

  /// Every table with at least one row, as Markdown sections (`###` section, `####` table).
  public func markdown(source: String? = nil) -> String {
    var text = "## Results\n\n"
    if let source { text += "Generated by `simsiam-bench report markdown` from `\(source)`. Do not edit by hand.\n\n" }
    var isEmpty = true
    for section in sectionsWithOther {
      let tables = section.tables.filter { !$0.rows.isEmpty }
      guard !tables.isEmpty else { continue }
      isEmpty = false
      text += "### \(section.title)\n\n"
      for table in tables { text += "#### \(table.title)\n\n" + table.markdown() + "\n" }
    }
    if isEmpty { text += "No finished run has stored scores for these tables yet.\n" }
    return text
  }

  // MARK: - Cells

  /// One row per checkpoint with at least one score in the table; `cells` returns the cells after the label,
  /// nil where a score is missing.
  private func table(_ title: String, columns: [String], cells: (Checkpoint) -> [String?]) -> Table {
    let rows = checkpoints.compactMap { checkpoint -> [String]? in
      let row = cells(checkpoint)
      guard row.contains(where: { $0 != nil }) else { return nil }
      return [checkpoint.cell] + row.map { $0 ?? Self.missing }
    }
    return Table(title: title, columns: columns, rows: rows)
  }

  /// The marker of a missing score.
  public static let missing = "–"

  /// The latest protocol result of `benchmark`/`metric` at `layer` and `k` (a re-evaluation replaces the old).
  private func value(_ checkpoint: Checkpoint, _ benchmark: BenchmarkID, metric: Metric, layer: String? = nil,
                     k: Int? = nil) -> Double? {
    let benchmark = benchmark.rawValue, metric = metric.rawValue  // compared as stored
    return checkpoint.scores.last {
      $0.benchmark == benchmark && $0.metric == metric && $0.layer == layer && $0.k == k
    }?.value
  }

  /// The latest value per layer, layers in `Benchmark.features` order, then any others by name.
  private func layerValues(_ checkpoint: Checkpoint, _ benchmark: BenchmarkID, metric: Metric,
                           k: Int? = nil) -> [(layer: String, value: Double)] {
    let stored = benchmark.rawValue, storedMetric = metric.rawValue
    let layers = Set(checkpoint.scores.compactMap { score in
      score.benchmark == stored && score.metric == storedMetric && score.k == k ? score.layer : nil
    })
    let ordered = Benchmark.features.filter(layers.contains) + layers.subtracting(Benchmark.features).sorted()
    return ordered.compactMap { layer in
      value(checkpoint, benchmark, metric: metric, layer: layer, k: k).map { (layer, $0) }
    }
  }

  /// Fixed decimals as the seed prints them (84.21, 38.3), or nil.
  private func format(_ value: Double?, decimals: Int) -> String? {
    value.map { String(format: "%.\(decimals)f", $0) }
  }
}
