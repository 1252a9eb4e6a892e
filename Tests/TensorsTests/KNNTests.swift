import Foundation
import Testing
import Tensors

/// The weighted kNN classifier against hand-computed neighbours and votes.
@Suite struct KNNTests {
  // Unit vectors in the plane: sims with the query (1, 0) are the x coordinates.
  //   bank 0: (1, 0)      label 0   sim  1.0
  //   bank 1: (0, 1)      label 1   sim  0.0
  //   bank 2: (0.6, 0.8)  label 1   sim  0.6
  //   bank 3: (0.8, 0.6)  label 0   sim  0.8
  //   bank 4: (-1, 0)     label 2   sim -1.0
  static let bank = FeatureMatrix(rows: 5, columns: 2, scalars: [1, 0, 0, 1, 0.6, 0.8, 0.8, 0.6, -1, 0])
  static let bankLabels = [0, 1, 1, 0, 2]

  @Test func neighboursAreTheMostSimilarBankRowsInOrder() {
    let query = FeatureMatrix(rows: 1, columns: 2, scalars: [1, 0])
    let found = WeightedKNN(ks: [3]).neighbours(bank: Self.bank, queries: query, kmax: 3)
    #expect(found.width == 3)
    #expect(found.indices == [0, 3, 2])
    #expect(found.similarities == [1, 0.8, 0.6])
  }

  @Test func votesAreSummedExponentialWeights() {
    let knn = WeightedKNN(ks: [3], temperature: 0.07)
    // k = 3: class 0 gets exp(1/0.07) + exp(0.8/0.07), class 1 exp(0.6/0.07), class 2 nothing.
    let votes = knn.votes(similarities: [1, 0.8, 0.6], labels: [0, 0, 1], classCount: 3)
    #expect(abs(votes[0] - (exp(1 / 0.07) + exp(0.8 / 0.07))) < 1e-6 * votes[0])
    #expect(abs(votes[1] - exp(0.6 / 0.07)) < 1e-6 * votes[1])  // Float(0.6) ≠ 0.6
    #expect(votes[2] == 0)
  }

  @Test func accuracyFromHandComputedVotes() {
    // Query A (0, 1), label 1: sims 0, 1, 0.8, 0.6, 0 → neighbours 1 (l1), 2 (l1), 3 (l0), then 0 and 4 tie at 0
    //   and the lower index (0, label 0) comes first. k=1,2,3: class 1 wins. k=5: class 1 = e^(1/T) + e^(0.8/T),
    //   class 0 = e^(0.6/T) + e^0, class 2 = e^0 → class 1.
    // Query B (0.8, 0.6), label 2: sims 0.8, 0.6, 0.96, 1.0, -0.8 → 3 (l0), 2 (l1), 0 (l0), 1 (l1), 4 (l2).
    //   Class 2 is never the most voted (miss top-1 for every k) but is within top-min(5, k) once it has ranked
    //   third of three classes: k=1 → min(5,1)=1 → miss; k=3 → label 2 has 0 votes and ranks 3rd of 3 → hit
    //   top-5 (min(5, 3) = 3).
    let queries = FeatureMatrix(rows: 2, columns: 2, scalars: [0, 1, 0.8, 0.6])
    let results = WeightedKNN(ks: [1, 3, 5]).evaluate(bank: Self.bank, bankLabels: Self.bankLabels, queries: queries,
                                                     queryLabels: [1, 2], classCount: 3, normalizes: false)
    #expect(results.map(\.k) == [1, 3, 5])
    #expect(results.map(\.top1) == [50, 50, 50])
    #expect(results.map(\.top5) == [50, 100, 100])
  }

  @Test func tiesRankTheLowerBankIndexAndTheLowerClassFirst() {
    // Two identical bank rows with labels 1 and 0: k = 1 keeps bank 0 (label 1).
    let bank = FeatureMatrix(rows: 2, columns: 2, scalars: [1, 0, 1, 0])
    let query = FeatureMatrix(rows: 1, columns: 2, scalars: [1, 0])
    let k1 = WeightedKNN(ks: [1]).evaluate(bank: bank, bankLabels: [1, 0], queries: query, queryLabels: [1],
                                          classCount: 2)
    #expect(k1[0].top1 == 100)
    // k = 2: both classes get exp(1/T); the tie ranks class 0 first, so label 1 misses top-1.
    let k2 = WeightedKNN(ks: [2]).evaluate(bank: bank, bankLabels: [1, 0], queries: query, queryLabels: [1],
                                          classCount: 2)
    #expect(k2[0].top1 == 0)
    #expect(k2[0].top5 == 100)
  }

  @Test func topFiveNeedsTheLabelAmongTheFiveMostVotedClasses() {
    // Seven bank points at decreasing similarity, each its own class 0…6; query label 5 ranks 6th → miss,
    // label 4 ranks 5th → hit.
    let sims: [Float] = [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    let bank = FeatureMatrix(rows: 7, columns: 2, scalars: sims.flatMap { [$0, (1 - $0 * $0).squareRoot()] })
    let queries = FeatureMatrix(rows: 2, columns: 2, scalars: [1, 0, 1, 0])
    let result = WeightedKNN(ks: [7]).evaluate(bank: bank, bankLabels: Array(0..<7), queries: queries,
                                              queryLabels: [5, 4], classCount: 7)
    #expect(result[0].top1 == 0)
    #expect(result[0].top5 == 50)
  }

  @Test func blockSizesDoNotChangeTheResult() {
    var rng = SplitMix64(seed: 21)
    let (b, q, d, classes) = (37, 23, 5, 4)
    let bank = FeatureMatrix(rows: b, columns: d, scalars: (0..<(b * d)).map { _ in rng.nextNormal() })
    let queries = FeatureMatrix(rows: q, columns: d, scalars: (0..<(q * d)).map { _ in rng.nextNormal() })
    let bankLabels = (0..<b).map { _ in Int(rng.next() % UInt64(classes)) }
    let queryLabels = (0..<q).map { _ in Int(rng.next() % UInt64(classes)) }
    let whole = WeightedKNN(ks: [1, 5, 10, 20]).evaluate(bank: bank, bankLabels: bankLabels, queries: queries,
                                                       queryLabels: queryLabels, classCount: classes)
    let blocked = WeightedKNN(ks: [1, 5, 10, 20], queryBlock: 4, bankBlock: 6)
      .evaluate(bank: bank, bankLabels: bankLabels, queries: queries, queryLabels: queryLabels, classCount: classes)
    #expect(whole == blocked)
    // Brute force, in Double: normalise, sort each query's similarities, vote.
    func normalised(_ m: FeatureMatrix, _ row: Int) -> [Double] {
      let v = m.row(row).map(Double.init)
      let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
      return v.map { $0 / norm }
    }
    for (slot, k) in [1, 5, 10, 20].enumerated() {
      var top1 = 0
      for query in 0..<q {
        let qv = normalised(queries, query)
        var ranked: [(Double, Int)] = []
        for i in 0..<b {
          let bv = normalised(bank, i)
          var dot = 0.0
          for j in 0..<d { dot += qv[j] * bv[j] }
          ranked.append((dot, i))
        }
        ranked.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }
        var votes = [Double](repeating: 0, count: classes)
        for (sim, i) in ranked.prefix(k) { votes[bankLabels[i]] += exp(sim / 0.07) }
        let best = votes.indices.max { votes[$0] != votes[$1] ? votes[$0] < votes[$1] : $0 > $1 }!
        if best == queryLabels[query] { top1 += 1 }
      }
      #expect(abs(whole[slot].top1 - 100 * Double(top1) / Double(q)) < 1e-9, "k=\(k)")
    }
  }

  @Test func rowsAreL2Normalised() {
    let m = l2NormalizedRows(FeatureMatrix(rows: 2, columns: 2, scalars: [3, 4, 0, 0]))
    #expect(m.row(0) == [0.6, 0.8])
    #expect(m.row(1) == [0, 0])  // F.normalize's eps keeps a zero row zero
  }
}
