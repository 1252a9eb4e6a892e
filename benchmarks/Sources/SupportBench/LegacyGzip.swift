// The hand-written gzip (RFC 1952) / DEFLATE (RFC 1951) decoder that Sources/Datasets/Readers/Gzip.swift held until
// inflate moved to zlib, kept here only so SupportBench can time old against new. Not used by the package.
// Written in Swift because the package has no zlib shim; decoding follows the RFC with table-driven Huffman codes
// (a 2^10-entry lookup for short codes, canonical bit-by-bit decoding for longer ones, as zlib's puff.c does).

/// gzip decompression.
enum LegacyGzip {
  /// Whether `bytes` starts with the gzip magic number 1F 8B.
  static func isCompressed(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
  }

  /// Decompresses every member of a gzip file and checks each member's CRC-32 and length.
  /// `path` only names the file in errors.
  static func decompress(_ bytes: [UInt8], path: String) throws(LegacyGzipError) -> [UInt8] {
    do {
      return try bytes.withUnsafeBufferPointer { input throws(InflateFailure) in
        // The last member's ISIZE (length mod 2^32) is a good first guess of the output size.
        var sizeHint = input.count * 4
        if input.count >= 18 {
          let tail = input.count - 4
          let isize = Int(input[tail]) | Int(input[tail + 1]) << 8 | Int(input[tail + 2]) << 16
            | Int(input[tail + 3]) << 24
          sizeHint = max(sizeHint, min(isize, input.count * 1032))
        }
        let output = OutputBuffer(capacity: sizeHint)
        var position = 0
        repeat {
          let memberStart = output.count
          position = try skipHeader(input, at: position)
          var reader = BitReader(bytes: input, position: position)
          try inflateStream(&reader, into: output)
          position = reader.bytePositionAfterAlignment()
          guard position + 8 <= input.count else { throw InflateFailure("the gzip trailer (CRC-32, length) is missing") }
          let storedCRC = readLittleEndian32(input, at: position)
          let storedLength = readLittleEndian32(input, at: position + 4)
          position += 8
          let crc = CRC32.checksum(output.pointer + memberStart, count: output.count - memberStart)
          guard crc == storedCRC else {
            throw InflateFailure("CRC-32 mismatch (stored \(hex(storedCRC)), computed \(hex(crc)))")
          }
          guard UInt32(truncatingIfNeeded: output.count - memberStart) == storedLength else {
            throw InflateFailure("length mismatch (stored \(storedLength), decoded \(output.count - memberStart))")
          }
          // Zero padding after the last member is allowed (as Python's gzip module allows it).
          while position < input.count && input[position] == 0 { position += 1 }
        } while position < input.count
        return output.array()
      }
    } catch {
      throw LegacyGzipError(path: path, reason: error.reason)
    }
  }

  /// Decompresses a raw DEFLATE stream (no gzip or zlib wrapper). `path` only names the source in errors.
  static func inflate(_ bytes: [UInt8], path: String) throws(LegacyGzipError) -> [UInt8] {
    do {
      return try bytes.withUnsafeBufferPointer { input throws(InflateFailure) in
        let output = OutputBuffer(capacity: max(1024, input.count * 4))
        var reader = BitReader(bytes: input, position: 0)
        try inflateStream(&reader, into: output)
        return output.array()
      }
    } catch {
      throw LegacyGzipError(path: path, reason: error.reason)
    }
  }

  /// Returns the position just after the member header at `position` (RFC 1952 §2.3).
  private static func skipHeader(_ input: UnsafeBufferPointer<UInt8>, at start: Int) throws(InflateFailure) -> Int {
    guard start + 10 <= input.count else { throw InflateFailure("the gzip header is truncated") }
    guard input[start] == 0x1F && input[start + 1] == 0x8B else {
      throw InflateFailure("not a gzip member (magic \(hex(UInt32(input[start]) << 8 | UInt32(input[start + 1]))))")
    }
    guard input[start + 2] == 8 else { throw InflateFailure("compression method \(input[start + 2]) is not DEFLATE") }
    let flags = input[start + 3]
    guard flags & 0xE0 == 0 else { throw InflateFailure("reserved header flags are set") }
    var position = start + 10
    if flags & 0x04 != 0 {  // FEXTRA
      guard position + 2 <= input.count else { throw InflateFailure("the gzip extra field is truncated") }
      position += 2 + (Int(input[position]) | Int(input[position + 1]) << 8)
    }
    for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
      while position < input.count && input[position] != 0 { position += 1 }
      position += 1
    }
    if flags & 0x02 != 0 { position += 2 }  // FHCRC
    guard position <= input.count else { throw InflateFailure("the gzip header is truncated") }
    return position
  }

  private static func readLittleEndian32(_ input: UnsafeBufferPointer<UInt8>, at position: Int) -> UInt32 {
    UInt32(input[position]) | UInt32(input[position + 1]) << 8 | UInt32(input[position + 2]) << 16
      | UInt32(input[position + 3]) << 24
  }

  private static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
}

/// Why a compressed stream could not be decoded.
struct InflateFailure: Error {
  var reason: String
  init(_ reason: String) { self.reason = reason }
}

// MARK: - CRC-32 (ISO-HDLC, the polynomial gzip and PNG use)

enum CRC32 {
  static let table: [UInt32] = (0..<256).map { n in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
  }

  static func checksum(_ bytes: UnsafePointer<UInt8>, count: Int) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    table.withUnsafeBufferPointer { table in
      for i in 0..<count { crc = table[Int((crc ^ UInt32(bytes[i])) & 0xFF)] ^ (crc >> 8) }
    }
    return crc ^ 0xFFFF_FFFF
  }
}

// MARK: - DEFLATE

/// A growable byte buffer with a stable pointer while it is not grown; back-references copy within it.
final class OutputBuffer {
  private(set) var pointer: UnsafeMutablePointer<UInt8>
  private(set) var capacity: Int
  var count = 0

  init(capacity: Int) {
    self.capacity = max(capacity, 64)
    pointer = .allocate(capacity: self.capacity)
  }

  deinit { pointer.deallocate() }

  /// Makes room for `extra` more bytes.
  @inline(__always) func reserve(_ extra: Int) {
    if count + extra > capacity { grow(to: count + extra) }
  }

  private func grow(to needed: Int) {
    var newCapacity = capacity * 2
    while newCapacity < needed { newCapacity *= 2 }
    let newPointer = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
    newPointer.update(from: pointer, count: count)
    pointer.deallocate()
    pointer = newPointer
    capacity = newCapacity
  }

  func array() -> [UInt8] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Reads bits least-significant first (RFC 1951 §3.1.1).
struct BitReader {
  let bytes: UnsafeBufferPointer<UInt8>
  var position: Int         // next byte to load into `buffer`
  var buffer: UInt64 = 0    // `count` valid bits, the next one in bit 0; bits above are zero
  var count = 0

  init(bytes: UnsafeBufferPointer<UInt8>, position: Int) {
    self.bytes = bytes
    self.position = position
  }

  @inline(__always) mutating func refill() {
    while count <= 56 && position < bytes.count {
      buffer |= UInt64(bytes[position]) << UInt64(count)
      position += 1
      count += 8
    }
  }

  /// Reads an `n`-bit number, n ≤ 32.
  @inline(__always) mutating func bits(_ n: Int) throws(InflateFailure) -> Int {
    if count < n {
      refill()
      guard count >= n else { throw InflateFailure("the compressed stream ends early") }
    }
    let value = Int(buffer & ((1 << UInt64(n)) - 1))
    consume(n)
    return value
  }

  @inline(__always) mutating func consume(_ n: Int) {
    buffer >>= UInt64(n)
    count -= n
  }

  /// Drops the bits up to the next byte boundary.
  mutating func alignToByte() { consume(count % 8) }

  /// The input position of the first byte not consumed, after dropping bits up to a byte boundary.
  mutating func bytePositionAfterAlignment() -> Int {
    alignToByte()
    return position - count / 8
  }
}

/// A canonical Huffman code (RFC 1951 §3.2.2).
struct HuffmanCode: Sendable {
  static let fastBits = 10
  /// Indexed by the next `fastBits` input bits: `symbol << 4 | length`, or -1 for longer (or unused) codes.
  private var fast: [Int32]
  private var counts: [Int]   // codes of each length 0...15
  private var symbols: [Int]  // symbols ordered by code

  /// Builds the code from each symbol's code length (0 = unused). Throws on an over-subscribed set of lengths;
  /// an incomplete set is allowed (RFC 1951 permits one distance code) and fails only if an unused code appears.
  init(lengths: [Int]) throws(InflateFailure) {
    counts = [Int](repeating: 0, count: 16)
    for length in lengths { counts[length] += 1 }
    counts[0] = 0
    var left = 1
    for length in 1...15 {
      left = left << 1 - counts[length]
      guard left >= 0 else { throw InflateFailure("an over-subscribed Huffman code") }
    }
    var offsets = [Int](repeating: 0, count: 16)
    for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
    symbols = [Int](repeating: 0, count: lengths.count)
    for (symbol, length) in lengths.enumerated() where length > 0 {
      symbols[offsets[length]] = symbol
      offsets[length] += 1
    }
    fast = [Int32](repeating: -1, count: 1 << Self.fastBits)
    var nextCode = [Int](repeating: 0, count: 16)
    var code = 0
    for length in 1...15 {
      code = (code + counts[length - 1]) << 1
      nextCode[length] = code
    }
    for (symbol, length) in lengths.enumerated() where length > 0 && length <= Self.fastBits {
      let code = nextCode[length]
      nextCode[length] += 1
      var reversed = 0
      for bit in 0..<length where code & (1 << bit) != 0 { reversed |= 1 << (length - 1 - bit) }
      for index in stride(from: reversed, to: 1 << Self.fastBits, by: 1 << length) {
        fast[index] = Int32(symbol << 4 | length)
      }
    }
  }

  /// Decodes one symbol.
  @inline(__always) func decode(_ reader: inout BitReader) throws(InflateFailure) -> Int {
    if reader.count < 15 { reader.refill() }
    let entry = fast[Int(reader.buffer & ((1 << UInt64(Self.fastBits)) - 1))]
    if entry >= 0 {
      let length = Int(entry & 15)
      guard length <= reader.count else { throw InflateFailure("the compressed stream ends early") }
      reader.consume(length)
      return Int(entry >> 4)
    }
    // Codes longer than fastBits: walk the canonical code one bit at a time (puff.c `decode`).
    var bits = reader.buffer
    var code = 0, first = 0, index = 0
    for length in 1...15 {
      code |= Int(bits & 1)
      bits >>= 1
      let count = counts[length]
      if code - count < first {
        guard length <= reader.count else { throw InflateFailure("the compressed stream ends early") }
        reader.consume(length)
        return symbols[index + code - first]
      }
      index += count
      first = (first + count) << 1
      code <<= 1
    }
    throw InflateFailure("an invalid Huffman code")
  }

  /// The fixed codes of block type 1 (RFC 1951 §3.2.6).
  static let fixedLiteralLength = try! HuffmanCode(
    lengths: [Int](repeating: 8, count: 144) + [Int](repeating: 9, count: 112)
      + [Int](repeating: 7, count: 24) + [Int](repeating: 8, count: 8))
  static let fixedDistance = try! HuffmanCode(lengths: [Int](repeating: 5, count: 30))
}

private let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                          131, 163, 195, 227, 258]
private let lengthExtraBits = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
private let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                            2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
private let distanceExtraBits = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
                                 12, 13, 13]
/// The order in which code-length code lengths are stored (RFC 1951 §3.2.7).
private let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

/// Decodes DEFLATE blocks until the final one, appending to `output`.
func inflateStream(_ reader: inout BitReader, into output: OutputBuffer) throws(InflateFailure) {
  var isFinal = false
  while !isFinal {
    isFinal = try reader.bits(1) == 1
    switch try reader.bits(2) {
    case 0:
      try copyStoredBlock(&reader, into: output)
    case 1:
      try inflateBlock(&reader, literalLength: HuffmanCode.fixedLiteralLength,
                       distance: HuffmanCode.fixedDistance, into: output)
    case 2:
      let (literalLength, distance) = try readDynamicCodes(&reader)
      try inflateBlock(&reader, literalLength: literalLength, distance: distance, into: output)
    default:
      throw InflateFailure("a block of the reserved type 3")
    }
  }
}

/// Block type 0: LEN, NLEN, then LEN raw bytes (RFC 1951 §3.2.4).
private func copyStoredBlock(_ reader: inout BitReader, into output: OutputBuffer) throws(InflateFailure) {
  reader.alignToByte()
  let length = try reader.bits(16)
  let complement = try reader.bits(16)
  guard length == ~complement & 0xFFFF else { throw InflateFailure("a stored block's LEN and NLEN disagree") }
  output.reserve(length)
  for _ in 0..<length {
    output.pointer[output.count] = UInt8(try reader.bits(8))
    output.count += 1
  }
}

/// Reads the code-length code, then the literal/length and distance code lengths (RFC 1951 §3.2.7).
private func readDynamicCodes(_ reader: inout BitReader) throws(InflateFailure) -> (HuffmanCode, HuffmanCode) {
  let literalCount = try reader.bits(5) + 257
  let distanceCount = try reader.bits(5) + 1
  let codeLengthCount = try reader.bits(4) + 4
  guard literalCount <= 286 && distanceCount <= 30 else { throw InflateFailure("too many length or distance codes") }
  var codeLengthLengths = [Int](repeating: 0, count: 19)
  for i in 0..<codeLengthCount { codeLengthLengths[codeLengthOrder[i]] = try reader.bits(3) }
  let codeLengthCode = try HuffmanCode(lengths: codeLengthLengths)

  var lengths = [Int]()
  lengths.reserveCapacity(literalCount + distanceCount)
  while lengths.count < literalCount + distanceCount {
    let symbol = try codeLengthCode.decode(&reader)
    let (value, repeats): (Int, Int)
    switch symbol {
    case 0...15: (value, repeats) = (symbol, 1)
    case 16:
      guard let previous = lengths.last else { throw InflateFailure("a repeat code with no previous length") }
      (value, repeats) = (previous, 3 + (try reader.bits(2)))
    case 17: (value, repeats) = (0, 3 + (try reader.bits(3)))
    default: (value, repeats) = (0, 11 + (try reader.bits(7)))
    }
    guard lengths.count + repeats <= literalCount + distanceCount else {
      throw InflateFailure("code lengths run past the declared count")
    }
    lengths.append(contentsOf: repeatElement(value, count: repeats))
  }
  guard lengths[256] > 0 else { throw InflateFailure("no end-of-block code") }
  return (try HuffmanCode(lengths: Array(lengths[..<literalCount])),
          try HuffmanCode(lengths: Array(lengths[literalCount...])))
}

/// Decodes literals and (length, distance) back-references until the end-of-block symbol 256.
private func inflateBlock(_ reader: inout BitReader, literalLength: HuffmanCode, distance: HuffmanCode,
                          into output: OutputBuffer) throws(InflateFailure) {
  while true {
    let symbol = try literalLength.decode(&reader)
    if symbol < 256 {
      output.reserve(1)
      output.pointer[output.count] = UInt8(symbol)
      output.count += 1
      continue
    }
    if symbol == 256 { return }
    let lengthIndex = symbol - 257
    guard lengthIndex < 29 else { throw InflateFailure("an invalid length symbol \(symbol)") }
    let length = lengthBase[lengthIndex] + (try reader.bits(lengthExtraBits[lengthIndex]))
    let distanceSymbol = try distance.decode(&reader)
    guard distanceSymbol < 30 else { throw InflateFailure("an invalid distance symbol \(distanceSymbol)") }
    let offset = distanceBase[distanceSymbol] + (try reader.bits(distanceExtraBits[distanceSymbol]))
    guard offset <= output.count else {
      throw InflateFailure("a back-reference \(offset) bytes back, before the start of the output")
    }
    output.reserve(length)
    // Byte by byte: the source may overlap the bytes being written (a run).
    let destination = output.pointer + output.count
    let source = destination - offset
    for i in 0..<length { destination[i] = source[i] }
    output.count += length
  }
}

struct LegacyGzipError: Error, CustomStringConvertible {
  var path: String
  var reason: String
  var description: String { "\(path) holds corrupt compressed data: \(reason)" }
}
