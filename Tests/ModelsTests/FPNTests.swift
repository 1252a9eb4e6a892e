// The FPN neck against mmdet 2.x, re-implemented in torch by scripts/reference/make_fpn_fixtures.py
// (Fixtures/detection/fpn.json; its docstring names the upstream code): outputs P2…P6, BN running statistics after
// the training forward, every parameter's gradient and ∂L/∂C_i for a loss Σ R_l·P_l — with BN on exact 2× steps and
// without norm (conv biases) on odd sizes where nearest upsampling is not 2×. Plus the state-dict names, the init,
// and PyTorch's nearest index rule by hand.
//
// Tolerance: scaled error (max |ours − torch| / max |torch|) ≤ 1e-5 for every tensor.
import Foundation
import Testing
import Tensors
import Layers
import Models
import TestSupport

struct FPNGolden: Decodable {
  struct Config: Decodable {
    var inChannels: [Int], outChannels: Int, numOuts: Int, strides: [Int], anchorScales: [Float]
    var aspectRatios: [Float], featureChannels: Int, sizeDivisor: Int, batchSizePerImage: Int
    var positiveFraction: Double
  }
  struct NamedValue: Decodable { var shape: [Int], value: [Float] }
  struct FPNCase: Decodable {
    var norm: Bool, inputShapes: [[Int]], inputs: [[Float]], parameters: [String: NamedValue]
    var buffers: [String: [Float]], outputShapes: [[Int]], outputs: [[Float]], outputWeights: [[Float]]
    var runningAfter: [String: [Float]], gradients: [String: [Float]], inputGradients: [[Float]]
  }
  struct Training: Decodable {
    var inputShapes: [[Int]], inputs: [[Float]], fpnParameters: [String: NamedValue], fpnBuffers: [String: [Float]]
    var rpnParameters: [String: NamedValue], featureShapes: [[Int]], features: [[Float]], anchors: [Float]
    var objectness: [Float], labels: [[Int]], matches: [[Int]], sampledPositive: [[Int]], sampledNegative: [[Int]]
    var avgFactor: Int, lossCls: Float, lossBbox: Float, rpnGradients: [String: [Float]]
    var fpnGradients: [String: [Float]], featureGradients: [[Float]], inputGradients: [[Float]]
    var proposals: [[Float]], proposalScores: [[Float]]
  }
  struct ProposalCase: Decodable {
    var height: Int, width: Int, preNmsTopK: Int, postNmsTopK: Int, nmsThreshold: Double, minBoxSize: Float
    var featureSizes: [[Int]], objectness: [[Float]], deltas: [[Float]], boxes: [Float], scores: [Float]
  }
  var config: Config
  var imageSizes: [[Int]]
  var gtBoxes: [[Float]]
  var fpnCases: [FPNCase]
  var training: Training
  var proposalCases: [ProposalCase]

  static let shared: FPNGolden = {
    let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/detection/fpn.json")
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(FPNGolden.self, from: Data(contentsOf: url)) } catch {
      fatalError("Fixtures/detection/fpn.json does not load (rerun make_fpn_fixtures.py): \(error)")
    }
  }()

  /// A neck with the given parameters and initial buffers (names as mmdet's state dict).
  func makeNeck(norm: Bool, parameters: [String: NamedValue], buffers: [String: [Float]]) -> FeaturePyramidNetwork {
    var rng = SplitMix64(seed: 3)
    let neck = FeaturePyramidNetwork(inChannels: config.inChannels, outChannels: config.outChannels,
                                     outputCount: config.numOuts, hasNorm: norm, using: &rng)
    for (name, parameter) in neck.namedParameters {
      if let stored = parameters[name] {
        parameter.importValue(Tensor(shape: stored.shape, scalars: stored.value))
      } else if let stored = buffers[name] {
        parameter.importValue(Tensor(shape: [stored.count], scalars: stored))
      } else {
        #expect(name.hasSuffix("num_batches_tracked"), "\(name) is not in the fixture")
      }
    }
    return neck
  }
}

func tensors(_ values: [[Float]], shapes: [[Int]]) -> [Tensor] {
  zip(shapes, values).map { Tensor(shape: $0, scalars: $1) }
}

@Suite struct FPNTests {
  let golden = FPNGolden.shared

  @Test func stateDictNamesShapesAndInitialisationAreMMDets() {
    var rng = SplitMix64(seed: 1)
    let neck = FeaturePyramidNetwork(inChannels: [8, 16, 32, 64], outChannels: 16, hasNorm: true, using: &rng)
    let names = neck.namedParameters.map(\.name)
    let module = ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    #expect(names == (0..<4).flatMap { i in module.map { "lateral_convs.\(i).\($0)" } }
              + (0..<4).flatMap { i in module.map { "fpn_convs.\(i).\($0)" } })
    let shapes = Dictionary(uniqueKeysWithValues: neck.namedParameters.map { ($0.name, $0.parameter.exportedShape) })
    #expect(shapes["lateral_convs.2.conv.weight"] == [16, 32, 1, 1] && shapes["fpn_convs.3.conv.weight"] == [16, 16, 3, 3])
    // Xavier uniform (gain 1): U(±√(6 / (fan_in + fan_out))), std = bound / √3; BN γ 1, β 0.
    for (conv, fanIn, fanOut) in [(neck.lateralConvs[3].conv, 64, 16), (neck.outputConvs[0].conv, 144, 144)] {
      let bound = (6 / Float(fanIn + fanOut)).squareRoot()
      let values = conv.weight.value.scalars
      let std = (values.reduce(0) { $0 + Double($1 * $1) } / Double(values.count)).squareRoot()
      #expect(values.allSatisfy { abs($0) <= bound } && values.contains { abs($0) > 0.9 * bound })
      #expect(abs(std - Double(bound) / 3.0.squareRoot()) < 0.1 * Double(bound), "std \(std) for bound \(bound)")
    }
    #expect(neck.lateralConvs[0].norm!.weight!.value.scalars.allSatisfy { $0 == 1 })
    #expect(neck.lateralConvs[0].norm!.bias!.value.scalars.allSatisfy { $0 == 0 })
    // Plain mmdet (no norm): ConvModule bias='auto' gives the conv a bias, initialised 0 by xavier_init.
    let plain = FeaturePyramidNetwork(inChannels: [8, 16], outChannels: 16, outputCount: 3, hasNorm: false, using: &rng)
    #expect(plain.namedParameters.map(\.name) == ["lateral_convs.0.conv.weight", "lateral_convs.0.conv.bias",
                                                  "lateral_convs.1.conv.weight", "lateral_convs.1.conv.bias",
                                                  "fpn_convs.0.conv.weight", "fpn_convs.0.conv.bias",
                                                  "fpn_convs.1.conv.weight", "fpn_convs.1.conv.bias"])
    #expect(plain.outputConvs[1].conv.bias!.value.scalars.allSatisfy { $0 == 0 })
  }

  /// PyTorch `nearest_idx`: ⌊dst · in/out⌋ in float, capped; exact halving for 2×; by hand.
  @Test func nearestIndexFollowsPyTorch() {
    #expect((0..<5).map { nearestSourceIndex($0, inputSize: 2, outputSize: 5) } == [0, 0, 0, 1, 1])
    #expect((0..<7).map { nearestSourceIndex($0, inputSize: 4, outputSize: 7) } == [0, 0, 1, 1, 2, 2, 3])
    #expect((0..<10).map { nearestSourceIndex($0, inputSize: 5, outputSize: 10) } == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    #expect((0..<3).map { nearestSourceIndex($0, inputSize: 3, outputSize: 3) } == [0, 1, 2])
    // 3 → 2 (downsampling): scale 1.5 → 0, 1.
    #expect((0..<2).map { nearestSourceIndex($0, inputSize: 3, outputSize: 2) } == [0, 1])
    // The sum and its gradient on a 1×2 → 2×5 map by hand: columns read 0, 0, 0, 1, 1.
    let source = Tensor(shape: [1, 1, 2, 1], scalars: [10, 20])
    let target = Tensor(shape: [1, 2, 5, 1], scalars: (0..<10).map(Float.init))
    let sum: [Float] = [10, 11, 12, 23, 24, 15, 16, 17, 28, 29]
    #expect(addingNearestUpsampled(source, to: target).scalars == sum)
    let dy = Tensor(shape: [1, 2, 5, 1], scalars: (1...10).map(Float.init))
    let expected: [Float] = [27, 28]  // 1 + 2 + 3 + 6 + 7 + 8 and 4 + 5 + 9 + 10
    #expect(nearestUpsampledSourceGradient(dy, sourceShape: [1, 1, 2, 1]).scalars == expected)
  }

  @Test(arguments: [0, 1]) func outputsStatisticsAndGradientsMatchPyTorch(caseIndex: Int) {
    let item = golden.fpnCases[caseIndex]
    let neck = golden.makeNeck(norm: item.norm, parameters: item.parameters, buffers: item.buffers)
    neck.zeroGrad()
    let (outputs, cache) = neck.forward(tensors(item.inputs, shapes: item.inputShapes), mode: .training)
    #expect(outputs.map(\.shape) == item.outputShapes)
    for (level, output) in outputs.enumerated() {
      expectScaledClose(output.scalars, item.outputs[level], "case \(caseIndex) P\(level + 2)")
    }
    for (name, parameter) in neck.namedParameters where parameter.isBuffer && !name.hasSuffix("num_batches_tracked") {
      expectScaledClose(parameter.value.scalars, item.runningAfter[name]!, "case \(caseIndex) \(name) after forward")
    }
    let inputGradients = neck.backward(tensors(item.outputWeights, shapes: item.outputShapes), cache)
    for (level, gradient) in inputGradients.enumerated() {
      #expect(gradient.shape == item.inputShapes[level])
      expectScaledClose(gradient.scalars, item.inputGradients[level], "case \(caseIndex) ∂L/∂C\(level + 2)")
    }
    for (name, parameter) in neck.namedParameters where !parameter.isBuffer {
      expectScaledClose(parameter.exportedGrad.scalars, item.gradients[name]!, "case \(caseIndex) ∂L/∂\(name)")
    }
  }

  /// Finite differences of L = Σ_l Σ R_l ⊙ P_l (Double) against backward, for parameters at every depth of the
  /// neck, with BN (batch statistics couple the whole batch) and without norm (odd sizes).
  @Test(arguments: [0, 1]) func backwardMatchesFiniteDifferences(caseIndex: Int) {
    let item = golden.fpnCases[caseIndex]
    let neck = golden.makeNeck(norm: item.norm, parameters: item.parameters, buffers: item.buffers)
    let inputs = tensors(item.inputs, shapes: item.inputShapes)
    let weights = tensors(item.outputWeights, shapes: item.outputShapes)
    func loss() -> Double {
      let outputs = neck.forward(inputs, mode: .training).outputs
      return zip(outputs, weights).reduce(0) { sum, pair in
        zip(pair.0.scalars, pair.1.scalars).reduce(sum) { $0 + Double($1.0) * Double($1.1) }
      }
    }
    neck.zeroGrad()
    let (outputs, cache) = neck.forward(inputs, mode: .training)
    _ = neck.backward(weights, cache)
    #expect(outputs.count == 5)
    let named = Dictionary(uniqueKeysWithValues: neck.namedParameters.map { ($0.name, $0.parameter) })
    let checked = item.norm
      ? ["lateral_convs.0.conv.weight", "lateral_convs.3.conv.weight", "fpn_convs.3.conv.weight", "lateral_convs.2.bn.weight",
         "fpn_convs.1.bn.bias"]
      : ["lateral_convs.1.conv.weight", "lateral_convs.3.conv.bias", "fpn_convs.0.conv.weight", "fpn_convs.3.conv.bias"]
    for name in checked {
      expectGradientsMatch(loss, wrt: named[name]!, named: name, step: 1e-2, tolerance: 2e-2, samples: 12,
                           scaleFloor: 1e-2)
    }
  }

  /// Inference uses the running statistics: the no-norm neck gives the same outputs in both modes, the BN neck
  /// leaves its buffers alone.
  @Test func inferenceUsesRunningStatistics() {
    let item = golden.fpnCases[0]
    let neck = golden.makeNeck(norm: true, parameters: item.parameters, buffers: item.buffers)
    let inputs = tensors(item.inputs, shapes: item.inputShapes)
    let before = neck.namedParameters.filter { $0.parameter.isBuffer }.map { $0.parameter.value }
    let (inference, _) = neck.forward(inputs, mode: .inference)
    #expect(neck.namedParameters.filter { $0.parameter.isBuffer }.map { $0.parameter.value } == before)
    #expect(inference[0].scaledError(to: Tensor(shape: item.outputShapes[0], scalars: item.outputs[0])) > 1e-3)
    let plainCase = golden.fpnCases[1]
    let plain = golden.makeNeck(norm: false, parameters: plainCase.parameters, buffers: plainCase.buffers)
    let plainInputs = tensors(plainCase.inputs, shapes: plainCase.inputShapes)
    #expect(plain.forward(plainInputs, mode: .inference).outputs == plain.forward(plainInputs, mode: .training).outputs)
  }
}
