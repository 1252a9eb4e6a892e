// PNG decoding and encoding through libpng's simplified API (png_image_*), which reports errors through return
// values: the classic API needs setjmp/longjmp, which Swift cannot call. Decoding follows PIL's choices.
import CPNG
import Foundation

// png.h's PNG_FORMAT_FLAG_* bits.
private let formatAlpha: UInt32 = 0x01
private let formatColor: UInt32 = 0x02
private let formatLinear: UInt32 = 0x04  // 16-bit samples
private let formatColormap: UInt32 = 0x08

// MARK: - Decoding

/// Decodes a PNG as PIL does: `.grayOrRGB` and `.rgb` give PIL's `convert("L")` / `convert("RGB")` pixels,
/// `.indices` the raw palette indices of a palette PNG (VOC SegmentationClass: index = class, 255 = ignore) or the
/// gray levels of an 8-bit-or-less gray PNG, and throws `unsupportedLayout` for other PNGs.
///
/// What is done with each layout, and how it compares with PIL:
/// - palette PNGs expand to their palette colours (`.rgb`/`.grayOrRGB`); transparency (tRNS) is ignored, as PIL's
///   `convert("RGB")` ignores it;
/// - alpha channels are dropped, never composited (PIL's RGBA → RGB and LA → L);
/// - 1-, 2- and 4-bit gray are scaled to 0…255 (×255, ×85, ×17), as PIL's "1", "L;2" and "L;4" modes do;
/// - gAMA, cHRM, sRGB and iCCP chunks are ignored, as PIL ignores them (libpng would gamma-correct);
/// - 16-bit RGB keeps the high byte of each sample (PIL's "RGB;16B"); 16-bit gray is clipped to 255, as PIL's
///   "I;16" → "L" conversion does (so values above 255 saturate: PIL's behaviour, kept on purpose);
/// - 16-bit images with an alpha channel are rounded to 8 bits by libpng (v·255/65535), which can differ by 1
///   from PIL's high byte: the simplified API gives unscaled 16-bit samples only without alpha.
public func decodePNG(_ bytes: some ContiguousBytes, mode: ImageColorMode = .grayOrRGB,
                      source: String = "<memory>") throws -> Image {
  try bytes.withUnsafeBytes { try decodePNG($0, mode: mode, source: source) }
}

/// Decodes the palette indices of a palette PNG, or the gray levels of an 8-bit-or-less gray PNG, as 1 channel:
/// `np.array(Image.open(mask))` for a VOC SegmentationClass mask. Throws `unsupportedLayout` for RGB(A) and
/// 16-bit PNGs.
public func decodePNGIndices(_ bytes: some ContiguousBytes, source: String = "<memory>") throws -> Image {
  try decodePNG(bytes, mode: .indices, source: source)
}

/// Reads a PNG's dimensions and layout without decoding its pixels.
public func pngHeader(_ bytes: some ContiguousBytes, source: String = "<memory>") throws -> ImageHeader {
  try bytes.withUnsafeBytes { try pngHeader($0, source: source) }
}

func pngHeader(_ bytes: UnsafeRawBufferPointer, source: String) throws -> ImageHeader {
  let reader = try PNGReader(bytes, source: source)
  let format = reader.image.pointee.format
  return ImageHeader(format: .png, width: reader.width, height: reader.height,
                     channels: format & formatColor != 0 ? 3 : 1, hasPalette: format & formatColormap != 0)
}

func decodePNG(_ bytes: UnsafeRawBufferPointer, mode: ImageColorMode, source: String) throws -> Image {
  let reader = try PNGReader(bytes, source: source)
  let fileFormat = reader.image.pointee.format
  let isColor = fileFormat & formatColor != 0
  let hasAlpha = fileFormat & formatAlpha != 0  // an alpha channel: tRNS was removed by PNGReader
  let is16Bit = fileFormat & formatLinear != 0
  let (width, height) = (reader.width, reader.height)

  if mode == .indices {
    if fileFormat & formatColormap != 0 {
      // Colour-mapped output of a palette PNG keeps the file's indices (libpng: "Don't change from color-map
      // indices"); the RGBA colour map itself is not needed.
      return try reader.finishColormapped()
    }
    guard !isColor && !is16Bit else {
      throw ImageIOError.unsupportedLayout(
        path: source, format: .png,
        reason: isColor
          ? "is an RGB PNG without a palette, so it holds no class indices; convert its colours to indices "
            + "with the dataset's colour map first, or decode it with mode .rgb"
          : "is a 16-bit gray PNG; class indices must be 8-bit (palette or gray) PNGs")
    }
    return try reader.finish8Bit(color: false, alpha: hasAlpha)
  }

  var image: Image
  if is16Bit && !hasAlpha {
    // Unscaled 16-bit samples: with gAMA removed and the input taken as linear, libpng does no conversion.
    let samples = try reader.finish16Bit(color: isColor)
    let channels = isColor ? 3 : 1
    let pixels = samples.withUnsafeBufferPointer { source in
      makePixels(count: width * height * channels) { destination in
        if isColor {
          for i in 0..<source.count { destination[i] = UInt8(source[i] >> 8) }  // PIL "RGB;16B": high byte
        } else {
          for i in 0..<source.count { destination[i] = UInt8(min(source[i], 255)) }  // PIL "I;16" → "L": clip
        }
      }
    }
    image = Image(width: width, height: height, channels: channels, pixels: pixels)
  } else {
    image = try reader.finish8Bit(color: isColor, alpha: hasAlpha)
  }
  if mode == .rgb && image.channels == 1 { image = replicatingGray(image) }
  return image
}

// MARK: - Encoding

/// Encodes an 8-bit gray or RGB image as a PNG (libpng's default compression; an sRGB chunk is written).
public func encodePNG(_ image: Image, source: String = "<memory>") throws -> [UInt8] {
  try writePNG(image, format: image.channels == 3 ? formatColor : 0, colormap: nil, source: source)
}

/// Encodes a 1-channel image of palette indices as an 8-bit palette PNG with `palette`, flat RGB triples
/// (1…256 colours; every index must be below the number of colours). See `vocColorMap()`.
public func encodePalettePNG(_ indices: Image, palette: [UInt8] = vocColorMap(),
                             source: String = "<memory>") throws -> [UInt8] {
  precondition(indices.channels == 1, "A palette PNG stores 1 channel of indices, got \(indices.channels) channels.")
  precondition(palette.count % 3 == 0 && (3...768).contains(palette.count),
               "A palette holds 1…256 RGB triples (3…768 bytes), got \(palette.count) bytes.")
  let colors = palette.count / 3
  if colors < 256, let largest = indices.pixels.max() {
    precondition(Int(largest) < colors, "Index \(largest) is outside the palette of \(colors) colours.")
  }
  return try writePNG(indices, format: formatColor | formatColormap, colormap: (palette, colors), source: source)
}

/// The PASCAL VOC colour map: flat RGB triples for labels 0..<count, as the VOC devkit's `labelcolormap(N)`
/// builds them. Bits 0, 1, 2 of the label set the most significant bit of R, G, B; bits 3, 4, 5 the next bit;
/// and so on (0 → black, 1 → (128, 0, 0), 15 person → (192, 128, 128), 255 → (224, 224, 192)).
public func vocColorMap(count: Int = 256) -> [UInt8] {
  precondition((0...256).contains(count), "The VOC colour map has at most 256 entries, asked for \(count).")
  var map: [UInt8] = []
  map.reserveCapacity(3 * count)
  for label in 0..<count {
    var (red, green, blue) = (0, 0, 0)
    var bits = label
    for shift in stride(from: 7, through: 0, by: -1) {
      red |= (bits & 1) << shift
      green |= ((bits >> 1) & 1) << shift
      blue |= ((bits >> 2) & 1) << shift
      bits >>= 3
    }
    map += [UInt8(red), UInt8(green), UInt8(blue)]
  }
  return map
}

private func writePNG(_ image: Image, format: UInt32, colormap: (bytes: [UInt8], colors: Int)?,
                      source: String) throws -> [UInt8] {
  precondition(image.width > 0 && image.height > 0,
               "A PNG needs at least one pixel, got a \(image.width)×\(image.height) image.")
  var header = png_image()
  header.version = UInt32(PNG_IMAGE_VERSION)
  header.width = UInt32(image.width)
  header.height = UInt32(image.height)
  header.format = format
  header.colormap_entries = UInt32(colormap?.colors ?? 0)
  defer { png_image_free(&header) }
  // PNG_IMAGE_PNG_SIZE_MAX: worst-case zlib size of the filtered rows plus every chunk's overhead.
  let filtered = image.pixels.count + image.height
  let compressed = filtered + (filtered + 7) / 8 + (filtered + 63) / 64 + 11
  var capacity = 8 + 25 + 16 + 44 + 12 + 12 + 3 * (colormap?.colors ?? 0) + 12 + 12 * (compressed / 8192 + 1)
    + compressed
  for _ in 0..<2 {
    var size = capacity
    var output = [UInt8](repeating: 0, count: capacity)
    let status = image.pixels.withUnsafeBufferPointer { pixels in
      output.withUnsafeMutableBytes { memory in
        png_image_write_to_memory(&header, memory.baseAddress, &size, 0, pixels.baseAddress,
                                  Int32(image.width * image.channels), colormap?.bytes)
      }
    }
    if status != 0 {
      output.removeLast(output.count - size)
      return output
    }
    guard size > capacity else { break }
    capacity = size  // the buffer was too small: libpng reports the size it needs
  }
  throw ImageIOError.encodeFailed(path: source, format: .png, message: pngMessage(header))
}

// MARK: - Reader

/// One simplified-API read: `begin_read` on construction, one `finish…` call, `png_image_free` on release.
///
/// gAMA, cHRM, sRGB, iCCP and tRNS chunks before the first IDAT are removed from the stream first (PIL ignores
/// them for these conversions; libpng would gamma-correct or composite). Chunks are self-contained, each with its
/// own CRC, so the rest of the stream stays valid.
///
/// The `png_image` lives on the heap because libpng keeps its address (as the error pointer) between the calls,
/// and reads the stream in place, so the stream must outlive the reader too: the caller's bytes do, and a
/// stripped copy is owned here.
private final class PNGReader {
  let image: UnsafeMutablePointer<png_image>
  let width: Int
  let height: Int
  let source: String
  private let strippedStream: UnsafeMutableRawBufferPointer?

  init(_ bytes: UnsafeRawBufferPointer, source: String) throws {
    guard bytes.count >= 8 else {
      throw ImageIOError.truncated(path: source, detail: "\(bytes.count) bytes, shorter than the PNG signature")
    }
    self.source = source
    image = .allocate(capacity: 1)
    image.initialize(to: png_image())
    image.pointee.version = UInt32(PNG_IMAGE_VERSION)
    strippedStream = removingChunks(bytes, named: ["gAMA", "cHRM", "sRGB", "iCCP", "tRNS"])
    let stream = strippedStream.map { UnsafeRawBufferPointer($0) } ?? bytes
    if png_image_begin_read_from_memory(image, stream.baseAddress, stream.count) == 0 {
      width = 0
      height = 0
      throw Self.error(image.pointee, source: source)
    }
    width = Int(image.pointee.width)
    height = Int(image.pointee.height)
    guard width * height <= Image.maximumPixelCount else {
      throw ImageIOError.tooLarge(path: source, width: width, height: height, limit: Image.maximumPixelCount)
    }
  }

  deinit {
    png_image_free(image)
    image.deallocate()
    strippedStream?.deallocate()
  }

  /// 8-bit samples, gray or RGB; an alpha channel is read and then dropped (PIL drops it, libpng would composite).
  func finish8Bit(color: Bool, alpha: Bool) throws -> Image {
    let outputChannels = color ? 3 : 1
    let readChannels = outputChannels + (alpha ? 1 : 0)
    // 16-bit input becomes 8-bit by scaling rather than by linear → sRGB encoding.
    image.pointee.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
    image.pointee.format = (color ? formatColor : 0) | (alpha ? formatAlpha : 0)
    var samples = try makePixels(count: width * height * readChannels) { buffer in
      try finish(buffer, rowStride: width * readChannels, colormap: nil)
    }
    if alpha {
      let count = width * height
      samples = samples.withUnsafeBufferPointer { source in
        makePixels(count: count * outputChannels) { destination in
          for i in 0..<count {
            for c in 0..<outputChannels { destination[i * outputChannels + c] = source[i * readChannels + c] }
          }
        }
      }
    }
    return Image(width: width, height: height, channels: outputChannels, pixels: samples)
  }

  /// Unscaled 16-bit samples in host byte order, gray or RGB, for files without alpha.
  func finish16Bit(color: Bool) throws -> [UInt16] {
    let channels = color ? 3 : 1
    image.pointee.format = (color ? formatColor : 0) | formatLinear
    return try [UInt16](unsafeUninitializedCapacity: width * height * channels) { buffer, initialized in
      try finish(buffer.baseAddress!, rowStride: width * channels, colormap: nil)
      initialized = width * height * channels
    }
  }

  /// The palette indices of a palette PNG, 1 channel.
  func finishColormapped() throws -> Image {
    image.pointee.format = formatColor | formatAlpha | formatColormap  // PNG_FORMAT_RGBA_COLORMAP
    var colormap = [UInt8](repeating: 0, count: 256 * 4)
    let indices = try colormap.withUnsafeMutableBytes { colormap in
      try makePixels(count: width * height) { buffer in
        try finish(buffer, rowStride: width, colormap: colormap.baseAddress)
      }
    }
    return Image(width: width, height: height, channels: 1, pixels: indices)
  }

  private func finish(_ buffer: UnsafeMutableRawPointer, rowStride: Int, colormap: UnsafeMutableRawPointer?) throws {
    let status = png_image_finish_read(image, nil, buffer, Int32(rowStride), colormap)
    guard status != 0 else { throw Self.error(image.pointee, source: source) }
  }

  /// The error for a failed call: truncation when libpng ran off the end of the data.
  static func error(_ image: png_image, source: String) -> ImageIOError {
    let message = pngMessage(image)
    if message.contains("read beyond end of data") || message.contains("Not enough image data") {
      return .truncated(path: source, detail: message)
    }
    return .decodeFailed(path: source, format: .png, message: message)
  }
}

/// libpng's message in a `png_image` (a NUL-terminated char[64]).
private func pngMessage(_ image: png_image) -> String {
  withUnsafeBytes(of: image.message) { raw in
    let text = String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    return text.isEmpty ? "libpng gave no message" : text
  }
}

/// A copy of the PNG stream without the chunks of the given types that come before the first IDAT (the caller
/// deallocates it), or nil when there are none. A chunk is a 4-byte big-endian length, a 4-byte type, the data
/// and a 4-byte CRC.
private func removingChunks(_ bytes: UnsafeRawBufferPointer, named names: [String])
  -> UnsafeMutableRawBufferPointer?
{
  let types = names.map { Array($0.utf8) }
  var kept: [Range<Int>] = []
  var keptStart = 0
  var offset = 8
  while offset + 8 <= bytes.count {
    let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
    let type = bytes[offset + 4..<offset + 8]
    let end = offset + 12 + length
    if end > bytes.count || type.elementsEqual("IDAT".utf8) { break }
    if types.contains(where: { type.elementsEqual($0) }) {
      kept.append(keptStart..<offset)
      keptStart = end
    }
    offset = end
  }
  guard !kept.isEmpty else { return nil }
  kept.append(keptStart..<bytes.count)
  let stream = UnsafeMutableRawBufferPointer.allocate(byteCount: kept.reduce(0) { $0 + $1.count }, alignment: 1)
  var written = 0
  for range in kept {
    UnsafeMutableRawBufferPointer(rebasing: stream[written..<written + range.count])
      .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[range]))
    written += range.count
  }
  return stream
}
