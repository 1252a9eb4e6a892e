// How a list of items is shared out over the ranks of a process group.

public enum Sharding {
  /// Rank r's items when `count` items are processed in batches of `batchSize`: a contiguous block of whole
  /// batches, ⌈batches / ranks⌉ batches per rank in rank order (the last ranks may get fewer, or none). Whole
  /// batches keep every batch's items those of a single-process pass (so results do not depend on the rank
  /// count), and contiguous blocks in rank order make an allgather of the blocks the original order.
  public static func blocks(count: Int, batchSize: Int, ranks: Int) -> [Range<Int>] {
    precondition(count >= 0 && batchSize >= 1 && ranks >= 1,
                 "Blocks of \(count) items in batches of \(batchSize) over \(ranks) ranks.")
    let batches = (count + batchSize - 1) / batchSize
    let perRank = (batches + ranks - 1) / ranks * batchSize
    return (0..<ranks).map { rank in
      let start = min(count, rank * perRank)
      return start..<min(count, start + perRank)
    }
  }
}
