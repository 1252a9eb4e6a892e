import Distributed
import Evaluation
import Foundation
import Tensors
import Testing

/// The SVM protocols' fit units split over 2 simulated ranks (threads of this process meeting in a rendezvous):
/// the oracle is the same layer run as one process with deterministic liblinear, which the split must reproduce
/// bit for bit — CV grid, chosen costs, test APs and every low-shot AP — with rank 0's journal the single record.
@Suite struct SVMUnitSplitTests {
  /// 60 trainval + 40 test images of 12-dim features, 3 classes with overlapping clusters (the fits are not
  /// trivial: different costs give different APs).
  static func layer() throws -> SVMLayer {
    var generator = SplitMix64(seed: 11)
    func split(_ images: Int) -> (FeatureMatrix, SVMLabels) {
      let labels = (0..<images).flatMap { i -> [Int32] in (0..<3).map { c in (i + c) % 3 == 0 ? 1 : 0 } }
      let scalars = (0..<images).flatMap { i -> [Float] in
        (0..<12).map { j in Float(labels[i * 3 + j % 3]) + 0.8 * generator.nextNormal() }
      }
      return (FeatureMatrix(rows: images, columns: 12, scalars: scalars),
              SVMLabels(classes: ["a", "b", "c"], labels: labels))
    }
    let (train, trainLabels) = split(60), (test, testLabels) = split(40)
    return try SVMLayer(SVMLayerData(layer: "feature5", train: train, test: test, trainLabels: trainLabels,
                                     testLabels: testLabels), settings: settings)
  }

  static let settings: SVMSettings = {
    var settings = SVMSettings()
    settings.costs = [0.01, 0.1, 1, 10]
    settings.deterministic = true
    return settings
  }()

  /// Runs `body(split, journal)` on 2 simulated ranks; rank 0 gets a journal in `directory`.
  static func onTwoRanks<T: Sendable>(directory: URL, key: String,
                                      _ body: @escaping @Sendable (SVMUnitSplit, SVMJournal?) throws -> T) -> [T?] {
    let rendezvous = Rendezvous(size: 2)
    let results = ResultsBox<T>(count: 2)
    rendezvous.run { rank in
      let group = SimulatedProcessGroup(rank: rank, rendezvous: rendezvous)
      let split = SVMUnitSplit(rank: rank, size: 2) { values in
        var values = values
        try group.allreduceSum(&values)
        return values
      }
      let journal = rank == 0 ? try? SVMJournal(directory: directory, key: key) : nil
      results.set(rank, try? body(split, journal))
    }
    return results.values
  }

  @Test func twoRanksReproduceTheSingleProcessFullAndLowShotResults() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("svm-split-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let layer = try Self.layer()
    let expectedFull = try layer.runFull(settings: Self.settings, journal: nil)
    let draw = drawLowShotSamples(labels: layer.data.trainLabels, ks: [1, 2, 4], samples: 3, seed: 5)
    let expectedLowShot = try layer.runLowShot(draw, settings: Self.settings, journal: nil)
    // The costs matter on this data: the oracle is not a constant.
    #expect(Set(expectedFull.cvAP.flatMap { $0.map { $0.reduce(0, +) } }).count > 3)

    let full = Self.onTwoRanks(directory: folder, key: "full") { split, journal in
      try layer.runFull(settings: Self.settings, journal: journal, split: split)
    }
    #expect(full[0] == expectedFull && full[1] == expectedFull)
    let lowShot = Self.onTwoRanks(directory: folder, key: "low") { split, journal in
      try layer.runLowShot(draw, settings: Self.settings, journal: journal, split: split)
    }
    #expect(lowShot[0] == expectedLowShot && lowShot[1] == expectedLowShot)

    // Rank 0's journal holds every unit (its own and rank 1's): 3 classes × 4 costs × 3 folds + 3 finals, and
    // 3 k × 3 samples; a rerun on 2 ranks takes them all from it (rank 1 learns them from rank 0) and agrees.
    #expect(try SVMJournal(directory: folder, key: "full").count == 3 * 4 * 3 + 3)
    #expect(try SVMJournal(directory: folder, key: "low").count == 9)
    let stopAtFirstFit = { () -> SVMSettings in
      var settings = Self.settings
      settings.stopAfterUnits = 1  // any fit would throw `interrupted`: a resumed run must do none
      return settings
    }()
    let resumed = Self.onTwoRanks(directory: folder, key: "full") { split, journal in
      try layer.runFull(settings: stopAtFirstFit, journal: journal, split: split)
    }
    #expect(resumed[0] == expectedFull && resumed[1] == expectedFull)
  }

  @Test func extractionBlocksAreWholeBatchesInRankOrder() {
    // 5 batches of 16 over 2 ranks: 3 and 2 batches, the last one short.
    #expect(Sharding.blocks(count: 80, batchSize: 16, ranks: 2) == [0..<48, 48..<80])
    #expect(Sharding.blocks(count: 75, batchSize: 16, ranks: 2) == [0..<48, 48..<75])
    // More ranks than batches: the last ranks get nothing.
    #expect(Sharding.blocks(count: 20, batchSize: 16, ranks: 3) == [0..<16, 16..<20, 20..<20])
    #expect(Sharding.blocks(count: 7, batchSize: 2, ranks: 1) == [0..<7])
  }
}

/// Per-rank results of a simulated run.
final class ResultsBox<T>: @unchecked Sendable {
  // @unchecked: every access holds `lock`.
  private let lock = NSLock()
  private var slots: [T?]
  init(count: Int) { slots = Array(repeating: nil, count: count) }
  func set(_ index: Int, _ value: T?) { lock.withLock { slots[index] = value } }
  var values: [T?] { lock.withLock { slots } }
}
