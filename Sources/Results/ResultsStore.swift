// The SQLite results store (GRDB). The schema and API land with the results issue; this file opens the store.
import Foundation
import GRDB

/// The results database: every run and score simsiam-bench computes, with provenance.
public final class ResultsStore {
  public let path: String
  let queue: DatabaseQueue

  /// Opens (creating if needed) the store at `path` with foreign keys on.
  public init(path: String) throws {
    self.path = path
    var configuration = Configuration()
    configuration.foreignKeysEnabled = true
    queue = try DatabaseQueue(path: path, configuration: configuration)
  }

  /// The SQLite library version in use.
  public func sqliteVersion() throws -> String {
    try queue.read { try String.fetchOne($0, sql: "SELECT sqlite_version()") ?? "unknown" }
  }
}
