import ArgumentParser
import Foundation
import Testing
import Checkpoints
import Evaluation
import Protocols
import Results
@testable import SimSiamBenchCLI

/// Issue 14 item 11: an option given a folder where it takes a file (or the reverse) is named with what was expected,
/// not passed on as "NSCocoaErrorDomain error 256/512".
@Suite struct PathMessagesTests {
  /// Parses and runs `arguments`; returns the error's text.
  private func failure(_ arguments: [String]) -> String {
    do {
      var command = try SimSiamBench.parseAsRoot(arguments)
      try command.run()
      return "no error"
    } catch {
      return SimSiamBench.message(for: error)
    }
  }

  private func withFolder(_ body: (URL, URL, String) throws -> Void) throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-paths-\(UUID().uuidString)")
    let file = folder.appendingPathComponent("plain-file")
    try FileManager.default.createDirectory(at: folder.appendingPathComponent("dir"), withIntermediateDirectories: true)
    try Data("x".utf8).write(to: file)
    defer { try? FileManager.default.removeItem(at: folder) }
    try body(folder.appendingPathComponent("dir"), file, folder.appendingPathComponent("r.sqlite").path)
  }

  @Test func aFolderGivenAsCheckpointOrConfigIsNamedAsAFolder() throws {
    try withFolder { dir, _, db in
      for text in [failure(["run", "knn", "--checkpoint", dir.path, "--db", db]),
                   failure(["run", "voc-svm", "--checkpoint", dir.path, "--data", dir.path, "--db", db]),
                   failure(["checkpoint", "inspect", dir.path]),
                   failure(["pretrain", "--config", dir.path, "--db", db])] {
        #expect(text.contains(dir.path) && text.contains("is a folder"), "\(text)")
        #expect(!text.contains("NSCocoaErrorDomain"), "\(text)")
      }
    }
  }

  @Test func anEmptyCheckpointIsCalledEmpty() throws {
    try withFolder { dir, _, _ in
      for name in ["empty.pth", "empty.safetensors"] {
        let url = dir.appendingPathComponent(name)
        try Data().write(to: url)
        let text = failure(["checkpoint", "inspect", url.path])
        #expect(text.contains(url.path) && text.contains("is empty"), "\(text)")
      }
    }
  }

  @Test func aFileGivenWhereAFolderIsExpectedIsNamedAsAFile() throws {
    try withFolder { dir, file, db in
      let checkpoint = dir.appendingPathComponent("init.safetensors")
      let (config, name) = try PretrainRequest.config(file: nil, overrides: ["model.width_multiplier=0.125"], seed: 1)
      try PretrainProtocol.writeInitialWeights(of: config, name: name, to: checkpoint)
      let cases = [
        failure(["run", "knn", "--checkpoint", checkpoint.path, "--data", file.path, "--db", db]),
        failure(["run", "knn", "--checkpoint", checkpoint.path, "--work-dir", file.path, "--db", db]),
        failure(["run", "voc-svm", "--checkpoint", checkpoint.path, "--data", file.path, "--db", db,
                 "--work-dir", dir.appendingPathComponent("svm").path]),
        failure(["data", "make-scenes", "--out", file.path, "--train", "20", "--test", "20"]),
      ]
      for text in cases {
        #expect(text.contains(file.path) && text.contains("is a file"), "\(text)")
      }
      _ = try ResultsStore(path: db)
      let report = failure(["report", "markdown", "--db", db, "--output", dir.path])
      #expect(report.contains(dir.path) && report.contains("is a folder"), "\(report)")
    }
  }

  @Test func resumeFromAFolderAndHintsNameWhatExists() throws {
    try withFolder { dir, _, db in
      let text = failure(["pretrain", "--resume", dir.path, "--db", db, "--work-dir", dir.appendingPathComponent("w").path,
                          "--set", "data.kind=synthetic", "--set", "data.limit=64", "--set", "schedule.batch_size=16"])
      #expect(text.contains(dir.path) && text.contains("is a folder") && text.contains("--resume auto"), "\(text)")
    }
    // The dtype message lists every dtype the reader loads; the cache hint names the real option.
    let dtype = "\(CheckpointError.unsupportedDType(path: "x", name: "w", dtype: "U8"))"
    #expect(["F32", "F16", "BF16", "F64", "I64"].allSatisfy(dtype.contains), "\(dtype)")
    let cache = "\(FeatureCacheError.unusableDirectory(path: "/c", reason: "read-only"))"
    #expect(cache.contains("--feature-cache") && !cache.contains("--cache-dir"), "\(cache)")
  }
}
