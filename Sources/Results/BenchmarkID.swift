// Typed identities of what a score measures: a benchmark is a dataset evaluated under a protocol
// (`voc07-svm` = VOC2007 × linear SVMs), and a metric is one of the numbers a protocol reports. The database keeps
// both as the TEXT they always were (no migration); these types parse and print exactly those strings, and a
// string they do not know stays a plain string in `Score` (reports show it under "Other scores").

/// How a backbone is evaluated (PROTOCOLS §2–§5).
public enum EvaluationProtocol: String, CaseIterable, Codable, Sendable {
  /// Linear SVMs per layer on frozen features (§2).
  case svm
  /// Linear SVMs on k positives per class (§3).
  case lowShotSVM = "lowshot-svm"
  /// Linear classifiers on frozen features (§4.1–§4.4).
  case linear
  /// Weighted k-nearest-neighbour classification on GAP features (§4.5).
  case knn
  /// FCN semantic segmentation, fine-tuned end to end (§5).
  case fcn
  /// Faster R-CNN detection, fine-tuned end to end (§5.1).
  case fasterRCNN = "faster-rcnn"
  /// Mask R-CNN detection and instance segmentation, fine-tuned end to end (§5.2).
  case maskRCNN = "mask-rcnn"
}

/// The dataset part of a benchmark id.
public enum BenchmarkDataset: String, CaseIterable, Codable, Sendable {
  case voc07
  case voc0712
  case voc12aug
  case cityscapes
  case coco
  case imagenet
  case places205
  case inat18
  case fashionMNIST = "fashion-mnist"
  case cifar10
  /// `pretrain`'s kNN monitor on an `image-folder` dataset (the monitor names its benchmark after `data.kind`).
  case imageFolder = "image-folder"
  case synthetic

  /// As tables title it.
  public var title: String {
    switch self {
    case .voc07: "VOC07"
    case .voc0712: "VOC07+12"
    case .voc12aug: "VOC12 + Aug"
    case .cityscapes: "Cityscapes"
    case .coco: "COCO2017"
    case .imagenet: "ImageNet"
    case .places205: "Places205"
    case .inat18: "iNaturalist 2018"
    case .fashionMNIST: "Fashion-MNIST"
    case .cifar10: "CIFAR-10"
    case .imageFolder: "image-folder"
    case .synthetic: "Synthetic"
    }
  }
}

/// A benchmark: a dataset under a protocol, stored as `<dataset>-<protocol>` (`voc07-lowshot-svm`).
public struct BenchmarkID: Hashable, Sendable, Comparable, Codable, RawRepresentable, CustomStringConvertible {
  public var dataset: BenchmarkDataset
  public var `protocol`: EvaluationProtocol

  public init(_ dataset: BenchmarkDataset, _ evaluationProtocol: EvaluationProtocol) {
    self.dataset = dataset
    self.protocol = evaluationProtocol
  }

  /// Parses a stored benchmark string; nil for a string no dataset and protocol spell.
  public init?(rawValue: String) {
    for candidate in EvaluationProtocol.allCases {
      let suffix = "-" + candidate.rawValue
      guard rawValue.hasSuffix(suffix),
            let dataset = BenchmarkDataset(rawValue: String(rawValue.dropLast(suffix.count))) else { continue }
      self.init(dataset, candidate)
      return
    }
    return nil
  }

  /// `BenchmarkID(rawValue:)` under a shorter name.
  public static func parse(_ rawValue: String) -> BenchmarkID? { BenchmarkID(rawValue: rawValue) }

  public var rawValue: String { "\(dataset.rawValue)-\(self.protocol.rawValue)" }
  public var description: String { rawValue }

  // MARK: - The seed README's benchmarks

  /// VOC07 linear SVM, metric `mAP`, layer `feature1` … `feature5`.
  public static let voc07SVM = BenchmarkID(.voc07, .svm)
  /// VOC07 low-shot SVM, metric `mAP`, layer `feature1` … `feature5`, `k` in 1 … 96 (mean over samples).
  public static let voc07LowShotSVM = BenchmarkID(.voc07, .lowShotSVM)
  /// ImageNet linear probes, metric `top1`, layer `feature1` … `feature5` (multi-head) or `avgpool`.
  public static let imageNetLinear = BenchmarkID(.imagenet, .linear)
  /// Places205 linear probes, metric `top1`, layer `feature1` … `feature5`.
  public static let places205Linear = BenchmarkID(.places205, .linear)
  /// ImageNet weighted kNN on GAP features, metric `top1`, `k` in 10, 20, 100, 200.
  public static let imageNetKNN = BenchmarkID(.imagenet, .knn)
  /// Faster R-CNN R50-C4 on VOC07+12, metric `AP50`.
  public static let voc0712FasterRCNN = BenchmarkID(.voc0712, .fasterRCNN)
  /// Mask R-CNN R50-FPN 1x on COCO2017, metrics `mAP`, `AP50`, `AP75`, layer (head) `bbox` or `segm`.
  public static let cocoMaskRCNN = BenchmarkID(.coco, .maskRCNN)
  /// FCN R50-D8 on VOC12 + Aug, metric `mIoU`.
  public static let voc12AugFCN = BenchmarkID(.voc12aug, .fcn)

  /// The benchmarks of the seed README's tables, in their order.
  public static let standard: [BenchmarkID] = [voc07SVM, voc07LowShotSVM, imageNetLinear, places205Linear,
                                               imageNetKNN, voc0712FasterRCNN, cocoMaskRCNN, voc12AugFCN]

  /// Whether the seed README has a table for this benchmark.
  public var isStandard: Bool { Self.standard.contains(self) }

  /// The seed README's order, then others by their stored string.
  public static func < (a: BenchmarkID, b: BenchmarkID) -> Bool {
    let rankA = standard.firstIndex(of: a) ?? standard.count, rankB = standard.firstIndex(of: b) ?? standard.count
    return (rankA, a.rawValue) < (rankB, b.rawValue)
  }

  // Codable as the stored string.
  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let id = BenchmarkID(rawValue: text) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                              debugDescription: "'\(text)' names no known benchmark"))
    }
    self = id
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(rawValue)
  }
}

/// A number a protocol reports, stored under its raw value.
public enum Metric: String, CaseIterable, Codable, Sendable {
  /// Mean average precision (VOC SVMs; COCO box/mask mAP@[.5:.95]).
  case mAP
  /// Mean over classes of the 3-fold cross-validation AP, per cost (the SVM's cost selection).
  case cvAP = "cv-AP"
  /// The cost the protocol chose (per class for the full SVMs, per k for the low-shot SVMs).
  case chosenCost = "chosen-cost"
  /// Low-shot mAP: the lowest and highest over the samples, at the chosen cost.
  case mAPMin = "mAP-min"
  case mAPMax = "mAP-max"
  /// Top-1 and top-5 accuracy.
  case top1
  case top5
  /// Average precision (a single class or an unaveraged detection AP).
  case ap = "AP"
  /// Detection AP at IoU 0.5 and 0.75.
  case ap50 = "AP50"
  case ap75 = "AP75"
  /// Mean intersection over union (segmentation).
  case mIoU
  /// Segmentation: the mean over classes of per-class pixel accuracy, and the accuracy over all pixels
  /// (mmseg's mAcc and aAcc).
  case mAcc
  case aAcc

  /// Whether the reference README's tables print it. `compare --baseline` compares only these: the others
  /// (top-5, min/max over samples, chosen costs, CV APs) are bookkeeping, and a difference in them is neither a
  /// regression nor a gain.
  public var isHeadline: Bool {
    switch self {
    case .mAP, .top1, .ap50, .ap75, .mIoU: true
    case .cvAP, .chosenCost, .mAPMin, .mAPMax, .top5, .ap, .mAcc, .aAcc: false
    }
  }
}
