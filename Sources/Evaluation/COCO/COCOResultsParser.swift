// A fast reader for COCO results json (a list of {image_id, category_id, score, bbox, segmentation}): Foundation's
// JSONDecoder takes ~8 s on a val2017-sized file of 500k detections (52 MB), this single pass ~10× less. Numbers go
// through strtod, which glibc rounds correctly (as Python's float() does), so values are identical to the
// decoder's. Anything unusual (another shape, a malformed value) returns nil and the caller falls back to
// JSONDecoder, whose errors name the place of the problem.
import Datasets
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

struct COCOResultsParser {
  private let bytes: UnsafeBufferPointer<UInt8>
  private var position = 0

  /// The entries of a results file, or nil when the file is not a plain results list this reader handles.
  static func entries(_ data: Data) -> [COCODetections.Entry]? {
    data.withUnsafeBytes { raw in
      var parser = COCOResultsParser(bytes: raw.bindMemory(to: UInt8.self))
      return parser.parseList()
    }
  }

  private init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

  private mutating func parseList() -> [COCODetections.Entry]? {
    guard consume(UInt8(ascii: "[")) else { return nil }
    var entries: [COCODetections.Entry] = []
    entries.reserveCapacity(bytes.count / 100)
    if consume(UInt8(ascii: "]")) { return finished() ? entries : nil }
    repeat {
      guard let entry = parseEntry() else { return nil }
      entries.append(entry)
    } while consume(UInt8(ascii: ","))
    guard consume(UInt8(ascii: "]")), finished() else { return nil }
    return entries
  }

  private mutating func parseEntry() -> COCODetections.Entry? {
    guard consume(UInt8(ascii: "{")) else { return nil }
    var imageID: Int?, categoryID: Int?, score: Double?, bbox: [Double]?
    var segmentation: COCOInstances.Segmentation?
    if !consume(UInt8(ascii: "}")) {
      repeat {
        guard let key = parseString(), consume(UInt8(ascii: ":")) else { return nil }
        switch key {
        case "image_id": guard let value = parseInteger() else { return nil }; imageID = value
        case "category_id": guard let value = parseInteger() else { return nil }; categoryID = value
        case "score": guard let value = parseNumber() else { return nil }; score = value
        case "bbox": guard let value = parseNumbers() else { return nil }; bbox = value
        case "segmentation": guard let value = parseSegmentation() else { return nil }; segmentation = value
        default: guard skipValue() else { return nil }
        }
      } while consume(UInt8(ascii: ","))
      guard consume(UInt8(ascii: "}")) else { return nil }
    }
    guard let imageID, let categoryID else { return nil }
    return COCODetections.Entry(imageID: imageID, categoryID: categoryID, score: score, bbox: bbox,
                                segmentation: segmentation)
  }

  /// Polygons `[[x, y, …], …]` or an RLE `{"size": [h, w], "counts": "…" | [runs]}`.
  private mutating func parseSegmentation() -> COCOInstances.Segmentation? {
    skipWhitespace()
    if consume(UInt8(ascii: "[")) {
      var polygons: [[Double]] = []
      if consume(UInt8(ascii: "]")) { return .polygons([]) }
      repeat {
        guard let polygon = parseNumbers() else { return nil }
        polygons.append(polygon)
      } while consume(UInt8(ascii: ","))
      return consume(UInt8(ascii: "]")) ? .polygons(polygons) : nil
    }
    guard consume(UInt8(ascii: "{")) else { return nil }
    var size: [Double]?, counts: String?, runs: [Double]?
    repeat {
      guard let key = parseString(), consume(UInt8(ascii: ":")) else { return nil }
      switch key {
      case "size": size = parseNumbers()
      case "counts":
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "\"") { counts = parseString() } else {
          runs = parseNumbers()
        }
        if counts == nil && runs == nil { return nil }
      default: guard skipValue() else { return nil }
      }
    } while consume(UInt8(ascii: ","))
    guard consume(UInt8(ascii: "}")), let size, size.count == 2, let height = Int(exactly: size[0]),
          let width = Int(exactly: size[1]) else { return nil }
    if let counts {
      guard let rle = try? COCORLE(height: height, width: width, compressed: counts) else { return nil }
      return .rle(rle)
    }
    guard let runs else { return nil }
    var runLengths: [UInt32] = []
    runLengths.reserveCapacity(runs.count)
    for run in runs {
      guard let length = UInt32(exactly: run) else { return nil }
      runLengths.append(length)
    }
    return .rle(COCORLE(height: height, width: width, counts: runLengths))
  }

  // MARK: - Tokens

  private mutating func skipWhitespace() {
    while position < bytes.count {
      switch bytes[position] {
      case 0x20, 0x0A, 0x0D, 0x09: position += 1
      default: return
      }
    }
  }

  /// Skips whitespace, then consumes `byte` if it is next.
  private mutating func consume(_ byte: UInt8) -> Bool {
    skipWhitespace()
    guard position < bytes.count, bytes[position] == byte else { return false }
    position += 1
    return true
  }

  private mutating func finished() -> Bool {
    skipWhitespace()
    return position == bytes.count
  }

  /// A JSON number, through strtod (correctly rounded).
  private mutating func parseNumber() -> Double? {
    skipWhitespace()
    let start = position
    while position < bytes.count {
      switch bytes[position] {
      case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
           UInt8(ascii: "e"), UInt8(ascii: "E"):
        position += 1
      default:
        return Self.double(bytes[start..<position])
      }
    }
    return Self.double(bytes[start..<position])
  }

  private static func double(_ token: Slice<UnsafeBufferPointer<UInt8>>) -> Double? {
    guard !token.isEmpty, token.count < 64 else { return nil }
    var buffer = [CChar](repeating: 0, count: token.count + 1)
    for (i, byte) in token.enumerated() { buffer[i] = CChar(bitPattern: byte) }
    return buffer.withUnsafeBufferPointer { text -> Double? in
      var end: UnsafeMutablePointer<CChar>?
      let value = strtod(text.baseAddress!, &end)
      guard let end, end == UnsafeMutablePointer(mutating: text.baseAddress! + token.count) else { return nil }
      return value
    }
  }

  /// An integer written as a JSON number (as JSONDecoder accepts for Int: no fraction).
  private mutating func parseInteger() -> Int? {
    skipWhitespace()
    var negative = false
    if position < bytes.count && bytes[position] == UInt8(ascii: "-") {
      negative = true
      position += 1
    }
    var value = 0, digits = 0
    while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
      let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times.addingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
      if overflow1 || overflow2 { return nil }
      value = sum
      digits += 1
      position += 1
    }
    if digits == 0 { return nil }
    if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
      return nil  // leave fractions and exponents to JSONDecoder's rules
    }
    return negative ? -value : value
  }

  /// `[n, n, …]`.
  private mutating func parseNumbers() -> [Double]? {
    guard consume(UInt8(ascii: "[")) else { return nil }
    var values: [Double] = []
    if consume(UInt8(ascii: "]")) { return values }
    repeat {
      guard let value = parseNumber() else { return nil }
      values.append(value)
    } while consume(UInt8(ascii: ","))
    return consume(UInt8(ascii: "]")) ? values : nil
  }

  /// A string with the simple escapes (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`); `\u` falls back.
  private mutating func parseString() -> String? {
    guard consume(UInt8(ascii: "\"")) else { return nil }
    var text: [UInt8] = []
    while position < bytes.count {
      let byte = bytes[position]
      position += 1
      switch byte {
      case UInt8(ascii: "\""):
        return String(decoding: text, as: UTF8.self)
      case UInt8(ascii: "\\"):
        guard position < bytes.count else { return nil }
        let escaped = bytes[position]
        position += 1
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "t"): text.append(0x09)
        default: return nil
        }
      case 0..<0x20:
        return nil
      default:
        text.append(byte)
      }
    }
    return nil
  }

  /// Skips any JSON value (for keys the evaluation does not read).
  private mutating func skipValue() -> Bool {
    skipWhitespace()
    guard position < bytes.count else { return false }
    switch bytes[position] {
    case UInt8(ascii: "\""): return parseString() != nil
    case UInt8(ascii: "["), UInt8(ascii: "{"):
      let close = bytes[position] == UInt8(ascii: "[") ? UInt8(ascii: "]") : UInt8(ascii: "}")
      let isObject = close == UInt8(ascii: "}")
      position += 1
      if consume(close) { return true }
      repeat {
        if isObject { guard parseString() != nil, consume(UInt8(ascii: ":")) else { return false } }
        guard skipValue() else { return false }
      } while consume(UInt8(ascii: ","))
      return consume(close)
    case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
      for word in ["true", "false", "null"] where bytes.count - position >= word.utf8.count {
        if zip(word.utf8, bytes[position...]).allSatisfy({ $0 == $1 }) {
          position += word.utf8.count
          return true
        }
      }
      return false
    default:
      return parseNumber() != nil
    }
  }
}
