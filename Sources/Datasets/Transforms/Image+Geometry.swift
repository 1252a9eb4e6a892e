// Crops and flips with Pillow / torchvision semantics.

extension Image {
  /// Pillow's `crop((x, y, x + width, y + height))` (torchvision `F.crop(img, top: y, left: x, height, width)`):
  /// the box may reach outside the image; those pixels are 0.
  public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> Image {
    precondition(cropWidth >= 0 && cropHeight >= 0, "Crop size \(cropWidth)×\(cropHeight) is negative.")
    let c = channels
    let x0 = max(x, 0), x1 = min(x + cropWidth, width)  // the part of the box inside the image
    let y0 = max(y, 0), y1 = min(y + cropHeight, height)
    let inside = x0 < x1 && y0 < y1
    let fullyInside = inside && x0 == x && x1 == x + cropWidth && y0 == y && y1 == y + cropHeight
    let count = cropWidth * cropHeight * c
    let output = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
      let out = buffer.baseAddress!
      if !fullyInside { out.initialize(repeating: 0, count: count) }
      if inside {
        pixels.withUnsafeBufferPointer { source in
          let rowBytes = (x1 - x0) * c
          for row in y0..<y1 {
            (out + ((row - y) * cropWidth + (x0 - x)) * c)
              .update(from: source.baseAddress! + (row * width + x0) * c, count: rowBytes)
          }
        }
      }
      initialized = count
    }
    return Image(width: cropWidth, height: cropHeight, channels: c, pixels: output)
  }

  /// torchvision `CenterCrop((height, width))` on a PIL image: a crop larger than the image is zero-padded
  /// first (left/top get the floor half of the padding), otherwise the box starts at
  /// `int(round((size − crop) / 2.0))` with Python's round-half-to-even.
  public func centerCropped(width cropWidth: Int, height cropHeight: Int) -> Image {
    func start(_ size: Int, _ crop: Int) -> Int {
      if crop > size { return -((crop - size) / 2) }  // pad (crop − size) // 2 on the left/top, then crop at 0
      return Int((Double(size - crop) / 2.0).rounded(.toNearestOrEven))
    }
    return cropped(x: start(width, cropWidth), y: start(height, cropHeight), width: cropWidth, height: cropHeight)
  }

  /// torchvision `CenterCrop(size)`: a `size × size` centre crop.
  public func centerCropped(size: Int) -> Image { centerCropped(width: size, height: size) }

  /// Pillow's `transpose(FLIP_LEFT_RIGHT)` (torchvision `F.hflip`).
  public func flippedHorizontally() -> Image {
    let c = channels, w = width
    let output = [UInt8](unsafeUninitializedCapacity: pixels.count) { buffer, initialized in
      pixels.withUnsafeBufferPointer { source in
        let input = source.baseAddress!, out = buffer.baseAddress!
        for row in 0..<height {
          let inRow = input + row * w * c
          let outRow = out + row * w * c
          if c == 3 {
            for x in 0..<w {
              let s = inRow + (w - 1 - x) * 3
              outRow[x * 3] = s[0]; outRow[x * 3 + 1] = s[1]; outRow[x * 3 + 2] = s[2]
            }
          } else {
            for x in 0..<w { outRow[x] = inRow[w - 1 - x] }
          }
        }
      }
      initialized = pixels.count
    }
    return Image(width: w, height: height, channels: c, pixels: output)
  }
}

/// torchvision `F.resized_crop(img, top: y, left: x, height, width, [outputHeight, outputWidth], BILINEAR)` on a
/// PIL image: crop, then Pillow's antialiased bilinear resize. A box inside the image is resampled in place
/// (no intermediate crop); one reaching outside is cropped with zero padding first.
public func resizedCrop(_ image: Image, x: Int, y: Int, width: Int, height: Int,
                        outputWidth: Int, outputHeight: Int) -> Image {
  if x >= 0 && y >= 0 && x + width <= image.width && y + height <= image.height {
    return image.resampled(x: x, y: y, width: width, height: height,
                           outputWidth: outputWidth, outputHeight: outputHeight)
  }
  return image.cropped(x: x, y: y, width: width, height: height)
    .resized(width: outputWidth, height: outputHeight)
}
