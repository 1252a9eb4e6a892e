// `run fcn`: what a run is asked to do (the request and how its config is resolved) and what it produced (the
// result, its score rows and its README table).
import Datasets
import Distributed
import Evaluation
import Foundation
import Results
import Support

/// One FCN fine-tuning and evaluation, as the CLI or quickstart asks for it.
public struct FCNRequest {
  public var backbone: BackboneRequest
  public var config: FCNBenchmarkConfig
  /// The config's name (its file name, or the preset's): names the work directory.
  public var configName: String
  /// The config file given, recorded with the run.
  public var configFile: String?
  /// The name reports show (default: the checkpoint's file name).
  public var label: String?
  /// Checkpoints and log.txt (default: work_dirs/<config name>/<label>).
  public var workDirectory: URL?
  /// Continue from the work directory's latest checkpoint (bit-exact: every random draw is keyed by the seed
  /// and the iteration or sample position, not by a stream that would have to be replayed).
  public var resume = false
  public var database: String
  /// Seconds between progress lines when standard output is not a terminal.
  public var logInterval: Double = 10
  /// Stop after this many iterations of the schedule (a checkpoint is written, the run is finished with a message and
  /// no score); `--resume` continues it. Splits a long schedule over sessions without changing it (the LR still
  /// follows `schedule.iterations`).
  public var stopAfter: Int?
  /// The ranks the run is split over (`mpirun -np N`): rank 0 calls `FCNProtocol.run` and writes the checkpoints,
  /// log and rows; the others call `runAsWorker` and write nothing.
  public var processGroup: any ProcessGroup = SingleProcessGroup()

  public init(backbone: BackboneRequest, config: FCNBenchmarkConfig, configName: String, configFile: String? = nil,
              label: String? = nil, workDirectory: URL? = nil, resume: Bool = false, database: String) {
    self.backbone = backbone
    self.config = config
    self.configName = configName
    self.configFile = configFile
    self.label = label
    self.workDirectory = workDirectory
    self.resume = resume
    self.database = database
  }

  /// The config of a run: `file` if given; else the protocol of the folder's layout (voc12aug for a VOC2012 folder,
  /// Cityscapes for a Cityscapes folder, the scene miniature for a `data make-scenes` devkit). `data` sets data.path
  /// before `overrides`; an explicit `seed` wins over all.
  /// - Parameter preset: use this embedded config instead of detecting one from the folder (without `file`).
  public static func config(file: String?, data: String?, overrides: [String], seed: UInt64?,
                            preset: EmbeddedConfig? = nil) throws -> (config: FCNBenchmarkConfig, name: String) {
    var early: [String] = []
    var late = overrides
    if let data { early.append("data.path=\(data)") }
    if let seed { late.append("seed=\(seed)") }
    if let file {
      return (try FCNBenchmarkConfig.load(yaml: try readConfigFile(file), source: file, overrides: early + late),
              configFileName(file))
    }
    let preset = preset ?? FCNPresets.preset(forDataAt: data)
    return (try FCNBenchmarkConfig.load(yaml: preset.yaml, source: preset.name, overrides: early + late),
            preset.name)
  }
}

/// What a finished FCN run produced.
public struct FCNResult {
  public var runID: RunID
  public var label: String
  public var benchmark: BenchmarkID
  /// Iterations trained.
  public var iteration: Int
  public var classNames: [String]
  /// The final evaluation; nil when the run stopped before the end of its schedule (`stopAfter`).
  public var scores: SegmentationScores?

  /// mIoU (with per-class IoU), mAcc and aAcc, in percent; `iteration` set for the periodic evaluations.
  static func scores(benchmark: BenchmarkID, classNames: [String], scores: SegmentationScores,
                     iteration: Int?) -> [Score] {
    // A class in neither the labels nor the predictions has no IoU (NaN, skipped by mIoU's nanmean): no row.
    let perClassIoU = zip(classNames, scores.perClassIoU).filter { !$1.isNaN }
      .map { ClassValue(className: $0, value: 100 * $1) }
    let perClassAcc = zip(classNames, scores.perClassAccuracy).filter { !$1.isNaN }
      .map { ClassValue(className: $0, value: 100 * $1) }
    return [
      Score(benchmark: benchmark, metric: .mIoU, epoch: iteration, value: 100 * scores.meanIoU, perClass: perClassIoU),
      Score(benchmark: benchmark, metric: .mAcc, epoch: iteration, value: 100 * scores.meanAccuracy, perClass: perClassAcc),
      Score(benchmark: benchmark, metric: .aAcc, epoch: iteration, value: 100 * scores.overallAccuracy),
    ]
  }

  /// The protocol's result rows (no iteration); none for a run stopped before the end.
  public var rows: [Score] {
    scores.map { FCNResult.scores(benchmark: benchmark, classNames: classNames, scores: $0, iteration: nil) } ?? []
  }

  /// The seed README's "Pascal VOC 2012 + Aug" layout (config, mIoU), then mAcc and aAcc.
  public var table: Table {
    guard let scores else {
      return Table(title: "\(benchmark.dataset.title) FCN: stopped at iteration \(iteration) (resume with --resume)",
                   columns: ["Self-Supervised Config", "mIOU", "mAcc", "aAcc"], rows: [[label, "–", "–", "–"]])
    }
    return Table(title: "\(benchmark.dataset.title) FCN (iteration \(iteration))",
          columns: ["Self-Supervised Config", "mIOU", "mAcc", "aAcc"],
          rows: [[label, String(format: "%.2f", 100 * scores.meanIoU), String(format: "%.2f", 100 * scores.meanAccuracy),
                  String(format: "%.2f", 100 * scores.overallAccuracy)]])
  }

  /// Per-class IoU and accuracy, a row per class (NaN: the class is in neither labels nor predictions).
  public var perClassTable: Table {
    guard let scores else { return Table(title: "per-class IoU / Acc (%)", columns: ["Class", "IoU", "Acc"], rows: []) }
    return Table(title: "per-class IoU / Acc (%)", columns: ["Class", "IoU", "Acc"],
          rows: zip(classNames, zip(scores.perClassIoU, scores.perClassAccuracy)).map { name, values in
            [name, values.0.isNaN ? "nan" : String(format: "%.2f", 100 * values.0),
             values.1.isNaN ? "nan" : String(format: "%.2f", 100 * values.1)]
          })
  }
}
