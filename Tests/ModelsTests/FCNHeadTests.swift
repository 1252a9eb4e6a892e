// mmseg FCNHead and the FCN segmentor: finite-difference checks of the head's backward (with and without
// concat_input, dropout mask fixed), mmseg's names and initialisation, the configs' defaults, gradient accumulation
// and the auxiliary switch. PyTorch parity of the whole segmentor: FCNParityTests.
import Testing
import Tensors
import Layers
import Models
import TestSupport

@Suite struct FCNHeadTests {
  // MARK: Finite differences

  @Test(arguments: [true, false], [Mode.training, Mode.inference])
  func headBackwardMatchesFiniteDifferences(concatInput: Bool, mode: Mode) {
    var rng = SplitMix64(seed: concatInput ? 151 : 152)
    let config = FCNHeadConfig(channels: 4, convCount: concatInput ? 2 : 1, concatInput: concatInput, dropout: 0.25)
    let head = FCNHead(inChannels: 6, classCount: 3, config: config, using: &rng)
    randomizeBatchNorms(normLayers(of: head), lowShift: 1, highShift: 2, using: &rng)
    head.classifier.weight.value = .randomNormal(head.classifier.weight.value.shape, std: 0.5, using: &rng)
    let mask = mode == .training
      ? head.dropout.mask(keeping: Tensor(shape: [2, 4], scalars: [1, 0, 1, 1, 1, 1, 0, 1]))
      : Tensor.zeros([0])
    let x = Tensor.randomUniform([2, 5, 5, 6], low: 0, high: 2, using: &rng)  // backbone features are ReLU outputs
    // 3%: a step in x moves every pre-activation of three BN + ReLU layers through the batch statistics, and the
    // ReLU crossings it causes bias single coordinates by 1–2%; a missing concat or dropout gradient is off by far
    // more (the exact values are checked against PyTorch in FCNParityTests).
    expectBackwardMatchesFiniteDifferences(
      parameters: head.namedParameters, input: x, settings: FiniteDifferenceSettings(tolerance: 3e-2, samples: 24),
      rng: &rng,
      forward: { head.forward($0, mode: mode, dropoutMask: mask).0 },
      forwardBackward: { x, dy in
        let (_, cache) = head.forward(x, mode: mode, dropoutMask: mask)
        return head.backward(dy, cache)
      })
  }

  // MARK: Names, initialisation, configs

  @Test func headNamesFollowMMSeg() {
    var rng = SplitMix64(seed: 0)
    let head = FCNHead(inChannels: 8, classCount: 3, config: FCNHeadConfig(channels: 4, convCount: 2, concatInput: true),
                       using: &rng)
    let bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    let expected = ["convs.0.conv.weight"] + bn.map { "convs.0.bn.\($0)" }
      + ["convs.1.conv.weight"] + bn.map { "convs.1.bn.\($0)" }
      + ["conv_cat.conv.weight"] + bn.map { "conv_cat.bn.\($0)" }
      + ["conv_seg.weight", "conv_seg.bias"]
    #expect(head.namedParameters.map(\.name) == expected)
    let shapes = Dictionary(uniqueKeysWithValues: head.namedParameters.map { ($0.name, $0.parameter.exportedShape) })
    #expect(shapes["convs.0.conv.weight"] == [4, 8, 3, 3])
    #expect(shapes["conv_cat.conv.weight"] == [4, 12, 3, 3])
    #expect(shapes["conv_seg.weight"] == [3, 4, 1, 1] && shapes["conv_seg.bias"] == [3])
  }

  /// mmcv ConvModule.init_weights: kaiming_normal_(fan_out, relu) on the conv, BN weight 1 / bias 0; mmseg
  /// conv_seg: N(0, 0.01²) weight, zero bias.
  @Test func initialisationFollowsMMCV() {
    var rng = SplitMix64(seed: 0)
    let head = FCNHead(inChannels: 64, classCount: 21, config: .decode, using: &rng)
    func standardDeviation(_ t: Tensor) -> Double {
      let mean = t.sum() / Double(t.count)
      return (t.scalars.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(t.count)).squareRoot()
    }
    let seg = standardDeviation(head.classifier.weight.value)
    #expect(abs(seg - 0.01) < 0.0005, "conv_seg std \(seg)")  // 10 752 draws: ±1.4% at 2σ
    #expect(head.classifier.bias?.value.scalars.allSatisfy { $0 == 0 } == true)
    let conv = standardDeviation(head.convs[1].conv.weight.value)
    let kaiming = (2.0 / (512 * 9)).squareRoot()
    #expect(abs(conv / kaiming - 1) < 0.02, "convs.1 std \(conv) vs kaiming fan_out \(kaiming)")
    for unit in head.convs + [head.concatConv!] {
      #expect(unit.bn.weight?.value.scalars.allSatisfy { $0 == 1 } == true)
      #expect(unit.bn.bias?.value.scalars.allSatisfy { $0 == 0 } == true)
      #expect(unit.conv.bias == nil && unit.conv.padding == 1 && unit.bn.fusesReLU)
    }
  }

  @Test func configDefaultsAreFCNR50D8() {
    let config = FCNConfig(classCount: 21)
    #expect(config.decodeHead == FCNHeadConfig(channels: 512, convCount: 2, concatInput: true, dropout: 0.1))
    #expect(config.auxiliaryHead == FCNHeadConfig(channels: 256, convCount: 1, concatInput: false, dropout: 0.1))
    #expect(config.decodeWeight == 1 && config.auxiliaryWeight == 0.4)
    #expect(!config.alignCorners && config.ignoreIndex == 255)
    let narrow = config.scalingHeads(by: 0.25)
    #expect(narrow.decodeHead.channels == 128 && narrow.auxiliaryHead?.channels == 64)
    #expect(narrow.decodeHead.convCount == 2 && narrow.auxiliaryHead?.concatInput == false)
  }

  // MARK: The segmentor

  private static func segmentor(auxiliary: Bool, seed: UInt64 = 7) -> FCNSegmentor {
    var rng = SplitMix64(seed: seed)
    var config = FCNConfig(classCount: 4).scalingHeads(by: 1.0 / 32)
    if !auxiliary { config.auxiliaryHead = nil }
    return FCNSegmentor(backbone: ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16, cifarStem: true).dilatedD8(),
                        config: config, using: &rng)
  }

  private static func batch() -> (Tensor, [UInt8]) {
    var rng = SplitMix64(seed: 8)
    let images = Tensor.randomNormal([2, 8, 8, 3], using: &rng)
    let labels: [UInt8] = (0..<128).map { $0 % 9 == 0 ? 255 : UInt8($0 % 4) }
    return (images, labels)
  }

  /// trainingStep ADDS gradients: the batch statistics do not depend on the running ones, so a second identical
  /// step (same dropout draws) doubles every gradient. The same seed gives the same draws and losses.
  @Test func trainingStepAccumulatesAndIsReproducible() {
    let (images, labels) = Self.batch()
    let segmentor = Self.segmentor(auxiliary: true)
    segmentor.zeroGrad()
    var dropout = SplitMix64(seed: 3)
    let first = segmentor.trainingStep(images: images, labels: labels, dropout: &dropout)
    let once = segmentor.namedParameters.filter { !$0.parameter.isBuffer }.map(\.parameter.grad)
    dropout = SplitMix64(seed: 3)
    let second = segmentor.trainingStep(images: images, labels: labels, dropout: &dropout)
    #expect(first.decodeLoss == second.decodeLoss && first.auxiliaryLoss == second.auxiliaryLoss)
    #expect(first.decodeLoss > 0 && first.auxiliaryLoss > 0)
    for ((name, parameter), single) in zip(segmentor.namedParameters.filter { !$0.parameter.isBuffer }, once) {
      #expect((parameter.grad - 2 * single).scalars.allSatisfy { abs($0) <= 1e-5 * max(1, abs($0)) + 1e-6 },
              "\(name): second step did not add the same gradient")
    }
    #expect(once.contains { $0.scalars.contains { $0 != 0 } })
  }

  @Test func auxiliaryHeadCanBeSwitchedOff() {
    let (images, labels) = Self.batch()
    let segmentor = Self.segmentor(auxiliary: false)
    #expect(segmentor.auxiliaryHead == nil)
    #expect(!segmentor.namedParameters.contains { $0.name.hasPrefix("auxiliary_head.") })
    #expect(segmentor.namedParameters.contains { $0.name == "decode_head.conv_seg.bias" })
    #expect(segmentor.namedParameters.contains { $0.name == "backbone.layer4.1.bn2.running_var" })
    segmentor.zeroGrad()
    var dropout = SplitMix64(seed: 3)
    let losses = segmentor.trainingStep(images: images, labels: labels, dropout: &dropout)
    #expect(losses.auxiliaryLoss == 0 && losses.decodeLoss > 0)
    #expect(segmentor.backbone.stem.conv.weight.grad.scalars.contains { $0 != 0 })
  }

  /// A standard (loaded) ResNet becomes the dilated backbone by copy; the heads are built on its widths.
  @Test func segmentorCopiesALoadedStandardBackbone() {
    var rng = SplitMix64(seed: 4)
    let loaded = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32), using: &rng)
    let segmentor = FCNSegmentor(copying: loaded, as: loaded.config.dilatedD8(),
                                 config: FCNConfig(classCount: 3).scalingHeads(by: 1.0 / 32), using: &rng)
    #expect(segmentor.backbone !== loaded && segmentor.backbone.config.outputStride == 8)
    #expect(loaded.config.outputStride == 32, "the loaded backbone is untouched")
    for (from, to) in zip(loaded.namedParameters, segmentor.backbone.namedParameters) {
      #expect(from.parameter.value == to.parameter.value, "\(from.name)")
    }
    #expect(segmentor.decodeHead.inChannels == 64 && segmentor.auxiliaryHead?.inChannels == 32)
  }

  /// predictLogits = the decode head in inference mode on layer4, resized to the requested size.
  @Test func predictLogitsIsTheInferenceDecodeHeadResized() {
    let (images, _) = Self.batch()
    let segmentor = Self.segmentor(auxiliary: true)
    var rng = SplitMix64(seed: 1)
    for bn in normLayers(of: segmentor.decodeHead) + normLayers(of: segmentor.backbone) {
      bn.runningMean.value = .randomNormal([bn.channels], std: 0.2, using: &rng)
      bn.runningVar.value = .randomUniform([bn.channels], low: 0.5, high: 1.5, using: &rng)
    }
    let logits = segmentor.predictLogits(images, height: 11, width: 7)
    #expect(logits.shape == [2, 11, 7, 4])
    let features = segmentor.backbone.forwardFeatures(images, mode: .inference).features[4]
    let head = segmentor.decodeHead.forward(features, mode: .inference, dropoutMask: .zeros([0])).0
    let expected = bilinearResize(head, height: 11, width: 7, alignCorners: false)
    #expect(logits.scaledError(to: expected) < 1e-5)
  }
}
