// JPEG decoding and encoding through libjpeg-turbo's TurboJPEG API, with PIL's decoding choices
// (accurate "islow" IDCT, fancy upsampling, Adobe-inverted CMYK) so pixels equal PIL's.
import CTurboJPEG
import Foundation

/// Chroma subsampling of an encoded JPEG (how many luma pixels share one pair of chroma samples).
public enum JPEGSubsampling: Sendable, Equatable {
  /// No subsampling: PIL's `subsampling=0`.
  case chroma444
  /// Half horizontal chroma resolution: PIL's `subsampling=1`.
  case chroma422
  /// Half horizontal and vertical chroma resolution: PIL's and libjpeg's default (`subsampling=2`).
  case chroma420

  var turboJPEG: Int32 {
    switch self {
    case .chroma444: Int32(TJSAMP_444.rawValue)
    case .chroma422: Int32(TJSAMP_422.rawValue)
    case .chroma420: Int32(TJSAMP_420.rawValue)
    }
  }
}

// MARK: - Decoding

/// Decodes a JPEG: gray JPEGs to 1 channel (3 with `.rgb`), YCbCr/RGB to RGB, CMYK/YCCK to RGB with PIL's formula.
///
/// Matches PIL's `Image.open(f).convert(...)` pixel for pixel: accurate integer IDCT (TJFLAG_ACCURATEDCT, libjpeg's
/// JDCT_ISLOW default that PIL keeps) and fancy (triangle-filter) chroma upsampling, which TurboJPEG uses unless
/// TJFLAG_FASTUPSAMPLE is set. libjpeg warnings about corrupt data are ignored as PIL ignores them, except a
/// premature end of the data, which PIL reports as "image file is truncated". `source` names the bytes in errors.
public func decodeJPEG(_ bytes: some ContiguousBytes, mode: ImageColorMode = .grayOrRGB,
                       source: String = "<memory>") throws -> Image {
  try bytes.withUnsafeBytes { try decodeJPEG($0, mode: mode, source: source) }
}

/// Reads a JPEG's dimensions and colour space without decoding it.
public func jpegHeader(_ bytes: some ContiguousBytes, source: String = "<memory>") throws -> ImageHeader {
  try bytes.withUnsafeBytes { try jpegHeader($0, source: source) }
}

func jpegHeader(_ bytes: UnsafeRawBufferPointer, source: String) throws -> ImageHeader {
  let decoder = try TurboJPEGHandle(decompressing: true, source: source)
  let header = try decoder.readHeader(bytes, source: source)
  return ImageHeader(format: .jpeg, width: header.width, height: header.height,
                     channels: header.colorspace == Int32(TJCS_GRAY.rawValue) ? 1 : 3, hasPalette: false)
}

func decodeJPEG(_ bytes: UnsafeRawBufferPointer, mode: ImageColorMode, source: String) throws -> Image {
  if mode == .indices {
    throw ImageIOError.unsupportedLayout(
      path: source, format: .jpeg,
      reason: "has no palette indices: segmentation masks must be palette or gray PNGs (JPEG's lossy "
        + "compression would change the class values); decode it with mode .rgb or .grayOrRGB")
  }
  let decoder = try TurboJPEGHandle(decompressing: true, source: source)
  let header = try decoder.readHeader(bytes, source: source)
  let (width, height) = (header.width, header.height)
  let isGray = header.colorspace == Int32(TJCS_GRAY.rawValue)
  let isCMYK = header.colorspace == Int32(TJCS_CMYK.rawValue) || header.colorspace == Int32(TJCS_YCCK.rawValue)
  let format = isGray ? TJPF_GRAY : isCMYK ? TJPF_CMYK : TJPF_RGB
  let decodedChannels = isGray ? 1 : isCMYK ? 4 : 3
  // TJFLAG_LIMITSCANS refuses progressive JPEGs with absurdly many scans (a denial-of-service pattern).
  let flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS
  let decoded = try makePixels(count: width * height * decodedChannels) { destination in
    func decompress(stoppingOnWarnings: Bool) -> TurboJPEGHandle.Outcome {
      let status = tjDecompress2(
        decoder.handle, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(bytes.count), destination,
        Int32(width), Int32(width * decodedChannels), Int32(height), Int32(format.rawValue),
        flags | (stoppingOnWarnings ? TJFLAG_STOPONWARNING : 0))
      return decoder.outcome(status)
    }
    // TurboJPEG reports a warning followed by a fatal error as a warning, with the error's message. Stopping at
    // the first warning separates the cases: running out of data (libjpeg's JWRN_JPEG_EOF, "Premature end of
    // JPEG file") is truncation, which PIL reports too; other warnings are corrupt data that PIL decodes through,
    // so the image is decoded again past them. That pass succeeded when its only message is the same warning.
    switch decompress(stoppingOnWarnings: true) {
    case .success:
      return
    case let .fatal(message):
      throw ImageIOError.decodeFailed(path: source, format: .jpeg, message: message)
    case let .warning(message) where message.contains("Premature end of JPEG file"):
      throw ImageIOError.truncated(path: source, detail: message)
    case let .warning(firstWarning):
      // Past a corrupt-data warning the first-warning message hides a later JWRN_JPEG_EOF; PIL calls such data
      // truncated, and so it is when no EOI marker follows the scans.
      guard jpegHasEndMarker(bytes) else {
        throw ImageIOError.truncated(path: source, detail: "\(firstWarning), and the data has no end marker")
      }
      switch decompress(stoppingOnWarnings: false) {
      case .success:
        return
      case let .warning(message) where message == firstWarning:
        return
      case let .warning(message), let .fatal(message):
        throw ImageIOError.decodeFailed(path: source, format: .jpeg, message: "\(firstWarning); then \(message)")
      }
    }
  }
  var image: Image
  if isCMYK {
    image = Image(width: width, height: height, channels: 3, pixels: rgbFromInvertedCMYK(decoded))
  } else {
    image = Image(width: width, height: height, channels: decodedChannels, pixels: decoded)
  }
  if mode == .rgb && image.channels == 1 { image = replicatingGray(image) }
  return image
}

/// RGB from the CMYK samples libjpeg returns, as PIL does it: PIL reads CMYK JPEGs as "CMYK;I" (Adobe polarity,
/// every sample inverted: c = 255 − raw) and `convert("RGB")` computes r = (255 − k) − c·(255 − k)/255 with
/// PIL's rounded MULDIV255, likewise g from m and b from y. Here 255 − k = raw k.
func rgbFromInvertedCMYK(_ cmyk: [UInt8]) -> [UInt8] {
  let count = cmyk.count / 4
  return cmyk.withUnsafeBufferPointer { source in
    makePixels(count: count * 3) { rgb in
      for i in 0..<count {
        let notK = Int(source[4 * i + 3])
        for c in 0..<3 {
          let ink = 255 - Int(source[4 * i + c])
          let product = ink * notK + 128
          rgb[3 * i + c] = UInt8(clamping: notK - ((product >> 8) + product) >> 8)
        }
      }
    }
  }
}

/// Whether the marker segments from SOI through the first SOS header lie inside `bytes` (all that
/// `jpeg_read_header` reads). Returns true for malformed structure, which libjpeg then names.
func jpegHeaderIsComplete(_ bytes: UnsafeRawBufferPointer) -> Bool {
  var i = 2  // after SOI
  while true {
    guard i < bytes.count else { return false }
    guard bytes[i] == 0xFF else { return true }
    while i < bytes.count && bytes[i] == 0xFF { i += 1 }  // fill bytes
    guard i < bytes.count else { return false }
    let marker = bytes[i]
    i += 1
    if marker == 0x01 || (0xD0...0xD8).contains(marker) { continue }  // TEM, RSTn, SOI: no length
    if marker == 0xD9 { return true }  // EOI before any scan
    guard i + 2 <= bytes.count else { return false }
    let length = Int(bytes[i]) << 8 | Int(bytes[i + 1])  // includes its own two bytes
    guard length >= 2 else { return true }
    guard i + length <= bytes.count else { return false }
    if marker == 0xDA { return true }  // SOS: the header ends here
    i += length
  }
}

/// Limits of the JPEG format that readers rely on.
enum JPEG {
  /// Huffman-coded scan data spends at least one bit per 8×8 block: 64 pixels per bit.
  static let maximumPixelsPerByte = 64 * 8
}

/// Whether the first frame header (SOFn) is Huffman-coded (SOF0–SOF3, SOF5–SOF7), read by walking the marker
/// segments. False when no frame header is found in well-formed segments (libjpeg then names the problem).
func jpegFrameIsHuffmanCoded(_ bytes: UnsafeRawBufferPointer) -> Bool {
  var i = 2  // after SOI
  while i + 4 <= bytes.count, bytes[i] == 0xFF {
    let marker = bytes[i + 1]
    if marker == 0xFF { i += 1; continue }  // fill byte
    if marker == 0x01 || (0xD0...0xD8).contains(marker) { i += 2; continue }  // no length
    if (0xC0...0xC7).contains(marker) && marker != 0xC4 { return true }
    if (0xC8...0xCF).contains(marker) || marker == 0xDA || marker == 0xD9 { return false }
    i += 2 + (Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]))
  }
  return false
}

/// Whether an EOI marker (FF D9) follows the first scan. Entropy-coded data never contains FF D9 (an FF there is
/// followed by 00 or a restart marker), so a stream without one after its first SOS was cut short.
func jpegHasEndMarker(_ bytes: UnsafeRawBufferPointer) -> Bool {
  var i = bytes.count - 2
  while i >= 2 {
    if bytes[i] == 0xFF {
      if bytes[i + 1] == 0xD9 { return true }
      if bytes[i + 1] == 0xDA { return false }
    }
    i -= 1
  }
  return false
}

// MARK: - Encoding

/// Encodes an RGB or gray image as a baseline JPEG with libjpeg's standard tables scaled to `quality` (1…100).
///
/// Uses the accurate integer forward DCT (TurboJPEG's default for compression is the fast one), as PIL's encoder
/// does, so the result decodes to the same pixels as PIL's `save(f, "JPEG", quality=q, subsampling=…)`.
/// Gray images are written as 1-component JPEGs and `subsampling` is ignored for them.
public func encodeJPEG(_ image: Image, quality: Int = 95, subsampling: JPEGSubsampling = .chroma420,
                       source: String = "<memory>") throws -> [UInt8] {
  precondition((1...100).contains(quality), "JPEG quality must be in 1...100, got \(quality).")
  precondition(image.width > 0 && image.height > 0,
               "A JPEG needs at least one pixel, got a \(image.width)×\(image.height) image.")
  let encoder = try TurboJPEGHandle(decompressing: false, source: source)
  let isGray = image.channels == 1
  var jpeg: UnsafeMutablePointer<UInt8>? = nil
  var size: UInt = 0
  defer { if let jpeg { tjFree(jpeg) } }
  let status = image.pixels.withUnsafeBufferPointer { pixels in
    tjCompress2(encoder.handle, pixels.baseAddress, Int32(image.width), Int32(image.width * image.channels),
                Int32(image.height), Int32((isGray ? TJPF_GRAY : TJPF_RGB).rawValue), &jpeg, &size,
                isGray ? Int32(TJSAMP_GRAY.rawValue) : subsampling.turboJPEG, Int32(quality), TJFLAG_ACCURATEDCT)
  }
  guard status == 0, let jpeg else {
    throw ImageIOError.encodeFailed(path: source, format: .jpeg, message: encoder.message)
  }
  return Array(UnsafeBufferPointer(start: jpeg, count: Int(size)))
}

// MARK: - TurboJPEG handle

/// A TurboJPEG compressor or decompressor, destroyed with its owner. One per call: handles are not thread-safe.
final class TurboJPEGHandle {
  let handle: tjhandle

  init(decompressing: Bool, source: String) throws {
    guard let handle = decompressing ? tjInitDecompress() : tjInitCompress() else {
      let message = String(cString: tjGetErrorStr2(nil))
      throw decompressing
        ? ImageIOError.decodeFailed(path: source, format: .jpeg, message: "cannot create a decoder: \(message)")
        : ImageIOError.encodeFailed(path: source, format: .jpeg, message: "cannot create an encoder: \(message)")
    }
    self.handle = handle
  }

  deinit { tjDestroy(handle) }

  /// The library's message for the last failed call.
  var message: String { String(cString: tjGetErrorStr2(handle)) }

  /// The dimensions and colour space, refusing images larger than `Image.maximumPixelCount`.
  func readHeader(_ bytes: UnsafeRawBufferPointer, source: String)
    throws -> (width: Int, height: Int, colorspace: Int32)
  {
    guard !bytes.isEmpty else { throw ImageIOError.truncated(path: source, detail: "the data is empty") }
    var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
    let status = tjDecompressHeader3(handle, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                     UInt(bytes.count), &width, &height, &subsampling, &colorspace)
    // Warnings after the frame header do not matter for the dimensions; decoding reports them. A failed header
    // read returns no dimensions, and its message may be an error that only followed running out of data.
    if status != 0 && (width <= 0 || height <= 0) {
      guard jpegHeaderIsComplete(bytes) else {
        throw ImageIOError.truncated(path: source, detail: "the data ends inside the JPEG header")
      }
      switch outcome(status) {
      case let .warning(message) where message.contains("Premature end of JPEG file"):
        throw ImageIOError.truncated(path: source, detail: message)
      case let .warning(message), let .fatal(message):
        throw ImageIOError.decodeFailed(path: source, format: .jpeg, message: message)
      case .success:
        break
      }
    }
    guard width > 0 && height > 0 else {
      // A tables-only stream (or one whose frame header is missing) succeeds without dimensions.
      throw ImageIOError.truncated(path: source, detail: "the JPEG data ends before its frame header")
    }
    guard Int(width) * Int(height) <= Image.maximumPixelCount else {
      throw ImageIOError.tooLarge(path: source, width: Int(width), height: Int(height),
                                  limit: Image.maximumPixelCount)
    }
    // libjpeg completes a file whose data ends early (after a corrupt-data warning) with invented gray pixels, so
    // a corrupt 1 KB header could make it allocate and fill hundreds of megabytes. Huffman-coded scans spend at
    // least one bit per 8×8 block (a DC code), so a file cannot hold more than 512 pixels per byte; arithmetic
    // coding has no such floor and is not bounded here.
    if jpegFrameIsHuffmanCoded(bytes) && Int(width) * Int(height) > bytes.count * JPEG.maximumPixelsPerByte {
      throw ImageIOError.implausibleSize(path: source, width: Int(width), height: Int(height),
                                         dataBytes: bytes.count)
    }
    return (Int(width), Int(height), colorspace)
  }

  /// How a call ended. `warning` means at least one warning was emitted; its message is the first warning's, or a
  /// later fatal error's (TurboJPEG 2.1 keeps a single message and reports any call with a warning as one).
  enum Outcome {
    case success
    case warning(String)
    case fatal(String)
  }

  func outcome(_ status: Int32) -> Outcome {
    if status == 0 { return .success }
    return tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) ? .warning(message) : .fatal(message)
  }
}
