// The SQLite results store (GRDB): runs with provenance, their scores, per-class scores and pretraining epochs.
//
// One `DatabaseQueue` per process, in WAL mode with a busy timeout. simsiam-bench commands are short and
// sequential, so a `DatabasePool`'s concurrent in-process readers would buy nothing; what matters is other
// processes (a pretraining and an evaluation writing at once, a `results list` while they run). WAL lets
// readers and the single writer proceed together across processes, GRDB opens every write transaction
// IMMEDIATE so writers queue on the lock instead of failing on upgrade, and the busy timeout makes them wait.
import Foundation
import GRDB

/// The results database: every run and score simsiam-bench computes, with provenance.
public final class ResultsStore: Sendable {
  /// The default location, relative to the working directory (the repository's results folder).
  public static let defaultPath = "results/simsiam.sqlite"
  /// How long a writer waits for another process's write transaction before failing.
  public static let busyTimeout: TimeInterval = 30

  public let path: String
  /// Whether this store may change the database (`.readOnly` stores refuse every write).
  public let access: Access
  let queue: DatabaseQueue

  /// How a store opens its database.
  public enum Access: Sendable {
    /// Creates the file if asked, switches it to WAL and applies missing migrations (commands that record runs).
    case readWrite
    /// Opens the file with SQLite's read-only flag and changes nothing: no WAL switch, no migration, no lock
    /// file (readers: `results list/show/export`, `report`, `compare`). Works on a read-only file or folder.
    case readOnly
  }

  /// Opens the store at `path`, creating the file and its folder unless `createIfMissing` is false, and
  /// applies any migrations it lacks. With `access: .readOnly` the file must exist and is never changed.
  ///
  /// Throws `ResultsError.missingDatabase` (only when `createIfMissing` is false or the access is read-only),
  /// `.unreadableDatabase` for a file that is not a readable SQLite database, `.foreignDatabase` for an SQLite
  /// file holding another application's tables, `.newerSchema` for one a newer version wrote, and
  /// `.outdatedSchema` for one a read-only store cannot read before it is migrated.
  public init(path: String, createIfMissing: Bool = true, access: Access = .readWrite) throws {
    self.path = path
    self.access = access
    let fileManager = FileManager.default
    var isDirectory: ObjCBool = false
    if fileManager.fileExists(atPath: path, isDirectory: &isDirectory) {
      if isDirectory.boolValue { throw ResultsError.unreadableDatabase(path: path, reason: "it is a directory") }
    } else {
      guard createIfMissing, access == .readWrite else { throw ResultsError.missingDatabase(path: path) }
      let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
      do {
        try fileManager.createDirectory(at: folder, withIntermediateDirectories: true)
      } catch {
        throw ResultsError.unreadableDatabase(path: path, reason: "cannot create its folder: \(error)")
      }
    }
    do {
      switch access {
      case .readWrite: queue = try Self.openReadWrite(path: path)
      case .readOnly: queue = try Self.openReadOnly(path: path)
      }
    } catch let error as ResultsError {
      throw error
    } catch let error as DatabaseError where access == .readWrite && error.resultCode == .SQLITE_READONLY {
      throw ResultsError.readOnlyDatabase(path: path, reason: error.message ?? "\(error.resultCode)")
    } catch let error as DatabaseError {
      throw ResultsError.unreadableDatabase(path: path, reason: error.message ?? "\(error.resultCode)")
    }
  }

  private static func openReadWrite(path: String) throws -> DatabaseQueue {
    var configuration = Configuration()
    configuration.foreignKeysEnabled = true
    configuration.busyMode = .timeout(Self.busyTimeout)
    // Opening (the switch to WAL) and migrating are serialised across processes and threads by an exclusive
    // flock on a sidecar file: two connections creating the same new file at once otherwise race on the schema
    // (seen as "no such table" or an immediate SQLITE_BUSY in the concurrent-writer test).
    let lock = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    if lock >= 0 { _ = flock(lock, LOCK_EX) }
    defer { if lock >= 0 { _ = flock(lock, LOCK_UN); close(lock) } }
    let queue = try Self.retryingWhileBusy { try DatabaseQueue(path: path, configuration: configuration) }
    // Checked before anything is written: GRDB's `journalMode = .wal` would already change a foreign file's header.
    try refuseForeign(queue, path: path)
    try Self.retryingWhileBusy {
      try queue.writeWithoutTransaction { db in
        let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
        guard mode == "wal" else { throw DatabaseError(message: "could not switch to WAL mode (got \(mode ?? "nil"))") }
        try db.execute(sql: "PRAGMA synchronous = NORMAL")
      }
    }
    try Self.migrate(queue, path: path)
    return queue
  }

  /// A read-only connection. On a WAL database SQLite needs the -shm file; in a read-only folder where it is
  /// missing the first read fails (SQLITE_READONLY_CANTINIT, or SQLITE_CANTOPEN), and the file is then read as immutable: no writer can be at work
  /// in a folder nobody may write to.
  private static func openReadOnly(path: String) throws -> DatabaseQueue {
    var configuration = Configuration()
    configuration.readonly = true
    configuration.foreignKeysEnabled = true
    configuration.busyMode = .timeout(Self.busyTimeout)
    var queue: DatabaseQueue
    do {
      queue = try DatabaseQueue(path: path, configuration: configuration)
      _ = try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM sqlite_master") }
    } catch let error as DatabaseError
      where error.resultCode == .SQLITE_CANTOPEN || error.resultCode == .SQLITE_READONLY {
      if let size = try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int, size > 0 {
        throw ResultsError.unreadableDatabase(
          path: path, reason: "its write-ahead log \(path)-wal holds changes that SQLite cannot read without "
            + "creating \(path)-shm, and the folder is read-only; copy the database with its -wal file elsewhere")
      }
      var components = URLComponents()
      components.scheme = "file"
      components.path = URL(fileURLWithPath: path).path
      components.queryItems = [URLQueryItem(name: "immutable", value: "1")]
      queue = try DatabaseQueue(path: components.string ?? path, configuration: configuration)
    }
    try refuseForeign(queue, path: path)
    let migrator = ResultsSchema.migrator
    let known = migrator.migrations
    let applied = try queue.read { try migrator.appliedIdentifiers($0) }
    let unknown = applied.subtracting(known)
    guard unknown.isEmpty else { throw ResultsError.newerSchema(path: path, unknownMigrations: unknown.sorted()) }
    // The readers query every table and column of the newest schema, so an older one cannot be read as it is.
    let missing = known.filter { !applied.contains($0) }
    guard missing.isEmpty else { throw ResultsError.outdatedSchema(path: path, missingMigrations: missing) }
    return queue
  }

  /// Throws `.foreignDatabase` for a file with tables of which none is ours (an empty SQLite file is fine).
  private static func refuseForeign(_ queue: DatabaseQueue, path: String) throws {
    let tables = try retryingWhileBusy {
      try queue.read {
        try String.fetchAll($0, sql: """
          SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name
          """)
      }
    }
    guard !tables.isEmpty, !tables.contains("grdb_migrations"), !tables.contains("run") else { return }
    throw ResultsError.foreignDatabase(path: path, tables: tables)
  }

  /// Applies missing migrations. Two processes may open a new file at once: GRDB reads the applied list before
  /// its migration transaction, so the slower one can fail on a table the other just created. It then finds the
  /// schema complete and carries on.
  private static func migrate(_ queue: DatabaseQueue, path: String) throws {
    let migrator = ResultsSchema.migrator
    let known = Set(migrator.migrations)
    let applied = try queue.read { try migrator.appliedIdentifiers($0) }
    let unknown = applied.subtracting(known)
    guard unknown.isEmpty else { throw ResultsError.newerSchema(path: path, unknownMigrations: unknown.sorted()) }
    if try queue.read({ try migrator.hasCompletedMigrations($0) }) { return }
    for attempt in 1...3 {
      do {
        try retryingWhileBusy { try migrator.migrate(queue) }
        return
      } catch {
        if try queue.read({ try migrator.hasCompletedMigrations($0) }) { return }
        if attempt == 3 { throw error }
      }
    }
  }

  /// Runs `body` again while SQLite answers SQLITE_BUSY / SQLITE_LOCKED without waiting, for at most
  /// `busyTimeout`. That happens when another process opens the same new file: switching it to WAL and the
  /// migrator's read-then-write transaction can fail at once (SQLite's deadlock avoidance skips the busy handler).
  static func retryingWhileBusy<T>(_ body: () throws -> T) throws -> T {
    let deadline = Date().addingTimeInterval(busyTimeout)
    var pause = 0.005
    while true {
      do {
        return try body()
      } catch let error as DatabaseError
        where (error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED) && Date() < deadline {
        Thread.sleep(forTimeInterval: pause * Double.random(in: 0.5...1.5))
        pause = min(pause * 2, 0.2)
      }
    }
  }

  /// The SQLite library version in use.
  public func sqliteVersion() throws -> String {
    try queue.read { try String.fetchOne($0, sql: "SELECT sqlite_version()") ?? "unknown" }
  }

  /// The names of the migrations applied to this database, oldest first.
  public func appliedMigrations() throws -> [String] {
    try queue.read { try ResultsSchema.migrator.appliedMigrations($0) }
  }

  /// `PRAGMA integrity_check`: "ok", or SQLite's list of problems.
  public func integrityCheck() throws -> String {
    try queue.read { try String.fetchAll($0, sql: "PRAGMA integrity_check").joined(separator: "\n") }
  }

  // MARK: - Runs

  /// Records a new `running` run started now by this process on this host.
  public func beginRun(_ new: NewRun) throws -> RunID {
    do {
      _ = try JSONSerialization.jsonObject(with: Data(new.config.utf8), options: [.fragmentsAllowed])
    } catch {
      throw ResultsError.invalidConfigJSON(reason: "\(error.localizedDescription) in \(new.config.prefix(80))")
    }
    let process = ProcessIdentity.current
    var run = Run(
      id: nil, kind: new.kind, protocolName: new.protocolName, label: new.label, configFile: new.configFile,
      config: new.config, checkpointPath: new.checkpointPath, checkpointSHA256: new.checkpointSHA256,
      checkpointLayout: new.checkpointLayout, datasetPath: new.datasetPath,
      datasetFingerprint: new.datasetFingerprint, protocolVariant: new.protocolVariant,
      codeVersion: new.codeVersion, host: process.host, pid: process.pid, processStart: process.start,
      threads: new.threads, startedAt: Date(), finishedAt: nil, status: .running, message: nil)
    try write { db in try run.insert(db) }
    return run.runID
  }

  /// Marks a running run finished now, with an optional note (e.g. that a time cap cut its schedule short).
  public func finishRun(_ id: RunID, message: String? = nil) throws {
    try end(id, status: .finished, message: message)
  }

  /// Reopens a pretraining run that a resumed training continues: it reads `running` again under this process,
  /// its end time and message are cleared, and the resume is recorded (`resumes(run:)`). Refused while the run is
  /// still running in a live process (two trainings would write one row).
  public func resumeRun(_ id: RunID, fromEpoch: Int, iteration: Int, checkpoint: String) throws {
    let current = try run(id)  // reads `died` for a running row whose process is gone
    guard current.status != .running else {
      throw ResultsError.runNotRunning(id: id.rawValue, status: "still running (pid \(current.pid) on \(current.host))",
                                       path: path)
    }
    let process = ProcessIdentity.current
    try write { db in
      guard var run = try Run.fetchOne(db, key: id.rawValue) else {
        throw ResultsError.unknownRun(id: id.rawValue, path: path)
      }
      var resume = RunResume(runID: id, resumedAt: Date(), previousStatus: current.status.rawValue,
                             fromEpoch: fromEpoch, fromIteration: iteration, checkpointPath: checkpoint,
                             host: process.host, pid: process.pid)
      try resume.insert(db)
      run.status = .running
      run.finishedAt = nil
      run.message = nil
      run.host = process.host
      run.pid = process.pid
      run.processStart = process.start
      try run.update(db)
    }
  }

  /// The resumes of a run, oldest first.
  public func resumes(run id: RunID) throws -> [RunResume] {
    try queue.read { db in
      try RunResume.filter(Column("run_id") == id.rawValue).order(Column("id")).fetchAll(db)
    }
  }

  /// Marks a running run failed now, with the reason.
  public func failRun(_ id: RunID, message: String) throws {
    try end(id, status: .failed, message: message)
  }

  private func end(_ id: RunID, status: RunStatus, message: String?) throws {
    try write { db in
      guard var run = try Run.fetchOne(db, key: id.rawValue) else {
        throw ResultsError.unknownRun(id: id.rawValue, path: path)
      }
      guard run.status == .running else {
        throw ResultsError.runNotRunning(id: id.rawValue, status: run.status.rawValue, path: path)
      }
      run.status = status
      run.finishedAt = Date()
      run.message = message
      try run.update(db)
    }
  }

  /// Every run, oldest first. A run still `running` in the table whose process is gone from this host reads as
  /// `.died`; the table keeps `running`.
  public func runs() throws -> [Run] {
    let stored = try queue.read { try Run.order(Column("id")).fetchAll($0) }
    let here = ProcessIdentity.current.host
    return stored.map { run in
      var run = run
      if run.status == .running, run.host == here,
         !ProcessIdentity.isAlive(pid: run.pid, start: run.processStart) {
        run.status = .died
      }
      return run
    }
  }

  /// One run, with the same `died` reading as `runs()`.
  public func run(_ id: RunID) throws -> Run {
    let stored = try queue.read { try Run.fetchOne($0, key: id.rawValue) }
    guard var run = stored else { throw ResultsError.unknownRun(id: id.rawValue, path: path) }
    if run.status == .running, run.host == ProcessIdentity.current.host,
       !ProcessIdentity.isAlive(pid: run.pid, start: run.processStart) {
      run.status = .died
    }
    return run
  }

  /// Deletes a run with its scores, per-class scores and epoch metrics.
  public func deleteRun(_ id: RunID) throws {
    try write { db in
      guard try Run.deleteOne(db, key: id.rawValue) else {
        throw ResultsError.unknownRun(id: id.rawValue, path: path)
      }
    }
  }

  // MARK: - Scores

  /// Stores scores and their per-class values for a run, all or nothing.
  @discardableResult
  public func addScores(_ scores: [Score], to id: RunID) throws -> [Score] {
    for score in scores { try Self.validate(score) }
    return try write { db in
      guard try Run.exists(db, key: id.rawValue) else { throw ResultsError.unknownRun(id: id.rawValue, path: path) }
      var stored: [Score] = []
      for var score in scores {
        score.runID = id
        try score.insert(db)
        for entry in score.perClass {
          try ClassScore(scoreID: score.id!, className: entry.className, value: entry.value).insert(db)
        }
        stored.append(score)
      }
      return stored
    }
  }

  private static func validate(_ score: Score) throws {
    if score.benchmark.isEmpty || score.metric.isEmpty {
      throw ResultsError.invalidScore(reason: "benchmark and metric must not be empty")
    }
    if !score.value.isFinite {
      throw ResultsError.invalidScore(reason: "\(score.benchmark) \(score.metric) is \(score.value)")
    }
    if score.count < 1 { throw ResultsError.invalidScore(reason: "count must be at least 1, got \(score.count)") }
    if Set(score.perClass.map(\.className)).count != score.perClass.count {
      throw ResultsError.invalidScore(reason: "\(score.benchmark) \(score.metric) names a class twice")
    }
  }

  /// A run's scores in insertion order, each with its per-class values.
  public func scores(run id: RunID) throws -> [Score] {
    try queue.read { db in
      guard try Run.exists(db, key: id.rawValue) else { throw ResultsError.unknownRun(id: id.rawValue, path: path) }
      return try Self.fetchScores(db, filter: Column("run_id") == id.rawValue)
    }
  }

  /// Every score of every run, grouped by run.
  public func allScores() throws -> [RunID: [Score]] {
    let scores = try queue.read { db in try Self.fetchScores(db, filter: nil) }
    return Dictionary(grouping: scores, by: { $0.runID! })
  }

  /// How many scores each run has (runs without scores are absent).
  public func scoreCounts() throws -> [RunID: Int] {
    try queue.read { db in
      let rows = try Row.fetchAll(db, sql: "SELECT run_id, COUNT(*) AS n FROM score GROUP BY run_id")
      return Dictionary(uniqueKeysWithValues: rows.map { (RunID($0["run_id"] as Int64), $0["n"] as Int) })
    }
  }

  private static func fetchScores(_ db: Database, filter: SQLExpression?) throws -> [Score] {
    var request = Score.order(Column("id"))
    if let filter { request = request.filter(filter) }
    var scores = try request.fetchAll(db)
    let ids = scores.map { $0.id! }
    var perClass: [Int64: [ClassValue]] = [:]
    for row in try ClassScore.filter(ids.contains(Column("score_id"))).order(Column("id")).fetchAll(db) {
      perClass[row.scoreID, default: []].append(ClassValue(className: row.className, value: row.value))
    }
    for index in scores.indices { scores[index].perClass = perClass[scores[index].id!] ?? [] }
    return scores
  }

  // MARK: - Pretraining epochs

  /// Stores one epoch's pretraining metrics; an epoch already stored for the run is replaced (a resumed run).
  public func addEpochMetric(_ metric: EpochMetric, to id: RunID) throws {
    try write { db in
      guard try Run.exists(db, key: id.rawValue) else { throw ResultsError.unknownRun(id: id.rawValue, path: path) }
      var metric = metric
      metric.runID = id
      try EpochMetric.filter(Column("run_id") == id.rawValue && Column("epoch") == metric.epoch).deleteAll(db)
      try metric.insert(db)
    }
  }

  /// A run's epoch metrics, by epoch.
  public func epochMetrics(run id: RunID) throws -> [EpochMetric] {
    try queue.read { db in
      try EpochMetric.filter(Column("run_id") == id.rawValue).order(Column("epoch")).fetchAll(db)
    }
  }

  // MARK: - Helpers

  /// A write transaction whose SQLite failures name this database.
  private func write<T>(_ body: (Database) throws -> T) throws -> T {
    guard access == .readWrite else { throw ResultsError.readOnlyStore(path: path) }
    do {
      return try queue.write(body)
    } catch let error as DatabaseError {
      throw ResultsError.databaseFailure(
        path: path, reason: "\(error.message ?? "SQLite error") (code \(error.extendedResultCode.rawValue))",
        isBusy: error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED)
    }
  }
}
