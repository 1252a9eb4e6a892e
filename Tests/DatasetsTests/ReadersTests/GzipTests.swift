import Foundation
import Testing
import Tensors
@testable import Datasets

/// The .gz fixtures are written by Python's gzip module (make_fixtures.py).
@Suite struct GzipTests {
  @Test(arguments: ["gzip/data.bin.gz", "gzip/data-level1.bin.gz", "gzip/data-stored.bin.gz"])
  func decompressesPythonGzip(_ file: String) throws {
    let expected = try ReaderFixtures.bytes("gzip/data.bin")
    let compressed = try ReaderFixtures.bytes(file)
    #expect(Gzip.isCompressed(compressed))
    #expect(try Gzip.decompress(compressed, path: file) == expected)
  }

  @Test func concatenatedMembersAndEmptyAndFixedHuffman() throws {
    let data = try ReaderFixtures.bytes("gzip/data.bin")
    #expect(try Gzip.decompress(try ReaderFixtures.bytes("gzip/two-members.bin.gz"), path: "") == Array(data[..<2000]))
    #expect(try Gzip.decompress(try ReaderFixtures.bytes("gzip/empty.gz"), path: "") == [])
    #expect(try Gzip.decompress(try ReaderFixtures.bytes("gzip/short.txt.gz"), path: "")
              == Array("abcabcabcabc hello hello".utf8))
  }

  /// RFC 1951 §3.2.4 by hand: one final stored block holding "hi".
  @Test func rawStoredBlock() throws {
    #expect(try Gzip.inflate([0x01, 0x02, 0x00, 0xFD, 0xFF, 0x68, 0x69], path: "") == Array("hi".utf8))
    #expect(throws: DatasetError.self) { try Gzip.inflate([0x01, 0x02, 0x00, 0xFD, 0xFE, 0x68, 0x69], path: "") }
    #expect(throws: DatasetError.self) { try Gzip.inflate([0x07], path: "") }  // block type 3
  }

  @Test func everyTruncationThrows() throws {
    let short = try ReaderFixtures.bytes("gzip/short.txt.gz")
    for length in 0..<short.count {
      #expect(throws: DatasetError.self) { try Gzip.decompress(Array(short[..<length]), path: "short") }
    }
    let long = try ReaderFixtures.bytes("gzip/data.bin.gz")
    for length in stride(from: 0, to: long.count, by: 97) {
      #expect(throws: DatasetError.self) { try Gzip.decompress(Array(long[..<length]), path: "long") }
    }
  }

  /// A changed byte anywhere in the compressed data or trailer is caught (by the decoder or the CRC-32).
  /// The last compressed byte is skipped: its unused high bits may be changed harmlessly.
  @Test func corruptedBytesThrowAndNeverCrash() throws {
    let original = try ReaderFixtures.bytes("gzip/data.bin.gz")
    var rng = SplitMix64(seed: 7)
    for _ in 0..<200 {
      var bytes = original
      let position = Int.random(in: 10..<(bytes.count - 9), using: &rng)
      bytes[position] ^= UInt8.random(in: 1...255, using: &rng)
      #expect(throws: DatasetError.self) { try Gzip.decompress(bytes, path: "mutated") }
    }
    for _ in 0..<200 {
      let garbage = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0xFF]
        + (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      #expect(throws: DatasetError.self) { try Gzip.decompress(garbage, path: "garbage") }
    }
  }

  @Test func errorNamesTheFile() throws {
    var bytes = try ReaderFixtures.bytes("gzip/data.bin.gz")
    bytes[bytes.count - 8] ^= 1  // CRC-32
    #expect {
      try Gzip.decompress(bytes, path: "/x/y.gz")
    } throws: { error in
      String(describing: error).contains("/x/y.gz") && String(describing: error).contains("CRC-32")
    }
  }
}
