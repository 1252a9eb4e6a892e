import ArgumentParser
import Datasets
import Foundation
import Testing
import Results
import TestSupport
@testable import SimSiamBenchCLI

/// `run voc-svm` end to end as a user runs it: a tiny backbone checkpoint, a scene VOC devkit from
/// `data make-scenes`, full and low-shot SVMs, scores in the store, the README table printed; a re-run reuses the
/// feature cache and the journal of finished SVM units and gives the same numbers.
@Suite struct RunVOCSVMTests {
  @Test func fullAndLowShotSVMsStoreScoresAndResume() throws {
    try RunLinearTests.withFolder { folder in
      let checkpoint = try RunLinearTests.tinyCheckpoint(in: folder)
      _ = try SceneSet.write(to: folder, seed: 3, size: SceneSetSize(trainval: 40, test: 40), trainItems: .syntheticForTests(),
                             testItems: .syntheticForTests())
      let voc = folder.appendingPathComponent("VOCdevkit/VOC2007").path
      let db = folder.appendingPathComponent("r.sqlite").path
      let arguments = ["run", "voc-svm", "--checkpoint", checkpoint, "--data", voc, "--low-shot",
                       "--low-shot-k", "1,2", "--costs", "0.1,1,10", "--layers", "feature4,feature5",
                       "--image-size", "32", "--db", db, "--threads", "2", "--label", "tiny",
                       "--work-dir", folder.appendingPathComponent("work").path,
                       "--feature-cache", folder.appendingPathComponent("features").path]
      var first = try #require(try SimSiamBench.parseAsRoot(arguments) as? RunVOCSVM)
      try first.run()

      let store = try ResultsStore(path: db)
      let run = try #require(try store.runs().last)
      #expect(run.status == .finished && run.label == "tiny" && run.checkpointSHA256?.count == 64)
      #expect(run.protocolVariant?.contains("adaptive") == true)
      let scores = try store.scores(run: run.runID)
      let svm = scores.filter { $0.benchmark == Benchmark.voc07SVM && $0.metric == "mAP" && $0.isProtocolResult }
      #expect(Set(svm.compactMap(\.layer)) == ["feature4", "feature5"])
      #expect(svm.allSatisfy { $0.value >= 0 && $0.value <= 100 && $0.perClass.count == 10 })
      let lowShot = scores.filter { $0.benchmark == Benchmark.voc07LowShotSVM && $0.metric == "mAP" && $0.isProtocolResult }
      #expect(Set(lowShot.compactMap(\.k)) == [1, 2])
      #expect(lowShot.allSatisfy { $0.count == 5 && $0.std != nil })
      // Every layer's cache file exists.
      let cached = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("features").path)
      #expect(cached.filter { !$0.hasPrefix(".") }.count >= 2)

      // A re-run: same numbers, features from the cache, SVM units from the journal.
      var second = try #require(try SimSiamBench.parseAsRoot(arguments) as? RunVOCSVM)
      try second.run()
      let rerun = try #require(try store.runs().last)
      #expect(rerun.runID != run.runID && rerun.status == .finished)
      let again = try store.scores(run: rerun.runID)
      func values(_ scores: [Score]) -> [String] {
        scores.filter(\.isProtocolResult).map { "\($0.benchmark) \($0.layer ?? "") \($0.k ?? 0) \($0.value)" }.sorted()
      }
      #expect(values(again) == values(scores))
      let log = try String(contentsOfFile: folder.appendingPathComponent("work/log.txt").path, encoding: .utf8)
      #expect(log.contains("feature cache: reused 2 of 2 layer(s)"))
    }
  }

  @Test func aMissingDevkitIsATypedErrorNamingIt() throws {
    try RunLinearTests.withFolder { folder in
      let checkpoint = try RunLinearTests.tinyCheckpoint(in: folder)
      var command = try #require(try SimSiamBench.parseAsRoot(
        ["run", "voc-svm", "--checkpoint", checkpoint, "--data", folder.appendingPathComponent("nowhere").path,
         "--db", folder.appendingPathComponent("r.sqlite").path]) as? RunVOCSVM)
      #expect { try command.run() } throws: { error in
        String(describing: error).contains("nowhere")
      }
    }
  }
}
