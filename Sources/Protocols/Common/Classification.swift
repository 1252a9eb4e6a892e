// What the frozen-backbone classification protocols (linear probes, kNN) share: choosing the config for a dataset
// folder, the work directory and log, the feature cache, and feature extraction with the test transform.
import Datasets
import Distributed
import Evaluation
import Foundation
import Results
import Support
import Tensors
import Training

/// Which embedded-data layout a folder has: Fashion-MNIST IDX files, CIFAR batches or an ImageNet train/val tree.
public func detectClassificationData(_ path: String) -> ClassificationDataKind? {
  let manager = FileManager.default
  func exists(_ name: String) -> Bool { manager.fileExists(atPath: (path as NSString).appendingPathComponent(name)) }
  func isDirectory(_ name: String) -> Bool {
    var flag: ObjCBool = false
    return manager.fileExists(atPath: (path as NSString).appendingPathComponent(name), isDirectory: &flag)
      && flag.boolValue
  }
  if exists("train-images-idx3-ubyte.gz") || exists("train-images-idx3-ubyte") { return .fashionMNIST }
  if exists("data_batch_1.bin") || exists("test_batch.bin") { return .cifar10 }
  return isDirectory("train") && isDirectory("val") ? .imageFolder : nil
}

/// CIFAR statistics for the quick configs when the data folder holds CIFAR batches.
public let cifarOverrides = ["data.kind=cifar10", "data.mean=[0.4914, 0.4822, 0.4465]",
                             "data.std=[0.2470, 0.2435, 0.2616]"]

/// A config file's text, or an error naming the file.
func readConfigFile(_ path: String) throws -> String {
  if PathKind(path) == .directory {
    throw ConfigError.unreadable(source: path, reason: "it is a folder; give the YAML file (e.g. "
                                   + "configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml)")
  }
  do { return try String(contentsOf: URL(fileURLWithPath: path), encoding: .utf8) } catch {
    throw ConfigError.unreadable(source: path, reason: (error as NSError).localizedDescription)
  }
}

/// A config file's name without extension: the name of its work directory and of the config in reports.
func configFileName(_ path: String) -> String { URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent }

/// Where a protocol run keeps its files, and its log.
public struct WorkArea {
  public let directory: URL
  public let log: LogFile

  /// Creates `directory` and opens `directory/log.txt`.
  public init(_ directory: URL) throws {
    if PathKind(directory.path) == .file {
      throw ProtocolError.invalidRequest(reason: "The work directory \(directory.path) is a file, not a folder.",
                                         hint: "Give --work-dir a folder (it is created if missing).")
    }
    do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
      throw ProtocolError.unwritable(path: directory.path, reason: (error as NSError).localizedDescription)
    }
    self.directory = directory
    log = try LogFile(directory.appendingPathComponent("log.txt"))
  }
}

/// The on-disk feature cache at `directory` (nil: in memory only); corrupt files are reported to `log` and rebuilt.
public func openFeatureCache(_ directory: URL?, log: LogFile) throws -> FeatureCache? {
  guard let directory else { return nil }
  do {
    return try FeatureCache(directory: directory) { warning in log.write("warning: \(warning)") }
  } catch {
    throw ProtocolError.invalidRequest(
      reason: "Cannot use the feature cache \(directory.path): \(error).",
      hint: "Choose another folder with --feature-cache DIR, or run with --no-feature-cache.")
  }
}

/// Extracts `layers` of `source` with the test transform (Resize → CenterCrop → Normalize) through the shared
/// `FeatureExtractor` and cache, reporting progress as `what`. Over a group of several ranks the images are split
/// in blocks of whole batches and gathered on every rank (`ShardedExtraction`; rank 0 alone passes the cache and
/// a progress reporter).
func extractFeatures(_ evaluation: EvaluationBackbone, source: ClassificationSource, data: ClassificationDataConfig,
                     layers: [FeatureLayer], cache: FeatureCache?, progress: ProgressReporter?,
                     what: String, group: any ProcessGroup = SingleProcessGroup()) throws -> ExtractedFeatures {
  let channels = evaluation.backbone.config.inChannels
  let transform = EvaluationTransform(resize: data.resize, size: data.crop, mode: .centerCrop,
                                      normalization: data.normalization(channels: channels))
  let request = FeatureExtractionRequest(checkpointSHA256: evaluation.featureKey, source: source,
                                         transform: transform, layers: layers, batchSize: data.extractBatchSize)
  progress?.begin()
  return try ShardedExtraction.extract(request, extractor: FeatureExtractor(backbone: evaluation.backbone),
                                       cache: cache, group: group) { done, total in
    progress?.count(what, done: done, total: total)
  }
}

/// The variant facets every classification protocol shares: input size, subsets, random init.
func classificationVariant(_ data: ClassificationDataConfig, isRandomInit: Bool) -> ProtocolVariant {
  var variant = ProtocolVariant()
  if data.crop != 224 || data.resize != 256 { variant["resize"] = "\(data.resize)"; variant["crop"] = "\(data.crop)" }
  if data.limit > 0 { variant["train-limit"] = "\(data.limit)" }
  if data.testLimit > 0 { variant["test-limit"] = "\(data.testLimit)" }
  if isRandomInit { variant.flag("random-init") }
  return variant
}

/// What a frozen-backbone classification protocol opens before its work: the backbone (seeded by the config), the
/// label, the work area and feature cache, the train and test splits, and the stored run that describes them.
struct FrozenClassificationSetup {
  let evaluation: EvaluationBackbone
  let checkpoint: String
  let label: String
  /// The work area and log; nil on the ranks other than 0 of a data-parallel run, which write nothing.
  let workArea: WorkArea?
  let featureCache: FeatureCache?
  let train: ClassificationSource
  let test: ClassificationSource
  let benchmark: BenchmarkID

  var classCount: Int { max(train.classCount, test.classCount) }
  var work: WorkArea {
    guard let workArea else { preconditionFailure("Only rank 0 of a data-parallel run has a work area and log.") }
    return workArea
  }
  var log: LogFile { work.log }

  /// - Parameters:
  ///   - workDirectory: the request's, else work_dirs/<config name>/<`defaultWorkName(label, default label)`>.
  ///   - writes: false on the ranks other than 0 of a data-parallel run: no work area, log or feature cache.
  init(backbone request: BackboneRequest, seed: UInt64, data: ClassificationDataConfig, label: String?,
       workDirectory: URL?, configName: String, defaultWorkName: (String, String) -> String, featureCache: URL?,
       evaluationProtocol: EvaluationProtocol, writes: Bool = true) throws {
    var request = request
    request.seed = seed
    if PathKind(data.path) == .file {
      throw ProtocolError.invalidRequest(reason: "The dataset path \(data.path) is a file, not a folder.",
                                         hint: "Give --data (data.path) the dataset's folder, e.g. the one holding "
                                           + "train-images-idx3-ubyte.gz, data_batch_1.bin or train/ and val/.")
    }
    evaluation = try BackboneBuilder.build(request)
    checkpoint = request.checkpoint
    let defaultLabel = evaluation.defaultLabel(request.checkpoint)
    self.label = label ?? defaultLabel
    if writes {
      let work = try WorkArea(workDirectory ?? URL(fileURLWithPath: "work_dirs").appendingPathComponent(configName)
        .appendingPathComponent(defaultWorkName(self.label, defaultLabel)))
      (workArea, self.featureCache) = (work, try openFeatureCache(featureCache, log: work.log))
    } else {
      (workArea, self.featureCache) = (nil, nil)
    }
    let channels = evaluation.backbone.config.inChannels
    train = try ClassificationSource.open(data.location, split: .train, channels: channels)
    test = try ClassificationSource.open(data.location, split: .test, channels: channels)
    benchmark = BenchmarkID(BenchmarkDataset(data.location.kind), evaluationProtocol)
  }

  /// Logs what was loaded (the load report, or the random initialisation's seed).
  func logBackbone() {
    if let report = evaluation.report { log.write(report.rendered()) }
    if evaluation.isRandomInit { log.write("random initialisation (seed \(evaluation.seed)); weights not loaded") }
  }

  /// The stored run: provenance of the weights, the data and the config.
  func newRun(configFile: String?, configJSON: String, dataPath: String, variant: ProtocolVariant) -> NewRun {
    NewRun(kind: .evaluate, protocolName: benchmark.rawValue, label: label, configFile: configFile, config: configJSON,
           checkpointPath: checkpoint, checkpointSHA256: evaluation.sha256, checkpointLayout: evaluation.layout,
           datasetPath: dataPath, datasetFingerprint: "train \(train.fingerprint) test \(test.fingerprint)",
           protocolVariant: variant.stored, codeVersion: codeVersion, threads: Threads.count)
  }
}

extension BenchmarkDataset {
  /// The benchmark dataset a classification data layout is scored as (ImageNet for any ImageNet-layout folder).
  init(_ kind: ClassificationDataKind) {
    self = switch kind {
    case .fashionMNIST: .fashionMNIST
    case .cifar10: .cifar10
    case .imageFolder, .imageList: .imagenet
    case .places205: .places205
    case .inaturalist2018: .inat18
    case .synthetic: .synthetic
    }
  }
}
