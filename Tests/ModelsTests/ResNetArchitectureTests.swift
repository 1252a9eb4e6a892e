// Full-size ResNets have torchvision's parameter counts and state-dict keys (fc excluded: we build backbones).
import Testing
import Tensors
import Layers
import Models
import TestSupport

@Suite struct ResNetArchitectureTests {
  /// torchvision resnet18/34/50 parameter counts (11,689,512 / 21,797,672 / 25,557,032) minus fc (512·1000 + 1000,
  /// or 2048·1000 + 1000 for ResNet-50); the CIFAR stem swaps the 7×7×3×64 conv for a 3×3 one (−7,680).
  @Test(.tags(.slow), .enabled(if: runsSlowTests),
        arguments: [(18, false, 11_176_512), (34, false, 21_284_672), (50, false, 23_508_032), (18, true, 11_168_832)])
  func parameterCountsMatchTorchvision(depth: Int, cifarStem: Bool, expected: Int) {
    var rng = SplitMix64(seed: 0)
    let model = ResNet(ResNetConfig(depth: depth, cifarStem: cifarStem), using: &rng)
    let count = model.namedParameters.filter { !$0.parameter.isBuffer }.map { $0.parameter.value.count }.reduce(0, +)
    #expect(count == expected)
  }

  @Test func stateDictKeysFollowTorchvision() {
    var rng = SplitMix64(seed: 0)
    let model = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32), using: &rng)
    let names = model.namedParameters.map(\.name)
    #expect(Array(names.prefix(7)) == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                        "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight"])
    #expect(names.contains("layer1.0.downsample.0.weight"))
    #expect(names.contains("layer1.0.downsample.1.num_batches_tracked"))
    #expect(!names.contains("layer1.1.downsample.0.weight"))
    #expect(names.last == "layer4.2.bn3.num_batches_tracked")
    // torchvision resnet50 state_dict has 320 entries; without fc.weight and fc.bias, 318.
    #expect(names.count == 318)
  }

  @Test func featureShapesFollowMMSelfSupNumbering() {
    var rng = SplitMix64(seed: 0)
    let model = ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16), using: &rng)
    let x = Tensor.randomNormal([1, 64, 64, 3], using: &rng)
    let shapes = model.inferFeatures(x).map(\.shape)
    // feature1 is the stem before the max-pool (stride 2), then layer1 … layer4 (strides 4, 8, 16, 32).
    #expect(shapes == [[1, 32, 32, 4], [1, 16, 16, 4], [1, 8, 8, 8], [1, 4, 4, 16], [1, 2, 2, 32]])
  }

  @Test func zeroInitResidualZeroesTheLastBNScaleOfEveryBlock() {
    var rng = SplitMix64(seed: 0)
    let model = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32, zeroInitResidual: true), using: &rng)
    for (name, parameter) in model.namedParameters where name.hasSuffix("bn3.weight") {
      #expect(parameter.value.scalars.allSatisfy { $0 == 0 }, "\(name)")
    }
    for (name, parameter) in model.namedParameters where name.hasSuffix("bn2.weight") {
      #expect(parameter.value.scalars.allSatisfy { $0 == 1 }, "\(name)")
    }
  }
}
