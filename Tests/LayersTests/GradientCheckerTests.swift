import Testing
import Tensors
@testable import Layers
import TestSupport

/// The finite-difference checker itself (TestSupport/GradientCheck.swift) on a function with a known gradient:
/// it passes the true gradient, also at a kink sitting exactly on a coordinate, and fails wrong ones there and
/// elsewhere — so skipping kinks cannot hide an error.
struct GradientCheckerTests {
  /// L(θ) = Σ_i c_i·relu(θ_i) + θ_i², in Double; dL/dθ_i = c_i·[θ_i > 0] + 2θ_i (the right-hand slope at 0 is
  /// c_i, the left-hand one 0).
  private static let weights: [Double] = [1.5, -0.7, 2.0, 0.4, -1.2, 0.9, 1.1, -0.3]

  private func loss(_ parameter: Parameter) -> Double {
    zip(parameter.value.scalars, Self.weights).reduce(0) { sum, term in
      let theta = Double(term.0)
      return sum + term.1 * max(theta, 0) + theta * theta
    }
  }

  /// θ = [0, 0.8, −0.6, 1.3, 0.5, −0.9, 0.7, 1.0]: one coordinate exactly on its kink.
  private func parameter(gradient: (Int, Double) -> Double) -> Parameter {
    let values: [Float] = [0, 0.8, -0.6, 1.3, 0.5, -0.9, 0.7, 1.0]
    let parameter = Parameter(Tensor(shape: [8], scalars: values))
    parameter.grad = Tensor(shape: [8], scalars: values.enumerated().map { index, theta in
      Float(gradient(index, Double(theta)))
    })
    return parameter
  }

  private func trueGradient(_ index: Int, _ theta: Double) -> Double {
    (theta > 0 ? Self.weights[index] : 0) + 2 * theta
  }

  @Test func passesTheTrueGradientIncludingAtAKink() {
    let p = parameter(gradient: trueGradient)
    expectGradientsMatch({ loss(p) }, wrt: p, step: 1e-2, tolerance: 1e-3)
  }

  @Test func failsAGradientScaledByTwoPerCent() {
    let p = parameter { 1.02 * trueGradient($0, $1) }
    withKnownIssue { expectGradientsMatch({ loss(p) }, wrt: p, step: 1e-2, tolerance: 1e-3) }
  }

  @Test func failsAWrongGradientAtTheKink() {
    // At θ₀ = 0 the slopes are 0 (left) and 1.5 (right); 3.0 is neither, nor between them.
    let p = parameter { index, theta in index == 0 ? 3.0 : trueGradient(index, theta) }
    withKnownIssue { expectGradientsMatch({ loss(p) }, wrt: p, step: 1e-2, tolerance: 1e-3) }
  }
}
