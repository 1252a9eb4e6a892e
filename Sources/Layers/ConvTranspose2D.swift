// Transposed 2-D convolution over NHWC activations (PyTorch `nn.ConvTranspose2d`, groups = 1): one GEMM from the
// input pixels to their k·k·out output taps, then the taps folded into the output — a plain scatter when the windows
// do not overlap (kernel = stride, padding 0: mmdet's mask-head upsampler), otherwise `col2im` of the convolution
// whose data-gradient this layer is. Backward is that convolution's forward: im2col(dy) then two GEMMs.
import Tensors

/// How `ConvTranspose2D` draws its initial weights. Fans follow `torch.nn.init._calculate_fan_in_and_fan_out` on
/// PyTorch's weight `[in, out, kh, kw]`, which reads dimension 1 as the fan-in: fan_in = out·kh·kw, fan_out = in·kh·kw.
public enum ConvTransposeInitialization: Sendable {
  /// mmdet 2.x `FCNMaskHead.init_weights`: `kaiming_normal_(mode='fan_out', nonlinearity='relu')`, std = √(2 / (in·kh·kw)),
  /// and the bias set to 0.
  case kaimingNormalFanOut
  /// `nn.ConvTranspose2d.reset_parameters`: U(±1/√fan_in) for weight and bias, fan_in = out·kh·kw.
  case pytorchDefault
}

/// A square-kernel transposed convolution (PyTorch `nn.ConvTranspose2d(in, out, k, stride, padding, output_padding,
/// groups=1, bias, dilation)`) on `[n, h, w, inChannels]` inputs, giving `[n, H, W, outChannels]` with
/// H = (h − 1)·stride − 2·padding + dilation·(k − 1) + outputPadding + 1 (W likewise).
///
/// Storage: the weight is kept `[in, kh, kw, out]` (IHWO), so flattened it is `[in, kh·kw·out]` and one GEMM
/// `x[n·h·w, in] · W` gives every input pixel's taps in (kh, kw, out) order — the order of an im2col row over the
/// output. PyTorch's state-dict tensor is `[in, out, kh, kw]`; the stored one maps to it by the permutation
/// `[0, 3, 1, 2]`, the same as a Conv2D's OHWI → OIHW, so the parameter uses `ExportLayout.convOHWI` and state dicts
/// load and save unchanged (`exportedShape` is `[in, out, kh, kw]`).
public final class ConvTranspose2D: Layer {
  public let inChannels: Int, outChannels: Int
  public let kernelSize: Int, stride: Int, padding: Int, outputPadding: Int, dilation: Int
  public let weight: Parameter   // [in, kh, kw, out]
  public let bias: Parameter?    // [out]
  /// The largest tap buffer, in floats (16 MB): inputs are processed in chunks of whole images below it.
  var maximumColumnElements = 1 << 22

  /// What backward needs: the input (backward rebuilds the output taps' gradient from dy itself).
  public struct Cache {
    let x: Tensor  // [n, h, w, inChannels]
  }

  public init<G: RandomNumberGenerator>(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                                        padding: Int = 0, outputPadding: Int = 0, dilation: Int = 1,
                                        hasBias: Bool = true,
                                        initialization: ConvTransposeInitialization = .pytorchDefault,
                                        using generator: inout G) {
    precondition(inChannels >= 1 && outChannels >= 1 && kernelSize >= 1 && stride >= 1 && padding >= 0
                   && dilation >= 1 && outputPadding >= 0 && outputPadding < stride,
                 "ConvTranspose2D(in: \(inChannels), out: \(outChannels), kernel: \(kernelSize), stride: \(stride), "
                   + "padding: \(padding), output padding: \(outputPadding), dilation: \(dilation)) is not a valid "
                   + "transposed convolution (this layer needs 0 ≤ output padding < stride).")
    self.inChannels = inChannels; self.outChannels = outChannels
    self.kernelSize = kernelSize; self.stride = stride; self.padding = padding
    self.outputPadding = outputPadding; self.dilation = dilation
    let shape = [inChannels, kernelSize, kernelSize, outChannels]
    let fanIn = Float(outChannels * kernelSize * kernelSize)   // PyTorch's fan-in of [in, out, kh, kw]
    let fanOut = Float(inChannels * kernelSize * kernelSize)
    switch initialization {
    case .kaimingNormalFanOut:
      weight = Parameter(.randomNormal(shape, std: (2 / fanOut).squareRoot(), using: &generator),
                         exportLayout: .convOHWI)
      bias = hasBias ? Parameter(.zeros([outChannels])) : nil
    case .pytorchDefault:
      let bound = 1 / fanIn.squareRoot()
      weight = Parameter(.randomUniform(shape, low: -bound, high: bound, using: &generator), exportLayout: .convOHWI)
      bias = hasBias ? Parameter(.randomUniform([outChannels], low: -bound, high: bound, using: &generator)) : nil
    }
  }

  public var namedParameters: [NamedParameter] {
    var result: [NamedParameter] = [("weight", weight)]
    if let bias { result.append(("bias", bias)) }
    return result
  }

  /// The output shape `[n, H, W, out]` for an input shape `[n, h, w, in]`.
  public func outputShape(for inputShape: [Int]) -> [Int] {
    precondition(inputShape.count == 4 && inputShape[3] == inChannels && inputShape[1] >= 1 && inputShape[2] >= 1,
                 "ConvTranspose2D expects an input [n, h, w, \(inChannels)], got shape \(inputShape).")
    let extent = dilation * (kernelSize - 1) + outputPadding + 1
    let height = (inputShape[1] - 1) * stride - 2 * padding + extent
    let width = (inputShape[2] - 1) * stride - 2 * padding + extent
    precondition(height >= 1 && width >= 1,
                 "ConvTranspose2D: input \(inputShape) with padding \(padding) gives an empty output \(height)×\(width).")
    return [inputShape[0], height, width, outChannels]
  }

  /// The convolution this layer is the transpose of: its input is our output, its output our input.
  private func transposedGeometry(_ outputShape: [Int]) -> ConvGeometry {
    ConvGeometry(inputShape: outputShape, kernelSize: kernelSize, stride: stride, padding: padding,
                 dilation: dilation)
  }

  /// Kernel = stride, no padding, no dilation: every output pixel is exactly one tap of one input pixel.
  private var tapsDoNotOverlap: Bool {
    kernelSize == stride && padding == 0 && dilation == 1 && outputPadding == 0
  }

  /// Images per chunk so that a chunk's taps `[images·h·w, k·k·out]` stay under `maximumColumnElements`.
  private func imagesPerChunk(_ inputShape: [Int]) -> Int {
    let perImage = inputShape[1] * inputShape[2] * kernelSize * kernelSize * outChannels
    return max(1, min(inputShape[0], maximumColumnElements / max(perImage, 1)))
  }

  // MARK: - Forward

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    let outShape = outputShape(for: x.shape)
    let g = transposedGeometry(outShape)
    precondition(g.outputHeight == x.shape[1] && g.outputWidth == x.shape[2],
                 "ConvTranspose2D: the output \(outShape) does not map back onto the input \(x.shape).")
    let (h, w) = (x.shape[1], x.shape[2])
    let pixelsPerImage = h * w
    let tapWidth = kernelSize * kernelSize * outChannels
    let outputPerImage = outShape[1] * outShape[2] * outChannels
    let chunkImages = imagesPerChunk(x.shape)
    var y = Tensor(uninitializedShape: outShape) { _ in }
    let taps = allocateScratch(chunkImages * pixelsPerImage * tapWidth)  // [images·h·w, kh·kw·out]
    defer { taps.deallocate() }
    x.scalars.withUnsafeBufferPointer { xb in
      weight.value.scalars.withUnsafeBufferPointer { wb in
        y.scalars.withUnsafeMutableBufferPointer { yb in
          for first in Swift.stride(from: 0, to: x.shape[0], by: chunkImages) {
            let images = first..<min(x.shape[0], first + chunkImages)
            let rows = images.count * pixelsPerImage
            // taps[r, (ky, kx, o)] = Σ_c x[r, c] · W[c, ky, kx, o]
            gemm(m: rows, n: tapWidth, k: inChannels, xb.baseAddress! + first * pixelsPerImage * inChannels,
                 wb.baseAddress!, into: taps)
            let target = yb.baseAddress! + first * outputPerImage
            if tapsDoNotOverlap {
              scatterTaps(taps, images: images.count, height: h, width: w, bias: bias?.value.scalars, into: target)
            } else {
              col2im(taps, g, images: 0..<images.count, into: target)
            }
          }
        }
      }
    }
    if let bias, !tapsDoNotOverlap { addBias(bias.value.scalars, to: &y) }  // the scatter adds it itself
    return (y, Cache(x: x))
  }

  /// Kernel = stride: y[b, i·k + ky, j·k + kx, :] = taps[(b, i, j), (ky, kx, :)] (+ bias). For each input row (b, i)
  /// and tap row ky, the taps of j = 0..<w are k·out contiguous floats each and land contiguously in output row
  /// i·k + ky.
  private func scatterTaps(_ taps: UnsafePointer<Float>, images: Int, height: Int, width: Int, bias: [Float]?,
                           into y: UnsafeMutablePointer<Float>) {
    let k = kernelSize, out = outChannels
    let run = k * out                       // one (input pixel, ky) run: kx and channels
    let outputRow = width * k * out         // floats in one output row
    let biasRun = bias.map { b in (0..<k).flatMap { _ in b } } ?? []  // the bias repeated for each kx, [k·out]
    biasRun.withUnsafeBufferPointer { biasBuffer in
      let bp = biasBuffer.baseAddress
      parallelFor(0..<(images * height), minimumChunk: max(1, 16_384 / max(outputRow, 1))) { inputRows in
        for inputRow in inputRows {
          for ky in 0..<k {
            let destination = y + (inputRow * k + ky) * outputRow
            for j in 0..<width {
              let source = taps + ((inputRow * width + j) * k + ky) * run
              let target = destination + j * run
              if let bp {
                for index in 0..<run { target[index] = source[index] + bp[index] }
              } else {
                target.update(from: source, count: run)
              }
            }
          }
        }
      }
    }
  }

  /// The adjoint of `scatterTaps`: dtaps[(b, i, j), (ky, kx, :)] = dy[b, i·k + ky, j·k + kx, :].
  private func gatherTaps(_ dy: UnsafePointer<Float>, images: Int, height: Int, width: Int,
                          into taps: UnsafeMutablePointer<Float>) {
    let k = kernelSize, out = outChannels
    let run = k * out
    let outputRow = width * k * out
    parallelFor(0..<(images * height), minimumChunk: max(1, 16_384 / max(outputRow, 1))) { inputRows in
      for inputRow in inputRows {
        for ky in 0..<k {
          let source = dy + (inputRow * k + ky) * outputRow
          for j in 0..<width {
            (taps + ((inputRow * width + j) * k + ky) * run).update(from: source + j * run, count: run)
          }
        }
      }
    }
  }

  private func addBias(_ values: [Float], to y: inout Tensor) {
    let out = outChannels, pixels = y.count / out
    values.withUnsafeBufferPointer { bb in
      y.scalars.withUnsafeMutableBufferPointer { yb in
        let (bp, yp) = (bb.baseAddress!, yb.baseAddress!)
        parallelFor(0..<pixels, minimumChunk: max(1, 65_536 / out)) { range in
          for pixel in range {
            let row = yp + pixel * out
            for o in 0..<out { row[o] += bp[o] }
          }
        }
      }
    }
  }

  // MARK: - Backward

  /// ∂L/∂x `[n, h, w, in]` from ∂L/∂y `[n, H, W, out]`; adds ∂L/∂W (`[in, kh, kw, out]`) and ∂L/∂b when trainable.
  /// dtaps = gather (or im2col) of dy; dx = dtaps · Wᵀ; dW += xᵀ · dtaps; db += Σ over pixels of dy.
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    let x = cache.x
    let outShape = outputShape(for: x.shape)
    precondition(dy.shape == outShape,
                 "ConvTranspose2D backward expects dy \(outShape) for input \(x.shape), got \(dy.shape).")
    let g = transposedGeometry(outShape)
    if let bias, bias.isTrainable {
      let out = outChannels, pixels = dy.count / out
      dy.scalars.withUnsafeBufferPointer { db in
        bias.grad.scalars.withUnsafeMutableBufferPointer { gb in
          let (dp, gp) = (db.baseAddress!, gb.baseAddress!)
          // Column sums in Double, pixel by pixel; threads split the channels, so the sums do not depend on the
          // thread count.
          parallelFor(0..<out, minimumChunk: 8) { channels in
            var sums = [Double](repeating: 0, count: channels.count)
            for pixel in 0..<pixels {
              let row = dp + pixel * out + channels.lowerBound
              for o in 0..<channels.count { sums[o] += Double(row[o]) }
            }
            for o in 0..<channels.count { gp[channels.lowerBound + o] += Float(sums[o]) }
          }
        }
      }
    }
    let (h, w) = (x.shape[1], x.shape[2])
    let pixelsPerImage = h * w
    let tapWidth = kernelSize * kernelSize * outChannels
    let outputPerImage = outShape[1] * outShape[2] * outChannels
    let chunkImages = imagesPerChunk(x.shape)
    var dx = Tensor(uninitializedShape: x.shape) { _ in }
    let taps = allocateScratch(chunkImages * pixelsPerImage * tapWidth)  // dtaps [images·h·w, kh·kw·out]
    defer { taps.deallocate() }
    let updatesWeight = weight.isTrainable
    dy.scalars.withUnsafeBufferPointer { dyb in
      x.scalars.withUnsafeBufferPointer { xb in
        weight.value.scalars.withUnsafeBufferPointer { wb in
          weight.grad.scalars.withUnsafeMutableBufferPointer { gwb in
            dx.scalars.withUnsafeMutableBufferPointer { dxb in
              for first in Swift.stride(from: 0, to: x.shape[0], by: chunkImages) {
                let images = first..<min(x.shape[0], first + chunkImages)
                let rows = images.count * pixelsPerImage
                let source = dyb.baseAddress! + first * outputPerImage
                if tapsDoNotOverlap {
                  gatherTaps(source, images: images.count, height: h, width: w, into: taps)
                } else {
                  let chunkGeometry = ConvGeometry(inputShape: [images.count] + Array(outShape.dropFirst()),
                                                   kernelSize: kernelSize, stride: stride, padding: padding,
                                                   dilation: dilation)
                  precondition(chunkGeometry.columnWidth == tapWidth && chunkGeometry.rows == rows,
                               "ConvTranspose2D: the im2col of dy does not match the taps (\(g)).")
                  im2col(source, chunkGeometry, rows: 0..<rows, into: taps)
                }
                let xChunk = xb.baseAddress! + first * pixelsPerImage * inChannels
                // dx[r, c] = Σ_t dtaps[r, t] · W[c, t]
                gemm(m: rows, n: inChannels, k: tapWidth, taps, wb.baseAddress!, transposeB: true,
                     into: dxb.baseAddress! + first * pixelsPerImage * inChannels)
                if updatesWeight {
                  // dW[c, t] += Σ_r x[r, c] · dtaps[r, t]
                  gemm(m: inChannels, n: tapWidth, k: rows, xChunk, transposeA: true, taps,
                       into: gwb.baseAddress!, beta: 1)
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
