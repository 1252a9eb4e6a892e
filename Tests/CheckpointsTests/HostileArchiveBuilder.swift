// Small hostile inputs built in memory for the hardening tests (issue 14): zip archives (stored or deflated
// records, with sizes that may lie), raw DEFLATE streams that expand a lot, and pickle integers of any width.
// Nothing here is committed as a file; every input is a few kilobytes at most.
import Foundation
@testable import Checkpoints

enum HostileArchive {
  /// One record: its name, its bytes as they are stored (already deflated when `method` is 8), and what the
  /// directory says about it.
  struct Record {
    var name: String
    var stored: [UInt8]
    var method: UInt16 = 0
    /// The CRC-32 and size of the contents once inflated (for stored records: of `stored`).
    var crc32: UInt32
    var declaredSize: UInt32

    /// A stored record whose directory entry tells the truth.
    static func stored(_ name: String, _ bytes: [UInt8]) -> Record {
      Record(name: name, stored: bytes, crc32: crc32Of(bytes), declaredSize: UInt32(bytes.count))
    }

    /// A deflated record of `zeroCount` zero bytes whose directory entry declares `declaredSize` bytes.
    static func deflatedZeros(_ name: String, zeroCount: Int, declaredSize: UInt32) -> Record {
      Record(name: name, stored: deflateZeros(zeroCount), method: 8,
             crc32: crc32Of([UInt8](repeating: 0, count: zeroCount)), declaredSize: declaredSize)
    }
  }

  /// A zip archive (APPNOTE.TXT 4.3): local headers and data, the central directory, the end record.
  static func zip(_ records: [Record]) -> [UInt8] {
    var file: [UInt8] = [], directory: [UInt8] = []
    for record in records {
      let name = Array(record.name.utf8)
      let offset = file.count
      file += le32(0x0403_4b50) + le16(20) + le16(0) + le16(record.method) + le16(0) + le16(0) + le32(record.crc32)
        + le32(UInt32(record.stored.count)) + le32(record.declaredSize) + le16(UInt16(name.count)) + le16(0) + name
      file += record.stored
      directory += le32(0x0201_4b50) + le16(20) + le16(20) + le16(0) + le16(record.method) + le16(0) + le16(0)
        + le32(record.crc32) + le32(UInt32(record.stored.count)) + le32(record.declaredSize)
        + le16(UInt16(name.count)) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(UInt32(offset)) + name
    }
    let directoryOffset = file.count
    return file + directory + le32(0x0605_4b50) + le16(0) + le16(0) + le16(UInt16(records.count))
      + le16(UInt16(records.count)) + le32(UInt32(directory.count)) + le32(UInt32(directoryOffset)) + le16(0)
  }

  /// A torch.save-like archive: `archive/data.pkl` and the given storages as `archive/data/<key>`, all stored.
  static func torchArchive(pickle: [UInt8], storages: [(String, [UInt8])] = []) -> [UInt8] {
    zip([.stored("archive/data.pkl", pickle)] + storages.map { .stored("archive/data/" + $0.0, $0.1) })
  }

  static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }
  static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xff) } }

  /// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), bit by bit.
  static func crc32Of(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
    }
    return ~crc
  }

  /// A raw DEFLATE stream (RFC 1951) of `count` zero bytes: one fixed-Huffman block, a literal 0, then matches of
  /// length 258 at distance 1 (13 bits each, about 160:1), literal zeros for the rest, end of block.
  static func deflateZeros(_ count: Int) -> [UInt8] {
    var writer = BitWriter()
    writer.write(1, bits: 1)  // BFINAL
    writer.write(1, bits: 2)  // BTYPE 01: fixed Huffman codes
    var remaining = count
    func literalZero() { writer.writeHuffman(0b0011_0000, bits: 8); remaining -= 1 }  // literal 0: 00110000
    if remaining > 0 { literalZero() }
    while remaining >= 258 {
      writer.writeHuffman(0b1100_0101, bits: 8)  // length code 285 (258): 11000000 + 5
      writer.writeHuffman(0, bits: 5)  // distance code 0 (distance 1)
      remaining -= 258
    }
    while remaining > 0 { literalZero() }
    writer.writeHuffman(0, bits: 7)  // end of block, code 256: 0000000
    return writer.bytes
  }

  /// Packs bits LSB-first into bytes; Huffman codes go most-significant bit first (RFC 1951, 3.1.1).
  struct BitWriter {
    var bytes: [UInt8] = []
    var bitCount = 0

    mutating func write(_ value: UInt32, bits: Int) {
      for i in 0..<bits { append(bit: (value >> UInt32(i)) & 1) }
    }

    mutating func writeHuffman(_ code: UInt32, bits: Int) {
      for i in stride(from: bits - 1, through: 0, by: -1) { append(bit: (code >> UInt32(i)) & 1) }
    }

    private mutating func append(bit: UInt32) {
      if bitCount % 8 == 0 { bytes.append(0) }
      bytes[bytes.count - 1] |= UInt8(bit) << UInt8(bitCount % 8)
      bitCount += 1
    }
  }
}

/// LONG1 of any Int (8 bytes, little-endian two's complement).
func pickleLong(_ value: Int) -> [UInt8] {
  [0x8a, 8] + (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}

/// `_rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', count), offset, shape, strides, False,
/// OrderedDict())` under the key 'w' of a dict, with integers of any size.
func hostileTensorPickle(count: Int, offset: Int = 0, shape: [Int], strides: [Int]) -> [UInt8] {
  func tuple(_ values: [Int]) -> [UInt8] { [0x28] + values.flatMap(pickleLong) + [0x74] }
  return pickleProgram(
    [0x7d] + pickleString("w") + pickleGlobal("torch._utils", "_rebuild_tensor_v2") + [0x28, 0x28]
      + pickleString("storage") + pickleGlobal("torch", "FloatStorage") + pickleString("0") + pickleString("cpu")
      + pickleLong(count) + [0x74, 0x51] + pickleLong(offset) + tuple(shape) + tuple(strides) + [0x89]
      + pickleGlobal("collections", "OrderedDict") + [0x29, 0x52, 0x74, 0x52, 0x73])
}
