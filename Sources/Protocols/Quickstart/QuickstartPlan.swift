// The protocol requests of `quickstart` (the README's first command): the quick pretraining, its random-init twin,
// and for both backbones the scene SVMs, the multi-head linear probe and kNN — built here as values, so the CLI
// runs the same library calls a user's commands run and a test can read what would run.
import Evaluation
import Foundation
import Training

public struct QuickstartPlan {
  /// Where every step keeps its files.
  public var workDirectory: URL
  public var database: String
  /// The seed of every step (pretraining, random-init twin, low-shot draws, probes); nil: each config's own (0).
  public var seed: UInt64?
  /// Wall-clock cap of the pretraining in minutes.
  public var pretrainMinutes: Double
  /// Input side of the scene SVM features (the quick backbone has a CIFAR stem and was trained at 32); the SVM
  /// scenes are drawn at this side (`svmSceneArguments`), so the items keep their scale.
  public var sceneImageSize: Int

  public init(workDirectory: URL, database: String, seed: UInt64?, pretrainMinutes: Double, sceneImageSize: Int) {
    self.workDirectory = workDirectory
    self.database = database
    self.seed = seed
    self.pretrainMinutes = pretrainMinutes
    self.sceneImageSize = sceneImageSize
  }

  /// The label reports show for the pretrained checkpoint, and for its random-init twin.
  public static let pretrainedLabel = PretrainConfig.quickDefaultName
  public static let randomLabel = PretrainConfig.quickDefaultName + " (random init)"

  /// `compare` of the pretrained backbone against its random-init twin with a noise band: a cell whose difference is
  /// within the benchmark's tolerance (`Tolerances.defaults`: about two run-to-run standard deviations), or within
  /// two standard errors of the low-shot samples' spread, is "within noise" rather than pass or FAIL (issue 19
  /// item 5).
  public static func compareArguments(database: String) -> [String] {
    ["compare", "--label", pretrainedLabel, "--baseline-label", randomLabel, "--noise-band", "--db", database]
  }

  public var pretrainDirectory: URL { workDirectory.appendingPathComponent("pretrain") }
  public var randomInitCheckpoint: URL { workDirectory.appendingPathComponent("random_init.safetensors") }
  public var sceneDirectory: URL { workDirectory.appendingPathComponent("scenes") }
  public var sceneDevkit: URL { sceneDirectory.appendingPathComponent("VOCdevkit/VOC2007") }
  /// The scene SVMs' own devkit (issue 19 item 5): scenes drawn so the backbone sees items at the scale it was
  /// trained at; the FCN and Faster R-CNN miniatures keep `sceneDevkit`.
  public var svmSceneDirectory: URL { workDirectory.appendingPathComponent("svm-scenes") }
  public var svmSceneDevkit: URL { svmSceneDirectory.appendingPathComponent("VOCdevkit/VOC2007") }
  var featureCache: URL { workDirectory.appendingPathComponent("feature_cache") }

  /// The quick config under the time cap, without its own kNN monitor (the kNN step measures both backbones on
  /// the full test set), resuming whatever an interrupted quickstart left.
  public func pretrainRequest() throws -> PretrainRequest {
    let (config, name) = try PretrainRequest.config(
      file: nil, overrides: ["schedule.max_minutes=\(pretrainMinutes)", "monitor.knn_at_end=false"], seed: seed)
    return PretrainRequest(config: config, configName: name, workDirectory: pretrainDirectory, resume: .auto,
                           database: database)
  }

  /// The design of the SVM scenes (`data make-scenes` options after --out, --train, --test): square scenes of
  /// `sceneImageSize` px, evaluated at that size without rescaling, holding 1–2 gray Fashion-MNIST items at
  /// 1–1.25× (28–35 px, the 32 px the quick backbone was trained at) on darkened backgrounds (×0.2, like
  /// Fashion-MNIST's black). Measured against the default scenes squashed to 64 px in README ("The scene SVMs").
  public func svmSceneArguments(scenes: Int) -> [String] {
    ["--train", String(scenes), "--test", String(scenes), "--min-side", String(sceneImageSize),
     "--max-side", String(sceneImageSize), "--min-scale", "1", "--max-scale", "1.25", "--min-objects", "1",
     "--max-objects", "2", "--background-brightness", "0.2", "--tint-probability", "0"]
  }

  /// VOC07 SVMs and low-shot SVMs on the SVM scene devkit (configs/benchmarks/voc07/svm_voc07_scenes_quick.yaml).
  public func sceneSVMRequest(checkpoint: String, label: String, slug: String) -> VOCSVMRequest {
    var request = VOCSVMRequest(input: .checkpoint(BackboneRequest(checkpoint: checkpoint), data: svmSceneDevkit.path),
                                database: database, featureCache: featureCache)
    let preset = VOCSVMPresets.scenesQuick
    request.configYAML = preset.yaml
    request.configSource = preset.name
    request.overrides = ["data.image_size=\(sceneImageSize)", "data.resize=\(sceneImageSize)"]
      + (seed.map { ["seed=\($0)"] } ?? [])
    request.label = label
    request.workDirectory = workDirectory.appendingPathComponent("voc-svm/\(slug)")
    return request
  }

  /// The multi-head linear probe on Fashion-MNIST, on cached features.
  public func linearRequest(checkpoint: String, label: String, slug: String) throws -> LinearProbeRequest {
    let (config, name) = try LinearProbeRequest.config(file: nil, data: nil, head: .mhead, overrides: [],
                                                       cacheFeatures: true, seed: seed)
    return LinearProbeRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config, configName: name,
                              label: label, workDirectory: workDirectory.appendingPathComponent("linear/\(slug)"),
                              database: database, featureCache: featureCache)
  }

  /// Weighted kNN on Fashion-MNIST: the bank is the 10,000 training images the linear probe uses (their features
  /// are extracted once more for the GAP layer); the queries are all 10,000 test images.
  public func knnRequest(checkpoint: String, label: String, slug: String) throws -> KNNRequest {
    let (config, name) = try KNNRequest.config(file: nil, data: nil, overrides: ["data.limit=10000"], seed: seed)
    return KNNRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config, configName: name,
                      label: label, workDirectory: workDirectory.appendingPathComponent("knn/\(slug)"),
                      database: database, featureCache: featureCache)
  }

  /// The FCN miniature on the scene devkit (configs/benchmarks/mmsegmentation/scenes/fcn_quick-d8_scenes.yaml).
  public func sceneFCNRequest(checkpoint: String, label: String, slug: String) throws -> FCNRequest {
    let (config, name) = try FCNRequest.config(file: nil, data: sceneDevkit.path, overrides: [], seed: seed,
                                               preset: FCNPresets.scenesQuick)
    return FCNRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config, configName: name,
                      label: label, workDirectory: workDirectory.appendingPathComponent("fcn/\(slug)"),
                      resume: true, database: database)
  }

  /// The Faster R-CNN C4 miniature on the scene devkit
  /// (configs/benchmarks/mmdetection/scenes/faster_rcnn_quick-c4_scenes.yaml).
  public func sceneDetectionRequest(checkpoint: String, label: String, slug: String) throws -> FasterRCNNRequest {
    let (config, name) = try FasterRCNNRequest.config(file: nil, data: [sceneDevkit.path], overrides: [], seed: seed,
                                                      preset: FasterRCNNPresets.scenesQuick)
    return FasterRCNNRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config, configName: name,
                             label: label, workDirectory: workDirectory.appendingPathComponent("faster-rcnn/\(slug)"),
                             resume: true, database: database)
  }

  /// The Mask R-CNN FPN miniature on the scene set's COCO json
  /// (configs/benchmarks/mmdetection/scenes/mask_rcnn_quick-fpn_scenes.yaml).
  public func sceneInstanceSegmentationRequest(checkpoint: String, label: String, slug: String) throws
    -> MaskRCNNRequest {
    let (config, name) = try MaskRCNNRequest.config(file: nil, data: sceneDirectory.path, overrides: [], seed: seed,
                                                    preset: MaskRCNNPresets.scenesQuick)
    return MaskRCNNRequest(backbone: BackboneRequest(checkpoint: checkpoint), config: config, configName: name,
                           label: label, workDirectory: workDirectory.appendingPathComponent("mask-rcnn/\(slug)"),
                           resume: true, database: database)
  }
}
