// Channel conversion of decoded images: what every reader hands a backbone with 1 or 3 input channels.

/// `image` converted to `channels` channels: grey replicated to RGB, or RGB reduced to ITU-R 601-2 luma (Pillow's
/// `convert('L')`).
public func convertChannels(_ image: Image, to channels: Int) -> Image {
  precondition(channels == 1 || channels == 3, "Images have 1 or 3 channels, asked for \(channels).")
  if image.channels == channels { return image }
  if channels == 3 {
    return Image(width: image.width, height: image.height, channels: 3, pixels: image.pixels.flatMap { [$0, $0, $0] })
  }
  let gray = rgbToGrayscale(image)
  let stride = gray.channels
  return Image(width: gray.width, height: gray.height, channels: 1,
               pixels: (0..<(gray.width * gray.height)).map { gray.pixels[$0 * stride] })
}
