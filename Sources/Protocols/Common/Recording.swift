// The run lifecycle every protocol shares: a stored run begins (or a resumed training reopens its own row), the
// protocol adds scores and epoch metrics as it goes, and the run is finished when the body returns or marked
// failed, with the error, when it throws. No command writes run rows any other way.
import Foundation
import Results

/// A run being recorded: where a protocol's scores and epoch metrics go.
public final class RecordedRun {
  public let id: RunID
  public let store: ResultsStore
  /// Stored with the run when it finishes (e.g. that a time cap cut the schedule short).
  public var finishMessage: String?

  init(id: RunID, store: ResultsStore) {
    self.id = id
    self.store = store
  }

  public func add(_ scores: [Score]) throws {
    if !scores.isEmpty { _ = try store.addScores(scores, to: id) }
  }

  public func add(_ metric: EpochMetric) throws { try store.addEpochMetric(metric, to: id) }
}

/// How a recorded run starts: a new row, or the row of a training that is being resumed.
public enum RunStart {
  case new(NewRun)
  /// Reopen `id` (`ResultsStore.resumeRun`), recording that it resumes from `checkpoint` at `epoch`/`iteration`.
  case resuming(RunID, epoch: Int, iteration: Int, checkpoint: String)
}

extension ResultsStore {
  /// Runs `body` inside a stored run: begins it, finishes it when `body` returns, and marks it failed with the
  /// error (also written to `log`) when `body` throws, then rethrows.
  public func recording<T>(_ start: RunStart, log: LogFile? = nil,
                           _ body: (RecordedRun) throws -> T) throws -> T {
    let id: RunID
    switch start {
    case let .new(new): id = try beginRun(new)
    case let .resuming(previous, epoch, iteration, checkpoint):
      try resumeRun(previous, fromEpoch: epoch, iteration: iteration, checkpoint: checkpoint)
      id = previous
    }
    let run = RecordedRun(id: id, store: self)
    do {
      let result = try body(run)
      try finishRun(id, message: run.finishMessage)
      return result
    } catch {
      try? failRun(id, message: "\(error)")
      log?.write("failed: \(error)")
      throw error
    }
  }

  /// `recording(.new(run), …)`.
  public func recording<T>(_ new: NewRun, log: LogFile? = nil, _ body: (RecordedRun) throws -> T) throws -> T {
    try recording(.new(new), log: log, body)
  }
}
