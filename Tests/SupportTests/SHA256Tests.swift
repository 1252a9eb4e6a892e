import Support
import Foundation
import Testing
@testable import Support

@Suite struct SHA256Tests {
  /// FIPS 180-4 example vectors (NIST CSRC "SHA256.pdf") and the long-message vector of FIPS 180-2 appendix B.3.
  @Test(arguments: [
    ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
  ])
  func standardVectors(message: String, digest: String) {
    #expect(SHA256.hexDigest(of: Array(message.utf8)) == digest)
  }

  @Test func oneMillionAs() {
    #expect(SHA256.hexDigest(of: [UInt8](repeating: 0x61, count: 1_000_000))
              == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  /// Lengths around the padding boundary (55/56 bytes leave no room for the length; 64 fills a block);
  /// expected values from Python's hashlib.sha256(b"a" * n).
  @Test(arguments: [
    (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
    (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
    (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
    (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
    (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
    (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
  ])
  func paddingBoundaries(length: Int, digest: String) {
    #expect(SHA256.hexDigest(of: [UInt8](repeating: 0x61, count: length)) == digest)
  }

  @Test func incrementalUpdatesMatchOneShot() throws {
    let data = try SupportFixtures.bytes("gzip/data.bin")
    var hash = SHA256()
    var start = 0
    for chunk in [1, 63, 64, 65, 1000, 7] {
      hash.update(data[start..<(start + chunk)])
      start += chunk
    }
    hash.update(data[start...])
    let hex = hash.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    // hashlib.sha256(open("gzip/data.bin", "rb").read()).hexdigest()
    #expect(hex == "49fb9b053d96b7972b937d912aa62cb777a63e083781bada153a8f850b7ebda5")
    #expect(SHA256.hexDigest(of: data) == hex)
    #expect(SHA256.hexDigest(of: Data(data)) == hex)
    #expect(data.withUnsafeBytes { SHA256.hexDigest(of: $0) } == hex)
    // Not contiguous: gathered into 64 KiB blocks before libcrypto sees them.
    #expect(SHA256.hexDigest(of: data.lazy.map { $0 }) == hex)
    var text = SHA256()
    text.update(String(decoding: data[..<5000].filter { $0 < 0x80 }, as: UTF8.self))
    #expect(SHA256.hex(text.finalize()) == SHA256.hexDigest(of: data[..<5000].filter { $0 < 0x80 }))
  }

  /// A non-contiguous sequence longer than one 64 KiB block, against hashlib:
  /// hashlib.sha256(bytes(i % 251 for i in range(200_000))).hexdigest().
  @Test func longNonContiguousSequence() {
    let bytes = (0..<200_000).lazy.map { UInt8($0 % 251) }
    #expect(SHA256.hexDigest(of: bytes) == SHA256.hexDigest(of: Array(bytes)))
    #expect(SHA256.hexDigest(of: bytes) == "e24bc62381f1224fbbb74688663f8f9743b9680b193edd666835e97b06e730eb")
  }

  /// Copies are independent (the OpenSSL context is copied on write), as with the pure-Swift value type it replaced.
  @Test func copiesAreIndependent() {
    var first = SHA256()
    first.update(Array("abc".utf8))
    var second = first
    second.update(Array("def".utf8))
    let third = second
    #expect(SHA256.hex(first.finalize()) == SHA256.hexDigest(of: Array("abc".utf8)))
    #expect(SHA256.hex(second.finalize()) == SHA256.hexDigest(of: Array("abcdef".utf8)))
    var resumed = third
    resumed.update(Array("g".utf8))
    #expect(SHA256.hex(resumed.finalize()) == SHA256.hexDigest(of: Array("abcdefg".utf8)))
  }
}
