// The two bilinear pass orders (`ResizeRule`, issue 14 item 13) against Pillow itself: resize_rule_pillow9.json
// and resize_rule_pillow13.json are written by scripts/reference/make_resize_rule_fixtures.py under Pillow 9.5.0
// and 13.0.0 from the same inputs (portrait ones, where the versions differ, and landscape ones, where they agree).
import Foundation
import Testing
import Datasets

@Suite struct ResizeRuleTests {
  /// What each fixture op runs: Image.resize, and the evaluation transform's squash and center-crop paths.
  static func apply(_ testCase: TransformCase, to image: Image, rule: ResizeRule) -> Image {
    switch testCase.op {
    case "resize":
      return image.resized(width: testCase.width!, height: testCase.height!, rule: rule)
    case "evaluationSquash":
      return EvaluationTransform(resize: testCase.size!, size: testCase.width!, mode: .squash, resizeRule: rule)
        .image(image)
    case "evaluationCrop":
      return EvaluationTransform(resize: testCase.size!, size: testCase.width!, mode: .centerCrop, resizeRule: rule)
        .image(image)
    default:
      preconditionFailure("resize-rule fixtures hold no op '\(testCase.op)'")
    }
  }

  @Test(arguments: [(ResizeRule.pillow9, "resize_rule_pillow9", "9."), (.pillow13, "resize_rule_pillow13", "13.")])
  func eachRuleMatchesItsPillowByteForByte(_ rule: ResizeRule, _ fixture: String, _ version: String) throws {
    let fixtures = try TransformFixtures.load(fixture)
    #expect(fixtures.pillow?.hasPrefix(version) == true && fixtures.cases.count == 17)
    for op in ["resize", "evaluationSquash", "evaluationCrop"] {
      fixtures.check(op, tolerance: 0) { image, testCase in Self.apply(testCase, to: image, rule: rule) }
    }
  }

  /// The fixtures tell the rules apart: each rule misses the other Pillow on portrait cases (by ±1) and agrees with
  /// it on landscape ones, so the byte-exact match above holds for the right rule only.
  @Test(arguments: [(ResizeRule.pillow9, "resize_rule_pillow13"), (.pillow13, "resize_rule_pillow9")])
  func theOtherRuleMissesPortraitCasesByOne(_ rule: ResizeRule, _ otherFixture: String) throws {
    let fixtures = try TransformFixtures.load(otherFixture)
    var portraitMisses = 0
    for testCase in fixtures.cases {
      let actual = Self.apply(testCase, to: fixtures.input(testCase), rule: rule).pixels
      let expected = testCase.expected!.image.pixels
      let largest = zip(actual, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
      #expect(largest <= 1, "\(testCase.label)")
      if testCase.input == "landscape" { #expect(largest == 0, "\(testCase.label)") }
      if largest > 0 { portraitMisses += 1 }
    }
    #expect(portraitMisses >= 10)
  }

  @Test func theDefaultIsPillow13() {
    #expect(ResizeRule.default == .pillow13)
    #expect(EvaluationTransform.svm.resizeRule == .pillow13)
  }
}
