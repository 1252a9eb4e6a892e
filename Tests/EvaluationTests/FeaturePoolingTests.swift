import Testing
import Tensors
import Models
@testable import Evaluation

@Suite struct FeaturePoolingTests {
  @Test func flattensInPyTorchChannelMajorOrder() {
    // [1, 2, 2, 3] NHWC with value = 100·c + 10·h + w; NCHW view(n, -1) lists channel 0's plane first.
    var scalars: [Float] = []
    for h in 0..<2 { for w in 0..<2 { for c in 0..<3 { scalars.append(Float(100 * c + 10 * h + w)) } } }
    let flat = nhwcToFlatNCHW(Tensor(shape: [1, 2, 2, 3], scalars: scalars))
    #expect(flat.shape == [1, 12])
    #expect(flat.scalars == [0, 1, 10, 11, 100, 101, 110, 111, 200, 201, 210, 211])
  }

  @Test func resNet50DimensionsAreMMSelfSups() {
    // POOL_DIMS of MMSelfSup's MultiPooling for ResNet-50: 9216 / 9216 / 8192 / 9216 / 8192, GAP 2048.
    let channels = ResNetConfig(depth: 50).featureChannels
    let dims = FeatureLayer.allCases.map { FeaturePooling.dimension(of: $0, channels: channels[$0.stageIndex]) }
    #expect(dims == [9216, 9216, 8192, 9216, 8192, 2048])
  }

  @Test func ruleIsSpecifiedOnlyForTheImageNetStemAt224() {
    var generator = SplitMix64(seed: 1)
    let imagenet = FeatureExtractor(backbone: ResNet(ResNetConfig(depth: 18, widthMultiplier: 0.125), using: &generator))
    #expect(imagenet.stageSizes(forInputSize: 224) == [112, 56, 28, 14, 7])
    #expect(imagenet.pooling(forInputSize: 224) == .specified)
    #expect(imagenet.pooling(forInputSize: 96) == .adaptive)
    let cifar = FeatureExtractor(backbone: ResNet(ResNetConfig(depth: 18, widthMultiplier: 0.125, cifarStem: true),
                                                  using: &generator))
    #expect(cifar.stageSizes(forInputSize: 32) == [32, 32, 16, 8, 4])
    #expect(cifar.pooling(forInputSize: 224) == .adaptive)
  }

  @Test func specifiedPoolingGivesTheDocumentedGrids() {
    // Each stage map of a 224 input pooled with its kernel gives 12/6/4/3/2 (feature1 includes the padding).
    for (stage, side) in FeaturePooling.specifiedInputSizes.enumerated() {
      let x = Tensor(repeating: 1, shape: [1, side, side, 2])
      let flat = FeaturePooling.specified.pooledFlat(x, layer: FeatureLayer.stages[stage])
      let grid = FeaturePooling.gridSizes[stage]
      #expect(flat.shape == [1, 2 * grid * grid])
      if stage == 0 {
        // feature1's corner window covers 6×6 real pixels of 10×10: 36 / 100 with count_include_pad.
        #expect(abs(flat.scalars[0] - 0.36) < 1e-6)
      } else {
        #expect(flat.scalars.allSatisfy { abs($0 - 1) < 1e-6 })
      }
    }
  }
}
