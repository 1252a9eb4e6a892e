// cv2.resize on uint8 images, as mmcv.imresize / imrescale call it (cv2 backend): INTER_LINEAR for images,
// INTER_NEAREST for label maps. Reference: OpenCV modules/imgproc/src/resize.cpp (resizeGeneric_, HResizeLinear,
// VResizeLinear with VResizeLinearVec_32s8u, resizeNN).
//
// INTER_LINEAR on 8-bit data is fixed point: each axis' weights are rounded to 11 bits (INTER_RESIZE_COEF_SCALE =
// 2048); the horizontal pass keeps exact Int32 sums (source · 2048-scaled weight), and the vertical pass combines two
// such rows the way OpenCV's vector kernel does: ((S0 >> 4) · β0 >> 16) + ((S1 >> 4) · β1 >> 16), then a rounding
// shift by 2 and saturation. (The scalar formula (β0·S0 + β1·S1 + 2^21) >> 22 differs by 1 now and then; the vector
// kernel is what OpenCV runs on x86/ARM, and what `make_segmentation_transform_fixtures.py` checks against cv2.)
// An exact 2× downscale goes through OpenCV's INTER_AREA fast path, which averages 2×2 blocks with rounding: the
// same values this kernel gives for weights 1024/1024, so no special case is needed.

extension Image {
  /// `cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)` of an 8-bit image, pixel for pixel.
  public func resizedLikeOpenCVLinear(width outputWidth: Int, height outputHeight: Int) -> Image {
    precondition(width > 0 && height > 0 && outputWidth > 0 && outputHeight > 0,
                 "OpenCV resize needs positive sizes; got \(width)×\(height) → \(outputWidth)×\(outputHeight).")
    if outputWidth == width && outputHeight == height { return self }
    let c = channels
    let columns = OpenCVLinearTaps(sourceSize: width, outputSize: outputWidth, clampWeights: true)
    let rows = OpenCVLinearTaps(sourceSize: height, outputSize: outputHeight, clampWeights: false)
    let rowElements = outputWidth * c

    // Horizontal pass for every source row a output row reads: [height, outputWidth·c] Int32 (value · 2048).
    var horizontal = [Int32](repeating: 0, count: height * rowElements)
    pixels.withUnsafeBufferPointer { source in
      horizontal.withUnsafeMutableBufferPointer { destination in
        for y in 0..<height {
          let sourceRow = source.baseAddress! + y * width * c
          let out = destination.baseAddress! + y * rowElements
          for x in 0..<outputWidth {
            let first = columns.first[x] * c, second = columns.second[x] * c
            let a0 = columns.weight0[x], a1 = columns.weight1[x]
            for channel in 0..<c {
              out[x * c + channel] = Int32(sourceRow[first + channel]) * a0 + Int32(sourceRow[second + channel]) * a1
            }
          }
        }
      }
    }

    // Vertical pass: OpenCV's vector kernel (VResizeLinearVec_32s8u) for every element.
    let output = horizontal.withUnsafeBufferPointer { horizontal in
      makePixels(count: outputHeight * rowElements) { destination in
        for y in 0..<outputHeight {
          let row0 = horizontal.baseAddress! + rows.first[y] * rowElements
          let row1 = horizontal.baseAddress! + rows.second[y] * rowElements
          let b0 = rows.weight0[y], b1 = rows.weight1[y]
          let out = destination + y * rowElements
          for i in 0..<rowElements {
            let sum = (((row0[i] >> 4) * b0) >> 16) + (((row1[i] >> 4) * b1) >> 16)
            let value = (sum + 2) >> 2
            out[i] = value <= 0 ? 0 : (value >= 255 ? 255 : UInt8(truncatingIfNeeded: value))
          }
        }
      }
    }
    return Image(width: outputWidth, height: outputHeight, channels: c, pixels: output)
  }

  /// `cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)`: output x reads source
  /// `min(floor(x · (1 / (outputWidth / width))), width − 1)` (resizeNN's `ifx`, computed in double), rows alike.
  public func resizedLikeOpenCVNearest(width outputWidth: Int, height outputHeight: Int) -> Image {
    precondition(width > 0 && height > 0 && outputWidth > 0 && outputHeight > 0,
                 "OpenCV resize needs positive sizes; got \(width)×\(height) → \(outputWidth)×\(outputHeight).")
    if outputWidth == width && outputHeight == height { return self }
    let c = channels
    let inverseX = 1.0 / (Double(outputWidth) / Double(width))
    let inverseY = 1.0 / (Double(outputHeight) / Double(height))
    let sourceX = (0..<outputWidth).map { min(Int((Double($0) * inverseX).rounded(.down)), width - 1) }
    let output = pixels.withUnsafeBufferPointer { source in
      makePixels(count: outputWidth * outputHeight * c) { destination in
        for y in 0..<outputHeight {
          let sy = min(Int((Double(y) * inverseY).rounded(.down)), height - 1)
          let sourceRow = source.baseAddress! + sy * width * c
          let out = destination + y * outputWidth * c
          for x in 0..<outputWidth {
            for channel in 0..<c { out[x * c + channel] = sourceRow[sourceX[x] * c + channel] }
          }
        }
      }
    }
    return Image(width: outputWidth, height: outputHeight, channels: c, pixels: output)
  }
}

/// OpenCV's INTER_LINEAR taps along one axis (resizeGeneric_'s xofs/alpha and yofs/beta): output i reads source
/// `first[i]` and `second[i]` with 11-bit weights `weight0[i]`, `weight1[i]`.
struct OpenCVLinearTaps {
  var first: [Int]
  var second: [Int]
  var weight0: [Int32]
  var weight1: [Int32]

  /// `clampWeights`: the horizontal axis zeroes the fraction where the source index leaves the image (sx < 0 or
  /// sx ≥ size − 1); the vertical axis keeps it and clamps the two row indices instead.
  init(sourceSize: Int, outputSize: Int, clampWeights: Bool) {
    let scale = 1.0 / (Double(outputSize) / Double(sourceSize))  // OpenCV: scale_x = 1. / inv_scale_x
    first = []; second = []; weight0 = []; weight1 = []
    for i in 0..<outputSize {
      var fraction = Float((Double(i) + 0.5) * scale - 0.5)       // (float)((dx + 0.5) · scale_x − 0.5)
      var index = Int(fraction.rounded(.down))                     // cvFloor
      fraction -= Float(index)
      if clampWeights {
        if index < 0 { index = 0; fraction = 0 }
        if index >= sourceSize - 1 { index = sourceSize - 1; fraction = 0 }
      }
      // saturate_cast<short>(w · 2048) rounds half to even.
      weight0.append(Int32(((1 - fraction) * 2048).rounded(.toNearestOrEven)))
      weight1.append(Int32((fraction * 2048).rounded(.toNearestOrEven)))
      first.append(min(max(index, 0), sourceSize - 1))
      second.append(min(max(index + 1, 0), sourceSize - 1))
    }
  }
}
