// SVM decision values are wᵀx + b in float64, as scikit-learn's decision_function computes them for FAIR's
// low-shot scripts (issue 14 item 12). The oracle is the float64 dot product written out in the test.
@testable import Evaluation
import Foundation
import Tensors
import Testing

@Suite struct SVMDecisionValueTests {
  /// Float32 scoring as before the fix: the weights rounded to float32 and the products summed in float32.
  static func float32Scores(test: [Float], rows: Int, dimension: Int, model: LinearSVMModel) -> [Double] {
    (0..<rows).map { row in
      var sum: Float = 0
      for j in 0..<dimension { sum += Float(model.weights[j]) * test[row * dimension + j] }
      return Double(sum) + model.bias
    }
  }

  /// The float64 oracle: Σ_j w_j·x_j + b, summed left to right in Double.
  static func float64Scores(test: [Float], rows: Int, dimension: Int, model: LinearSVMModel) -> [Double] {
    (0..<rows).map { row in
      var sum = 0.0
      for j in 0..<dimension { sum += model.weights[j] * Double(test[row * dimension + j]) }
      return sum + model.bias
    }
  }

  /// A hand-made case where float32 scoring flips the ranking of two test images.
  ///
  /// w = (1 + 7·2⁻²⁷, 3 + 9·2⁻²⁶), b = −3. Float32 rounds w₀ down to 1 (7·2⁻²⁷ is 0.44 of its ulp 2⁻²³) and w₁ up
  /// to 3 + 2⁻²² (9·2⁻²⁶ is 0.56 of its ulp 2⁻²²). Image A = (0, 1) scores w₁ − 3 = 9·2⁻²⁶ (float32: 16·2⁻²⁶);
  /// image B = (3, 0) scores 3w₀ − 3 = 10.5·2⁻²⁶ (float32: 0). So float64 puts the positive B first (AP 1) and
  /// float32 puts the negative A first (AP 0.5). Every product and sum here is exact in float64, so the values
  /// must equal the hand-computed ones to the last bit whatever order dgemm sums in.
  @Test func float64ScoringKeepsTheRankingThatFloat32Flips() {
    let model = LinearSVMModel(weights: [1 + 7 * 0x1p-27, 3 + 9 * 0x1p-26], bias: -3)
    let test: [Float] = [0, 1,   // A (negative)
                         3, 0]   // B (positive)
    let values = decisionValues(test: test, rows: 2, dimension: 2, models: [model])
    #expect(values == [9 * 0x1p-26, 10.5 * 0x1p-26])
    #expect(vocAllPointAP(scores: values, positive: [false, true]) == 1)

    // The case discriminates: float32 scoring ranks A first and halves the AP.
    let old = Self.float32Scores(test: test, rows: 2, dimension: 2, model: model)
    #expect(old == [16 * 0x1p-26, 0])
    #expect(vocAllPointAP(scores: old, positive: [false, true]) == 0.5)
  }

  /// Many rows (several blocks and a remainder), several models, a realistic width: every value equals the float64
  /// oracle within float64 rounding, and is far from float32's.
  @Test func valuesMatchTheFloat64OracleAcrossBlocks() {
    let (rows, dimension) = (37, 300)
    var random = SplitMix64(seed: 0x5EED)
    func next() -> Double { Double.random(in: -1..<1, using: &random) }
    let test = (0..<(rows * dimension)).map { _ in Float(next()) }
    let models = (0..<3).map { _ in LinearSVMModel(weights: (0..<dimension).map { _ in next() }, bias: next()) }
    let values = decisionValues(test: test, rows: rows, dimension: dimension, models: models, blockRows: 8)
    var worstFloat32Error = 0.0
    for (slot, model) in models.enumerated() {
      let oracle = Self.float64Scores(test: test, rows: rows, dimension: dimension, model: model)
      let float32 = Self.float32Scores(test: test, rows: rows, dimension: dimension, model: model)
      for row in 0..<rows {
        #expect(abs(values[row * models.count + slot] - oracle[row]) <= 1e-13, "row \(row), model \(slot)")
        worstFloat32Error = max(worstFloat32Error, abs(float32[row] - oracle[row]))
      }
    }
    #expect(worstFloat32Error > 1e-7)  // float32 is visibly off at this width: the tolerance above discriminates
  }
}
