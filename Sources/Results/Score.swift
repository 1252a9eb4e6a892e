// Scores, per-class scores and per-epoch pretraining metrics: rows of `score`, `class_score`, `epoch_metric`.
import Foundation
import GRDB

/// One number an evaluation produced, e.g. VOC07 SVM mAP of feature5, or low-shot mAP at k = 8, sample 2.
///
/// Values are percentages as the reference tables print them (84.21, not 0.8421). A row with `sample`, `cost`
/// and `epoch` all nil is the protocol's result (the mean over samples, at the selected cost, after the last
/// epoch); rows with a sample, a cost or an epoch are the detail behind it. `count` is how many values `value` averages and `std` their standard
/// deviation. `perClass` is stored in `class_score`.
public struct Score: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "score"

  public var id: Int64?
  public var runID: RunID?
  /// The benchmark, e.g. `voc07-svm`, `voc07-lowshot-svm`, `imagenet-linear`: a `BenchmarkID`'s string (or a
  /// string this version does not know, kept as stored).
  public var benchmark: String
  /// The metric, e.g. `mAP`, `top1`, `AP50`, `mIoU`: a `Metric`'s raw value (or an unknown string, as stored).
  public var metric: String
  /// The backbone layer (`feature1` … `feature5`, `avgpool`) or head (`bbox`, `segm`) the value belongs to.
  public var layer: String?
  public var k: Int?
  public var sample: Int?
  public var cost: Double?
  /// The training epoch after which an intermediate value was measured (probe evaluations during training).
  public var epoch: Int?
  public var value: Double
  public var count: Int
  public var std: Double?
  /// Per-class values (e.g. the 20 VOC APs); not a column.
  public var perClass: [ClassValue] = []

  enum CodingKeys: String, CodingKey {
    case id, benchmark, metric, layer, k, sample, cost, epoch, value, count, std
    case runID = "run_id"
  }

  public init(benchmark: String, metric: String, layer: String? = nil, k: Int? = nil, sample: Int? = nil,
              cost: Double? = nil, epoch: Int? = nil, value: Double, count: Int = 1, std: Double? = nil,
              perClass: [ClassValue] = []) {
    self.benchmark = benchmark
    self.epoch = epoch
    self.metric = metric
    self.layer = layer
    self.k = k
    self.sample = sample
    self.cost = cost
    self.value = value
    self.count = count
    self.std = std
    self.perClass = perClass
  }

  /// A score of a known benchmark and metric, stored as their strings.
  public init(benchmark: BenchmarkID, metric: Metric, layer: String? = nil, k: Int? = nil, sample: Int? = nil,
              cost: Double? = nil, epoch: Int? = nil, value: Double, count: Int = 1, std: Double? = nil,
              perClass: [ClassValue] = []) {
    self.init(benchmark: benchmark.rawValue, metric: metric.rawValue, layer: layer, k: k, sample: sample, cost: cost,
              epoch: epoch, value: value, count: count, std: std, perClass: perClass)
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

  /// The benchmark, or nil when the stored string names none this version knows.
  public var benchmarkID: BenchmarkID? { BenchmarkID(rawValue: benchmark) }

  /// The metric, or nil when the stored string names none this version knows.
  public var metricKind: Metric? { Metric(rawValue: metric) }

  /// Whether this is the protocol's result rather than detail behind it (no sample, cost or epoch).
  public var isProtocolResult: Bool { sample == nil && cost == nil && epoch == nil }
}

/// One class's value behind a score.
public struct ClassValue: Codable, Sendable, Equatable {
  public var className: String
  public var value: Double
  public init(className: String, value: Double) {
    self.className = className
    self.value = value
  }
}

/// A per-class score row.
struct ClassScore: Codable, FetchableRecord, PersistableRecord {
  static let databaseTableName = "class_score"
  var scoreID: Int64
  var className: String
  var value: Double
  enum CodingKeys: String, CodingKey {
    case value
    case scoreID = "score_id", className = "class_name"
  }
}

/// Pretraining metrics of one epoch.
public struct EpochMetric: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "epoch_metric"

  public var id: Int64?
  public var runID: RunID?
  public var epoch: Int
  /// The mean SimSiam loss over the epoch (minimum -1).
  public var loss: Double
  /// The backbone's learning rate during the epoch.
  public var learningRate: Double
  /// The standard deviation of the L2-normalised projector output per channel; collapse drives it to 0,
  /// a healthy run stays near 1/√d (SimSiam paper, Fig. 2).
  public var outputStd: Double?
  public var imagesPerSecond: Double?
  /// The kNN monitor's top-1 accuracy on the held-out split after this epoch, in percent; nil when it did not run
  /// (and in rows stored before migration `v2-epoch-knn-top1`).
  public var knnTop1: Double?

  enum CodingKeys: String, CodingKey {
    case id, epoch, loss
    case runID = "run_id", learningRate = "learning_rate", outputStd = "output_std"
    case imagesPerSecond = "images_per_second", knnTop1 = "knn_top1"
  }

  public init(epoch: Int, loss: Double, learningRate: Double, outputStd: Double? = nil,
              imagesPerSecond: Double? = nil, knnTop1: Double? = nil) {
    self.epoch = epoch
    self.loss = loss
    self.learningRate = learningRate
    self.outputStd = outputStd
    self.imagesPerSecond = imagesPerSecond
    self.knnTop1 = knnTop1
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
