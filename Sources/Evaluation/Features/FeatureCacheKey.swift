// What identifies one cached feature matrix (PROTOCOLS §2.2; issue 6 item 1): the weights, the images, the layer,
// and everything between them — preprocessing, pooling rule and backbone architecture.
import Foundation
import Datasets
import Models
import Support

/// The key of one cache file: features of `layer` for every image of one dataset list, computed by one backbone.
///
/// Two extractions with equal keys produce the same features, so a key hit may skip the backbone. Its canonical
/// JSON (sorted keys) is stored in the file's header and names the file (through its SHA-256).
public struct FeatureCacheKey: Codable, Sendable, Hashable {
  /// Bumped whenever what a key's features mean changes (e.g. a new pooling implementation).
  public static let currentVersion = 1

  public var version: Int
  /// SHA-256 of the checkpoint file the backbone was loaded from.
  public var checkpointSHA256: String
  /// `EvaluationImageSource.fingerprint`: the image list and its contents.
  public var datasetFingerprint: String
  public var layer: FeatureLayer
  /// `EvaluationTransform`: short-side resize, output side, `squash` or `centerCrop`, Normalize mean and std, and
  /// the resize pass order (`pillow9` or `pillow13`, ResizeRule).
  public var resize: Int
  public var size: Int
  public var mode: String
  public var mean: [Float]
  public var std: [Float]
  public var resizeRule: String
  public var pooling: FeaturePooling
  /// e.g. "resnet50 width 1.0 imagenet-stem 3-channel".
  public var architecture: String

  public init(checkpointSHA256: String, datasetFingerprint: String, layer: FeatureLayer,
              transform: EvaluationTransform, pooling: FeaturePooling, architecture: ResNetConfig) {
    self.version = Self.currentVersion
    self.checkpointSHA256 = checkpointSHA256
    self.datasetFingerprint = datasetFingerprint
    self.layer = layer
    self.resize = transform.resize
    self.size = transform.size
    self.mode = switch transform.mode {
    case .squash: "squash"
    case .centerCrop: "centerCrop"
    }
    self.mean = transform.normalization.mean
    self.std = transform.normalization.std
    self.resizeRule = transform.resizeRule.rawValue
    self.pooling = pooling
    self.architecture = Self.describe(architecture)
  }

  /// The architecture fields that change features (not `zeroInitResidual`, which only affects initialisation).
  public static func describe(_ config: ResNetConfig) -> String {
    "resnet\(config.depth) width \(config.widthMultiplier) \(config.cifarStem ? "cifar" : "imagenet")-stem "
      + "\(config.inChannels)-channel"
  }

  /// UTF-8 JSON with sorted keys: stored in the file header and compared byte for byte when a file is opened.
  public var canonicalJSON: [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Encoding a struct of strings, numbers and arrays cannot fail.
    return [UInt8](try! encoder.encode(self))
  }

  /// `<layer>-<first 32 hex digits of SHA-256(canonical JSON)>.features`.
  public var fileName: String {
    "\(layer.rawValue)-\(SHA256.hexDigest(of: canonicalJSON).prefix(32)).features"
  }
}
