// The read side of torch.save's zip container, bounded for untrusted files (issue 14, item 3).
//
// torch writes zip files through miniz (caffe2/serialize/inline_container.cc, PyTorchStreamWriter): records stored
// uncompressed, padded to 64-byte alignment, zip64 fields for large archives. A file re-zipped by another tool may
// hold deflated records. This reader takes the central directory (APPNOTE.TXT 4.3.12, 4.3.14–16, zip64 extra 4.5.3)
// at its word only where the bytes are present: every record's data must lie inside the file, a deflated record is
// inflated by `Gzip.inflate` into at most the size its directory entry declares (never more: a zip bomb stops after
// that many bytes), and a stored record is a slice of the file's bytes, not a copy. (ZIPFoundation's `extract` spins
// forever on a deflate stream cut by the end of the file and inflates past the declared size, so it is used only to
// write archives.)
import Foundation
import Support
import ZIPFoundation

/// One file record of a zip archive's central directory.
struct ZipRecord: Sendable {
  var name: String
  /// 0 stored, 8 deflated (the only two a reader of torch files needs).
  var method: UInt16
  var crc32: UInt32
  /// In bytes, checked to lie inside the file.
  var compressedSize: Int
  /// As the directory declares it, in bytes.
  var uncompressedSize: UInt64
  var localHeaderOffset: Int
  var isEncrypted: Bool

  var isDirectory: Bool { name.hasSuffix("/") }
}

/// A zip archive's directory over the file's bytes.
struct TorchZipArchive {
  let data: Data
  /// Names the file in errors.
  let path: String
  /// In directory order.
  let records: [ZipRecord]

  init(data: Data, path: String) throws {
    self.data = data
    self.path = path
    self.records = try Self.readDirectory(ZipBytes(data: data), path: path)
  }

  /// The bytes of `record`, at most `maximumByteCount` of them (the caller's bound: a storage's declared size,
  /// or the data.pkl limit). Checks the size the directory declares, then the CRC-32.
  func contents(of record: ZipRecord, maximumByteCount: Int) throws -> Data {
    func corrupt(_ reason: String) -> PyTorchCheckpointError {
      .corruptArchive(path: path, reason: "record '\(record.name)' \(reason)")
    }
    guard !record.isEncrypted else { throw corrupt("is encrypted") }
    let declared = record.uncompressedSize
    guard declared <= UInt64(maximumByteCount) else {
      throw corrupt("declares \(declared) bytes, more than the \(maximumByteCount) it may hold")
    }
    let bytes = ZipBytes(data: data)
    // Local file header (APPNOTE 4.3.7): the name and extra field lengths at 26 and 28 locate the data.
    let header = record.localHeaderOffset
    guard bytes.uint32(at: header) == 0x0403_4b50, let nameLength = bytes.uint16(at: header + 26),
          let extraLength = bytes.uint16(at: header + 28)
    else { throw corrupt("has no local file header at byte \(header)") }
    let start = header + 30 + Int(nameLength) + Int(extraLength)
    guard start <= data.count, record.compressedSize <= data.count - start else {
      throw corrupt("runs past the end of the file (the file is probably truncated)")
    }
    let compressed = data[(data.startIndex + start)..<(data.startIndex + start + record.compressedSize)]
    let contents: Data
    switch record.method {
    case 0:
      guard UInt64(compressed.count) == declared else {
        throw corrupt("is stored with \(compressed.count) bytes, but its directory entry declares \(declared)")
      }
      contents = compressed
    case 8:
      do {
        contents = Data(try Gzip.inflate([UInt8](compressed), path: path, maximumSize: Int(declared)))
      } catch .decompressedSizeExceedsLimit {
        throw corrupt("inflates to more than the \(declared) bytes its directory entry declares; inflating "
                        + "stopped there")
      } catch {
        throw corrupt("does not inflate (\(error.reason))")
      }
      guard UInt64(contents.count) == declared else {
        throw corrupt("has \(contents.count) of its \(declared) bytes")
      }
    default:
      throw corrupt("uses compression method \(record.method); torch files are stored or deflated (0 or 8)")
    }
    let checksum = contents.crc32(checksum: 0)
    guard checksum == record.crc32 else {
      throw corrupt("fails its CRC-32 check (stored \(record.crc32), computed \(checksum))")
    }
    return contents
  }

  // MARK: - Central directory

  private static func readDirectory(_ bytes: ZipBytes, path: String) throws -> [ZipRecord] {
    func corrupt(_ reason: String) -> PyTorchCheckpointError {
      .corruptArchive(path: path, reason: "\(reason); the file is probably truncated")
    }
    // End of central directory (4.3.16): 22 bytes plus a comment of up to 65,535, at the end of the file.
    let count = bytes.count
    var end: Int?
    var candidate = count - 22
    while candidate >= max(0, count - 22 - 65_535) {
      if bytes.uint32(at: candidate) == 0x0605_4b50 {
        end = candidate
        break
      }
      candidate -= 1
    }
    guard let end, var entryCount = bytes.uint16(at: end + 10).map(Int.init),
          var directorySize = bytes.uint32(at: end + 12).map(Int.init),
          var directoryOffset = bytes.uint32(at: end + 16).map(Int.init)
    else { throw corrupt("its end-of-central-directory record is missing") }
    // Zip64 (4.3.14–15): a locator just before the record points at the 64-bit one.
    if end >= 20, bytes.uint32(at: end - 20) == 0x0706_4b50 {
      guard let zip64End = bytes.uint64(at: end - 12).flatMap(Int.init(exactly:)),
            bytes.uint32(at: zip64End) == 0x0606_4b50,
            let entries = bytes.uint64(at: zip64End + 32).flatMap(Int.init(exactly:)),
            let size = bytes.uint64(at: zip64End + 40).flatMap(Int.init(exactly:)),
            let offset = bytes.uint64(at: zip64End + 48).flatMap(Int.init(exactly:))
      else { throw corrupt("its zip64 end-of-central-directory record is missing or damaged") }
      (entryCount, directorySize, directoryOffset) = (entries, size, offset)
    }
    guard directoryOffset <= count, directorySize <= count - directoryOffset,
          entryCount <= directorySize / 46
    else { throw corrupt("its central directory lies outside the file") }

    var records: [ZipRecord] = []
    records.reserveCapacity(entryCount)
    var position = directoryOffset
    for _ in 0..<entryCount {
      // Central directory header (4.3.12): 46 bytes, then name, extra field and comment.
      guard bytes.uint32(at: position) == 0x0201_4b50, let flags = bytes.uint16(at: position + 8),
            let method = bytes.uint16(at: position + 10), let crc = bytes.uint32(at: position + 16),
            let compressed32 = bytes.uint32(at: position + 20), let uncompressed32 = bytes.uint32(at: position + 24),
            let nameLength = bytes.uint16(at: position + 28).map(Int.init),
            let extraLength = bytes.uint16(at: position + 30).map(Int.init),
            let commentLength = bytes.uint16(at: position + 32).map(Int.init),
            let offset32 = bytes.uint32(at: position + 42),
            let name = bytes.slice(position + 46, nameLength),
            let extra = bytes.slice(position + 46 + nameLength, extraLength)
      else { throw corrupt("central directory entry \(records.count) is damaged") }
      var uncompressed = UInt64(uncompressed32), compressed = UInt64(compressed32), offset = UInt64(offset32)
      // Zip64 extended information (4.5.3): only the fields whose 32-bit value is 0xFFFFFFFF, in this order.
      if uncompressed32 == .max || compressed32 == .max || offset32 == .max {
        guard let zip64 = zip64Fields(extra) else {
          throw corrupt("central directory entry \(records.count) lacks its zip64 sizes")
        }
        var fields = zip64.makeIterator()
        func next(_ value: inout UInt64) throws {
          guard let field = fields.next() else {
            throw corrupt("central directory entry \(records.count) lacks its zip64 sizes")
          }
          value = field
        }
        if uncompressed32 == .max { try next(&uncompressed) }
        if compressed32 == .max { try next(&compressed) }
        if offset32 == .max { try next(&offset) }
      }
      guard compressed <= UInt64(count), offset <= UInt64(count) else {
        throw corrupt("record '\(String(decoding: name, as: UTF8.self))' lies outside the file")
      }
      records.append(ZipRecord(name: String(decoding: name, as: UTF8.self), method: method, crc32: crc,
                               compressedSize: Int(compressed), uncompressedSize: uncompressed,
                               localHeaderOffset: Int(offset), isEncrypted: flags & 1 != 0))
      position += 46 + nameLength + extraLength + commentLength
    }
    return records
  }

  /// The 64-bit values of the zip64 extra block (header id 0x0001) in `extra`, or nil when there is none.
  private static func zip64Fields(_ extra: Data) -> [UInt64]? {
    let bytes = ZipBytes(data: extra)
    var position = 0
    while let id = bytes.uint16(at: position), let size = bytes.uint16(at: position + 2).map(Int.init) {
      if id == 0x0001 {
        return stride(from: 0, to: size - 7, by: 8).compactMap { bytes.uint64(at: position + 4 + $0) }
      }
      position += 4 + size
    }
    return nil
  }
}

/// Bounds-checked little-endian reads (nil past the end) at offsets from the start of `data`.
private struct ZipBytes {
  let data: Data
  var count: Int { data.count }

  private func value(at offset: Int, width: Int) -> UInt64? {
    guard offset >= 0, width <= count, offset <= count - width else { return nil }
    var value: UInt64 = 0
    for i in 0..<width { value |= UInt64(data[data.startIndex + offset + i]) << (8 * UInt64(i)) }
    return value
  }

  func uint16(at offset: Int) -> UInt16? { value(at: offset, width: 2).map { UInt16($0) } }
  func uint32(at offset: Int) -> UInt32? { value(at: offset, width: 4).map { UInt32($0) } }
  func uint64(at offset: Int) -> UInt64? { value(at: offset, width: 8) }

  func slice(_ offset: Int, _ length: Int) -> Data? {
    guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
    return data[(data.startIndex + offset)..<(data.startIndex + offset + length)]
  }
}
