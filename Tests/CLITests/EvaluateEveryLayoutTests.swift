import Protocols
import ArgumentParser
import Foundation
import Testing
import Results
import TestSupport
@testable import SimSiamBenchCLI

/// Issue 5's "evaluate a file in each layout": `run knn` loads each committed torch.save fixture (a width-reduced
/// ResNet in every layout we read) through the one backbone loader, strictly, and stores the detected layout and the
/// file's SHA-256 with its scores.
@Suite struct EvaluateEveryLayoutTests {
  static func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("CheckpointsTests/Fixtures/pth/\(name)").path
  }

  @Test(arguments: [("torchvision.pth", "torchvision"), ("mmselfsup0_train.pth", "mmselfsup-0.x"),
                    ("mmselfsup_zoo_backbone.pth", "mmselfsup-backbone"), ("mmselfsup1.pth", "mmselfsup-1.x"),
                    ("simsiam_official.pth.tar", "official-simsiam")])
  func knnEvaluatesTheFixture(_ file: String, _ layout: String) throws {
    try RunLinearTests.withFolder { folder in
      let db = folder.appendingPathComponent("r.sqlite").path
      var command = try #require(try SimSiamBench.parseAsRoot(
        ["run", "knn", "--checkpoint", Self.fixture(file), "--db", db, "--threads", "1",
         "--work-dir", folder.appendingPathComponent("work").path, "--no-feature-cache",
         "--set", "knn.k=[3]"] + RunLinearTests.tinyData) as? RunKNN)
      try ThreadCountLock.holding { try command.run() }
      let store = try ResultsStore(path: db)
      let run = try #require(try store.runs().last)
      #expect(run.status == .finished)
      #expect(run.checkpointLayout == layout)
      #expect(run.checkpointSHA256 == (try fileSHA256(Self.fixture(file))))
      #expect(try store.scores(run: run.runID).contains { $0.metric == "top1" && $0.k == 3 })
    }
  }
}
