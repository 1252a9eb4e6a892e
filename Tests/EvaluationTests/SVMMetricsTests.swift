// The SVM protocol's exact pieces: scikit-learn's AP, the reference's all-point AP, StratifiedKFold folds and the
// cost list, against hand-computed values and scikit-learn's output (scripts/reference/make_svm_fixtures.py).
import Foundation
import Testing
@testable import Evaluation

struct SVMGolden: Decodable {
  struct APCase: Decodable {
    var scores: [Double]
    var positive: [Bool]
    var sklearn_ap: Double?
    var voc_ap: Double?
  }
  struct FoldCase: Decodable {
    var labels: [Int]
    var folds: [Int]
  }
  var average_precision: [APCase]
  var voc_ap: [APCase]
  var stratified_kfold: [FoldCase]

  static func load() throws -> SVMGolden {
    let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/svm/golden.json")
    return try JSONDecoder().decode(SVMGolden.self, from: Data(contentsOf: url))
  }
}

@Suite struct SVMMetricsTests {
  @Test func costListIsTheReferences19() {
    #expect(referenceSVMCosts.count == 19)
    #expect(Array(referenceSVMCosts.prefix(4)) == [1, 10, 100, 0.0625])
    #expect(referenceSVMCosts.last == 1.0 / 524_288)  // 0.5^19
  }

  @Test func sklearnAPByHand() {
    // Scores 0.9(+) 0.8(−) 0.7(+) 0.6(−): thresholds give (R, P) = (½, 1), (½, ½), (1, ⅔), (1, ½);
    // AP = ½·1 + 0 + ½·⅔ + 0 = 5/6.
    #expect(abs(sklearnAveragePrecision(scores: [0.9, 0.8, 0.7, 0.6], positive: [true, false, true, false])
      - 5.0 / 6) < 1e-15)
    // Tie: 0.5(+) and 0.5(−) enter together: one threshold with R = 1, P = ½ → AP = ½ whatever the order.
    #expect(sklearnAveragePrecision(scores: [0.5, 0.5], positive: [true, false]) == 0.5)
    #expect(sklearnAveragePrecision(scores: [0.5, 0.5], positive: [false, true]) == 0.5)
  }

  @Test func vocAPByHand() {
    // Ranks + − + −: P = 1, ½, ⅔, ½; R = ½, ½, 1, 1. Monotone P from the right: 1, ⅔, ⅔, ½.
    // Recall changes at ranks 1 and 3: AP = ½·1 + ½·⅔ = 5/6.
    #expect(abs(vocAllPointAP(scores: [0.9, 0.8, 0.7, 0.6], positive: [true, false, true, false]) - 5.0 / 6) < 1e-15)
    // − + : P = 0, ½; R = 0, 1 → AP = 1 · ½.
    #expect(vocAllPointAP(scores: [2, 1], positive: [false, true]) == 0.5)
    // Interpolation differs from sklearn's AP: − + + gives sklearn ½·½ + ½·⅔ = 7/12, all-point (⅔ from the
    // right) ½·⅔ + ½·⅔ = ⅔.
    #expect(abs(vocAllPointAP(scores: [3, 2, 1], positive: [false, true, true]) - 2.0 / 3) < 1e-15)
    #expect(abs(sklearnAveragePrecision(scores: [3, 2, 1], positive: [false, true, true]) - 7.0 / 12) < 1e-15)
  }

  @Test func sklearnAPMatchesScikitLearn() throws {
    for (index, item) in try SVMGolden.load().average_precision.enumerated() {
      let ap = sklearnAveragePrecision(scores: item.scores, positive: item.positive)
      #expect(abs(ap - item.sklearn_ap!) < 1e-12, "case \(index): \(ap) vs \(item.sklearn_ap!)")
    }
  }

  @Test func vocAPMatchesTheReferenceFunction() throws {
    for (index, item) in try SVMGolden.load().voc_ap.enumerated() {
      let ap = vocAllPointAP(scores: item.scores, positive: item.positive)
      #expect(abs(ap - item.voc_ap!) < 1e-12, "case \(index): \(ap) vs \(item.voc_ap!)")
    }
  }

  @Test func stratifiedFoldsByHand() {
    // Labels + + + − − − − + − − +: 5 positives (class 0, first seen), 6 negatives. Sorted encoding
    // [0×5, 1×6]: fold i takes positions ≡ i (mod 3): positives 2/2/1, negatives 2/2/2.
    let folds = stratifiedKFoldAssignment(labels: [1, 1, 1, -1, -1, -1, -1, 1, -1, -1, 1], splits: 3)
    #expect(folds == [0, 0, 1, 0, 0, 1, 1, 1, 2, 2, 2])
    #expect(stratifiedKFoldAssignment(labels: [1, 1, -1], splits: 3) == nil)
  }

  @Test func stratifiedFoldsMatchScikitLearn() throws {
    for (index, item) in try SVMGolden.load().stratified_kfold.enumerated() {
      #expect(stratifiedKFoldAssignment(labels: item.labels, splits: 3) == item.folds, "case \(index)")
    }
  }

  @Test func argmaxTakesTheFirstOfTies() {
    #expect(firstArgmax([0.5, 0.7, 0.7, 0.1]) == 1)
    #expect(firstArgmax([0.2]) == 0)
  }
}
