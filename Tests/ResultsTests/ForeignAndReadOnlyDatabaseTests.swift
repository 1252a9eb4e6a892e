import Foundation
import GRDB
import Testing
@testable import Results

/// Issue 14, item 8: another application's SQLite file is refused untouched, and readers open read-only.
@Suite struct ForeignAndReadOnlyDatabaseTests {
  private func tables(_ path: String) throws -> [String] {
    var configuration = Configuration()
    configuration.readonly = true
    let queue = try DatabaseQueue(path: path, configuration: configuration)
    return try queue.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master ORDER BY name") }
  }

  private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

  private func modified(_ path: String) throws -> Date? {
    try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
  }

  @Test func aForeignDatabaseIsRefusedWithAHintAndLeftUnchanged() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    try FileManager.default.createDirectory(at: database.folder, withIntermediateDirectories: true)
    let path = database.folder.appendingPathComponent("shop.sqlite").path
    do {
      let queue = try DatabaseQueue(path: path)
      try queue.write { db in
        try db.execute(sql: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        try db.execute(sql: "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER)")
        try db.execute(sql: "INSERT INTO customers (name) VALUES ('Ada')")
      }
    }
    let tablesBefore = try tables(path)
    let bytesBefore = try bytes(path)
    for access in [ResultsStore.Access.readWrite, .readOnly] {
      #expect {
        try ResultsStore(path: path, access: access)
      } throws: { error in
        guard case let .foreignDatabase(errorPath, found) = error as? ResultsError else { return false }
        let message = String(describing: error)
        return errorPath == path && found == ["customers", "orders"] && message.contains(path)
          && message.contains("customers, orders") && message.contains("Hint: pass --db with another file")
      }
    }
    #expect(try tables(path) == tablesBefore)
    #expect(try bytes(path) == bytesBefore)
    #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
  }

  @Test func anEmptyFileOrANewPathIsInitialised() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    try FileManager.default.createDirectory(at: database.folder, withIntermediateDirectories: true)
    let empty = database.folder.appendingPathComponent("empty.sqlite").path
    #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
    for path in [empty, database.path] {
      let store = try ResultsStore(path: path)
      let id = try store.beginRun(sampleRun())
      #expect(try store.runs().map(\.id) == [id])
      #expect(try store.appliedMigrations() == ResultsSchema.migrator.migrations)
    }
  }

  @Test func aReadOnlyStoreReadsEverythingAndLeavesTheFileByteIdentical() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let id: RunID
    do {
      let store = try ResultsStore(path: database.path)
      id = try store.beginRun(sampleRun())
      _ = try store.addScores([Score(benchmark: "voc07-svm", metric: "mAP", layer: "feature5", value: 84.21)], to: id)
      try store.addEpochMetric(EpochMetric(epoch: 1, loss: -0.5, learningRate: 0.05), to: id)
      try store.finishRun(id)
    }
    // The writer closed: SQLite checkpointed and removed its -wal and -shm files.
    try? FileManager.default.removeItem(atPath: database.path + ".lock")
    let before = try bytes(database.path)
    let modifiedBefore = try modified(database.path)
    let sideFilesBefore = try FileManager.default.contentsOfDirectory(atPath: database.folder.path + "/db").sorted()
    do {
      let store = try ResultsStore(path: database.path, createIfMissing: false, access: .readOnly)
      #expect(store.access == .readOnly)
      #expect(try store.runs().map(\.id) == [id])
      #expect(try store.run(id).status == .finished)
      #expect(try store.scores(run: id).map(\.value) == [84.21])
      #expect(try store.epochMetrics(run: id).map(\.epoch) == [1])
      #expect(try store.resumes(run: id).isEmpty)
      #expect(try store.scoreCounts() == [id: 1])
      #expect(try StandardReports(store: store).markdown(source: database.path).isEmpty == false)
      #expect(try HTMLReport(store: store, references: [], source: database.path).render().isEmpty == false)
    }
    #expect(try bytes(database.path) == before)
    #expect(try modified(database.path) == modifiedBefore)
    #expect(!FileManager.default.fileExists(atPath: database.path + ".lock"))
    // SQLite may leave an empty -wal / -shm pair beside a WAL database a read-only connection opened; the -wal
    // stays empty (no change can be in it).
    let sideFilesAfter = try FileManager.default.contentsOfDirectory(atPath: database.folder.path + "/db").sorted()
    for name in Set(sideFilesAfter).subtracting(sideFilesBefore) {
      #expect(name == "r.sqlite-wal" || name == "r.sqlite-shm")
    }
    if let wal = try? FileManager.default.attributesOfItem(atPath: database.path + "-wal")[.size] as? Int {
      #expect(wal == 0)
    }
  }

  @Test func writesThroughAReadOnlyStoreAreRefused() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let id = try ResultsStore(path: database.path).beginRun(sampleRun())
    let store = try ResultsStore(path: database.path, access: .readOnly)
    #expect(throws: ResultsError.readOnlyStore(path: database.path)) { try store.beginRun(sampleRun()) }
    #expect(throws: ResultsError.readOnlyStore(path: database.path)) { try store.deleteRun(id) }
    #expect(throws: ResultsError.readOnlyStore(path: database.path)) { try store.finishRun(id) }
    #expect(String(describing: ResultsError.readOnlyStore(path: database.path)).contains("opened read-only"))
    // What a writing command says on a read-only file or folder (root, which runs CI, can write to both anyway).
    let readOnlyFile = ResultsError.readOnlyDatabase(path: database.path, reason: "attempt to write a readonly database")
    #expect(String(describing: readOnlyFile).contains("read-only). Hint: `results list/show/export`, `report`"))
    // Even past the store's own check, SQLite's read-only connection refuses to write.
    #expect(throws: DatabaseError.self) {
      try store.queue.write { try $0.execute(sql: "DELETE FROM run") }
    }
    #expect(try ResultsStore(path: database.path, access: .readOnly).runs().map(\.id) == [id])
  }

  @Test func aReadOnlyStoreNeedsAnExistingCompleteDatabase() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    #expect(throws: ResultsError.missingDatabase(path: database.path)) {
      try ResultsStore(path: database.path, access: .readOnly)
    }
    #expect(!FileManager.default.fileExists(atPath: database.folder.path))

    try FileManager.default.createDirectory(at: database.folder.appendingPathComponent("db"),
                                            withIntermediateDirectories: true)
    let migrations = ResultsSchema.migrator.migrations
    do {
      let queue = try DatabaseQueue(path: database.path)
      try ResultsSchema.migrator.migrate(queue, upTo: migrations[migrations.count - 2])
    }
    #expect(throws: ResultsError.outdatedSchema(path: database.path, missingMigrations: [migrations.last!])) {
      try ResultsStore(path: database.path, access: .readOnly)
    }
    _ = try ResultsStore(path: database.path)  // a writable opening migrates it
    #expect(try ResultsStore(path: database.path, access: .readOnly).appliedMigrations() == migrations)

    let store = try ResultsStore(path: database.path)
    try store.queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99-from-the-future')") }
    #expect(throws: ResultsError.newerSchema(path: database.path, unknownMigrations: ["v99-from-the-future"])) {
      try ResultsStore(path: database.path, access: .readOnly)
    }
  }
}
