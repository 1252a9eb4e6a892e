// gzip (RFC 1952) and raw DEFLATE (RFC 1951) decompression through zlib, for the .gz IDX files of MNIST /
// Fashion-MNIST. zlib checks each member's header, CRC-32 and length (ISIZE) itself. It replaces a hand-written
// decoder (Datasets/Readers/Gzip.swift until issue 13): zlib is already linked by libpng and ZIPFoundation, and is
// faster (benchmarks/README.md, "SupportBench").
//
// Every call takes a maximum output size and stops inflating as soon as the output passes it, so a small hostile
// file cannot make us allocate gigabytes (issue 14, item 3): the output buffer grows with what is actually decoded,
// never beyond the limit plus one byte.
import CZlibShim
import Glibc

/// gzip and raw DEFLATE decompression, bounded.
public enum Gzip {
  /// The zlib in use, e.g. "1.2.13".
  public static var zlibVersion: String { String(cString: CZlibShim.zlibVersion()) }

  /// Whether `bytes` starts with the gzip magic number 1F 8B.
  public static func isCompressed(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
  }

  /// Decompresses every member of a gzip file (zero padding after the last one is allowed, as Python's gzip module
  /// allows it) and checks each member's CRC-32 and length. Stops with `decompressedSizeExceedsLimit` as soon as
  /// the output passes `maximumSize` bytes. `path` only names the file in errors.
  public static func decompress(_ bytes: [UInt8], path: String, maximumSize: Int) throws(SupportError) -> [UInt8] {
    // The last member's ISIZE (length mod 2^32) is a good first guess of the output size; DEFLATE cannot expand more
    // than 1032:1, so a larger ISIZE is a lie and is not believed.
    var sizeHint = bytes.count * 4
    if bytes.count >= 18 {
      let tail = bytes.count - 4
      let isize = Int(bytes[tail]) | Int(bytes[tail + 1]) << 8 | Int(bytes[tail + 2]) << 16 | Int(bytes[tail + 3]) << 24
      sizeHint = max(sizeHint, min(isize, bytes.count * 1032))
    }
    return try inflate(bytes, path: path, maximumSize: maximumSize, sizeHint: sizeHint, gzip: true)
  }

  /// Decompresses a raw DEFLATE stream (no gzip or zlib wrapper); bytes after its final block are ignored. Stops with
  /// `decompressedSizeExceedsLimit` as soon as the output passes `maximumSize` bytes. `path` only names the source
  /// in errors.
  public static func inflate(_ bytes: [UInt8], path: String, maximumSize: Int) throws(SupportError) -> [UInt8] {
    try inflate(bytes, path: path, maximumSize: maximumSize, sizeHint: max(1024, bytes.count * 4), gzip: false)
  }

  private static func inflate(_ bytes: [UInt8], path: String, maximumSize: Int, sizeHint: Int,
                              gzip: Bool) throws(SupportError) -> [UInt8] {
    precondition(maximumSize >= 0, "Gzip needs a maximum output size ≥ 0, got \(maximumSize).")
    func corrupt(_ reason: String) -> SupportError { .corruptCompressedData(path: path, reason: reason) }
    // Room for one byte past the limit: producing it is how we learn the limit was passed.
    let ceiling = maximumSize == .max ? Int.max : maximumSize + 1
    // At most 256 MiB up front whatever the hint claims; beyond that the buffer grows with the decoded output.
    let initialCapacity = max(1, min(sizeHint, 256 << 20, ceiling))
    guard let output = GrowingBuffer(capacity: initialCapacity) else {
      throw .unreadableFile(path: path, reason: "cannot allocate \(initialCapacity) bytes for its decompressed data")
    }
    var stream = z_stream()
    // 16 + 15: a gzip wrapper and a 32 KiB window; −15: raw DEFLATE, 32 KiB window.
    let initStatus = inflateInit2_(&stream, gzip ? 16 + MAX_WBITS : -MAX_WBITS, ZLIB_VERSION,
                                   Int32(MemoryLayout<z_stream>.size))
    guard initStatus == Z_OK else { throw corrupt("zlib's inflateInit2 failed (status \(initStatus))") }
    defer { inflateEnd(&stream) }
    try bytes.withUnsafeBufferPointer { input throws(SupportError) in
      var consumed = 0  // input bytes before stream.next_in
      // The buffer's base address when non-empty; zlib reads nothing while avail_in is 0.
      let inputBase = UnsafeMutablePointer(mutating: input.baseAddress)
      stream.next_in = inputBase
      stream.avail_in = 0
      while true {  // one gzip member (or the raw stream) per pass
        var finished = false
        while !finished {
          // zlib counts input in UInt32: feed it at most 1 GiB at a time.
          if stream.avail_in == 0 && consumed < input.count {
            let piece = min(input.count - consumed, 1 << 30)
            stream.next_in = inputBase! + consumed
            stream.avail_in = UInt32(piece)
            consumed += piece
          }
          if output.count == output.capacity {
            guard output.count < ceiling else {
              throw .decompressedSizeExceedsLimit(path: path, limit: maximumSize)
            }
            guard output.grow(upTo: ceiling) else {
              throw .unreadableFile(path: path, reason: "cannot allocate \(output.capacity) bytes more for its "
                                      + "decompressed data")
            }
          }
          let room = min(output.capacity - output.count, 1 << 30)
          stream.next_out = output.base + output.count
          stream.avail_out = UInt32(room)
          let status = CZlibShim.inflate(&stream, Z_NO_FLUSH)
          output.count += room - Int(stream.avail_out)
          switch status {
          case Z_STREAM_END:
            finished = true
          case Z_OK, Z_BUF_ERROR:
            // Z_BUF_ERROR: no progress was possible. With output room left, that means the input ran out.
            if stream.avail_in == 0 && consumed == input.count && stream.avail_out > 0 {
              throw corrupt(gzip ? "the gzip member ends early (truncated file?)"
                                 : "the compressed stream ends early (truncated data?)")
            }
          case Z_DATA_ERROR:
            throw corrupt(reason(stream))
          case Z_MEM_ERROR:
            throw corrupt("zlib ran out of memory")
          case Z_NEED_DICT:
            throw corrupt("the stream needs a preset dictionary, which gzip files never use")
          default:
            throw corrupt("zlib's inflate failed (status \(status))")
          }
          if output.count > maximumSize { throw .decompressedSizeExceedsLimit(path: path, limit: maximumSize) }
        }
        guard gzip else { return }
        // Another member may follow; zero padding after the last one is allowed.
        var position = consumed - Int(stream.avail_in)
        while position < input.count && input[position] == 0 { position += 1 }
        guard position < input.count else { return }
        guard inflateReset(&stream) == Z_OK else { throw corrupt("zlib's inflateReset failed") }
        stream.next_in = inputBase! + position
        stream.avail_in = 0
        consumed = position
      }
    }
    return output.array()
  }

  /// zlib's message, with the checks it names said in gzip's terms.
  private static func reason(_ stream: z_stream) -> String {
    let message = stream.msg.map { String(cString: $0) } ?? "invalid data"
    switch message {
    case "incorrect data check": return "CRC-32 mismatch (zlib: \(message))"
    case "incorrect length check": return "length mismatch, the trailer's ISIZE disagrees (zlib: \(message))"
    case "incorrect header check": return "not a gzip member (zlib: \(message))"
    default: return "zlib: \(message)"
    }
  }
}

/// A malloc'ed byte buffer that grows by doubling up to a ceiling; `count` bytes are initialised.
private final class GrowingBuffer {
  private(set) var base: UnsafeMutablePointer<UInt8>
  private(set) var capacity: Int
  var count = 0

  init?(capacity: Int) {
    guard let memory = malloc(capacity) else { return nil }
    base = memory.assumingMemoryBound(to: UInt8.self)
    self.capacity = capacity
  }

  deinit { free(base) }

  /// Doubles the capacity, but not beyond `ceiling`; false when the allocation fails.
  func grow(upTo ceiling: Int) -> Bool {
    let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
    let newCapacity = overflow ? ceiling : min(doubled, ceiling)
    guard newCapacity > capacity, let memory = realloc(base, newCapacity) else { return false }
    base = memory.assumingMemoryBound(to: UInt8.self)
    capacity = newCapacity
    return true
  }

  func array() -> [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }
}
