// The errors the results store and its reports throw for bad input from outside.
import Foundation

/// An error opening, reading or writing the results database; each message names the path and a hint.
public enum ResultsError: Error, CustomStringConvertible, Equatable {
  /// The database file does not exist and the caller asked not to create it.
  case missingDatabase(path: String)
  /// The file exists but is not a readable SQLite database (or another SQLite error on opening).
  case unreadableDatabase(path: String, reason: String)
  /// SQLite failed while reading or writing an open database (e.g. the lock stayed busy past the timeout).
  case databaseFailure(path: String, reason: String, isBusy: Bool)
  /// The file is an SQLite database with another application's tables (none of ours), so it is left alone.
  case foreignDatabase(path: String, tables: [String])
  /// A read-only store was opened on a database that lacks this version's newest migrations.
  case outdatedSchema(path: String, missingMigrations: [String])
  /// A writing command opened a database that SQLite cannot write (the file or its folder is read-only).
  case readOnlyDatabase(path: String, reason: String)
  /// A write was attempted through a store opened read-only.
  case readOnlyStore(path: String)
  /// The database was written by a newer simsiam-bench whose migrations this version does not know.
  case newerSchema(path: String, unknownMigrations: [String])
  /// No run has this id.
  case unknownRun(id: Int64, path: String)
  /// The run is not `running`, so it cannot be finished or failed again.
  case runNotRunning(id: Int64, status: String, path: String)
  /// The run's configuration is not valid JSON.
  case invalidConfigJSON(reason: String)
  /// A score, class score or epoch metric is malformed (empty benchmark, NaN value, negative count …).
  case invalidScore(reason: String)

  public var description: String {
    switch self {
    case let .missingDatabase(path):
      "No results database at \(path). Hint: runs are stored there once `simsiam-bench run` or `pretrain` has "
        + "finished one; pass --db to read another file."
    case let .unreadableDatabase(path, reason):
      "Cannot read the results database \(path): \(reason). Hint: is it an SQLite file written by simsiam-bench? "
        + "Pass --db to choose another file."
    case let .databaseFailure(path, reason, isBusy):
      "SQLite failed on the results database \(path): \(reason). Hint: "
        + (isBusy ? "another process held the write lock longer than the busy timeout; retry when it is done."
                  : "check the disk and the file's permissions; `sqlite3 \(path) 'PRAGMA integrity_check'` tests it.")
    case let .foreignDatabase(path, tables):
      "\(path) is an SQLite database of another application (its tables: "
        + (tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", … \(tables.count) in all" : ""))
        + "), not a simsiam-bench results database; it was left unchanged. Hint: pass --db with another file "
        + "(a new path is created)."
    case let .outdatedSchema(path, missingMigrations):
      "The results database \(path) was written by an older simsiam-bench and lacks migrations "
        + "\(missingMigrations.joined(separator: ", ")), so it cannot be read without changing it. Hint: run any "
        + "command that records results with --db \(path) once (it migrates the file), or copy it to a writable place."
    case let .readOnlyDatabase(path, reason):
      "The results database \(path) cannot be written: \(reason) (the file or its folder is read-only). Hint: "
        + "`results list/show/export`, `report` and `compare` read it as it is; to record or delete runs, make it "
        + "writable or pass --db with another file."
    case let .readOnlyStore(path):
      "The results database \(path) was opened read-only, so it cannot be changed. Hint: open it with write access."
    case let .newerSchema(path, unknownMigrations):
      "The results database \(path) has a newer schema than this simsiam-bench knows (unknown migrations: "
        + "\(unknownMigrations.joined(separator: ", "))). Hint: update simsiam-bench, or pass --db to use another file."
    case let .unknownRun(id, path):
      "No run \(id) in \(path). Hint: `simsiam-bench results list --db \(path)` shows the stored runs."
    case let .runNotRunning(id, status, path):
      "Run \(id) in \(path) is \(status), not running, so it cannot be finished or failed again."
    case let .invalidConfigJSON(reason):
      "The run configuration is not valid JSON: \(reason). Hint: pass the config as a JSON object, e.g. {}."
    case let .invalidScore(reason):
      "Invalid score: \(reason)."
    }
  }
}
