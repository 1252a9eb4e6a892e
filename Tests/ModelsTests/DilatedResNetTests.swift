// mmseg's dilated ResNet (strides, dilations, contract_dilation; PROTOCOLS §5.3/§5.5 "Dilated ResNet (D8)"):
// geometry, unchanged state dict, backward-compatible config coding, and finite-difference checks of the dilated
// 3×3 convs inside blocks and of the multi-feature backward. The PyTorch parity of the whole D8 network is in
// FCNParityTests.
import Foundation
import Testing
import Tensors
import Layers
import Models
import Checkpoints
import TestSupport

@Suite struct DilatedResNetTests {
  // MARK: Geometry

  @Test func resNet50D8HasOutputStride8() {
    var rng = SplitMix64(seed: 0)
    let config = ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32).dilatedD8()
    #expect(config.outputStride == 8)
    #expect(ResNetConfig(depth: 50).outputStride == 32)
    let model = ResNet(config, using: &rng)
    let x = Tensor.randomNormal([1, 64, 64, 3], using: &rng)
    // stem /2, max-pool /4, layer1 /4, layer2 /8, layer3 and layer4 stay at /8.
    #expect(model.inferFeatures(x).map(\.shape)
              == [[1, 32, 32, 2], [1, 16, 16, 8], [1, 8, 8, 16], [1, 8, 8, 32], [1, 8, 8, 64]])
    #expect(model.forwardFeatures(x, mode: .training).features.map(\.shape)
              == [[1, 32, 32, 2], [1, 16, 16, 8], [1, 8, 8, 16], [1, 8, 8, 32], [1, 8, 8, 64]])
  }

  /// contract_dilation: layer3's first block has dilation 1 (= 2/2) and the others 2; layer4's first 2 (= 4/2), the
  /// others 4; padding = dilation; the stride sits on layer2's first 3×3 conv and downsample conv only.
  @Test func bottleneckDilationsFollowContractDilation() {
    var rng = SplitMix64(seed: 0)
    let model = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32).dilatedD8(), using: &rng)
    let expected = [[1, 1, 1], [1, 1, 1, 1], [1, 2, 2, 2, 2, 2], [2, 4, 4]]
    for (stageIndex, stage) in model.stages.enumerated() {
      #expect(stage.map { $0.branch[1].conv.dilation } == expected[stageIndex], "layer\(stageIndex + 1) dilations")
      #expect(stage.map { $0.branch[1].conv.padding } == expected[stageIndex], "layer\(stageIndex + 1) paddings")
      for block in stage {
        #expect(block.branch[0].conv.dilation == 1 && block.branch[2].conv.dilation == 1)
      }
      let strides = stage.map { $0.branch[1].conv.stride }
      #expect(strides == [stageIndex == 1 ? 2 : 1] + Array(repeating: 1, count: stage.count - 1))
      #expect(stage[0].downsample?.conv.stride == (stageIndex == 1 ? 2 : 1))
    }
    // Without contract_dilation every block of a stage has the stage's dilation.
    let plain = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32)
      .withDilation(strides: [1, 2, 1, 1], dilations: [1, 1, 2, 4], contractDilation: false), using: &rng)
    #expect(plain.stages[2].map { $0.branch[1].conv.dilation } == [2, 2, 2, 2, 2, 2])
    #expect(plain.stages[3].map { $0.branch[1].conv.dilation } == [4, 4, 4])
  }

  /// mmseg's BasicBlock dilates only its first 3×3 conv (conv2 keeps padding 1, dilation 1).
  @Test func basicBlockDilatesOnlyItsFirstConv() {
    var rng = SplitMix64(seed: 0)
    let model = ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16, cifarStem: true).dilatedD8(), using: &rng)
    #expect(model.stages[3].map { $0.branch[0].conv.dilation } == [2, 4])
    #expect(model.stages[3].map { $0.branch[0].conv.padding } == [2, 4])
    #expect(model.stages[3].allSatisfy { $0.branch[1].conv.dilation == 1 && $0.branch[1].conv.padding == 1 })
    #expect(model.config.outputStride == 2)
    let x = Tensor.randomNormal([1, 12, 12, 3], using: &rng)
    #expect(model.inferFeatures(x).last?.shape == [1, 6, 6, 32])
  }

  // MARK: State dict

  @Test(arguments: [18, 50])
  func dilationChangesNoNameOrShape(depth: Int) {
    var rng = SplitMix64(seed: 0)
    let standard = ResNet(ResNetConfig(depth: depth, widthMultiplier: 1.0 / 32), using: &rng)
    let dilated = ResNet(ResNetConfig(depth: depth, widthMultiplier: 1.0 / 32).dilatedD8(), using: &rng)
    #expect(standard.namedParameters.map(\.name) == dilated.namedParameters.map(\.name))
    #expect(standard.namedParameters.map(\.parameter.exportedShape)
              == dilated.namedParameters.map(\.parameter.exportedShape))
  }

  /// A torchvision-layout ResNet-50 state dict written by PyTorch (the engine fixture's initial backbone) loads
  /// strictly into the D8 network, through the same loader as every checkpoint.
  @Test func standardCheckpointLoadsIntoTheDilatedNetwork() throws {
    let url = try #require(Bundle.module.url(forResource: "resnet50_tiny", withExtension: "safetensors",
                                             subdirectory: "Fixtures"))
    let file = try SafeTensors(contentsOf: url)
    var rng = SplitMix64(seed: 0)
    let dilated = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32).dilatedD8(), using: &rng)
    let stateDict = file.tensors(withPrefix: "init.backbone.")
    try StateDict.load(stateDict, into: dilated.namedParameters, source: "resnet50_tiny")
    let contents = CheckpointContents(tensors: stateDict, format: .safetensors, source: "resnet50_tiny")
    let report = try BackboneLoader.load(contents, into: dilated)
    #expect(report.isComplete)
    #expect(report.loaded.count == dilated.namedParameters.count)
    for (name, parameter) in dilated.namedParameters {
      #expect(parameter.exportedValue == stateDict[name]?.value, "\(name)")
    }
  }

  @Test func copyParametersMovesAStandardNetworkIntoItsDilatedTwin() {
    var rng = SplitMix64(seed: 0)
    let standard = ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16), using: &rng)
    var other = SplitMix64(seed: 99)
    let dilated = ResNet(standard.config.dilatedD8(), using: &other)
    dilated.copyParameters(from: standard)
    for (from, to) in zip(standard.namedParameters, dilated.namedParameters) {
      #expect(from.parameter.value == to.parameter.value, "\(from.name)")
      #expect(from.parameter !== to.parameter, "\(from.name) is copied, not shared")
    }
  }

  // MARK: Config coding

  /// Configs and checkpoint metadata written before the dilation keys existed decode as the standard geometry, and
  /// a standard config still encodes with exactly the old keys.
  @Test func configCodingIsBackwardCompatible() throws {
    let old = #"{"cifarStem":true,"depth":18,"inChannels":3,"widthMultiplier":0.25,"zeroInitResidual":false}"#
    let decoded = try JSONDecoder().decode(ResNetConfig.self, from: Data(old.utf8))
    #expect(decoded == ResNetConfig(depth: 18, widthMultiplier: 0.25, cifarStem: true))
    #expect(decoded.strides == [1, 2, 2, 2] && decoded.dilations == [1, 1, 1, 1] && !decoded.contractDilation)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    #expect(String(decoding: try encoder.encode(decoded), as: UTF8.self) == old)

    let dilated = decoded.dilatedD8()
    let json = String(decoding: try encoder.encode(dilated), as: UTF8.self)
    #expect(json.contains(#""strides":[1,2,1,1]"#) && json.contains(#""dilations":[1,1,2,4]"#)
              && json.contains(#""contractDilation":true"#))
    #expect(try JSONDecoder().decode(ResNetConfig.self, from: Data(json.utf8)) == dilated)
  }

  // MARK: Finite differences

  /// (kind, inChannels, width, stride, dilation, input): the dilated 3×3 conv with padding = dilation, alone
  /// (stride 1, identity shortcut) and with a strided projection.
  static let dilatedBlockCases: [(ResidualBlock.Kind, Int, Int, Int, Int, [Int])] = [
    (.bottleneck, 16, 4, 1, 2, [2, 6, 6, 16]),
    (.bottleneck, 8, 4, 2, 2, [2, 7, 7, 8]),
    (.bottleneck, 16, 4, 1, 4, [2, 6, 6, 16]),
    (.basic, 4, 4, 1, 2, [2, 6, 6, 4]),
    (.basic, 3, 4, 2, 2, [2, 7, 7, 3]),
  ]

  @Test(arguments: 0..<5, [Mode.training, Mode.inference])
  func dilatedBlockBackwardMatchesFiniteDifferences(caseIndex: Int, mode: Mode) {
    let (kind, inChannels, width, stride, dilation, shape) = Self.dilatedBlockCases[caseIndex]
    var rng = SplitMix64(seed: 131 + UInt64(caseIndex))
    let block = ResidualBlock(kind: kind, inChannels: inChannels, width: width, stride: stride, dilation: dilation,
                              zeroInitResidual: false, using: &rng)
    let dilatedConv = block.branch[kind == .basic ? 0 : 1].conv
    #expect(dilatedConv.dilation == dilation && dilatedConv.padding == dilation)
    randomizeBatchNorms(normLayers(of: block), using: &rng)
    // A block's input is a ReLU output. Redraw it until no ReLU input sits within 3e-4 of the kink: a pre-activation
    // AT the kink (one drawn at 1e-6 did) makes both centred differences average the two slopes alike, which the
    // kink test cannot see; one a step's effect away is caught by comparing ±h with ±h/2.
    var x = Tensor.randomUniform(shape, low: 0, high: 2, using: &rng)
    var draws = 1
    while closestReLUInput(block, x, mode: mode) < 3e-4 && draws < 100 {
      x = Tensor.randomUniform(shape, low: 0, high: 2, using: &rng)
      draws += 1
    }
    #expect(draws < 100, "no input kept every ReLU input 3e-4 away from its kink")
    expectBackwardMatchesFiniteDifferences(
      // 2%: in training mode a step in x moves every pre-activation through the batch statistics, and the few
      // ReLU inputs it carries across their kink bias single coordinates by ~1% (a wrong tap or dilation is off by
      // tens of per cent).
      parameters: block.namedParameters, input: x, settings: FiniteDifferenceSettings(tolerance: 2e-2, samples: 24),
      rng: &rng,
      forward: { block.forward($0, mode: mode).0 },
      forwardBackward: { x, dy in
        let (_, cache) = block.forward(x, mode: mode)
        return block.backward(dy, cache)
      })
  }

  /// The smallest |ReLU input| in `block` on `x` (the fused BN ReLUs and the final add), buffers left unchanged.
  private func closestReLUInput(_ block: ResidualBlock, _ x: Tensor, mode: Mode) -> Float {
    let buffers = block.parameters.filter(\.isBuffer)
    let saved = buffers.map(\.value)
    defer { for (buffer, value) in zip(buffers, saved) { buffer.value = value } }
    var closest = Float.infinity
    var h = x
    for unit in block.branch {
      let fuses = unit.bn.fusesReLU
      unit.bn.fusesReLU = false
      h = unit.forward(h, mode: mode).0
      unit.bn.fusesReLU = fuses
      closest = min(closest, h.scalars.lazy.map(abs).min() ?? .infinity)
      if fuses { h = relu(h) }
    }
    let shortcut = block.downsample.map { $0.forward(x, mode: mode).0 } ?? x
    return min(closest, (h + shortcut).scalars.lazy.map(abs).min() ?? .infinity)
  }

  /// `backward(featureGradients:)` with gradients at feature4 (layer3) and feature5 (layer4), as the segmentor
  /// calls it: L = Σ feature4 ⊙ d4 + Σ feature5 ⊙ d5 through a D8 CIFAR-stem ResNet-18.
  @Test func multiFeatureBackwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 141)
    let resNet = ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16, cifarStem: true).dilatedD8(), using: &rng)
    resNet.computesInputGradient = true
    randomizeBatchNorms(normLayers(of: resNet), lowShift: 2, highShift: 3, using: &rng)
    let x = Tensor.randomNormal([2, 8, 8, 3], using: &rng)  // layer3/4 at 4×4: 32 rows per BN channel
    let shapes = resNet.inferFeatures(x).map(\.shape)
    let d4 = Tensor.randomNormal(shapes[3], using: &rng)
    // forward returns the concatenated (flattened) features so that Σ y ⊙ dy = Σ f4 ⊙ d4 + Σ f5 ⊙ d5 with
    // dy = (d4, d5); the helper's random dy replaces d5 and scales nothing else.
    let names = ["conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "layer3.0.conv1.weight",
                 "layer3.1.conv1.weight", "layer3.1.bn2.bias", "layer4.0.conv1.weight", "layer4.1.conv2.weight"]
    var settings = FiniteDifferenceSettings(step: 1e-2, vectorStep: 3e-3, tolerance: 5e-2, samples: 12)
    settings.kinkThreshold = 0.1
    expectBackwardMatchesFiniteDifferences(
      parameters: resNet.namedParameters, input: x, names: names, settings: settings, rng: &rng,
      forward: { input in
        let features = resNet.forwardFeatures(input, mode: .training).features
        return Tensor(shape: [features[4].count + 1],
                      scalars: features[4].scalars + [Float(features[3].dot(d4))])
      },
      forwardBackward: { input, dy in
        let (features, cache) = resNet.forwardFeatures(input, mode: .training)
        let d5 = Tensor(shape: features[4].shape, scalars: Array(dy.scalars.prefix(features[4].count)))
        let weight = dy.scalars.last!
        return resNet.backward(featureGradients: [5: d5, 4: weight * d4], cache)
      })
  }
}
