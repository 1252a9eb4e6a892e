import Datasets
import Foundation
import Testing
import Results
import TestSupport
@testable import SimSiamBenchCLI

/// Issue 14 item 6: the feature cache is keyed on the images' contents. Every JPEG of a devkit is rewritten with
/// other bytes of the same length (a different, valid JPEG padded after its end marker) and its modification time
/// set back; the next `run voc-svm` must extract again instead of reusing the old features.
@Suite struct FeatureCacheContentTests {
  /// Overwrites every file in `folder` with a uniform grey JPEG (grey level from its index) padded with zeros to
  /// the file's length, keeping its modification time.
  static func rewriteWithSameLength(_ folder: URL) throws -> Int {
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    for (index, name) in names.enumerated() {
      let url = folder.appendingPathComponent(name)
      let original = try Data(contentsOf: url)
      let modified = try FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as! Date
      let replacement = try encodeJPEG(Image(width: 8, height: 8, channels: 3, value: UInt8(40 + index % 160)))
      try #require(replacement.count < original.count)
      try (Data(replacement) + Data(count: original.count - replacement.count)).write(to: url)
      try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: url.path)
      #expect(try Data(contentsOf: url).count == original.count && Data(contentsOf: url) != original)
    }
    return names.count
  }

  @Test func sameLengthRewrittenImagesAreExtractedAgain() throws {
    try RunLinearTests.withFolder { folder in
      let checkpoint = try RunLinearTests.tinyCheckpoint(in: folder)
      _ = try SceneSet.write(to: folder, seed: 3, size: SceneSetSize(trainval: 40, test: 40),
                             trainItems: .syntheticForTests(), testItems: .syntheticForTests())
      let voc = folder.appendingPathComponent("VOCdevkit/VOC2007")
      let db = folder.appendingPathComponent("r.sqlite").path
      func run(_ work: String) throws -> (log: String, mAP: Double) {
        let arguments = ["run", "voc-svm", "--checkpoint", checkpoint, "--data", voc.path, "--costs", "1",
                         "--layers", "feature5", "--image-size", "32", "--db", db, "--threads", "2",
                         "--work-dir", folder.appendingPathComponent(work).path,
                         "--feature-cache", folder.appendingPathComponent("features").path]
        var command = try #require(try SimSiamBench.parseAsRoot(arguments) as? RunVOCSVM)
        try ThreadCountLock.holding { try command.run() }
        let store = try ResultsStore(path: db)
        let run = try #require(try store.runs().last)
        let mAP = try #require(try store.scores(run: run.runID).first {
          $0.benchmark == Benchmark.voc07SVM && $0.metric == "mAP" && $0.isProtocolResult
        })
        let log = try String(contentsOf: folder.appendingPathComponent("\(work)/log.txt"), encoding: .utf8)
        return (log, mAP.value)
      }
      let first = try run("work1")
      #expect(!first.log.contains("feature cache: reused"))  // the line is written only when a layer is reused
      let unchanged = try run("work2")
      #expect(unchanged.log.contains("feature cache: reused 1 of 1 layer(s)") && unchanged.mAP == first.mAP)

      #expect(try Self.rewriteWithSameLength(voc.appendingPathComponent("JPEGImages")) == 80)
      let rewritten = try run("work3")
      #expect(!rewritten.log.contains("feature cache: reused"), "\(rewritten.log)")
      // Every image is now a flat grey square: the features (and so the SVM scores) are not the old ones.
      #expect(rewritten.mAP != first.mAP)
    }
  }
}
