import Foundation
import GRDB
import Testing
@testable import Results

/// Two writers on one database file: nothing is lost and the file stays consistent.
@Suite struct ConcurrentWritersTests {
  static let runsPerWriter = 200

  /// Inserts `runsPerWriter` runs with two scores (one with per-class values) each, through its own connection.
  static func write(path: String, writer: Int) throws {
    let store = try ResultsStore(path: path)
    for index in 0..<runsPerWriter {
      let id = try store.beginRun(sampleRun("writer\(writer)-\(index)"))
      try store.addScores([
        Score(benchmark: "voc07-svm", metric: "mAP", layer: "feature5", value: Double(index),
              perClass: [ClassValue(className: "cat", value: 1), ClassValue(className: "dog", value: 2)]),
        Score(benchmark: "voc07-lowshot-svm", metric: "mAP", layer: "feature5", k: 1, value: Double(index)),
      ], to: id)
      try store.finishRun(id)
    }
  }

  @Test func twoConnectionsOnTwoThreadsLoseNothing() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    DispatchQueue.concurrentPerform(iterations: 2) { writer in
      do { try Self.write(path: database.path, writer: writer) } catch { Issue.record(error) }
    }
    let store = try ResultsStore(path: database.path)
    let runs = try store.runs()
    #expect(runs.count == 2 * Self.runsPerWriter)
    #expect(Set(runs.map(\.label)).count == 2 * Self.runsPerWriter)
    #expect(runs.allSatisfy { $0.status == .finished })
    let scores = try store.allScores()
    #expect(scores.values.map(\.count).reduce(0, +) == 4 * Self.runsPerWriter)
    #expect(scores.values.allSatisfy { $0.first?.perClass.count == 2 })
    #expect(try store.integrityCheck() == "ok")
  }

  /// A second process: the sqlite3 shell inserts runs with scores while this process does the same.
  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3")))
  func anotherProcessWritingAtTheSameTimeLosesNothing() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    _ = try ResultsStore(path: database.path)  // creates the schema and switches the file to WAL

    var script = ".timeout 30000\n"
    for index in 0..<Self.runsPerWriter {
      script += """
        BEGIN IMMEDIATE;
        INSERT INTO run (kind, protocol, label, code_version, host, pid, threads, started_at, status)
          VALUES ('evaluate', 'voc07-svm', 'shell-\(index)', '0.1.0', 'shell', 1, 1, '2024-01-01T00:00:00Z',
                  'finished');
        INSERT INTO score (run_id, benchmark, metric, layer, value)
          VALUES (last_insert_rowid(), 'voc07-svm', 'mAP', 'feature5', \(index));
        INSERT INTO score (run_id, benchmark, metric, layer, k, value)
          SELECT id, 'voc07-lowshot-svm', 'mAP', 'feature5', 1, \(index) FROM run WHERE label = 'shell-\(index)';
        COMMIT;

        """
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    process.arguments = [database.path]
    let input = Pipe()
    let errors = Pipe()
    process.standardInput = input
    process.standardError = errors
    try process.run()
    // Feed the script from another thread so both processes write during the whole test.
    let scriptData = Data(script.utf8)
    let feeder = input.fileHandleForWriting
    let fed = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
      feeder.write(scriptData)
      try? feeder.close()
      fed.signal()
    }
    try Self.write(path: database.path, writer: 0)
    fed.wait()
    process.waitUntilExit()
    let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(process.terminationStatus == 0, "sqlite3: \(errorText)")
    #expect(errorText.isEmpty, "sqlite3: \(errorText)")

    let store = try ResultsStore(path: database.path)
    let runs = try store.runs()
    #expect(runs.filter { $0.label.hasPrefix("shell-") }.count == Self.runsPerWriter)
    #expect(runs.filter { $0.label.hasPrefix("writer0-") }.count == Self.runsPerWriter)
    #expect(try store.allScores().values.map(\.count).reduce(0, +) == 4 * Self.runsPerWriter)
    #expect(try store.integrityCheck() == "ok")
  }
}
