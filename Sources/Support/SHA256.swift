// SHA-256 (FIPS 180-4) through OpenSSL's libcrypto (EVP_DigestInit_ex / Update / Final_ex with EVP_sha256).
//
// Why OpenSSL and not our own: every checkpoint, every IDX file, every `--features` .npy and the dataset
// fingerprints are hashed, some of them hundreds of MB. The pure-Swift implementation this replaces ran at 49 MB/s
// (28 MB/s through FileHandle); libcrypto uses the CPU's SHA extensions or its hand-tuned assembly and runs at
// hundreds of MB/s to GB/s (benchmarks/README.md, "SupportBench"). libcrypto 3.0 is on every Debian machine; the
// headers come with libssl-dev (`make setup`). swift-crypto would do as well but builds BoringSSL from source.
import COpenSSL
import Foundation

/// An incremental SHA-256 hash: `update` any number of times, then `finalize()` once.
///
/// A value type like the implementation it replaces: copying a `SHA256` and updating the copy leaves the original
/// alone (the OpenSSL context is copied on write).
public struct SHA256: Sendable {
  private var context: DigestContext
  private var isFinalized = false

  public init() { context = DigestContext() }

  /// The libcrypto in use, e.g. "OpenSSL 3.0.19 27 Jan 2026".
  public static var openSSLVersion: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }

  /// Hashes `bytes` in one call and returns the lowercase hex digest.
  public static func hexDigest<Bytes: Sequence>(of bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var hash = SHA256()
    hash.update(bytes)
    return hex(hash.finalize())
  }

  /// Hashes `data` in one call and returns the lowercase hex digest.
  public static func hexDigest(of data: Data) -> String {
    var hash = SHA256()
    hash.update(data)
    return hex(hash.finalize())
  }

  /// Hashes the bytes at `buffer` in one call and returns the lowercase hex digest.
  public static func hexDigest(of buffer: UnsafeRawBufferPointer) -> String {
    var hash = SHA256()
    hash.update(buffer)
    return hex(hash.finalize())
  }

  /// Appends the bytes at `buffer` to the message: one call into libcrypto, whatever the length.
  public mutating func update(_ buffer: UnsafeRawBufferPointer) {
    precondition(!isFinalized, "SHA256.update after finalize(): start a new SHA256.")
    guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
    if !isKnownUniquelyReferenced(&context) { context = DigestContext(copying: context) }
    let status = EVP_DigestUpdate(context.pointer, base, buffer.count)
    precondition(status == 1, "OpenSSL's EVP_DigestUpdate failed for SHA-256.")
  }

  /// Appends `data` to the message in one call into libcrypto.
  public mutating func update(_ data: Data) {
    data.withUnsafeBytes { update($0) }
  }

  /// Appends `bytes` to the message. Arrays, array slices, `Data` slices and other contiguous collections go to
  /// libcrypto in one call; other sequences are gathered into 64 KiB blocks first.
  public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
    let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
    guard done == nil else { return }
    var block: [UInt8] = []
    block.reserveCapacity(1 << 16)
    for byte in bytes {
      block.append(byte)
      if block.count == 1 << 16 {
        block.withUnsafeBytes { update($0) }
        block.removeAll(keepingCapacity: true)
      }
    }
    block.withUnsafeBytes { update($0) }
  }

  /// Appends the UTF-8 bytes of `text`.
  public mutating func update(_ text: String) {
    var text = text
    text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
  }

  /// Appends everything `handle` still has to read, in 4 MiB chunks (files reach hundreds of MB).
  public mutating func update(reading handle: FileHandle) throws {
    while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { update(chunk) }
  }

  /// Pads the message and returns the 32-byte digest. Call once; `update` after it is a programming error.
  public mutating func finalize() -> [UInt8] {
    precondition(!isFinalized, "SHA256.finalize() called twice: start a new SHA256.")
    isFinalized = true
    if !isKnownUniquelyReferenced(&context) { context = DigestContext(copying: context) }
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    let status = digest.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context.pointer, $0.baseAddress, &length) }
    precondition(status == 1 && length == 32, "OpenSSL's EVP_DigestFinal_ex failed for SHA-256 (\(length) bytes).")
    return Array(digest[..<32])
  }

  /// Lowercase hex of `bytes`.
  static func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(2 * bytes.count)
    for byte in bytes {
      text.append(digits[Int(byte >> 4)])
      text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
  }
}

/// Owns one `EVP_MD_CTX` set up for SHA-256.
private final class DigestContext: @unchecked Sendable {
  // @unchecked: an OpaquePointer is never Sendable, so the compiler cannot check this. SHA256 changes the context only
  // when it holds the sole reference (copy on write above), and OpenSSL contexts are safe to read (copy) from
  // several threads at once; no context is ever changed while another value shares it.
  let pointer: OpaquePointer

  init() {
    guard let pointer = EVP_MD_CTX_new() else { preconditionFailure("OpenSSL's EVP_MD_CTX_new failed (no memory).") }
    self.pointer = pointer
    // Called outside the precondition: an -Ounchecked build would not evaluate it.
    let status = EVP_DigestInit_ex(pointer, EVP_sha256(), nil)
    precondition(status == 1, "OpenSSL's EVP_DigestInit_ex failed for SHA-256.")
  }

  init(copying other: DigestContext) {
    guard let pointer = EVP_MD_CTX_new() else { preconditionFailure("OpenSSL's EVP_MD_CTX_new failed (no memory).") }
    self.pointer = pointer
    let status = EVP_MD_CTX_copy_ex(pointer, other.pointer)
    precondition(status == 1, "OpenSSL's EVP_MD_CTX_copy_ex failed.")
  }

  deinit { EVP_MD_CTX_free(pointer) }
}
