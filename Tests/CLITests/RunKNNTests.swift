import ArgumentParser
import Foundation
import Testing
import Results
import TestSupport
@testable import SimSiamBenchCLI

/// `run knn` end to end on the tiny backbone and synthetic images of `RunLinearTests`.
@Suite struct RunKNNTests {
  @Test func knnRunsAndStoresEveryK() throws {
    try RunLinearTests.withFolder { folder in
      let checkpoint = try RunLinearTests.tinyCheckpoint(in: folder)
      let db = folder.appendingPathComponent("r.sqlite").path
      let command = try #require(try SimSiamBench.parseAsRoot(
        ["run", "knn", "--checkpoint", checkpoint, "--db", db, "--threads", "2",
         "--work-dir", folder.appendingPathComponent("work").path,
         "--feature-cache", folder.appendingPathComponent("features").path, "--set", "knn.k=[1, 5, 10]"]
          + RunLinearTests.tinyData)
        as? RunKNN)
      try ThreadCountLock.holding { try command.run() }
      let store = try ResultsStore(path: db)
      let run = try #require(try store.runs().last)
      #expect(run.status == .finished && run.protocolName == "synthetic-knn")
      let scores = try store.scores(run: run.runID)
      #expect(scores.count == 6)
      #expect(Set(scores.compactMap(\.k)) == [1, 5, 10])
      #expect(scores.allSatisfy { $0.layer == nil && $0.count == 24 })
      let top5 = scores.filter { $0.metric == "top5" }.sorted { $0.k! < $1.k! }
      #expect(top5.last!.value == 100)  // 4 synthetic classes: top-min(5, k) covers them all at k ≥ 5
    }
  }
}
