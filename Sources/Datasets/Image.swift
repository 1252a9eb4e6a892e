// 8-bit images as decoded from files, before they become Float tensors.
import Tensors

/// An 8-bit image with interleaved channels, row-major: `pixels[(y·width + x)·channels + c]`.
/// `channels` is 3 (RGB) or 1 (grayscale, or palette indices for VOC segmentation masks).
public struct Image: Sendable, Equatable {
  public var width: Int
  public var height: Int
  public var channels: Int
  public var pixels: [UInt8]  // count == width · height · channels

  public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
    precondition(width >= 0 && height >= 0 && (channels == 1 || channels == 3),
                 "Image of \(width)×\(height)×\(channels) is not a valid 8-bit gray or RGB image.")
    precondition(pixels.count == width * height * channels,
                 "Image \(width)×\(height)×\(channels) needs \(width * height * channels) bytes, "
                   + "got \(pixels.count).")
    self.width = width
    self.height = height
    self.channels = channels
    self.pixels = pixels
  }

  /// A constant image.
  public init(width: Int, height: Int, channels: Int, value: UInt8 = 0) {
    self.init(width: width, height: height, channels: channels,
              pixels: [UInt8](repeating: value, count: width * height * channels))
  }

  public subscript(x: Int, y: Int, channel: Int) -> UInt8 {
    get { pixels[(y * width + x) * channels + channel] }
    set { pixels[(y * width + x) * channels + channel] = newValue }
  }
}
