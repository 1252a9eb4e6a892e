import Foundation
import Testing
@testable import Support

@Suite struct AtomicFileTests {
  struct Refused: Error, Equatable {}

  static func names(in folder: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
  }

  @Test func writesAndReplacesLeavingNoTemporary() throws {
    try SupportFixtures.withTemporaryFolder { folder in
      let url = folder.appendingPathComponent("out.bin")
      try AtomicFile.write(Data([1, 2, 3]), to: url)
      #expect(try Data(contentsOf: url) == Data([1, 2, 3]))
      try AtomicFile.write(Data(), to: url)
      #expect(try Data(contentsOf: url).isEmpty)
      try AtomicFile.write(to: url) { handle in
        try handle.write(contentsOf: Data("first ".utf8))
        try handle.write(contentsOf: Data("second".utf8))
      }
      #expect(try String(contentsOf: url, encoding: .utf8) == "first second")
      try AtomicFile.write(to: url, creatingFileAt: { temporary in
        #expect(temporary.deletingLastPathComponent() == url.deletingLastPathComponent())
        #expect(temporary.lastPathComponent.hasPrefix(".out.bin.") && temporary.lastPathComponent.hasSuffix(".tmp"))
        #expect(!FileManager.default.fileExists(atPath: temporary.path))  // for libraries that refuse to overwrite
        try Data("through the path".utf8).write(to: temporary)
      })
      #expect(try String(contentsOf: url, encoding: .utf8) == "through the path")
      #expect(try Self.names(in: folder) == ["out.bin"])
    }
  }

  /// A failing writer leaves the old file as it was, no temporary, and its own error.
  @Test func failureKeepsTheOldFileAndRemovesTheTemporary() throws {
    try SupportFixtures.withTemporaryFolder { folder in
      let url = folder.appendingPathComponent("keep.txt")
      try AtomicFile.write(Data("old".utf8), to: url)
      #expect(throws: Refused()) {
        try AtomicFile.write(to: url) { handle in
          try handle.write(contentsOf: Data("half-written".utf8))
          throw Refused()
        }
      }
      #expect(throws: Refused()) {
        try AtomicFile.write(to: url, creatingFileAt: { temporary in
          try Data("half".utf8).write(to: temporary)
          throw Refused()
        })
      }
      do {
        let writer = try AtomicFile.Writer(url)
        try writer.write(Data("discarded".utf8))
        #expect(try Self.names(in: folder).count == 2)  // the temporary exists while writing
        writer.discard()
      }
      do { _ = try AtomicFile.Writer(url) }  // released uncommitted
      #expect(try String(contentsOf: url, encoding: .utf8) == "old")
      #expect(try Self.names(in: folder) == ["keep.txt"])
    }
  }

  @Test func errorsNameTheFile() throws {
    try SupportFixtures.withTemporaryFolder { folder in
      let nowhere = folder.appendingPathComponent("missing/out.bin")
      #expect(throws: SupportError.unwritableFile(path: nowhere.path,
                                                  reason: "the folder \(folder.path)/missing does not exist")) {
        try AtomicFile.write(Data([1]), to: nowhere)
      }
      // A directory in the way: the rename fails, the message names the file and the temporary is gone.
      let directory = folder.appendingPathComponent("taken")
      try FileManager.default.createDirectory(at: directory.appendingPathComponent("inside"),
                                              withIntermediateDirectories: true)
      #expect {
        try AtomicFile.write(Data([1]), to: directory)
      } throws: { error in
        guard case let SupportError.unwritableFile(path, reason) = error else { return false }
        return path == directory.path && reason.hasPrefix("rename over it failed")
          && String(describing: error).contains(directory.path)
      }
      #expect(try Self.names(in: folder) == ["taken"])
    }
  }
}
