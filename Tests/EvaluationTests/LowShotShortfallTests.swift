// The low-shot shortfall rule's reporting (issue 14 item 14): one line per (class, k) pair, and the k at which every
// sample is the full set. Hand-made labels, counts worked out by hand.
import Evaluation
import Testing

@Suite struct LowShotShortfallTests {
  /// 6 trainval images, 2 classes (so (classes − 1)·k = k negatives are asked for):
  ///   cat: positives 0, 1, 2; negatives 3, 4, 5.
  ///   dog: positives 3, 4; negatives 0, 1, 2; image 5 difficult (never drawn).
  static let labels = SVMLabels(classes: ["cat", "dog"], labels: [1, 0,  1, 0,  1, 0,  0, 1,  0, 1,  0, -1])

  /// k = 1, 2: enough of everything. k = 3: cat has exactly 3 and 3 (no shortfall, but all of them), dog 2 < 3
  /// positives. k = 4: both classes short of positives AND negatives: one line each, not two.
  @Test func eachClassAndKPairIsCountedOnce() {
    let draw = drawLowShotSamples(labels: Self.labels, ks: [1, 2, 3, 4], samples: 5, seed: 11)
    #expect(draw.shortfalls == [
      "dog at k=3: 2 positives < 3, all used",
      "cat at k=4: 3 positives < 4, 3 negatives < 4, all used",
      "dog at k=4: 2 positives < 4, 3 negatives < 4, all used",
    ])
  }

  /// At k = 3 and 4 every class gives all its positives and negatives, so all five samples are the same full set;
  /// at k = 1 and 2 the five draws differ.
  @Test func kWhereEverySampleIsTheFullSetIsFound() {
    let draw = drawLowShotSamples(labels: Self.labels, ks: [1, 2, 3, 4], samples: 5, seed: 11)
    #expect(draw.fullSetKs == [3, 4])
    let atThree = draw.samples.filter { $0.k == 3 }
    #expect(atThree.count == 5 && atThree.allSatisfy {
      $0.targets == [1, 0,  1, 0,  1, 0,  0, 1,  0, 1,  0, -1]
    })
    // One sample repeats nothing.
    #expect(drawLowShotSamples(labels: Self.labels, ks: [4], samples: 1, seed: 11).fullSetKs.isEmpty)
  }
}
