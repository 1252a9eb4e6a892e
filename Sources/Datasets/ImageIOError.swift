// The one error type of image reading, decoding, encoding and writing (JPEG.swift, PNG.swift, Image+Files.swift).

/// An error reading, decoding, encoding or writing an image. Every message names the file (or the in-memory
/// source the caller named), says what is wrong and ends with a hint.
public enum ImageIOError: Error, Equatable, CustomStringConvertible {
  /// The file does not exist, is a directory, or could not be read.
  case unreadableFile(path: String, reason: String)
  /// The file could not be written.
  case unwritableFile(path: String, reason: String)
  /// The data ends before the image does: an empty file, or a download or copy that was cut short.
  /// `detail` is the codec library's message or what is missing.
  case truncated(path: String, detail: String)
  /// The bytes are neither JPEG nor PNG. The format is detected from the magic bytes, never from the file
  /// extension; `detected` names what the bytes look like (GIF, WebP, …) or lists the first bytes.
  case unsupportedFormat(path: String, detected: String)
  /// libjpeg-turbo or libpng rejected the data; `message` is the library's own message.
  case decodeFailed(path: String, format: ImageFormat, message: String)
  /// A valid image that cannot be returned in the requested form, e.g. palette indices from an RGB PNG or a JPEG.
  case unsupportedLayout(path: String, format: ImageFormat, reason: String)
  /// The header declares more pixels than `Image.maximumPixelCount`: a decompression bomb or a corrupt header.
  case tooLarge(path: String, width: Int, height: Int, limit: Int)
  /// A Huffman-coded JPEG whose header declares more pixels than its `dataBytes` bytes can encode (at least one
  /// bit per 8×8 block, so at most 512 pixels per byte): a corrupt header or a cut-off file, which libjpeg would
  /// complete with invented gray pixels after allocating the declared size.
  case implausibleSize(path: String, width: Int, height: Int, dataBytes: Int)
  /// libjpeg-turbo or libpng could not encode the image; `message` is the library's own message.
  case encodeFailed(path: String, format: ImageFormat, message: String)

  public var description: String {
    switch self {
    case let .unreadableFile(path, reason):
      return "Cannot read image \(path): \(reason). Check the path, the dataset root and the file's permissions."
    case let .unwritableFile(path, reason):
      return "Cannot write image \(path): \(reason). Check that the folder exists, is writable and has free space."
    case let .truncated(path, detail):
      return "Image \(path) is truncated (\(detail)). The download or copy was probably interrupted; fetch it "
        + "again, or run with --skip-corrupt to skip and count such files."
    case let .unsupportedFormat(path, detected):
      return "Image \(path) is not a JPEG or PNG file (\(detected)); the format is read from the file's first bytes, "
        + "not its extension. Convert it first, e.g. PIL: Image.open(src).convert('RGB').save('out.png')."
    case let .decodeFailed(path, format, message):
      return "Cannot decode \(format.name) image \(path): \(message). The file is corrupt; replace it, or run with "
        + "--skip-corrupt to skip and count such files."
    case let .unsupportedLayout(path, format, reason):
      return "Image \(path) (\(format.name)) \(reason)."
    case let .tooLarge(path, width, height, limit):
      return "Image \(path) declares \(width)×\(height) = \(width * height) pixels, more than the limit of \(limit) "
        + "(PIL's decompression-bomb limit). The header is corrupt, or the image must be shrunk before use."
    case let .implausibleSize(path, width, height, dataBytes):
      return "JPEG image \(path) declares \(width)×\(height) pixels, but its \(dataBytes) bytes can hold at most "
        + "\(dataBytes * 512) (Huffman-coded data spends at least one bit per 8×8 block). The header is corrupt or "
        + "the file is cut short; replace it, or run with --skip-corrupt to skip and count such files."
    case let .encodeFailed(path, format, message):
      return "Cannot encode \(path) as \(format.name): \(message). This is a bug or an image the codec cannot hold."
    }
  }
}
