// The weighted kNN classifier of MMSelfSup's ImageNet kNN table (PROTOCOLS §4.5; mmselfsup/models/utils/
// knn_classifier.py@v0.8.0, after DINO's eval_knn.py): L2-normalised global-pooled features, cosine similarity,
// the k most similar bank samples vote for their class with weight exp(sim / T), top-1 and top-5.
//
// Similarities are computed block by block through sgemm ([queries, d] × [bank block, d]ᵀ), and each query keeps
// only its running top-kmax, so memory is O(queryBlock · bankBlock + queries · kmax) whatever the bank size
// (1.28M × 50k for ImageNet). Every k is read from one top-kmax pass.
//
// It lives in Tensors because it is a kernel over two feature matrices (blocked sgemm, a top-k selection, a vote)
// that knows nothing of models or data, and because both its users sit above Tensors and beside each other: the
// kNN protocol (`run knn`, Evaluation) and the pretraining kNN monitor (Training).
import Foundation

/// Accuracy of one k.
public struct KNNAccuracy: Sendable, Equatable {
  public var k: Int
  /// Percentages (0 … 100).
  public var top1: Double
  public var top5: Double
  public var queries: Int

  public init(k: Int, top1: Double, top5: Double, queries: Int) {
    self.k = k; self.top1 = top1; self.top5 = top5; self.queries = queries
  }
}

/// Rows divided by max(‖row‖₂, 1e-12): torch.nn.functional.normalize(x, p=2, dim=1).
public func l2NormalizedRows(_ x: FeatureMatrix) -> FeatureMatrix {
  let (rows, columns) = (x.rows, x.columns)
  var scalars = [Float](repeating: 0, count: rows * columns)
  x.withUnsafeBufferPointer { source in
    scalars.withUnsafeMutableBufferPointer { target in
      let input = source.baseAddress!, output = target.baseAddress!
      parallelFor(0..<rows, minimumChunk: max(1, 16_384 / max(columns, 1))) { range in
        for row in range {
          let from = input + row * columns, to = output + row * columns
          var sum: Double = 0
          for j in 0..<columns { sum += Double(from[j]) * Double(from[j]) }
          let scale = Float(1 / max(sum.squareRoot(), 1e-12))
          for j in 0..<columns { to[j] = from[j] * scale }
        }
      }
    }
  }
  return FeatureMatrix(rows: rows, columns: columns, scalars: scalars)
}

/// The k nearest bank rows of every query, most similar first.
public struct KNNNeighbours: Sendable {
  /// Neighbours kept per query (min(kmax, bank rows)).
  public let width: Int
  /// [queries, width] cosine similarities, descending within a row.
  public let similarities: [Float]
  /// [queries, width] bank row indices.
  public let indices: [Int32]
}

/// MMSelfSup's weighted kNN (temperature 0.07, k ∈ {10, 20, 100, 200} by default).
public struct WeightedKNN: Sendable {
  public var ks: [Int]
  public var temperature: Float
  /// Query rows per similarity block.
  public var queryBlock: Int
  /// Bank rows per similarity block; a block holds queryBlock × bankBlock floats (64 MiB at the defaults).
  public var bankBlock: Int

  public init(ks: [Int] = [10, 20, 100, 200], temperature: Float = 0.07, queryBlock: Int = 1024,
              bankBlock: Int = 16_384) {
    precondition(!ks.isEmpty && ks.allSatisfy { $0 > 0 }, "kNN needs positive k values, got \(ks).")
    precondition(temperature > 0 && queryBlock > 0 && bankBlock > 0,
                 "kNN needs a positive temperature and block sizes, got \(temperature), \(queryBlock), \(bankBlock).")
    self.ks = ks.sorted()
    self.temperature = temperature
    self.queryBlock = queryBlock
    self.bankBlock = bankBlock
  }

  /// The top-`kmax` bank rows of each query by dot product (cosine similarity for L2-normalised rows). Ties are
  /// broken towards the lower bank index (torch.topk leaves their order unspecified).
  public func neighbours(bank: FeatureMatrix, queries: FeatureMatrix, kmax: Int,
                         progress: ((_ done: Int, _ total: Int) -> Void)? = nil) -> KNNNeighbours {
    precondition(bank.columns == queries.columns,
                 "kNN bank has \(bank.columns) feature columns but the queries have \(queries.columns).")
    precondition(bank.rows > 0, "kNN needs a non-empty bank.")
    let width = min(kmax, bank.rows)
    let (q, b, d) = (queries.rows, bank.rows, bank.columns)
    var topSimilarities = [Float](repeating: -.infinity, count: q * width)
    var topIndices = [Int32](repeating: -1, count: q * width)
    let queryStep = min(queryBlock, max(q, 1)), bankStep = min(bankBlock, b)
    var block = [Float](repeating: 0, count: queryStep * bankStep)
    bank.withUnsafeBufferPointer { bankBuffer in
      queries.withUnsafeBufferPointer { queryBuffer in
        block.withUnsafeMutableBufferPointer { blockBuffer in
          topSimilarities.withUnsafeMutableBufferPointer { simBuffer in
            topIndices.withUnsafeMutableBufferPointer { indexBuffer in
              let sims = blockBuffer.baseAddress!, best = simBuffer.baseAddress!, bestIndex = indexBuffer.baseAddress!
              for queryStart in stride(from: 0, to: q, by: queryStep) {
                let rows = min(queryStep, q - queryStart)
                for bankStart in stride(from: 0, to: b, by: bankStep) {
                  let columns = min(bankStep, b - bankStart)
                  // [rows, d] · [columns, d]ᵀ → [rows, columns]
                  gemm(m: rows, n: columns, k: d, queryBuffer.baseAddress! + queryStart * d,
                       bankBuffer.baseAddress! + bankStart * d, transposeB: true, into: sims)
                  parallelFor(0..<rows, minimumChunk: max(1, 65_536 / max(columns, 1))) { range in
                    for row in range {
                      let values = sims + row * columns
                      let top = best + (queryStart + row) * width
                      let topIndex = bestIndex + (queryStart + row) * width
                      for column in 0..<columns {
                        let value = values[column]
                        // Strictly greater: an equal value from a later (higher-index) bank row ranks after.
                        guard value > top[width - 1] || topIndex[width - 1] < 0 else { continue }
                        var slot = width - 1
                        while slot > 0 && (value > top[slot - 1] || topIndex[slot - 1] < 0) {
                          top[slot] = top[slot - 1]
                          topIndex[slot] = topIndex[slot - 1]
                          slot -= 1
                        }
                        top[slot] = value
                        topIndex[slot] = Int32(bankStart + column)
                      }
                    }
                  }
                }
                progress?(queryStart + rows, q)
              }
            }
          }
        }
      }
    }
    return KNNNeighbours(width: width, similarities: topSimilarities, indices: topIndices)
  }

  /// Class votes of one query from its first `k` neighbours: Σ exp(sim / T) per class (in Double).
  public func votes(similarities: ArraySlice<Float>, labels: [Int], classCount: Int) -> [Double] {
    var votes = [Double](repeating: 0, count: classCount)
    for (similarity, label) in zip(similarities, labels) {
      votes[label] += Foundation.exp(Double(similarity) / Double(temperature))
    }
    return votes
  }

  /// Rank of `label` among the classes ordered by votes, descending; equal votes rank the lower class first
  /// (torch.sort of the vote vector, with its unspecified tie order fixed this way).
  public static func rank(of label: Int, votes: UnsafeBufferPointer<Double>) -> Int {
    let own = votes[label]
    var rank = 0
    for (c, value) in votes.enumerated() where value > own || (value == own && c < label) { rank += 1 }
    return rank
  }

  /// Top-1 and top-5 for every k. `bank` and `queries` are raw features; both are L2-normalised here. Top-5 counts
  /// a hit when the label is among the first min(5, k) classes, as MMSelfSup does.
  public func evaluate(bank: FeatureMatrix, bankLabels: [Int], queries: FeatureMatrix, queryLabels: [Int],
                       classCount: Int, normalizes: Bool = true,
                       progress: ((_ done: Int, _ total: Int) -> Void)? = nil) -> [KNNAccuracy] {
    let counts = hitCounts(bank: bank, bankLabels: bankLabels, queries: queries, queryLabels: queryLabels,
                           classCount: classCount, normalizes: normalizes, progress: progress)
    let denominator = Double(max(queries.rows, 1))
    return zip(ks, counts).map { k, hits in
      KNNAccuracy(k: k, top1: 100 * Double(hits.top1) / denominator, top5: 100 * Double(hits.top5) / denominator,
                  queries: queries.rows)
    }
  }

  /// The queries whose label is the top-1 class and among the top-min(5, k) classes, for every k (in `ks` order):
  /// what `evaluate` reports as percentages.
  public func hitCounts(bank: FeatureMatrix, bankLabels: [Int], queries: FeatureMatrix, queryLabels: [Int],
                        classCount: Int, normalizes: Bool = true,
                        progress: ((_ done: Int, _ total: Int) -> Void)? = nil) -> [(top1: Int, top5: Int)] {
    precondition(bankLabels.count == bank.rows && queryLabels.count == queries.rows,
                 "kNN has \(bank.rows) bank rows with \(bankLabels.count) labels and \(queries.rows) queries "
                   + "with \(queryLabels.count) labels.")
    precondition((bankLabels + queryLabels).allSatisfy { $0 >= 0 && $0 < classCount },
                 "kNN labels must lie in 0..<\(classCount).")
    let bankRows = normalizes ? l2NormalizedRows(bank) : bank
    let queryRows = normalizes ? l2NormalizedRows(queries) : queries
    let found = neighbours(bank: bankRows, queries: queryRows, kmax: ks.last!, progress: progress)
    let q = queries.rows, width = found.width
    // hits[kSlot * 2 + 0/1]: top-1 / top-5 counts per k, accumulated per thread chunk.
    let chunks = max(1, min(Threads.count, q / 256))
    var hits = [Int](repeating: 0, count: chunks * ks.count * 2)
    hits.withUnsafeMutableBufferPointer { hitBuffer in
      found.similarities.withUnsafeBufferPointer { simBuffer in
        found.indices.withUnsafeBufferPointer { indexBuffer in
          bankLabels.withUnsafeBufferPointer { bankLabelBuffer in
            let hitsBase = hitBuffer.baseAddress!
            parallelFor(0..<chunks, minimumChunk: 1) { chunkRange in
              for chunk in chunkRange {
                var votes = [Double](repeating: 0, count: classCount)
                votes.withUnsafeMutableBufferPointer { voteBuffer in
                  let counts = hitsBase + chunk * ks.count * 2
                  for query in (q * chunk / chunks)..<(q * (chunk + 1) / chunks) {
                    voteBuffer.update(repeating: 0)
                    var used = 0
                    for (slot, k) in ks.enumerated() {
                      let upTo = min(k, width)
                      while used < upTo {
                        let neighbour = Int(indexBuffer[query * width + used])
                        voteBuffer[bankLabelBuffer[neighbour]] +=
                          Foundation.exp(Double(simBuffer[query * width + used]) / Double(temperature))
                        used += 1
                      }
                      let rank = Self.rank(of: queryLabels[query], votes: UnsafeBufferPointer(voteBuffer))
                      if rank == 0 { counts[slot * 2] += 1 }
                      if rank < min(5, k) { counts[slot * 2 + 1] += 1 }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return ks.indices.map { slot in
      var top1 = 0, top5 = 0
      for chunk in 0..<chunks {
        top1 += hits[(chunk * ks.count + slot) * 2]
        top5 += hits[(chunk * ks.count + slot) * 2 + 1]
      }
      return (top1, top5)
    }
  }
}
