import Support
import Foundation
import Testing
@testable import Support

@Suite struct ReadFileHashingTests {
  /// The data is the file's bytes and the digest is SHA-256 of exactly those bytes, for files smaller than, equal to
  /// and larger than one chunk (7 bytes, so the 76,958-byte fixture takes 10,994 reads and ends mid-chunk).
  @Test(arguments: [0, 1, 7, 8, 76_958])
  func dataAndDigestMatchTheFile(length: Int) throws {
    let fixture = try SupportFixtures.bytes("gzip/data.bin")
    let contents = Array(fixture[..<length])
    try SupportFixtures.withTemporaryFolder { folder in
      let url = folder.appendingPathComponent("file.bin")
      try Data(contents).write(to: url)
      for chunk in [7, 4 << 20] {
        let (data, digest) = try readFileHashing(url, chunkBytes: chunk)
        #expect([UInt8](data) == contents)
        #expect(digest == SHA256.hexDigest(of: contents))
        #expect(try SHA256.hexDigest(ofFileAt: url, chunkBytes: chunk) == digest)
      }
    }
  }

  /// Fixed digests from coreutils / hashlib, so the pass does not only agree with itself.
  @Test func knownDigests() throws {
    try SupportFixtures.withTemporaryFolder { folder in
      let empty = folder.appendingPathComponent("empty")
      try Data().write(to: empty)
      #expect(try readFileHashing(empty).sha256Hex
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
      let one = folder.appendingPathComponent("one")
      try Data("a".utf8).write(to: one)
      #expect(try readFileHashing(one).sha256Hex == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")
    }
    // hashlib.sha256(open("gzip/data.bin", "rb").read()).hexdigest()
    let (data, digest) = try readFileHashing(try SupportFixtures.url("gzip/data.bin"), chunkBytes: 1000)
    #expect(data.count == 76_958)
    #expect(digest == "49fb9b053d96b7972b937d912aa62cb777a63e083781bada153a8f850b7ebda5")
  }

  @Test func errorsNameTheFile() throws {
    try SupportFixtures.withTemporaryFolder { folder in
      let missing = folder.appendingPathComponent("absent.pth")
      #expect(throws: SupportError.unreadableFile(path: missing.path, reason: "the file does not exist")) {
        try readFileHashing(missing)
      }
      #expect(throws: SupportError.unreadableFile(path: folder.path, reason: "it is a directory, expected a file")) {
        try readFileHashing(folder)
      }
      #expect { try SHA256.hexDigest(ofFileAt: missing) } throws: { error in
        String(describing: error).contains(missing.path)
      }
    }
  }
}
