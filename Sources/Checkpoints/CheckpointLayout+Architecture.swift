// Which ResNet a torchvision-named state dict describes: depth from the blocks per stage and the block kind,
// width from conv1, the stem from conv1's kernel.

/// The ResNet a backbone state dict describes. Mirrors `ResNetConfig` (Models), which this module cannot see:
/// `ResNetConfig(depth:widthMultiplier:cifarStem:inChannels:)` takes these fields as they are.
public struct ArchitectureGuess: Sendable, Equatable, CustomStringConvertible {
  public enum BlockKind: String, Sendable, Equatable {
    /// Two 3×3 convs (ResNet-18/34).
    case basic
    /// 1×1, 3×3, 1×1 with expansion 4 (ResNet-50 and deeper): has `conv3`.
    case bottleneck
  }

  public var blockKind: BlockKind
  /// Blocks in layer1 … layer4 (0 for a stage with no tensors).
  public var blocksPerStage: [Int]
  /// 18, 34, 50, 101 or 152 when the blocks match torchvision's; nil otherwise.
  public var depth: Int?
  /// conv1's output channels: 64 × the width multiplier.
  public var stemWidth: Int
  public var widthMultiplier: Double { Double(stemWidth) / 64 }
  /// conv1 is 3×3 (SimSiam's CIFAR stem, no max-pool) rather than torchvision's 7×7 / 2.
  public var cifarStem: Bool
  /// conv1's input channels.
  public var inChannels: Int

  /// torchvision's `resnet18 … resnet152` block counts (torchvision.models.resnet).
  static let depths: [(BlockKind, [Int], Int)] = [
    (.basic, [2, 2, 2, 2], 18), (.basic, [3, 4, 6, 3], 34), (.bottleneck, [3, 4, 6, 3], 50),
    (.bottleneck, [3, 4, 23, 3], 101), (.bottleneck, [3, 8, 36, 3], 152),
  ]

  /// Reads the guess from torchvision-named tensors; nil without a 4-D `conv1.weight` ([out, in, kh, kw]).
  public init?(backbone tensors: [String: StoredTensor]) {
    guard let conv1 = tensors["conv1.weight"], conv1.value.rank == 4 else { return nil }
    stemWidth = conv1.value.shape[0]
    inChannels = conv1.value.shape[1]
    cifarStem = conv1.value.shape[2] == 3
    blockKind = tensors["layer1.0.conv3.weight"] != nil ? .bottleneck : .basic
    var counts = [0, 0, 0, 0]
    for name in tensors.keys where name.hasPrefix("layer") {
      // "layer3.5.conv1.weight" → stage 3, block 5
      let parts = name.dropFirst("layer".count).split(separator: ".", maxSplits: 2)
      guard parts.count >= 2, let stage = Int(parts[0]), (1...4).contains(stage), let block = Int(parts[1]) else {
        continue
      }
      counts[stage - 1] = max(counts[stage - 1], block + 1)
    }
    blocksPerStage = counts
    let kind = blockKind
    depth = Self.depths.first { $0.0 == kind && $0.1 == counts }?.2
  }

  /// "ResNet-50 (bottleneck blocks 3-4-6-3), width ×1, ImageNet stem (7×7 conv1 + max-pool), 3 input channels".
  public var description: String {
    let name = depth.map { "ResNet-\($0)" } ?? "non-standard ResNet"
    let blocks = blocksPerStage.map(String.init).joined(separator: "-")
    var (numerator, denominator) = (stemWidth, 64)  // the multiplier as a reduced fraction: ×1, ×1/32, ×3/2
    while numerator % 2 == 0 && denominator % 2 == 0 { (numerator, denominator) = (numerator / 2, denominator / 2) }
    let width = denominator == 1 ? "\(numerator)" : "\(numerator)/\(denominator)"
    let stem = cifarStem ? "CIFAR stem (3×3 conv1, no max-pool)" : "ImageNet stem (7×7 conv1 + max-pool)"
    return "\(name) (\(blockKind.rawValue) blocks \(blocks)), width ×\(width), \(stem), \(inChannels) input channels"
  }
}
