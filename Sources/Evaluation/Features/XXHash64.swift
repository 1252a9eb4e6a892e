// XXH64 (Yann Collet's xxHash, 64-bit variant, as specified in xxHash's doc/xxhash_spec.md): the checksum of the
// feature-cache files. Non-cryptographic, but it catches flipped bits and truncation at several GB/s, where our
// byte-wise SHA-256 manages well under 1 GB/s (measured in FeatureCacheTests / the report).

/// An incremental XXH64 hash: `update` any number of times, then read `digest`.
public struct XXHash64: Sendable {
  static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
  static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
  static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
  static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
  static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

  private let seed: UInt64
  private var v1: UInt64, v2: UInt64, v3: UInt64, v4: UInt64
  private var totalLength: UInt64 = 0
  /// Bytes of an incomplete 32-byte stripe carried to the next `update`.
  private var pending: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
  private var pendingCount = 0

  public init(seed: UInt64 = 0) {
    self.seed = seed
    v1 = seed &+ Self.prime1 &+ Self.prime2
    v2 = seed &+ Self.prime2
    v3 = seed
    v4 = seed &- Self.prime1
  }

  /// Hashes `bytes` in one call.
  public static func digest(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
    var hash = XXHash64(seed: seed)
    hash.update(bytes)
    return hash.digest
  }

  /// Hashes an array of bytes in one call.
  public static func digest(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
    bytes.withUnsafeBytes { digest($0, seed: seed) }
  }

  @inline(__always)
  private static func round(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
    rotateLeft(accumulator &+ lane &* prime2, 31) &* prime1
  }

  @inline(__always)
  private static func rotateLeft(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

  /// Appends `bytes` to the message.
  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    guard var base = bytes.baseAddress, !bytes.isEmpty else { return }
    var remaining = bytes.count
    totalLength &+= UInt64(remaining)
    if pendingCount > 0 {
      // Complete the carried stripe first.
      let take = min(32 - pendingCount, remaining)
      withUnsafeMutableBytes(of: &pending) { stripe in
        stripe.baseAddress!.advanced(by: pendingCount).copyMemory(from: base, byteCount: take)
      }
      pendingCount += take
      base += take
      remaining -= take
      if pendingCount < 32 { return }
      withUnsafeBytes(of: pending) { consumeStripes($0.baseAddress!, count: 1) }
      pendingCount = 0
    }
    let stripes = remaining / 32
    if stripes > 0 { consumeStripes(base, count: stripes) }
    base += stripes * 32
    remaining -= stripes * 32
    if remaining > 0 {
      withUnsafeMutableBytes(of: &pending) { $0.baseAddress!.copyMemory(from: base, byteCount: remaining) }
      pendingCount = remaining
    }
  }

  @inline(__always)
  private mutating func consumeStripes(_ base: UnsafeRawPointer, count: Int) {
    var (a, b, c, d) = (v1, v2, v3, v4)
    var p = base
    for _ in 0..<count {
      a = Self.round(a, UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
      b = Self.round(b, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
      c = Self.round(c, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
      d = Self.round(d, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
      p += 32
    }
    (v1, v2, v3, v4) = (a, b, c, d)
  }

  /// The hash of everything appended so far (the state is not consumed).
  public var digest: UInt64 {
    var accumulator: UInt64
    if totalLength >= 32 {
      accumulator = Self.rotateLeft(v1, 1) &+ Self.rotateLeft(v2, 7) &+ Self.rotateLeft(v3, 12)
        &+ Self.rotateLeft(v4, 18)
      for lane in [v1, v2, v3, v4] {
        accumulator ^= Self.round(0, lane)
        accumulator = accumulator &* Self.prime1 &+ Self.prime4
      }
    } else {
      accumulator = seed &+ Self.prime5
    }
    accumulator &+= totalLength
    var tail = pending
    let count = pendingCount
    withUnsafeBytes(of: &tail) { raw in
      var offset = 0
      while offset + 8 <= count {
        let lane = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        accumulator ^= Self.round(0, lane)
        accumulator = Self.rotateLeft(accumulator, 27) &* Self.prime1 &+ Self.prime4
        offset += 8
      }
      if offset + 4 <= count {
        let lane = UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        accumulator ^= lane &* Self.prime1
        accumulator = Self.rotateLeft(accumulator, 23) &* Self.prime2 &+ Self.prime3
        offset += 4
      }
      while offset < count {
        accumulator ^= UInt64(raw[offset]) &* Self.prime5
        accumulator = Self.rotateLeft(accumulator, 11) &* Self.prime1
        offset += 1
      }
    }
    accumulator ^= accumulator >> 33
    accumulator = accumulator &* Self.prime2
    accumulator ^= accumulator >> 29
    accumulator = accumulator &* Self.prime3
    accumulator ^= accumulator >> 32
    return accumulator
  }
}
