// Feature extraction split over the ranks of a process group (`mpirun -np N simsiam-bench run voc-svm`, issue 18
// item 4): rank r runs the backbone over its block of images, the blocks are gathered so that every rank holds the
// whole matrix of each layer in the original image order (the SVM fits need all rows everywhere), and rank 0 alone
// reads and writes the feature cache.
import Distributed
import Evaluation
import Foundation
import Tensors

enum ShardedExtraction {
  /// The features of `request`: with one process, `extractor.extract` itself; with several, the cached layers
  /// are read by rank 0 and broadcast, the missing ones extracted block by block (`Sharding.blocks`: contiguous
  /// blocks of whole batches, so every batch holds the images of a single-process pass), gathered, and
  /// written to the cache by rank 0. `cache` is rank 0's (the others pass nil); `progress` counts this rank's
  /// own block.
  static func extract(_ request: FeatureExtractionRequest, extractor: FeatureExtractor, cache: FeatureCache?,
                      group: any ProcessGroup, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws
    -> ExtractedFeatures {
    guard group.isDistributed else { return try extractor.extract(request, cache: cache, progress: progress) }
    precondition(group.isRoot || cache == nil, "Only rank 0 opens the feature cache; rank \(group.rank) got one.")
    var layers: [FeatureLayer] = []
    for layer in request.layers where !layers.contains(layer) { layers.append(layer) }
    let images = request.source.count

    // Rank 0 says which layers its cache holds.
    var found = cache.map { extractor.cached(request, in: $0) }
      ?? ExtractedFeatures(matrices: [:], pooling: extractor.pooling(forInputSize: request.transform.size))
    var hits = layers.map { found.matrices[$0] == nil ? 0.0 : 1.0 }
    try group.broadcast(&hits)
    let missing = zip(layers, hits).filter { $1 == 0 }.map(\.0)

    // Cached layers travel from rank 0 (read-only on the root: MPI_Bcast only reads the root's buffer).
    for (layer, hit) in zip(layers, hits) where hit > 0 {
      if group.isRoot {
        try found.matrices[layer]!.withUnsafeBufferPointer {
          try group.broadcast(UnsafeMutableBufferPointer(mutating: $0), from: 0)
        }
      } else {
        var scalars = [Float](repeating: 0, count: images * extractor.dimension(of: layer))
        try group.broadcast(&scalars)
        found.matrices[layer] = FeatureMatrix(rows: images, columns: extractor.dimension(of: layer), scalars: scalars)
      }
    }
    guard !missing.isEmpty else { return found }

    let blocks = Sharding.blocks(count: images, batchSize: request.batchSize, ranks: group.size)
    let share = try extractor.extract(request, layers: missing, images: blocks[group.rank], progress: progress)
    for layer in missing {
      let gathered = try gather(share[layer]!, blocks: blocks, group: group)
      found.matrices[layer] = try cache.map { try extractor.store(gathered, layer: layer, for: request, in: $0) }
        ?? gathered
    }
    found.computedLayers = missing
    return found
  }

  /// Every rank's block rows ([blocks[r].count, d] on rank r) concatenated in rank order, on every rank. Blocks are
  /// padded to the largest and sent in rounds of at most 2^26 floats per rank (MPI counts are Int32).
  static func gather(_ block: FeatureMatrix, blocks: [Range<Int>], group: any ProcessGroup) throws -> FeatureMatrix {
    let columns = block.columns
    let images = blocks.last!.upperBound
    precondition(block.rows == blocks[group.rank].count,
                 "Rank \(group.rank) holds \(block.rows) rows for its block \(blocks[group.rank]).")
    let padded = blocks.map(\.count).max()!
    let roundRows = max(1, (1 << 26) / max(columns, 1))
    var full = [Float](repeating: 0, count: images * columns)
    for first in stride(from: 0, to: padded, by: roundRows) {
      let rows = min(roundRows, padded - first)
      var local = [Float](repeating: 0, count: rows * columns)
      let mine = max(0, min(rows, block.rows - first))
      if mine > 0 {
        block.withUnsafeBufferPointer { source in
          local.withUnsafeMutableBufferPointer {
            $0.baseAddress!.update(from: source.baseAddress! + first * columns, count: mine * columns)
          }
        }
      }
      var gathered = [Float](repeating: 0, count: group.size * rows * columns)
      try local.withUnsafeBufferPointer { local in
        try gathered.withUnsafeMutableBufferPointer { try group.allgather(local, into: $0) }
      }
      for (rank, range) in blocks.enumerated() {
        let count = max(0, min(rows, range.count - first))
        guard count > 0 else { continue }
        let destination = (range.lowerBound + first) * columns
        full.withUnsafeMutableBufferPointer { full in
          gathered.withUnsafeBufferPointer {
            (full.baseAddress! + destination).update(from: $0.baseAddress! + rank * rows * columns,
                                                     count: count * columns)
          }
        }
      }
    }
    return FeatureMatrix(rows: images, columns: columns, scalars: full)
  }
}
