import Foundation
import Testing
import Tensors
@testable import Support

/// The .gz fixtures are written by Python's gzip module (scripts/reference/make_reader_fixtures.py).
@Suite struct GzipTests {
  /// A limit no fixture reaches except the 64 MiB of zeros.
  static let limit = 1 << 20

  static func gunzip(_ bytes: [UInt8], path: String = "", maximumSize: Int = limit) throws(SupportError) -> [UInt8] {
    try Gzip.decompress(bytes, path: path, maximumSize: maximumSize)
  }

  @Test(arguments: ["gzip/data.bin.gz", "gzip/data-level1.bin.gz", "gzip/data-stored.bin.gz"])
  func decompressesPythonGzip(_ file: String) throws {
    let expected = try SupportFixtures.bytes("gzip/data.bin")
    let compressed = try SupportFixtures.bytes(file)
    #expect(Gzip.isCompressed(compressed))
    #expect(!Gzip.isCompressed(expected))
    #expect(try Self.gunzip(compressed, path: file) == expected)
  }

  @Test func concatenatedMembersAndEmptyAndFixedHuffman() throws {
    let data = try SupportFixtures.bytes("gzip/data.bin")
    #expect(try Self.gunzip(try SupportFixtures.bytes("gzip/two-members.bin.gz")) == Array(data[..<2000]))
    #expect(try Self.gunzip(try SupportFixtures.bytes("gzip/empty.gz")) == [])
    #expect(try Self.gunzip(try SupportFixtures.bytes("gzip/short.txt.gz")) == Array("abcabcabcabc hello hello".utf8))
    // Zero padding after the last member is allowed; anything else after it is not a gzip member.
    let short = try SupportFixtures.bytes("gzip/short.txt.gz")
    #expect(try Self.gunzip(short + [0, 0, 0]) == Array("abcabcabcabc hello hello".utf8))
    #expect(throws: SupportError.self) { try Self.gunzip(short + [0x42, 0x5A, 0x68]) }
  }

  /// RFC 1951 §3.2.4 by hand: one final stored block holding "hi".
  @Test func rawStoredBlock() throws {
    #expect(try Gzip.inflate([0x01, 0x02, 0x00, 0xFD, 0xFF, 0x68, 0x69], path: "", maximumSize: 2) == Array("hi".utf8))
    #expect(throws: SupportError.self) {
      try Gzip.inflate([0x01, 0x02, 0x00, 0xFD, 0xFE, 0x68, 0x69], path: "", maximumSize: Self.limit)
    }
    #expect(throws: SupportError.self) { try Gzip.inflate([0x07], path: "", maximumSize: Self.limit) }  // block type 3
    #expect(throws: SupportError.decompressedSizeExceedsLimit(path: "raw", limit: 1)) {
      try Gzip.inflate([0x01, 0x02, 0x00, 0xFD, 0xFF, 0x68, 0x69], path: "raw", maximumSize: 1)
    }
  }

  @Test func everyTruncationThrows() throws {
    let short = try SupportFixtures.bytes("gzip/short.txt.gz")
    for length in 0..<short.count {
      #expect(throws: SupportError.self) { try Self.gunzip(Array(short[..<length]), path: "short") }
    }
    let long = try SupportFixtures.bytes("gzip/data.bin.gz")
    for length in stride(from: 0, to: long.count, by: 97) {
      #expect(throws: SupportError.self) { try Self.gunzip(Array(long[..<length]), path: "long") }
    }
  }

  /// A changed byte anywhere in the compressed data or trailer is caught (by the decoder or the CRC-32).
  /// The last compressed byte is skipped: its unused high bits may be changed harmlessly.
  @Test func corruptedBytesThrowAndNeverCrash() throws {
    let original = try SupportFixtures.bytes("gzip/data.bin.gz")
    var rng = SplitMix64(seed: 7)
    for _ in 0..<200 {
      var bytes = original
      let position = Int.random(in: 10..<(bytes.count - 9), using: &rng)
      bytes[position] ^= UInt8.random(in: 1...255, using: &rng)
      #expect(throws: SupportError.self) { try Self.gunzip(bytes, path: "mutated") }
    }
    for _ in 0..<200 {
      let garbage = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0xFF]
        + (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      #expect(throws: SupportError.self) { try Self.gunzip(garbage, path: "garbage") }
    }
  }

  @Test func errorNamesTheFile() throws {
    var bytes = try SupportFixtures.bytes("gzip/data.bin.gz")
    bytes[bytes.count - 8] ^= 1  // CRC-32
    #expect {
      try Self.gunzip(bytes, path: "/x/y.gz")
    } throws: { error in
      String(describing: error).contains("/x/y.gz") && String(describing: error).contains("CRC-32")
    }
    var length = try SupportFixtures.bytes("gzip/data.bin.gz")
    length[length.count - 4] ^= 1  // ISIZE
    #expect {
      try Self.gunzip(length, path: "/x/z.gz")
    } throws: { error in
      String(describing: error).contains("/x/z.gz") && String(describing: error).contains("length mismatch")
    }
  }

  /// The limit counts the whole output (all members): exactly at it is fine, one byte over is the typed error.
  @Test func outputLimitIsExact() throws {
    let data = try SupportFixtures.bytes("gzip/data.bin")
    let compressed = try SupportFixtures.bytes("gzip/data.bin.gz")
    #expect(try Self.gunzip(compressed, maximumSize: data.count) == data)
    #expect(throws: SupportError.decompressedSizeExceedsLimit(path: "/d/data.bin.gz", limit: data.count - 1)) {
      try Self.gunzip(compressed, path: "/d/data.bin.gz", maximumSize: data.count - 1)
    }
    let twoMembers = try SupportFixtures.bytes("gzip/two-members.bin.gz")
    #expect(try Self.gunzip(twoMembers, maximumSize: 2000).count == 2000)
    #expect(throws: SupportError.decompressedSizeExceedsLimit(path: "two", limit: 1999)) {
      try Self.gunzip(twoMembers, path: "two", maximumSize: 1999)
    }
    #expect(try Self.gunzip(try SupportFixtures.bytes("gzip/empty.gz"), maximumSize: 0) == [])
  }

  /// 65 KB that inflate to 64 MiB stop at the limit, with a message naming the file and the limit — also when the
  /// trailer lies about the length (the limit is hit before the trailer is read).
  @Test func decompressionBombStopsAtTheLimit() throws {
    var bomb = try SupportFixtures.bytes("gzip/zeros-64MiB.gz")
    #expect(bomb.count < 100_000)
    for trailerLies in [false, true] {
      if trailerLies { bomb.replaceSubrange((bomb.count - 4)..., with: [16, 0, 0, 0]) }
      #expect {
        try Self.gunzip(bomb, path: "/data/bomb.gz")
      } throws: { error in
        guard case SupportError.decompressedSizeExceedsLimit("/data/bomb.gz", Self.limit) = error else { return false }
        let message = String(describing: error)
        return message.contains("/data/bomb.gz") && message.contains("1048576 bytes") && message.contains("1.0 MiB")
      }
    }
  }
}
