// The fit units of the SVM protocols split over cooperating processes (`mpirun -np N simsiam-bench run voc-svm`,
// issue 18 item 4). Evaluation does not know MPI: the caller hands in a sum over the processes (an allreduce), and
// every exchange here is a sum in which each process contributes only the slots it computed and zeros elsewhere —
// x + 0 + … + 0 = x exactly, so every process ends with the single-process values bit for bit.
//
// Who does what: the pending units of a stage, in the stage's order, go round-robin (process r takes positions
// r, r + N, …); process 0 alone holds the journal (the single record): it shares what the journal already has
// before a stage, records its own units as they finish, and records the others' once they are exchanged.

/// How the fit units of `runFull` / `runLowShot` are shared out; `.single` is one process doing all of them.
public struct SVMUnitSplit {
  /// This process's index, 0..<size; process 0 holds the journal.
  public let rank: Int
  /// The number of cooperating processes.
  public let size: Int
  /// Every element becomes its sum over the processes (every process calls it, in the same order, with arrays of
  /// the same length: an allreduce).
  let sum: ([Double]) throws -> [Double]

  public init(rank: Int, size: Int, sum: @escaping ([Double]) throws -> [Double]) {
    precondition(size >= 1 && (0..<size).contains(rank), "An SVM unit split needs 0 ≤ rank < size, got \(rank) of \(size).")
    self.rank = rank
    self.size = size
    self.sum = sum
  }

  /// One process: every unit is local and nothing is exchanged.
  public static var single: SVMUnitSplit { SVMUnitSplit(rank: 0, size: 1) { $0 } }

  var isSplit: Bool { size > 1 }

  /// Whether this process computes the pending unit at `position` (round-robin).
  func owns(_ position: Int) -> Bool { position % size == rank }

  /// The journal's values of `units` (each exactly `width` values; other entries count as absent), the same on
  /// every process: process 0 reads its journal and shares it, the others pass none.
  func journaled(_ units: [String], width: Int, in journal: SVMJournal?) throws -> [[Double]?] {
    let local = units.map { unit in journal?.values(unit).flatMap { $0.count == width ? $0 : nil } }
    guard isSplit else { return local }
    // Per unit: [present (1 or 0), value 1 … value width].
    var packed = [Double](repeating: 0, count: units.count * (width + 1))
    for (index, values) in local.enumerated() {
      guard let values else { continue }
      packed[index * (width + 1)] = 1
      for (offset, value) in values.enumerated() { packed[index * (width + 1) + 1 + offset] = value }
    }
    let shared = try sum(packed)
    return units.indices.map { index in
      let row = index * (width + 1)
      return shared[row] > 0 ? Array(shared[(row + 1)..<(row + 1 + width)]) : nil
    }
  }

  /// Every process's results of pending units, `width` values each: `local[i]` is this process's result for the
  /// units it computed and nil for the others' (every unit is computed by exactly one process). Returns all of
  /// them, on every process.
  func exchange(_ local: [[Double]?], width: Int) throws -> [[Double]] {
    guard isSplit else { return local.map { $0! } }
    var packed = [Double](repeating: 0, count: local.count * width)
    for (index, values) in local.enumerated() {
      guard let values else { continue }
      precondition(values.count == width, "Unit \(index) of rank \(rank) holds \(values.count) values, not \(width).")
      for (offset, value) in values.enumerated() { packed[index * width + offset] = value }
    }
    let shared = try sum(packed)
    return local.indices.map { Array(shared[($0 * width)..<(($0 + 1) * width)]) }
  }
}
