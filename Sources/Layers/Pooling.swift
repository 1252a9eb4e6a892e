// Max, average, global-average and adaptive-average pooling over NHWC activations, with PyTorch semantics
// (`nn.MaxPool2d`, `nn.AvgPool2d(count_include_pad=True, ceil_mode=False)`, `nn.AdaptiveAvgPool2d`).
import Tensors

/// ⌊(size + 2·padding − kernel) / stride⌋ + 1 (PyTorch pooling with `ceil_mode=False`).
private func pooledSize(_ size: Int, kernelSize: Int, stride: Int, padding: Int, _ what: String) -> Int {
  precondition(kernelSize >= 1 && stride >= 1 && padding >= 0 && padding <= kernelSize / 2,
               "\(what)(kernel \(kernelSize), stride \(stride), padding \(padding)) needs padding ≤ kernel/2, as in PyTorch.")
  precondition(size + 2 * padding >= kernelSize,
               "\(what) kernel \(kernelSize) does not fit an input of size \(size) padded by \(padding).")
  return (size + 2 * padding - kernelSize) / stride + 1
}

private func checkNHWC(_ shape: [Int], _ what: String) {
  precondition(shape.count == 4, "\(what) expects an NHWC input [n, h, w, c], got shape \(shape).")
}

// MARK: - Max pooling

/// 2-D max pooling (PyTorch `nn.MaxPool2d`, dilation 1, `ceil_mode=False`); padding acts as −∞.
public struct MaxPool2D: Sendable {
  public let kernelSize: Int, stride: Int, padding: Int

  /// What backward needs: the winning input position of every output element.
  public struct Cache {
    let inputShape: [Int]  // [n, h, w, c]
    let argmax: [Int32]    // [n, outH, outW, c], the input pixel iy·w + ix within its image
  }

  /// `stride` defaults to `kernelSize`, as in PyTorch.
  public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
    self.kernelSize = kernelSize
    self.stride = stride ?? kernelSize
    self.padding = padding
  }

  public func forward(_ x: Tensor) -> (Tensor, Cache) {
    checkNHWC(x.shape, "MaxPool2D")
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let oh = pooledSize(h, kernelSize: kernelSize, stride: stride, padding: padding, "MaxPool2D")
    let ow = pooledSize(w, kernelSize: kernelSize, stride: stride, padding: padding, "MaxPool2D")
    precondition(h * w <= Int(Int32.max), "MaxPool2D input \(x.shape) has too many pixels per image for Int32 indices.")
    let (k, s, p) = (kernelSize, stride, padding)
    var argmax = [Int32](repeating: 0, count: n * oh * ow * c)
    let y = Tensor(uninitializedShape: [n, oh, ow, c]) { yBuffer in
      x.scalars.withUnsafeBufferPointer { xb in
        argmax.withUnsafeMutableBufferPointer { ab in
          let (xp, yp, ap) = (xb.baseAddress!, yBuffer.baseAddress!, ab.baseAddress!)
          parallelFor(0..<(n * oh), minimumChunk: max(1, 8_192 / max(1, ow * c * k * k))) { outputRows in
            for outputRow in outputRows {
              let image = outputRow / oh, oy = outputRow - image * oh
              let yStart = max(oy * s - p, 0), yEnd = min(oy * s - p + k, h)
              for ox in 0..<ow {
                let xStart = max(ox * s - p, 0), xEnd = min(ox * s - p + k, w)
                let offset = (outputRow * ow + ox) * c
                let best = yp + offset, index = ap + offset
                best.update(repeating: -.infinity, count: c)
                index.update(repeating: Int32(yStart * w + xStart), count: c)
                for iy in yStart..<yEnd {
                  for ix in xStart..<xEnd {
                    let source = xp + ((image * h + iy) * w + ix) * c
                    let position = Int32(iy * w + ix)
                    for channel in 0..<c {
                      let value = source[channel]
                      // PyTorch: the first strict maximum wins; NaN propagates.
                      if value > best[channel] || value.isNaN {
                        best[channel] = value
                        index[channel] = position
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return (y, Cache(inputShape: x.shape, argmax: argmax))
  }

  /// Routes each output gradient to its input's winning position (overlapping windows add).
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    let (n, h, w, c) = (cache.inputShape[0], cache.inputShape[1], cache.inputShape[2], cache.inputShape[3])
    precondition(dy.count == cache.argmax.count && dy.rank == 4 && dy.shape[0] == n && dy.shape[3] == c,
                 "MaxPool2D backward got dy \(dy.shape) for input \(cache.inputShape).")
    let perImage = dy.shape[1] * dy.shape[2]
    var dx = Tensor.zeros(cache.inputShape)
    dy.scalars.withUnsafeBufferPointer { db in
      cache.argmax.withUnsafeBufferPointer { ab in
        dx.scalars.withUnsafeMutableBufferPointer { xb in
          let (dyp, ap, dxp) = (db.baseAddress!, ab.baseAddress!, xb.baseAddress!)
          // Windows overlap within an image, so each image is scattered by one thread.
          parallelFor(0..<n, minimumChunk: max(1, 32_768 / max(1, perImage * c))) { images in
            for image in images {
              let target = dxp + image * h * w * c
              for pixel in (image * perImage)..<((image + 1) * perImage) {
                for channel in 0..<c {
                  let i = pixel * c + channel
                  target[Int(ap[i]) * c + channel] += dyp[i]
                }
              }
            }
          }
        }
      }
    }
    return dx
  }
}

// MARK: - Average pooling

/// 2-D average pooling (PyTorch `nn.AvgPool2d`, `count_include_pad=True`, `ceil_mode=False`).
///
/// The divisor is always k·k, border windows included: padding counts as zeros (MMSelfSup's VOC feature1
/// pooling, kernel 10 / stride 10 / padding 4, relies on it).
public struct AvgPool2D: Sendable {
  public let kernelSize: Int, stride: Int, padding: Int

  /// What backward needs: only the input shape.
  public struct Cache {
    let inputShape: [Int]  // [n, h, w, c]
  }

  /// `stride` defaults to `kernelSize`, as in PyTorch.
  public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
    self.kernelSize = kernelSize
    self.stride = stride ?? kernelSize
    self.padding = padding
  }

  public func forward(_ x: Tensor) -> (Tensor, Cache) {
    checkNHWC(x.shape, "AvgPool2D")
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let oh = pooledSize(h, kernelSize: kernelSize, stride: stride, padding: padding, "AvgPool2D")
    let ow = pooledSize(w, kernelSize: kernelSize, stride: stride, padding: padding, "AvgPool2D")
    let (k, s, p) = (kernelSize, stride, padding)
    let divisor = Float(k * k)
    let y = Tensor(uninitializedShape: [n, oh, ow, c]) { yBuffer in
      x.scalars.withUnsafeBufferPointer { xb in
        let (xp, yp) = (xb.baseAddress!, yBuffer.baseAddress!)
        parallelFor(0..<(n * oh), minimumChunk: max(1, 8_192 / max(1, ow * c * k * k))) { outputRows in
          for outputRow in outputRows {
            let image = outputRow / oh, oy = outputRow - image * oh
            let yStart = max(oy * s - p, 0), yEnd = min(oy * s - p + k, h)
            for ox in 0..<ow {
              let xStart = max(ox * s - p, 0), xEnd = min(ox * s - p + k, w)
              let sum = yp + (outputRow * ow + ox) * c
              sum.update(repeating: 0, count: c)
              for iy in yStart..<yEnd {
                for ix in xStart..<xEnd {
                  let source = xp + ((image * h + iy) * w + ix) * c
                  for channel in 0..<c { sum[channel] += source[channel] }
                }
              }
              for channel in 0..<c { sum[channel] /= divisor }
            }
          }
        }
      }
    }
    return (y, Cache(inputShape: x.shape))
  }

  /// Spreads each output gradient / (k·k) over the in-image part of its window (overlapping windows add).
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    let (n, h, w, c) = (cache.inputShape[0], cache.inputShape[1], cache.inputShape[2], cache.inputShape[3])
    let oh = pooledSize(h, kernelSize: kernelSize, stride: stride, padding: padding, "AvgPool2D")
    let ow = pooledSize(w, kernelSize: kernelSize, stride: stride, padding: padding, "AvgPool2D")
    precondition(dy.shape == [n, oh, ow, c],
                 "AvgPool2D backward expects dy [\(n), \(oh), \(ow), \(c)] for input \(cache.inputShape), got \(dy.shape).")
    let (k, s, p) = (kernelSize, stride, padding)
    let scale = 1 / Float(k * k)
    var dx = Tensor.zeros(cache.inputShape)
    dy.scalars.withUnsafeBufferPointer { db in
      dx.scalars.withUnsafeMutableBufferPointer { xb in
        let (dyp, dxp) = (db.baseAddress!, xb.baseAddress!)
        // Windows may overlap within an image, so each image is scattered by one thread.
        parallelFor(0..<n, minimumChunk: max(1, 32_768 / max(1, oh * ow * c * k * k))) { images in
          for image in images {
            for oy in 0..<oh {
              let yStart = max(oy * s - p, 0), yEnd = min(oy * s - p + k, h)
              for ox in 0..<ow {
                let xStart = max(ox * s - p, 0), xEnd = min(ox * s - p + k, w)
                let gradient = dyp + ((image * oh + oy) * ow + ox) * c
                for iy in yStart..<yEnd {
                  for ix in xStart..<xEnd {
                    let target = dxp + ((image * h + iy) * w + ix) * c
                    for channel in 0..<c { target[channel] += gradient[channel] * scale }
                  }
                }
              }
            }
          }
        }
      }
    }
    return dx
  }
}

// MARK: - Global average pooling

/// The mean over height and width: `[n, h, w, c]` → `[n, c]` (PyTorch `AdaptiveAvgPool2d(1)` then flatten).
public func globalAvgPool(_ x: Tensor) -> Tensor {
  checkNHWC(x.shape, "globalAvgPool")
  let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
  let pixels = h * w
  precondition(pixels > 0, "globalAvgPool needs a non-empty image, got shape \(x.shape).")
  let divisor = Float(pixels)
  return Tensor(uninitializedShape: [n, c]) { yBuffer in
    x.scalars.withUnsafeBufferPointer { xb in
      let (xp, yp) = (xb.baseAddress!, yBuffer.baseAddress!)
      parallelFor(0..<n, minimumChunk: max(1, 32_768 / max(1, pixels * c))) { images in
        for image in images {
          let sum = yp + image * c
          sum.update(repeating: 0, count: c)
          for pixel in 0..<pixels {
            let source = xp + (image * pixels + pixel) * c
            for channel in 0..<c { sum[channel] += source[channel] }
          }
          for channel in 0..<c { sum[channel] /= divisor }
        }
      }
    }
  }
}

/// ∂L/∂x of `globalAvgPool`: every pixel gets dy / (h·w). `dy` is `[n, c]`; `inputShape` is `[n, h, w, c]`.
public func globalAvgPoolBackward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
  checkNHWC(inputShape, "globalAvgPoolBackward")
  let (n, h, w, c) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
  precondition(dy.shape == [n, c], "globalAvgPoolBackward expects dy [\(n), \(c)] for input \(inputShape), got \(dy.shape).")
  let pixels = h * w
  let scale = 1 / Float(pixels)
  return Tensor(uninitializedShape: inputShape) { dxBuffer in
    dy.scalars.withUnsafeBufferPointer { db in
      let (dyp, dxp) = (db.baseAddress!, dxBuffer.baseAddress!)
      parallelFor(0..<(n * pixels), minimumChunk: max(1, 32_768 / max(1, c))) { rows in
        for row in rows {
          let gradient = dyp + (row / pixels) * c, target = dxp + row * c
          for channel in 0..<c { target[channel] = gradient[channel] * scale }
        }
      }
    }
  }
}

// MARK: - Adaptive average pooling

/// PyTorch's adaptive bin i of `outputSize` over `inputSize`: [⌊i·in/out⌋, ⌈(i+1)·in/out⌉).
private func adaptiveBin(_ i: Int, inputSize: Int, outputSize: Int) -> Range<Int> {
  let start = (i * inputSize) / outputSize
  let end = ((i + 1) * inputSize + outputSize - 1) / outputSize
  return start..<end
}

/// Adaptive average pooling to `[n, outputHeight, outputWidth, c]` (PyTorch `F.adaptive_avg_pool2d`).
public func adaptiveAvgPool2D(_ x: Tensor, outputHeight: Int, outputWidth: Int) -> Tensor {
  checkNHWC(x.shape, "adaptiveAvgPool2D")
  let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
  precondition(outputHeight >= 1 && outputWidth >= 1 && h >= 1 && w >= 1,
               "adaptiveAvgPool2D to \(outputHeight)×\(outputWidth) of input \(x.shape) is empty.")
  let (oh, ow) = (outputHeight, outputWidth)
  return Tensor(uninitializedShape: [n, oh, ow, c]) { yBuffer in
    x.scalars.withUnsafeBufferPointer { xb in
      let (xp, yp) = (xb.baseAddress!, yBuffer.baseAddress!)
      parallelFor(0..<(n * oh), minimumChunk: max(1, 8_192 / max(1, w * c))) { outputRows in
        for outputRow in outputRows {
          let image = outputRow / oh, oy = outputRow - image * oh
          let rowsBin = adaptiveBin(oy, inputSize: h, outputSize: oh)
          for ox in 0..<ow {
            let columnsBin = adaptiveBin(ox, inputSize: w, outputSize: ow)
            let divisor = Float(rowsBin.count * columnsBin.count)
            let sum = yp + (outputRow * ow + ox) * c
            sum.update(repeating: 0, count: c)
            for iy in rowsBin {
              for ix in columnsBin {
                let source = xp + ((image * h + iy) * w + ix) * c
                for channel in 0..<c { sum[channel] += source[channel] }
              }
            }
            for channel in 0..<c { sum[channel] /= divisor }
          }
        }
      }
    }
  }
}

/// ∂L/∂x of `adaptiveAvgPool2D`: each output gradient spread evenly over its bin (overlapping bins add).
public func adaptiveAvgPool2DBackward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
  checkNHWC(inputShape, "adaptiveAvgPool2DBackward")
  checkNHWC(dy.shape, "adaptiveAvgPool2DBackward")
  let (n, h, w, c) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
  let (oh, ow) = (dy.shape[1], dy.shape[2])
  precondition(dy.shape[0] == n && dy.shape[3] == c,
               "adaptiveAvgPool2DBackward got dy \(dy.shape) for input \(inputShape).")
  var dx = Tensor.zeros(inputShape)
  dy.scalars.withUnsafeBufferPointer { db in
    dx.scalars.withUnsafeMutableBufferPointer { xb in
      let (dyp, dxp) = (db.baseAddress!, xb.baseAddress!)
      parallelFor(0..<n, minimumChunk: max(1, 32_768 / max(1, h * w * c))) { images in
        for image in images {
          for oy in 0..<oh {
            let rowsBin = adaptiveBin(oy, inputSize: h, outputSize: oh)
            for ox in 0..<ow {
              let columnsBin = adaptiveBin(ox, inputSize: w, outputSize: ow)
              let scale = 1 / Float(rowsBin.count * columnsBin.count)
              let gradient = dyp + ((image * oh + oy) * ow + ox) * c
              for iy in rowsBin {
                for ix in columnsBin {
                  let target = dxp + ((image * h + iy) * w + ix) * c
                  for channel in 0..<c { target[channel] += gradient[channel] * scale }
                }
              }
            }
          }
        }
      }
    }
  }
  return dx
}
