// Reading and writing image files: the codec is chosen from the magic bytes (reading) or the extension (writing).
import Support
import Foundation

/// An image file format this package decodes and encodes.
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
  case jpeg
  case png

  /// The name used in messages.
  public var name: String { self == .jpeg ? "JPEG" : "PNG" }

  /// The format whose signature starts `bytes` (JPEG: FF D8 FF; PNG: 89 'PNG' 0D 0A 1A 0A), or nil.
  public init?(detecting bytes: UnsafeRawBufferPointer) {
    if bytes.starts(with: Self.jpegSignature) {
      self = .jpeg
    } else if bytes.starts(with: Self.pngSignature) {
      self = .png
    } else {
      return nil
    }
  }

  /// The format for a file extension (`jpg`, `jpeg`, `png`, any case), or nil.
  public init?(pathExtension: String) {
    switch pathExtension.lowercased() {
    case "jpg", "jpeg": self = .jpeg
    case "png": self = .png
    default: return nil
    }
  }

  static let jpegSignature: [UInt8] = [0xFF, 0xD8, 0xFF]
  static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
}

/// How decoded pixels are laid out.
public enum ImageColorMode: Sendable, Equatable {
  /// Gray files (JPEG gray, PNG gray or gray+alpha) give 1 channel, all others RGB: PIL's
  /// `convert("L")` for gray modes and `convert("RGB")` for the rest. Alpha is dropped, never composited.
  case grayOrRGB
  /// Always 3 channels, gray replicated: PIL's `convert("RGB")`, what torchvision's `pil_loader` does.
  case rgb
  /// 1 channel of raw palette indices (palette PNG) or gray levels (8-bit-or-less gray PNG): VOC
  /// SegmentationClass masks, where the index is the class and 255 means ignore. Other images throw.
  case indices
}

/// What an image file's header declares, read without decoding the pixels.
public struct ImageHeader: Sendable, Equatable {
  public var format: ImageFormat
  public var width: Int
  public var height: Int
  /// The channels that `ImageColorMode.grayOrRGB` decodes to: 1 for gray files, 3 otherwise.
  public var channels: Int
  /// Whether the file stores palette indices (a palette PNG), so `ImageColorMode.indices` can decode it.
  public var hasPalette: Bool

  public init(format: ImageFormat, width: Int, height: Int, channels: Int, hasPalette: Bool) {
    self.format = format
    self.width = width
    self.height = height
    self.channels = channels
    self.hasPalette = hasPalette
  }

  /// Reads the header of the JPEG or PNG in `bytes`; `source` names them in errors.
  public init(decoding bytes: some ContiguousBytes, source: String = "<memory>") throws {
    self = try bytes.withUnsafeBytes { raw in
      switch try detectFormat(raw, source: source) {
      case .jpeg: try jpegHeader(raw, source: source)
      case .png: try pngHeader(raw, source: source)
      }
    }
  }

  /// Reads the header of the image file at `url`.
  public init(contentsOf url: URL) throws {
    try self.init(decoding: try readFile(url), source: url.path)
  }
}

extension Image {
  /// Images with more pixels than this are refused before any memory is allocated for them:
  /// PIL's `DecompressionBombError` threshold, 2 × `Image.MAX_IMAGE_PIXELS` (2 × 89,478,485).
  public static let maximumPixelCount = 178_956_970

  /// Decodes the JPEG or PNG in `bytes`, chosen by magic bytes; `source` names them in errors.
  public init(decoding bytes: some ContiguousBytes, mode: ImageColorMode = .grayOrRGB,
              source: String = "<memory>") throws {
    self = try bytes.withUnsafeBytes { raw in
      switch try detectFormat(raw, source: source) {
      case .jpeg: try decodeJPEG(raw, mode: mode, source: source)
      case .png: try decodePNG(raw, mode: mode, source: source)
      }
    }
  }

  /// Reads and decodes the JPEG or PNG file at `url`, chosen by magic bytes (not by extension).
  public init(contentsOf url: URL, mode: ImageColorMode = .grayOrRGB) throws {
    try self.init(decoding: try readFile(url), mode: mode, source: url.path)
  }

  /// Encodes the image as `format` (by default from the extension: .jpg/.jpeg or .png) and writes it to `url`.
  /// `jpegQuality` is 1…100 (PIL's default is 75; 95 keeps round trips within a few levels).
  public func write(to url: URL, format: ImageFormat? = nil, jpegQuality: Int = 95) throws {
    guard let format = format ?? ImageFormat(pathExtension: url.pathExtension) else {
      throw ImageIOError.unwritableFile(
        path: url.path, reason: "the extension '.\(url.pathExtension)' names no format; use .jpg, .jpeg or .png")
    }
    let source = url.path
    let bytes = switch format {
    case .jpeg: try encodeJPEG(self, quality: jpegQuality, source: source)
    case .png: try encodePNG(self, source: source)
    }
    try writeFile(bytes, to: url)
  }

  /// Writes a 1-channel image of palette indices as a palette PNG (VOC SegmentationClass style).
  /// `palette` holds RGB triples, flat, at most 256 of them; see `vocColorMap()`.
  public func writePalettePNG(to url: URL, palette: [UInt8] = vocColorMap()) throws {
    try writeFile(try encodePalettePNG(self, palette: palette, source: url.path), to: url)
  }
}

// MARK: - Helpers

/// The format of `bytes` from their magic bytes, or the error saying why there is none.
func detectFormat(_ bytes: UnsafeRawBufferPointer, source: String) throws -> ImageFormat {
  if let format = ImageFormat(detecting: bytes) { return format }
  if bytes.isEmpty { throw ImageIOError.truncated(path: source, detail: "the file is empty") }
  for signature in [ImageFormat.jpegSignature, ImageFormat.pngSignature]
  where bytes.count < signature.count && signature.starts(with: bytes) {
    throw ImageIOError.truncated(path: source, detail: "only \(bytes.count) bytes, the start of a signature")
  }
  throw ImageIOError.unsupportedFormat(path: source, detected: describeSignature(bytes))
}

/// What the first bytes of an unsupported file look like, for the error message.
func describeSignature(_ bytes: UnsafeRawBufferPointer) -> String {
  func startsWith(_ text: String, at offset: Int = 0) -> Bool {
    let ascii = Array(text.utf8)
    return bytes.count >= offset + ascii.count && bytes[offset..<offset + ascii.count].elementsEqual(ascii)
  }
  let known: [(Bool, String)] = [
    (startsWith("GIF8"), "it looks like a GIF image"),
    (startsWith("BM"), "it looks like a BMP image"),
    (startsWith("RIFF") && startsWith("WEBP", at: 8), "it looks like a WebP image"),
    (startsWith("II*\u{0}") || startsWith("MM\u{0}*"), "it looks like a TIFF image"),
    (startsWith("ftyp", at: 4), "it looks like a HEIF/AVIF/MP4 file"),
    (startsWith("P5") || startsWith("P6"), "it looks like a PGM/PPM image"),
    (startsWith("<"), "it looks like HTML or XML, perhaps an error page saved instead of the image"),
  ]
  if let (_, text) = known.first(where: { $0.0 }) { return text }
  let head = bytes.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
  return "it starts with the bytes \(head)"
}

/// The whole file at `url`, or `ImageIOError.unreadableFile`.
func readFile(_ url: URL) throws -> Data {
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
    throw ImageIOError.unreadableFile(path: url.path, reason: "no such file")
  }
  if isDirectory.boolValue { throw ImageIOError.unreadableFile(path: url.path, reason: "it is a directory") }
  do {
    return try Data(contentsOf: url)
  } catch {
    throw ImageIOError.unreadableFile(path: url.path, reason: error.localizedDescription)
  }
}

func writeFile(_ bytes: [UInt8], to url: URL) throws {
  do {
    try AtomicFile.write(Data(bytes), to: url)
  } catch {
    throw ImageIOError.unwritableFile(path: url.path, reason: error.localizedDescription)
  }
}

/// An image's pixel buffer filled by `body`, without zero-filling it first.
func makePixels(count: Int, _ body: (UnsafeMutablePointer<UInt8>) throws -> Void) rethrows -> [UInt8] {
  guard count > 0 else { return [] }
  return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
    try body(buffer.baseAddress!)
    initialized = count
  }
}

/// The 3-channel image with each gray level of `gray` replicated, as PIL's `convert("RGB")` of an "L" image.
func replicatingGray(_ gray: Image) -> Image {
  precondition(gray.channels == 1, "replicatingGray expects 1 channel, got \(gray.channels).")
  let count = gray.width * gray.height
  let pixels = gray.pixels.withUnsafeBufferPointer { source in
    makePixels(count: count * 3) { rgb in
      for i in 0..<count {
        let value = source[i]
        rgb[3 * i] = value
        rgb[3 * i + 1] = value
        rgb[3 * i + 2] = value
      }
    }
  }
  return Image(width: gray.width, height: gray.height, channels: 3, pixels: pixels)
}
