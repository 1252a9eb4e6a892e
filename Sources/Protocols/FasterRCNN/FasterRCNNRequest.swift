// `run faster-rcnn`: what a run is asked to do (the request and how its config is resolved) and what it produced
// (the result, its score rows and its README tables).
import Evaluation
import Foundation
import Results
import Support

/// One Faster R-CNN fine-tuning and evaluation, as the CLI or quickstart asks for it.
public struct FasterRCNNRequest {
  public var backbone: BackboneRequest
  public var config: FasterRCNNBenchmarkConfig
  /// The config's name (its file name, or the preset's): names the work directory.
  public var configName: String
  /// The config file given, recorded with the run.
  public var configFile: String?
  /// The name reports show (default: the checkpoint's file name).
  public var label: String?
  /// Checkpoints and log.txt (default: work_dirs/<config name>/<label>).
  public var workDirectory: URL?
  /// Continue from the work directory's latest checkpoint (bit-exact: every random draw is keyed by the seed and
  /// the iteration or sample position).
  public var resume = false
  public var database: String
  /// Seconds between progress lines when standard output is not a terminal.
  public var logInterval: Double = 10
  /// Stop after this many iterations of the schedule (checkpoint written, no score); `--resume` continues.
  public var stopAfter: Int?

  public init(backbone: BackboneRequest, config: FasterRCNNBenchmarkConfig, configName: String,
              configFile: String? = nil, label: String? = nil, workDirectory: URL? = nil, resume: Bool = false,
              database: String) {
    self.backbone = backbone
    self.config = config
    self.configName = configName
    self.configFile = configFile
    self.label = label
    self.workDirectory = workDirectory
    self.resume = resume
    self.database = database
  }

  /// The config of a run: `file` if given; else the protocol of the first data folder (the reference for a VOC
  /// devkit of the 20 classes, the scene miniature for a `data make-scenes` devkit). `data` (one or more devkit year
  /// folders) sets data.paths before `overrides`; an explicit `seed` wins over all.
  /// - Parameter preset: use this embedded config instead of detecting one from the folder (without `file`).
  public static func config(file: String?, data: [String], overrides: [String], seed: UInt64?,
                            preset: EmbeddedConfig? = nil) throws -> (config: FasterRCNNBenchmarkConfig, name: String) {
    var early: [String] = []
    var late = overrides
    if !data.isEmpty {
      // A JSON list is YAML flow syntax; quoting keeps commas, brackets and colons in paths literal.
      let quoted = data.map { path in
        (try? JSONEncoder().encode(path)).flatMap { String(data: $0, encoding: .utf8) } ?? path
      }
      early.append("data.paths=[\(quoted.joined(separator: ", "))]")
    }
    if let seed { late.append("seed=\(seed)") }
    if let file {
      return (try FasterRCNNBenchmarkConfig.load(yaml: try readConfigFile(file), source: file,
                                                 overrides: early + late), configFileName(file))
    }
    let preset = preset ?? FasterRCNNPresets.preset(forDataAt: data.first)
    return (try FasterRCNNBenchmarkConfig.load(yaml: preset.yaml, source: preset.name, overrides: early + late),
            preset.name)
  }
}

/// The scores of one evaluation on the test set: mmdet's eval_map (the seed's AP50) and detectron2's VOC evaluator
/// (AP over IoU 0.50:0.95 and AP75, the paper's Table 5), all 11-point for VOC2007.
public struct DetectionScores: Sendable, Equatable {
  public var mmdet: MMDetMAPResult
  public var detectron2: Detectron2VOCResult

  public init(mmdet: MMDetMAPResult, detectron2: Detectron2VOCResult) {
    self.mmdet = mmdet
    self.detectron2 = detectron2
  }
}

/// What a finished Faster R-CNN run produced.
public struct FasterRCNNResult {
  public var runID: RunID
  public var label: String
  public var benchmark: BenchmarkID
  /// Iterations trained.
  public var iteration: Int
  public var classNames: [String]
  /// The final evaluation; nil when the run stopped before the end of its schedule (`stopAfter`).
  public var scores: DetectionScores?

  /// AP50 (mmdet, per class), AP and AP75 (detectron2), in percent; `iteration` set for periodic evaluations.
  static func scores(benchmark: BenchmarkID, classNames: [String], scores: DetectionScores,
                     iteration: Int?) -> [Score] {
    let perClassAP50 = zip(classNames, scores.mmdet.perClassAP).map { ClassValue(className: $0, value: 100 * $1) }
    return [
      Score(benchmark: benchmark, metric: .ap50, epoch: iteration, value: 100 * scores.mmdet.mAP,
            perClass: perClassAP50),
      Score(benchmark: benchmark, metric: .mAP, epoch: iteration, value: scores.detectron2.ap),
      Score(benchmark: benchmark, metric: .ap75, epoch: iteration, value: scores.detectron2.ap75),
    ]
  }

  /// The protocol's result rows (no iteration); none for a run stopped before the end.
  public var rows: [Score] {
    scores.map { FasterRCNNResult.scores(benchmark: benchmark, classNames: classNames, scores: $0, iteration: nil) }
      ?? []
  }

  /// The seed README's "Pascal VOC 2007 + 2012" layout (config, AP50), then the paper's AP and AP75.
  public var table: Table {
    let columns = ["Self-Supervised Config", "AP50", "AP", "AP75"]
    guard let scores else {
      return Table(title: "VOC07+12 Faster R-CNN: stopped at iteration \(iteration) (resume with --resume)",
                   columns: columns, rows: [[label, "–", "–", "–"]])
    }
    return Table(title: "VOC07+12 Faster R-CNN C4 (iteration \(iteration)); AP50 mmdet 11-point, AP/AP75 detectron2",
                 columns: columns,
                 rows: [[label, String(format: "%.2f", 100 * scores.mmdet.mAP),
                         String(format: "%.2f", scores.detectron2.ap), String(format: "%.2f", scores.detectron2.ap75)]])
  }

  /// Per-class AP50 (mmdet) with the class's number of non-difficult test objects.
  public var perClassTable: Table {
    guard let scores else { return Table(title: "per-class AP50 (%)", columns: ["Class", "AP50", "objects"], rows: []) }
    return Table(title: "per-class AP50 (%)", columns: ["Class", "AP50", "objects"],
                 rows: classNames.indices.map { index in
                   [classNames[index], String(format: "%.2f", 100 * scores.mmdet.perClassAP[index]),
                    String(scores.mmdet.groundTruthCounts[index])]
                 })
  }
}
