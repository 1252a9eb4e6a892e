// `run mask-rcnn`: what a run is asked to do (the request and how its config is resolved) and what it produced
// (the result, its score rows and its README table).
import Evaluation
import Foundation
import Results
import Support

/// One Mask R-CNN fine-tuning and evaluation, as the CLI or quickstart asks for it.
public struct MaskRCNNRequest {
  public var backbone: BackboneRequest
  public var config: MaskRCNNBenchmarkConfig
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

  public init(backbone: BackboneRequest, config: MaskRCNNBenchmarkConfig, configName: String,
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

  /// The config of a run: `file` if given; else the protocol of the data folder (the scene miniature for a
  /// `data make-scenes` folder, the reference otherwise). `data` sets data.root before `overrides`; an explicit
  /// `seed` wins over all.
  public static func config(file: String?, data: String?, overrides: [String], seed: UInt64?,
                            preset: EmbeddedConfig? = nil) throws -> (config: MaskRCNNBenchmarkConfig, name: String) {
    var early: [String] = []
    var late = overrides
    if let data {
      // JSON string syntax is YAML flow syntax; quoting keeps colons and brackets in the path literal.
      let quoted = (try? JSONEncoder().encode(data)).flatMap { String(data: $0, encoding: .utf8) } ?? data
      early.append("data.root=\(quoted)")
    }
    if let seed { late.append("seed=\(seed)") }
    if let file {
      return (try MaskRCNNBenchmarkConfig.load(yaml: try readConfigFile(file), source: file,
                                               overrides: early + late), configFileName(file))
    }
    let preset = preset ?? MaskRCNNPresets.preset(forDataAt: data)
    return (try MaskRCNNBenchmarkConfig.load(yaml: preset.yaml, source: preset.name, overrides: early + late),
            preset.name)
  }
}

/// COCO box and mask AP of one evaluation: pycocotools' 12 summary numbers for each IoU type.
public struct InstanceSegmentationScores: Sendable, Equatable {
  /// COCOeval stats for `bbox` and `segm` (fractions; stats[0] = AP@[.5:.95], [1] = AP50, [2] = AP75).
  public var box: [Double]
  public var mask: [Double]

  public init(box: [Double], mask: [Double]) {
    precondition(box.count == 12 && mask.count == 12,
                 "COCO summaries have 12 numbers, got \(box.count) (bbox) and \(mask.count) (segm).")
    self.box = box
    self.mask = mask
  }
}

/// What a finished Mask R-CNN run produced.
public struct MaskRCNNResult {
  public var runID: RunID
  public var label: String
  public var benchmark: BenchmarkID
  /// Iterations trained.
  public var iteration: Int
  /// The final evaluation; nil when the run stopped before the end of its schedule (`stopAfter`).
  public var scores: InstanceSegmentationScores?

  /// mAP, AP50 and AP75 (percent) for the `bbox` and `segm` heads; `iteration` set for periodic evaluations.
  static func scores(benchmark: BenchmarkID, scores: InstanceSegmentationScores, iteration: Int?) -> [Score] {
    [("bbox", scores.box), ("segm", scores.mask)].flatMap { head, stats in
      [(Metric.mAP, stats[0]), (.ap50, stats[1]), (.ap75, stats[2])].map { metric, value in
        Score(benchmark: benchmark, metric: metric, layer: head, epoch: iteration, value: 100 * value)
      }
    }
  }

  /// The protocol's result rows (no iteration); none for a run stopped before the end.
  public var rows: [Score] {
    scores.map { MaskRCNNResult.scores(benchmark: benchmark, scores: $0, iteration: nil) } ?? []
  }

  /// The seed README's "COCO2017" layout: box mAP / AP50 / AP75, then mask mAP / AP50 / AP75.
  public var table: Table {
    let columns = ["Self-Supervised Config", "Box mAP", "Box AP50", "Box AP75", "Mask mAP", "Mask AP50", "Mask AP75"]
    guard let scores else {
      return Table(title: "COCO2017 Mask R-CNN: stopped at iteration \(iteration) (resume with --resume)",
                   columns: columns, rows: [[label] + Array(repeating: "–", count: 6)])
    }
    let cells = (scores.box.prefix(3) + scores.mask.prefix(3)).map { String(format: "%.1f", 100 * $0) }
    return Table(title: "COCO2017 Mask R-CNN FPN (iteration \(iteration)); COCO AP as pycocotools computes it",
                 columns: columns, rows: [[label] + cells])
  }
}
