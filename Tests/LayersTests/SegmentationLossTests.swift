// segmentationCrossEntropy: mmseg's decode-head loss (resize to the label size, CE with ignore 255, mean over ALL
// pixels, loss weight). Hand-computed values and finite differences here; the PyTorch comparison (both
// align_corners, odd sizes) is ModelsTests/FCNParityTests.segmentationLossMatches.
import Foundation
import Testing
import Tensors
import TestSupport
import Layers

@Suite struct SegmentationLossTests {
  /// Logits already at the label size (no resize): 1 image, 1×4 pixels, 3 classes; pixels 1 and 3 ignored.
  /// mmseg's avg_non_ignore=False divides the two counted losses by all 4 pixels, not by 2.
  @Test func ignoredPixelsCountInTheDenominator() {
    let logits = Tensor(shape: [1, 1, 4, 3], scalars: [2, 0, 0,  5, 5, 5,  0, 1, 0,  9, 0, 0])
    let labels: [UInt8] = [0, 255, 1, 255]
    let result = segmentationCrossEntropy(logits: logits, labels: labels, labelHeight: 1, labelWidth: 4,
                                          alignCorners: false, weight: 0.4)
    // CE of (2, 0, 0) with label 0 = log(e² + 2) − 2; of (0, 1, 0) with label 1 = log(2 + e) − 1.
    let expected = 0.4 * ((log(exp(2.0) + 2) - 2) + (log(2 + exp(1.0)) - 1)) / 4
    #expect(abs(Double(result.loss) - expected) < 1e-6)
    // ∂/∂x = 0.4 · (softmax − onehot) / 4 on counted pixels, 0 on ignored ones.
    let softmax0 = exp(2.0) / (exp(2.0) + 2)
    #expect(abs(Double(result.gradient.scalars[0]) - 0.1 * (softmax0 - 1)) < 1e-7)
    #expect(result.gradient.scalars[3..<6].allSatisfy { $0 == 0 })
    #expect(result.gradient.scalars[9..<12].allSatisfy { $0 == 0 })
    let softmax1 = exp(1.0) / (exp(1.0) + 2)
    #expect(abs(Double(result.gradient.scalars[7]) - 0.1 * (softmax1 - 1)) < 1e-7)
  }

  /// A 1×1 logit map resized to 2×3 is constant (both align_corners): the loss is the CE of that logit vector,
  /// averaged over the 6 pixels, and the gradient is the sum of the 6 pixels' gradients.
  @Test(arguments: [false, true])
  func upsamplingAConstantMap(alignCorners: Bool) {
    let logits = Tensor(shape: [1, 1, 1, 2], scalars: [1, -1])
    let labels: [UInt8] = [0, 0, 1, 255, 0, 1]
    let result = segmentationCrossEntropy(logits: logits, labels: labels, labelHeight: 2, labelWidth: 3,
                                          alignCorners: alignCorners)
    let p0 = exp(1.0) / (exp(1.0) + exp(-1.0))
    let expected = (3 * -log(p0) + 2 * -log(1 - p0)) / 6
    #expect(abs(Double(result.loss) - expected) < 1e-6)
    // Σ over pixels of (softmax − onehot)/6: class 0 gets (5·p0 − 3)/6.
    #expect(result.gradient.shape == [1, 1, 1, 2])
    #expect(abs(Double(result.gradient.scalars[0]) - (5 * p0 - 3) / 6) < 1e-6)
    #expect(abs(Double(result.gradient.scalars[1]) - (5 * (1 - p0) - 2) / 6) < 1e-6)
  }

  @Test(arguments: [false, true])
  func gradientMatchesFiniteDifferences(alignCorners: Bool) {
    var rng = SplitMix64(seed: 17)
    let logits = Parameter(.randomNormal([2, 3, 4, 5], std: 2, using: &rng))
    let labels: [UInt8] = (0..<(2 * 9 * 11)).map { _ in
      rng.nextUniform() < 0.2 ? 255 : UInt8(Int(rng.nextUniform() * 5))
    }
    func loss() -> SegmentationLoss {
      segmentationCrossEntropy(logits: logits.value, labels: labels, labelHeight: 9, labelWidth: 11,
                               alignCorners: alignCorners, weight: 0.7)
    }
    logits.grad = loss().gradient
    // The loss comes back as Float: its rounding (~1e-7) over 2h puts a ~5e-6 noise floor on the numeric slopes,
    // so errors are judged against a floor of 2e-3 (the gradients reach ~1e-2).
    expectGradientsMatch({ Double(loss().loss) }, wrt: logits, named: "logits", step: 1e-2, tolerance: 5e-3,
                         samples: 60, scaleFloor: 2e-3)
  }

  @Test func everyPixelIgnoredGivesZeroLossAndGradient() {
    let logits = Tensor(shape: [1, 2, 2, 3], scalars: (0..<12).map { Float($0) })
    let result = segmentationCrossEntropy(logits: logits, labels: [255, 255, 255, 255, 255, 255, 255, 255, 255],
                                          labelHeight: 3, labelWidth: 3, alignCorners: false)
    #expect(result.loss == 0)
    #expect(result.gradient.shape == [1, 2, 2, 3] && result.gradient.scalars.allSatisfy { $0 == 0 })
  }
}
