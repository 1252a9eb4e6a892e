import Foundation
import GRDB
import Testing
@testable import Results

/// The per-epoch kNN column (migration `v2-epoch-knn-top1`): stored, printed, and absent from older databases
/// without making them unreadable.
@Suite struct EpochKNNTests {
  @Test func knnTop1RoundTripsAndIsPrinted() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    let store = try ResultsStore(path: database.path)
    let id = try store.beginRun(sampleRun(kind: .pretrain))
    try store.addEpochMetric(EpochMetric(epoch: 1, loss: -0.5, learningRate: 0.05, outputStd: 0.04,
                                         imagesPerSecond: 110, knnTop1: 71.25), to: id)
    try store.addEpochMetric(EpochMetric(epoch: 2, loss: -0.6, learningRate: 0.03), to: id)
    let epochs = try store.epochMetrics(run: id)
    #expect(epochs.map(\.knnTop1) == [71.25, nil])
    let text = RunTables.epochs(epochs).text()
    #expect(text.contains("kNN top-1 %"))
    #expect(text.contains("71.25"))
  }

  /// A database written before the column existed (only `v1-runs-scores-epochs` applied, an epoch row in it) opens,
  /// gains the column, and reads its old rows with `knnTop1 == nil`.
  @Test func databasesFromBeforeTheColumnStayReadable() throws {
    let database = TemporaryDatabase()
    defer { database.remove() }
    try FileManager.default.createDirectory(atPath: (database.path as NSString).deletingLastPathComponent,
                                            withIntermediateDirectories: true)
    do {
      let queue = try DatabaseQueue(path: database.path)
      try ResultsSchema.migrator.migrate(queue, upTo: "v1-runs-scores-epochs")
      try queue.write { db in
        try db.execute(sql: """
          INSERT INTO run (kind, protocol, label, code_version, host, pid, threads, started_at, status)
          VALUES ('pretrain', 'simsiam', 'old', '0.1.0', 'elsewhere', 1, 2, '2024-01-01T00:00:00Z', 'finished');
          INSERT INTO epoch_metric (run_id, epoch, loss, learning_rate, output_std) VALUES (1, 1, -0.4, 0.05, 0.03);
          """)
      }
      let columns = try queue.read { try $0.columns(in: "epoch_metric").map(\.name) }
      #expect(!columns.contains("knn_top1"))
    }
    let store = try ResultsStore(path: database.path)
    #expect(try store.appliedMigrations() == ["v1-runs-scores-epochs", "v2-epoch-knn-top1", "v3-score-epoch",
                                               "v4-run-resume"])
    let epochs = try store.epochMetrics(run: RunID(1))
    #expect(epochs.count == 1)
    #expect(epochs.first?.loss == -0.4 && epochs.first?.outputStd == 0.03 && epochs.first?.knnTop1 == nil)
    #expect(!RunTables.epochs(epochs).text().contains("nan"))
  }
}

/// Intermediate probe scores carry their epoch (migration `v3-score-epoch`) and never count as a protocol result.
@Suite struct ScoreEpochTests {
  @Test func epochScoresAreStoredAndLeftOutOfTables() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("score-epoch-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let run = try store.beginRun(NewRun(kind: .evaluate, protocolName: "imagenet-linear", label: "ckpt",
                                        codeVersion: "test", threads: 1))
    _ = try store.addScores([Score(benchmark: "imagenet-linear", metric: "top1", layer: "feature5", epoch: 10,
                                   value: 40),
                             Score(benchmark: "imagenet-linear", metric: "top1", layer: "feature5", value: 55)],
                            to: run)
    try store.finishRun(run)
    let stored = try store.scores(run: run)
    #expect(stored.map(\.epoch) == [10, nil])
    #expect(stored.map(\.isProtocolResult) == [false, true])
    // The linear table shows the final 55.00, not the epoch-10 value stored before it.
    let markdown = try StandardReports(store: store).markdown()  // the imagenet-linear table
    #expect(markdown.contains("55.00") && !markdown.contains("40.00"))
  }
}

@Suite struct OtherDatasetTableTests {
  @Test func fashionMNISTProbesGetTheSeedLayouts() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("other-tables-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let run = try store.beginRun(NewRun(kind: .evaluate, protocolName: "fashion-mnist-linear", label: "quick",
                                        codeVersion: "test", threads: 1))
    _ = try store.addScores([Score(benchmark: "fashion-mnist-linear", metric: "top1", layer: "feature2", value: 81.2),
                             Score(benchmark: "fashion-mnist-linear", metric: "top1", layer: "avgpool", value: 69.3),
                             Score(benchmark: "fashion-mnist-knn", metric: "top1", k: 20, value: 68.75)], to: run)
    try store.finishRun(run)
    let markdown = try StandardReports(store: store).markdown()
      .replacingOccurrences(of: " +", with: " ", options: .regularExpression)  // ignore column padding
    // Linear before kNN, as in the seed README.
    let linear = try #require(markdown.range(of: "#### Fashion-MNIST Linear Evaluation"))
    let knn = try #require(markdown.range(of: "#### Fashion-MNIST Nearest-Neighbor Classification"))
    #expect(linear.lowerBound < knn.lowerBound)
    #expect(markdown.contains("| quick | – | 81.20 | – | – | – | 69.30 |"))
    #expect(markdown.contains("| quick | – | 68.8 | – | – |"))
  }
}
