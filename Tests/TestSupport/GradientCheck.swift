// Finite-difference gradient checks (cs231n's eval_numerical_gradient_array; ggml test-backend-ops).
import Foundation
import Testing
import Tensors
import Layers

/// Expects `parameter.grad` to match centred finite differences of `loss` at `samples` random coordinates.
///
/// `loss` must recompute L from scratch with no side effects (reset BN running stats, or use a fresh
/// layer), preferably as `Σ y ⊙ dy` in Double for a fixed random `dy`, which checks the whole
/// vector-Jacobian product. Coordinates where the numeric slope disagrees between ±h and ±h/2 by more than
/// `kinkThreshold` (relative) straddle a kink (ReLU at 0, a max-pool tie) and are skipped; lower it towards
/// `tolerance` in composites, where one of many ReLUs crossing inside ±h biases the slope by a few per cent
/// only. A kink within rounding of the coordinate itself biases the slopes over ±h and ±h/2 alike (by half the
/// jump each), which that comparison cannot see; there the analytic gradient is one side's slope, and which side
/// depends on the last bit of a pre-activation (another CPU's BLAS rounding flipped such a ReLU). So a coordinate
/// that fails against the centred slope is skipped as a kink when its one-sided slopes (L(x + h) − L(x)) / h and
/// (L(x) − L(x − h)) / h differ by more than `kinkThreshold` and the analytic gradient lies within the range of the
/// one-sided slopes over h and h/2, widened by twice `tolerance` of their scale for the one-sided slopes' own O(h)
/// curvature error: with several kinks inside ±h (a BN shift moves a whole channel) any value there is
/// a slope of L near x, while a wrong gradient (a missing term, a factor, a sign) falls outside. The relative error divides by
/// `max(|numeric| + |analytic|, scaleFloor)`: raise `scaleFloor` to a fraction of the tensor's gradient scale
/// when Float32 rounding puts an absolute noise floor on the numeric slopes (deep composites), so coordinates
/// with near-zero gradients are judged against that floor rather than against themselves.
public func expectGradientsMatch(
  _ loss: () -> Double,
  wrt parameter: Parameter,
  named name: String = "parameter",
  step h: Float = 1e-2,
  tolerance: Double = 1e-2,
  samples: Int = 48,
  seed: UInt64 = 0,
  scaleFloor: Double = 1e-4,
  kinkThreshold: Double = 0.1,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  var rng = SplitMix64(seed: seed)
  let count = parameter.value.count
  let indices = count <= samples ? Array(0..<count) : (0..<samples).map { _ in Int.random(in: 0..<count, using: &rng) }
  var checked = 0
  let centre = loss()  // L(x), the same for every coordinate
  for i in indices {
    let original = parameter.value.scalars[i]
    /// The centred slope over ±step and the two one-sided ones.
    func slopes(_ step: Float) -> (centred: Double, right: Double, left: Double) {
      parameter.value.scalars[i] = original + step
      let plus = loss()
      parameter.value.scalars[i] = original - step
      let minus = loss()
      parameter.value.scalars[i] = original
      let (actualPlus, actualMinus) = (Double(original + step) - Double(original), Double(original) - Double(original - step))
      return ((plus - minus) / (actualPlus + actualMinus), (plus - centre) / actualPlus, (centre - minus) / actualMinus)
    }
    let (numeric, right, left) = slopes(h)
    let half = slopes(h / 2)
    let numericHalf = half.centred
    let sides = [left, right, half.left, half.right]  // one-sided slopes over h and h/2
    let kinkScale = max(abs(numeric), abs(numericHalf), 1e-3)
    if abs(numeric - numericHalf) / kinkScale > kinkThreshold { continue }  // a kink inside [x-h, x+h]
    let analytic = Double(parameter.grad.scalars[i])
    func relativeError(_ slope: Double) -> Double { abs(slope - analytic) / max(abs(slope) + abs(analytic), scaleFloor) }
    let error = relativeError(numeric)
    if error >= tolerance && abs(right - left) / kinkScale > kinkThreshold
      && analytic >= sides.min()! - 2 * tolerance * kinkScale
      && analytic <= sides.max()! + 2 * tolerance * kinkScale { continue }  // kinks at x itself
    checked += 1
    #expect(error < tolerance,
            "∂L/∂\(name)[\(i)]: analytic \(analytic), numeric \(numeric) (half step \(numericHalf), one-sided \(left) / \(right)), relative error \(error)",
            sourceLocation: sourceLocation)
  }
  #expect(checked >= min(indices.count, max(1, indices.count / 2)),
          "Only \(checked) of \(indices.count) coordinates of \(name) were away from kinks.",
          sourceLocation: sourceLocation)
}

/// Expects every element of `actual` within `atol + rtol·|expected|` of `expected`.
public func expectClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6,
                        _ what: String = "tensor", sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs expected \(expected.shape)",
          sourceLocation: sourceLocation)
  guard actual.shape == expected.shape else { return }
  var worstIndex = -1
  var worstExcess: Float = 0
  for i in 0..<actual.count {
    let excess = abs(actual.scalars[i] - expected.scalars[i]) - (atol + rtol * abs(expected.scalars[i]))
    if excess > worstExcess { worstExcess = excess; worstIndex = i }
  }
  #expect(worstIndex < 0,
          "\(what)[\(worstIndex)]: got \(worstIndex >= 0 ? actual.scalars[worstIndex] : 0), expected \(worstIndex >= 0 ? expected.scalars[worstIndex] : 0)",
          sourceLocation: sourceLocation)
}

extension Tag {
  /// Tests that take more than a few seconds; `make test-fast` skips them.
  @Tag public static var slow: Self
}

/// False when `SKIP_SLOW_TESTS` is set (`make test-fast`); slow tests use
/// `@Test(.tags(.slow), .enabled(if: runsSlowTests))`.
public let runsSlowTests = ProcessInfo.processInfo.environment["SKIP_SLOW_TESTS"] == nil

/// The finite-difference check of one layer's backward pass: runs `forward(x)` (training mode), back-propagates a
/// `dy` drawn from `generator`, and expects x's gradient and each of `parameters` to match the centred differences
/// of L = Σ forward(x) ⊙ dy (the vector-Jacobian product for that dy). Each parameter's `grad` must start at zero.
public func expectLayerGradientsMatch<Cache>(
  input x: Parameter,
  parameters: [(name: String, parameter: Parameter)],
  using generator: inout SplitMix64,
  forward: (Tensor) -> (Tensor, Cache),
  backward: (Tensor, Cache) -> Tensor,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let (y, cache) = forward(x.value)
  let dy = Tensor.randomNormal(y.shape, using: &generator)
  x.grad = backward(dy, cache)
  let loss = { forward(x.value).0.dot(dy) }
  expectGradientsMatch(loss, wrt: x, named: "x", sourceLocation: sourceLocation)
  for (name, parameter) in parameters {
    expectGradientsMatch(loss, wrt: parameter, named: name, sourceLocation: sourceLocation)
  }
}
