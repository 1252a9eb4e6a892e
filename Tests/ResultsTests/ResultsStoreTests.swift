import Foundation
import GRDB
import Testing
@testable import Results

/// A fresh database path in a temporary folder, removed (with its -wal and -shm files) by `remove()`.
struct TemporaryDatabase {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent("results-\(UUID().uuidString)")
  var path: String { folder.appendingPathComponent("db", isDirectory: true).appendingPathComponent("r.sqlite").path }
  func remove() { try? FileManager.default.removeItem(at: folder) }
}

func sampleRun(_ label: String = "resnet18-quick", kind: RunKind = .evaluate) -> NewRun {
  NewRun(kind: kind, protocolName: "voc07-svm", label: label, configFile: "quick.json",
         config: #"{"costs": [1, 10, 100]}"#, checkpointPath: "work_dirs/quick/epoch_5.safetensors",
         checkpointSHA256: String(repeating: "ab", count: 32), checkpointLayout: "mmselfsup",
         datasetPath: "data/VOCdevkit", datasetFingerprint: "sha256:1234", protocolVariant: "costs=1,10,100",
         codeVersion: "0.1.0", threads: 2)
}

@Suite struct ResultsStoreTests {
  @Test func opensAStoreAndReportsSQLiteVersion() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    #expect(try store.sqliteVersion().hasPrefix("3."))
    let journal = try store.queue.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
    #expect(journal == "wal")
    let foreignKeys = try store.queue.read { try Bool.fetchOne($0, sql: "PRAGMA foreign_keys") }
    #expect(foreignKeys == true)
  }

  @Test func runScoresAndEpochsRoundTrip() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    let before = Date(timeIntervalSinceNow: -1)
    let id = try store.beginRun(sampleRun())
    let scores = [
      Score(benchmark: "voc07-svm", metric: "mAP", layer: "feature5", value: 84.21,
            perClass: [ClassValue(className: "aeroplane", value: 91.5), ClassValue(className: "bicycle", value: 80)]),
      Score(benchmark: "voc07-lowshot-svm", metric: "mAP", layer: "feature5", k: 8, value: 69.97, count: 5,
            std: 0.4),
      Score(benchmark: "voc07-lowshot-svm", metric: "mAP", layer: "feature5", k: 8, sample: 2, cost: 0.5,
            value: 70.1),
    ]
    try store.addScores(scores, to: id)
    try store.addEpochMetric(EpochMetric(epoch: 0, loss: -0.5, learningRate: 0.05, outputStd: 0.02,
                                         imagesPerSecond: 110), to: id)
    try store.addEpochMetric(EpochMetric(epoch: 1, loss: -0.7, learningRate: 0.04), to: id)
    try store.addEpochMetric(EpochMetric(epoch: 1, loss: -0.75, learningRate: 0.04), to: id)  // resumed: replaces
    try store.finishRun(id)

    let run = try store.run(id)
    #expect(run.id == id)
    #expect(run.status == .finished)
    #expect(run.kind == .evaluate && run.protocolName == "voc07-svm" && run.label == "resnet18-quick")
    #expect(run.config == #"{"costs": [1, 10, 100]}"#)
    #expect(run.checkpointSHA256 == String(repeating: "ab", count: 32) && run.checkpointLayout == "mmselfsup")
    #expect(run.datasetFingerprint == "sha256:1234" && run.protocolVariant == "costs=1,10,100")
    #expect(run.pid == getpid() && run.host == ProcessInfo.processInfo.hostName && run.threads == 2)
    #expect(run.startedAt >= before.addingTimeInterval(-1) && run.finishedAt! >= run.startedAt)
    #expect(try store.runs() == [run])

    let stored = try store.scores(run: id)
    #expect(stored.count == 3)
    #expect(stored.map(\.runID) == [id, id, id])
    #expect(stored.map { $0.value } == [84.21, 69.97, 70.1])
    #expect(stored[0].perClass == scores[0].perClass)
    #expect(stored[1].k == 8 && stored[1].count == 5 && stored[1].std == 0.4 && stored[1].sample == nil)
    #expect(stored[2].sample == 2 && stored[2].cost == 0.5)
    #expect(try store.allScores()[id] == stored)
    #expect(try store.scoreCounts() == [id: 3])

    let epochs = try store.epochMetrics(run: id)
    #expect(epochs.map(\.epoch) == [0, 1])
    #expect(epochs[1].loss == -0.75 && epochs[0].outputStd == 0.02 && epochs[0].imagesPerSecond == 110)

    // Timestamps are ISO-8601 UTC text.
    let started = try store.queue.read { try String.fetchOne($0, sql: "SELECT started_at FROM run") } ?? ""
    #expect(started.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/) != nil, "\(started)")
  }

  @Test func failedRunKeepsItsMessage() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    let id = try store.beginRun(sampleRun())
    try store.failRun(id, message: "liblinear did not converge")
    let run = try store.run(id)
    #expect(run.status == .failed && run.message == "liblinear did not converge" && run.finishedAt != nil)
    #expect(throws: ResultsError.runNotRunning(id: id.rawValue, status: "failed", path: database.path)) {
      try store.finishRun(id)
    }
  }

  @Test func badInputIsATypedErrorNamingThePath() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    let missing = RunID(999)
    #expect(throws: ResultsError.unknownRun(id: 999, path: database.path)) { try store.run(missing) }
    #expect(throws: ResultsError.unknownRun(id: 999, path: database.path)) { try store.finishRun(missing) }
    #expect(throws: ResultsError.unknownRun(id: 999, path: database.path)) { try store.deleteRun(missing) }
    #expect(throws: ResultsError.unknownRun(id: 999, path: database.path)) { try store.scores(run: missing) }
    #expect(throws: ResultsError.unknownRun(id: 999, path: database.path)) {
      try store.addScores([Score(benchmark: "b", metric: "m", value: 1)], to: missing)
    }
    var bad = sampleRun()
    bad.config = "{not json"
    #expect(throws: ResultsError.self) { try store.beginRun(bad) }
    let id = try store.beginRun(sampleRun())
    #expect(throws: ResultsError.self) {
      try store.addScores([Score(benchmark: "b", metric: "m", value: 1),
                           Score(benchmark: "b", metric: "m", value: .nan)], to: id)
    }
    #expect(try store.scores(run: id).isEmpty)  // nothing of the rejected batch was stored
    let text = ResultsError.unknownRun(id: 999, path: database.path).description
    #expect(text.contains(database.path) && text.contains("Hint"))
  }

  @Test func missingUnreadableAndNewerDatabasesAreTypedErrors() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    #expect(throws: ResultsError.missingDatabase(path: database.path)) {
      try ResultsStore(path: database.path, createIfMissing: false)
    }
    #expect(!FileManager.default.fileExists(atPath: database.path))

    try FileManager.default.createDirectory(at: database.folder, withIntermediateDirectories: true)
    let garbage = database.folder.appendingPathComponent("garbage.sqlite").path
    let text = String(repeating: "this is not an SQLite database\n", count: 200)
    try Data(text.utf8).write(to: URL(fileURLWithPath: garbage))
    #expect {
      try ResultsStore(path: garbage)
    } throws: { error in
      guard case let .unreadableDatabase(path, _) = error as? ResultsError else { return false }
      return path == garbage && String(describing: error).contains("Hint")
    }

    let store = try ResultsStore(path: database.path)
    try store.queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99-from-the-future')") }
    #expect(throws: ResultsError.newerSchema(path: database.path, unknownMigrations: ["v99-from-the-future"])) {
      try ResultsStore(path: database.path)
    }
  }

  @Test func reopeningAppliesMigrationsOnce() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let id = try ResultsStore(path: database.path).beginRun(sampleRun())
    for _ in 0..<3 {
      let store = try ResultsStore(path: database.path, createIfMissing: false)
      #expect(try store.appliedMigrations() == ResultsSchema.migrator.migrations)
      let rows = try store.queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM grdb_migrations") }
      #expect(rows == ResultsSchema.migrator.migrations.count)
      #expect(try store.runs().map(\.id) == [id])
    }
  }

  @Test func deletingARunCascadesToItsScoresClassScoresAndEpochs() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    let perClass = [ClassValue(className: "cat", value: 1), ClassValue(className: "dog", value: 2)]
    let doomed = try store.beginRun(sampleRun("doomed"))
    let kept = try store.beginRun(sampleRun("kept"))
    for id in [doomed, kept] {
      try store.addScores([Score(benchmark: "voc07-svm", metric: "mAP", layer: "feature5", value: 50,
                                 perClass: perClass)], to: id)
      try store.addEpochMetric(EpochMetric(epoch: 0, loss: -0.1, learningRate: 0.05), to: id)
    }
    try store.deleteRun(doomed)

    func count(_ table: String) throws -> Int {
      try store.queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)") ?? -1 }
    }
    #expect(try store.runs().map(\.label) == ["kept"])
    #expect(try count("score") == 1)
    #expect(try count("class_score") == 2)
    #expect(try count("epoch_metric") == 1)
    #expect(try store.scores(run: kept).first?.perClass == perClass)
  }

  @Test func aRunningRunWhoseProcessIsGoneReadsAsDied() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    _ = try store.beginRun(sampleRun("alive"))
    let dead = try store.beginRun(sampleRun("dead"))
    let elsewhere = try store.beginRun(sampleRun("elsewhere"))
    let reused = try store.beginRun(sampleRun("reused-pid"))
    // pid_max is at most 2^22 on Linux, so this pid cannot exist.
    try store.queue.write { db in
      try db.execute(sql: "UPDATE run SET pid = 2147483647 WHERE id IN (?, ?)",
                     arguments: [dead.rawValue, elsewhere.rawValue])
      try db.execute(sql: "UPDATE run SET host = 'another-host' WHERE id = ?", arguments: [elsewhere.rawValue])
      // Our own pid, but a process that started at another time: the pid was reused.
      try db.execute(sql: "UPDATE run SET process_start = process_start + 1 WHERE id = ?",
                     arguments: [reused.rawValue])
    }
    let statuses = Dictionary(uniqueKeysWithValues: try store.runs().map { ($0.label, $0.status) })
    #expect(statuses == ["alive": .running, "dead": .died, "elsewhere": .running, "reused-pid": .died])
    #expect(try store.run(dead).status == .died)
    let stored = try store.queue.read { try String.fetchOne($0, sql: "SELECT status FROM run WHERE id = ?",
                                                            arguments: [dead.rawValue]) }
    #expect(stored == "running")  // the table is not rewritten by a reading
    #expect(throws: (any Error).self) {
      try store.queue.write { try $0.execute(sql: "UPDATE run SET status = 'died'") }  // CHECK constraint
    }
  }
}
