// ConvTranspose2D against PyTorch's F.conv_transpose2d (Fixtures/conv_transpose.json, written by
// scripts/reference/make_mask_head_fixtures.py: forward, and autograd gradients of input, weight and bias for a fixed
// upstream gradient) and against centred finite differences. Tolerance: |ours − torch| ≤ 1e-5 · max(|torch|, 1).
import Foundation
import Testing
import Tensors
@testable import Layers
import TestSupport

struct ConvTransposeGolden: Decodable {
  struct Case: Decodable {
    var inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int, outputPadding: Int
    var dilation: Int, inputShape: [Int], outputShape: [Int]
    var input: [Float], weight: [Float], bias: [Float], output: [Float], outputGradient: [Float]
    var inputGradient: [Float], weightGradient: [Float], biasGradient: [Float]
  }
  var cases: [Case]

  static let shared: ConvTransposeGolden = {
    let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/conv_transpose.json")
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(ConvTransposeGolden.self, from: Data(contentsOf: url)) } catch {
      fatalError("Fixtures/conv_transpose.json does not load (rerun make_mask_head_fixtures.py): \(error)")
    }
  }()
}

@Suite struct ConvTranspose2DTests {
  static func layer(_ c: ConvTransposeGolden.Case) -> ConvTranspose2D {
    var rng = SplitMix64(seed: 1)
    let layer = ConvTranspose2D(inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernelSize,
                                stride: c.stride, padding: c.padding, outputPadding: c.outputPadding,
                                dilation: c.dilation, using: &rng)
    let pytorchShape = [c.inChannels, c.outChannels, c.kernelSize, c.kernelSize]
    #expect(layer.weight.exportedShape == pytorchShape)
    layer.weight.importValue(Tensor(shape: pytorchShape, scalars: c.weight))
    layer.bias!.importValue(Tensor(shape: [c.outChannels], scalars: c.bias))
    return layer
  }

  @Test(arguments: 0..<5)
  func matchesPyTorch(index: Int) {
    let c = ConvTransposeGolden.shared.cases[index]
    let layer = Self.layer(c)
    let x = Tensor(shape: c.inputShape, scalars: c.input)
    #expect(layer.outputShape(for: x.shape) == c.outputShape)
    let (y, cache) = layer.forward(x, mode: .training)
    #expect(y.shape == c.outputShape)
    expectClose(y.scalars, c.output, "case \(index) output")
    let dx = layer.backward(Tensor(shape: c.outputShape, scalars: c.outputGradient), cache)
    expectClose(dx.scalars, c.inputGradient, "case \(index) input gradient")
    expectClose(layer.weight.exportedGrad.scalars, c.weightGradient, "case \(index) weight gradient")
    expectClose(layer.bias!.grad.scalars, c.biasGradient, "case \(index) bias gradient")
  }

  /// Chunks of one image (the tap buffer limit) give the same output and gradients as one chunk.
  @Test(arguments: 0..<5)
  func chunkedMatchesPyTorch(index: Int) {
    let c = ConvTransposeGolden.shared.cases[index]
    let layer = Self.layer(c)
    layer.maximumColumnElements = 1
    let (y, cache) = layer.forward(Tensor(shape: c.inputShape, scalars: c.input), mode: .training)
    expectClose(y.scalars, c.output, "case \(index) chunked output")
    let dx = layer.backward(Tensor(shape: c.outputShape, scalars: c.outputGradient), cache)
    expectClose(dx.scalars, c.inputGradient, "case \(index) chunked input gradient")
    expectClose(layer.weight.exportedGrad.scalars, c.weightGradient, "case \(index) chunked weight gradient")
  }

  @Test(arguments: [(2, 2, 0, 0, 1), (3, 2, 1, 1, 1), (3, 1, 1, 0, 2)])
  func backwardMatchesFiniteDifferences(configuration: (Int, Int, Int, Int, Int)) {
    let (k, s, p, op, d) = configuration
    var rng = SplitMix64(seed: 11)
    let layer = ConvTranspose2D(inChannels: 3, outChannels: 4, kernelSize: k, stride: s, padding: p, outputPadding: op,
                                dilation: d, using: &rng)
    let x = Parameter(.randomNormal([2, 4, 5, 3], using: &rng))
    expectLayerGradientsMatch(input: x, parameters: [("weight", layer.weight), ("bias", layer.bias!)], using: &rng,
                              forward: { layer.forward($0, mode: .training) }, backward: layer.backward)
  }

  @Test func backwardAccumulatesIntoGrad() {
    var rng = SplitMix64(seed: 12)
    let layer = ConvTranspose2D(inChannels: 2, outChannels: 3, kernelSize: 2, stride: 2, using: &rng)
    let x = Tensor.randomNormal([1, 3, 3, 2], using: &rng)
    let (y, cache) = layer.forward(x, mode: .training)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    _ = layer.backward(dy, cache)
    let once = layer.weight.grad
    _ = layer.backward(dy, cache)
    expectClose(layer.weight.grad, Tensor(shape: once.shape, scalars: once.scalars.map { 2 * $0 }), "dW after two backward passes")
  }

  /// mmdet's init: kaiming normal with PyTorch's fan-out of [in, out, k, k] (in·k²) and a zero bias.
  @Test func kaimingInitUsesInputChannelsAsFanOut() {
    var rng = SplitMix64(seed: 13)
    let layer = ConvTranspose2D(inChannels: 256, outChannels: 64, kernelSize: 2, stride: 2,
                                initialization: .kaimingNormalFanOut, using: &rng)
    let values = layer.weight.value.scalars
    let variance = values.reduce(0.0) { $0 + Double($1 * $1) } / Double(values.count)
    #expect(abs(variance.squareRoot() - (2.0 / 1024).squareRoot()) < 0.002)
    #expect(layer.bias!.value.scalars.allSatisfy { $0 == 0 })
  }
}
