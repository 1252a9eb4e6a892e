// COCO run-length-encoded masks: pycocotools' compressed RLE strings (common/maskApi.c rleFrString /
// rleToString) and decoding to a mask (rleDecode). Runs are over the image in column-major order.

/// A run-length-encoded binary mask: `counts` alternate runs of 0 and 1, starting with 0, over the pixels in
/// column-major (Fortran) order, as pycocotools stores them.
public struct COCORLE: Sendable, Equatable {
  public var height: Int
  public var width: Int
  public var counts: [UInt32]

  public init(height: Int, width: Int, counts: [UInt32]) {
    self.height = height
    self.width = width
    self.counts = counts
  }

  /// Decodes a compressed counts string exactly as pycocotools' `rleFrString`: 5 bits per character (offset 48),
  /// bit 0x20 = "more characters follow", bit 0x10 of the last character = sign; from the fourth count on
  /// (`m > 2`), each value is a difference from the count two places earlier. Throws `DatasetError.invalidRLE`
  /// for characters outside '0'…'o', a string ending inside a value, or a count outside 0…2³²−1.
  public init(height: Int, width: Int, compressed string: String) throws {
    let characters = Array(string.utf8)
    var counts: [UInt32] = []
    counts.reserveCapacity(characters.count)
    var position = 0
    while position < characters.count {
      var value: Int64 = 0
      var shift: Int64 = 0
      var hasMore = true
      while hasMore {
        guard position < characters.count else {
          throw DatasetError.invalidRLE(reason: "the counts string ends inside a run length")
        }
        let c = Int64(characters[position]) - 48
        guard (0..<64).contains(c) else {
          throw DatasetError.invalidRLE(
            reason: "character '\(UnicodeScalar(characters[position]))' at \(position) is outside '0'…'o'")
        }
        guard shift < 35 else { throw DatasetError.invalidRLE(reason: "a run length at \(position) is too long") }
        value |= (c & 0x1F) << shift
        hasMore = c & 0x20 != 0
        position += 1
        shift += 5
        if !hasMore && c & 0x10 != 0 { value |= -1 << shift }  // sign-extend
      }
      if counts.count > 2 { value += Int64(counts[counts.count - 2]) }
      guard let count = UInt32(exactly: value) else {
        throw DatasetError.invalidRLE(reason: "run \(counts.count) decodes to \(value), outside 0…2³²−1")
      }
      counts.append(count)
    }
    self.init(height: height, width: width, counts: counts)
  }

  /// The compressed counts string (pycocotools `rleToString`), the inverse of `init(height:width:compressed:)`.
  public var compressedString: String {
    var characters: [UInt8] = []
    for (i, count) in counts.enumerated() {
      var value = Int64(count)
      if i > 2 { value -= Int64(counts[i - 2]) }
      var hasMore = true
      while hasMore {
        var c = UInt8(truncatingIfNeeded: value & 0x1F)
        value >>= 5
        hasMore = c & 0x10 != 0 ? value != -1 : value != 0
        if hasMore { c |= 0x20 }
        characters.append(c + 48)
      }
    }
    return String(decoding: characters, as: UTF8.self)
  }

  /// The number of foreground pixels (pycocotools `area` of an RLE): the sum of the odd runs.
  public var area: Int { stride(from: 1, to: counts.count, by: 2).reduce(0) { $0 + Int(counts[$1]) } }

  /// The mask as a 1-channel image, row-major like every `Image`: pixel (x, y) is 1 inside the mask, 0 outside.
  /// Throws `DatasetError.invalidRLE` unless the runs cover exactly height · width pixels.
  public func mask() throws -> Image {
    let total = counts.reduce(0) { $0 + Int($1) }
    guard height > 0 && width > 0 && total == height * width else {
      throw DatasetError.invalidRLE(reason: "the runs cover \(total) pixels, the mask has \(height)×\(width)")
    }
    var pixels = [UInt8](repeating: 0, count: height * width)
    var index = 0  // column-major position: x · height + y
    for (i, count) in counts.enumerated() {
      if i % 2 == 1 {
        for k in index..<(index + Int(count)) { pixels[(k % height) * width + k / height] = 1 }
      }
      index += Int(count)
    }
    return Image(width: width, height: height, channels: 1, pixels: pixels)
  }
}
