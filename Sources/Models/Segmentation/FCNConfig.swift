// The FCN-D8 segmentor's configuration: mmseg's `_base_/models/fcn_r50-d8.py` (decode FCNHead on layer4, auxiliary
// FCNHead on layer3) with PROTOCOLS §5.3's values as defaults.

/// One mmseg `FCNHead`: `convCount` ConvModules (3×3 conv, BN, ReLU) of `channels`, with `concatInput` a further
/// ConvModule over concat(input, convs output), then Dropout2d(`dropout`) and the 1×1 `conv_seg` to the classes.
public struct FCNHeadConfig: Codable, Sendable, Equatable {
  /// mmseg `channels`: the width of every ConvModule (512 decode, 256 auxiliary).
  public var channels: Int
  /// mmseg `num_convs` (2 decode, 1 auxiliary).
  public var convCount: Int
  /// mmseg `concat_input` (true decode, false auxiliary).
  public var concatInput: Bool
  /// mmseg `dropout_ratio`: Dropout2d before `conv_seg` (0.1; 0 = none).
  public var dropout: Float
  /// mmseg `kernel_size` of the ConvModules (3), padding kernel/2.
  public var kernelSize: Int

  public init(channels: Int, convCount: Int, concatInput: Bool, dropout: Float = 0.1, kernelSize: Int = 3) {
    self.channels = channels
    self.convCount = convCount
    self.concatInput = concatInput
    self.dropout = dropout
    self.kernelSize = kernelSize
  }

  /// `decode_head` of fcn_r50-d8: channels 512, num_convs 2, concat_input True, dropout 0.1.
  public static let decode = FCNHeadConfig(channels: 512, convCount: 2, concatInput: true)
  /// `auxiliary_head` of fcn_r50-d8: channels 256, num_convs 1, concat_input False, dropout 0.1.
  public static let auxiliary = FCNHeadConfig(channels: 256, convCount: 1, concatInput: false)

  /// The same head with `channels` scaled like a narrow backbone's widths (at least 1).
  public func scaled(by widthMultiplier: Double) -> FCNHeadConfig {
    var config = self
    config.channels = max(1, Int((Double(channels) * widthMultiplier).rounded()))
    return config
  }
}

/// The segmentor around a (dilated) ResNet: decode head on feature5 (layer4), optional auxiliary head on feature4
/// (layer3), their loss weights, align_corners of every resize and the ignored label.
public struct FCNConfig: Codable, Sendable, Equatable {
  /// mmseg `num_classes` (21 for VOC, 19 for Cityscapes).
  public var classCount: Int
  public var decodeHead: FCNHeadConfig
  /// nil switches the auxiliary head off.
  public var auxiliaryHead: FCNHeadConfig?
  /// Loss weight of the decode head's cross-entropy (1.0).
  public var decodeWeight: Float
  /// Loss weight of the auxiliary head's cross-entropy (0.4).
  public var auxiliaryWeight: Float
  /// `align_corners` of the heads' resizes (False for VOC, True for Cityscapes).
  public var alignCorners: Bool
  /// Labels equal to this are ignored by the loss (255).
  public var ignoreIndex: Int

  public init(classCount: Int, decodeHead: FCNHeadConfig = .decode, auxiliaryHead: FCNHeadConfig? = .auxiliary,
              decodeWeight: Float = 1, auxiliaryWeight: Float = 0.4, alignCorners: Bool = false,
              ignoreIndex: Int = 255) {
    self.classCount = classCount
    self.decodeHead = decodeHead
    self.auxiliaryHead = auxiliaryHead
    self.decodeWeight = decodeWeight
    self.auxiliaryWeight = auxiliaryWeight
    self.alignCorners = alignCorners
    self.ignoreIndex = ignoreIndex
  }

  /// Both heads' channels scaled by `widthMultiplier` (a ResNet at width w gets heads at width w).
  public func scalingHeads(by widthMultiplier: Double) -> FCNConfig {
    var config = self
    config.decodeHead = decodeHead.scaled(by: widthMultiplier)
    config.auxiliaryHead = auxiliaryHead?.scaled(by: widthMultiplier)
    return config
  }
}
