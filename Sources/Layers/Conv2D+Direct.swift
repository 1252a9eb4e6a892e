// 3×3 stride-1 pad-1 convolutions as a direct (implicit-GEMM) AVX2/FMA kernel over the NHWC input in place
// (Sources/CConvKernels): no im2col, no k²-times-larger column matrix for OpenBLAS to pack.
//
// Why: at 16–64 channels an im2col GEMM spends as much time writing and repacking the column matrix as multiplying
// (benchmarks/README.md, issue 19 item 1: im2col ≈ 15 %, OpenBLAS packing ≈ 14 % of the quick config's step). The
// kernel keeps a block of 6 pixels × 16 output channels in registers and runs one FMA per (tap, input channel)
// pair and accumulator, reading each input scalar from a zero-padded copy of the image band (1× the input, not 9×).
// The input gradient of such a convolution is the same convolution of dy with the flipped, in/out-transposed kernel
// (see `Conv2D.backward`), so the same kernel computes it.
import CConvKernels
import Tensors

extension Conv2D {
  /// Whether the direct kernel is used: `.automatic` for covered shapes while `directConvolutionEnabled`, `.always`
  /// for every covered shape (tests comparing the paths), `.never` to force the im2col paths.
  enum DirectMode { case automatic, always, never }

  /// True when the CPU (and OS) run the kernel's AVX2 and FMA instructions; read once.
  static let cpuRunsDirectKernel = cconv_supports_direct3x3() != 0

  /// Whether `.automatic` takes the direct path for covered shapes (on by default).
  static var directConvolutionEnabled: Bool { directConvolutionSetting }
  nonisolated(unsafe) static var directConvolutionSetting = true
  /// Benchmarks only: `directConvolutionEnabled`, set before any layer runs (`--direct off` measures the old path).
  @_spi(Benchmarks) public static var directConvolutions: Bool {
    get { directConvolutionSetting }
    set { directConvolutionSetting = newValue }
  }

  /// Whether covered layers with in·out ≤ `directWeightGradientMaximumProduct` also compute dW on the direct kernel
  /// (else im2col + GEMM); benchmarks switch it (`--direct-dw off`) to time the two.
  nonisolated(unsafe) static var directWeightGradientSetting = true
  @_spi(Benchmarks) public static var directWeightGradients: Bool {
    get { directWeightGradientSetting }
    set { directWeightGradientSetting = newValue }
  }

  /// Whether a directly convolved layer runs by Winograd F(2×2, 3×3) (Sources/CConvKernels/Winograd3x3.c):
  /// `.automatic` while `winogradSetting`, `.always` / `.never` for tests comparing the two kernels.
  enum WinogradMode { case automatic, always, never }

  /// Whether `.automatic` takes Winograd for the shapes it covers (on by default).
  nonisolated(unsafe) static var winogradSetting = true
  /// Benchmarks only: `winogradSetting`, set before any layer runs (`--winograd off` times the direct kernel).
  @_spi(Benchmarks) public static var winogradConvolutions: Bool {
    get { winogradSetting }
    set { winogradSetting = newValue }
  }

  /// Whether a direct convolution over geometry `g` with `outputs` channels runs by Winograd: both channel counts
  /// multiples of 8 (the transforms' vector width; so not the 1- and 3-channel stems) and an even height and width
  /// (whole 2×2 output tiles). F(2×2, 3×3) does 16 products per output tile and channel pair where the direct sum
  /// does 36; its transforms add a few ulp of rounding (Conv2DWinogradTests bound it against a Double oracle).
  func usesWinograd(_ g: ConvGeometry, outputs: Int) -> Bool {
    guard g.channels % 8 == 0, outputs % 8 == 0, g.height % 2 == 0, g.width % 2 == 0 else { return false }
    switch winogradMode {
    case .never: return false
    case .always: return true
    case .automatic: return Self.winogradSetting
    }
  }

  /// The most input or output channels `.automatic` sends to the kernel (wider layers go there only by Winograd,
  /// with sgemm products). From 64 channels on, im2col + GEMM is already efficient (the column matrix is no longer
  /// the bottleneck) and the two paths time alike; at 256 the GEMM was faster (benchmarks/README.md, "Issue 19
  /// item 1: the direct kernel").
  static let directMaximumChannels = 128

  /// The largest in·out for which dW runs on the direct kernel: its partial `[3, 3, in, out]` (36 KB at 32 × 32)
  /// then stays in L1 while the kernel sweeps a band's pixels once per tap and block. At 64 × 64 and above the
  /// pipelined im2col + GEMM was as fast or faster (same README section).
  static let directWeightGradientMaximumProduct = 32 * 32

  /// Whether a convolution with geometry `g` (its input: `g.channels` channels) and `outputs` output channels runs
  /// on the direct kernel: kernel 3, stride 1, padding 1, dilation 1, `outputs` a multiple of 8 (the kernel's
  /// vector width; any number of input channels, so the 1- and 3-channel stems qualify), on a CPU with AVX2 and
  /// FMA. Everything else — and `.always` on an uncovered shape — takes the im2col paths. (dx asks with dy's
  /// geometry and `inChannels` outputs, so a layer with in % 8 ≠ 0 runs its forward and dW here, its dx not.)
  func usesDirectConvolution(_ g: ConvGeometry, outputs: Int) -> Bool {
    guard Self.cpuRunsDirectKernel, g.kernelSize == 3, g.stride == 1, g.padding == 1, g.dilation == 1,
          outputs % 8 == 0 else { return false }
    switch directMode {
    case .never: return false
    case .always: return true
    case .automatic:
      guard Self.directConvolutionEnabled else { return false }
      // Wider layers only by Winograd, whose products then go to OpenBLAS (`wideWinogradConvolution`), and only on
      // images of at least `wideWinogradMinimumPixels`.
      return (g.channels <= Self.directMaximumChannels && outputs <= Self.directMaximumChannels)
        || (usesWinograd(g, outputs: outputs) && g.height * g.width >= Self.wideWinogradMinimumPixels)
    }
  }

  /// Whether dW of a layer with input geometry `g` runs on the direct kernel: the layer is covered and, for
  /// `.automatic`, small enough (`directWeightGradientMaximumProduct`).
  func usesDirectWeightGradient(_ g: ConvGeometry) -> Bool {
    guard usesDirectConvolution(g, outputs: outChannels) else { return false }
    return directMode == .always
      || (Self.directWeightGradientSetting && inChannels * outChannels <= Self.directWeightGradientMaximumProduct)
  }

  /// y = conv(x; W) (+ bias). x: `[n, h, w, in]` (geometry `g`), weight OHWI `[out, 3, 3, in]`, bias `[out]` or nil,
  /// y: `[n, h, w, out]`, every element written once.
  func directForward(_ x: UnsafePointer<Float>, _ g: ConvGeometry, weight: UnsafePointer<Float>,
                     bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
    let (cin, cout) = (inChannels, outChannels)
    // packed[ky, kx, i, o] = W[o, ky, kx, i]: the kernel's tap-major layout, output channels contiguous.
    let packed = UnsafeMutablePointer<Float>.allocate(capacity: 9 * cin * cout)
    defer { packed.deallocate() }
    for o in 0..<cout {
      for tap in 0..<9 {
        let source = weight + (o * 9 + tap) * cin
        let target = packed + tap * cin * cout + o
        for i in 0..<cin { target[i * cout] = source[i] }
      }
    }
    directConvolution(x, g, packedWeight: packed, outputs: cout, bias: bias, into: y)
  }

  /// dx = conv(dy; W̃) with W̃[i, ky, kx, o] = W[o, 2 − ky, 2 − kx, i] (stride 1, padding 1). dy: `[n, h, w, out]`
  /// (geometry `gT`, whose channels are this layer's outputs), weight OHWI, dx: `[n, h, w, in]`, written once.
  func directInputGradient(_ dy: UnsafePointer<Float>, _ gT: ConvGeometry, weight: UnsafePointer<Float>,
                           into dx: UnsafeMutablePointer<Float>) {
    let (cin, cout) = (inChannels, outChannels)
    precondition(gT.channels == cout, "The direct input gradient needs dy with \(cout) channels, got geometry \(gT).")
    // packed[ky, kx, o, i] = W[o, 2 − ky, 2 − kx, i]: the transposed convolution's input channels are o.
    let packed = UnsafeMutablePointer<Float>.allocate(capacity: 9 * cin * cout)
    defer { packed.deallocate() }
    for o in 0..<cout {
      for tap in 0..<9 {
        let source = weight + (o * 9 + (8 - tap)) * cin  // (2 − ky)·3 + (2 − kx) = 8 − tap
        let target = packed + (tap * cout + o) * cin
        for i in 0..<cin { target[i] = source[i] }
      }
    }
    directConvolution(dy, gT, packedWeight: packed, outputs: cin, bias: nil, into: dx)
  }

  /// dW[o, ky, kx, i] += Σ_{n, y, x} dy[n, y, x, o] · x[n, y + ky − 1, x + kx − 1, i] (zero outside the image).
  /// dy: `[n, h, w, out]`, x: `[n, h, w, in]` (geometry `g`), gradient: OHWI `[out, 3, 3, in]`.
  ///
  /// The (image, band of rows) items are cut into `weightGradientPartials` contiguous groups; each group adds its
  /// pixels in (image, row, column) order onto its own partial `[3, 3, in, out]` — how many images or rows one
  /// kernel call covers does not change that order — and the partials are added to `gradient` in group order. All of
  /// it depends on the shapes only, so the sum's rounding does not depend on the thread count.
  func directWeightGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ g: ConvGeometry,
                            into gradient: UnsafeMutablePointer<Float>) {
    let (cin, cout, h, w) = (inChannels, outChannels, g.height, g.width)
    precondition(g.channels == cin && g.kernelSize == 3 && g.stride == 1 && g.padding == 1 && g.dilation == 1
                   && cout % 8 == 0,
                 "The direct weight gradient needs a covered geometry with \(cin) input channels, got \(g).")
    let size = 9 * cin * cout
    // Whole images, as many per kernel call as fit in `directWeightBandFloats` (small images: each accumulator load
    // and store then covers many pixels); an image larger than that in bands of rows.
    let perImage = (h + 2) * (w + 2) * cin + h * w * cout
    let imagesPerBand = max(1, Self.directWeightBandFloats / perImage)
    let bandRows = perImage <= Self.directWeightBandFloats ? h
      : max(1, min(h, Self.directWeightBandFloats / ((w + 2) * cin + w * cout)))
    let bands = (h + bandRows - 1) / bandRows
    let items = g.batchSize * bands  // (image, band) in order
    let groups = min(Self.weightGradientPartials, items)
    let partials = UnsafeMutablePointer<Float>.allocate(capacity: groups * size)  // [groups, 3, 3, in, out]
    defer { partials.deallocate() }
    let paddedBand = (bandRows + 2) * (w + 2) * cin
    parallelForEachWithScratch(groups, floatsPerWorker: imagesPerBand * paddedBand) { group, padded in
      let partial = partials + group * size
      partial.initialize(repeating: 0, count: size)
      let groupItems = (items * group / groups)..<(items * (group + 1) / groups)
      var item = groupItems.lowerBound
      while item < groupItems.upperBound {
        let image = item / bands, firstRow = (item % bands) * bandRows
        let rows = min(bandRows, h - firstRow)
        let images = bands == 1 ? min(imagesPerBand, groupItems.upperBound - item) : 1
        for k in 0..<images {
          cconv_pad_band(x + (image + k) * h * w * cin, Int32(h), Int32(w), Int32(cin), Int32(firstRow), Int32(rows),
                         padded + k * (rows + 2) * (w + 2) * cin)
        }
        cconv_direct3x3_weight_gradient_band(padded, dy + (image * h + firstRow) * w * cout, Int32(images),
                                             Int32(rows), Int32(w), Int32(cin), Int32(cout), partial)
        item += images
      }
    }
    // gradient[o, tap, i] += Σ_group partials[group, tap, i, o], one output channel per task.
    parallelFor(0..<cout, minimumChunk: max(1, 16_384 / max(1, groups * 9 * cin))) { outputs in
      for o in outputs {
        for tap in 0..<9 {
          let target = gradient + (o * 9 + tap) * cin
          for i in 0..<cin {
            var total: Float = 0
            for group in 0..<groups { total += partials[group * size + (tap * cin + i) * cout + o] }
            target[i] += total
          }
        }
      }
    }
  }

  /// The most floats of one weight-gradient kernel call (its padded input rows and dy rows): 256 KB, so that they
  /// stay in a core's L2 while the kernel sweeps them once per tap and channel block.
  static let directWeightBandFloats = 1 << 16

  /// The kernel over all images: each work item is a group of whole images or one band of rows of one image,
  /// padded into the running worker's scratch (`[images, rows + 2, w + 2, channels]`) and convolved into its rows of
  /// y. Every output element is computed by one kernel call in a fixed order (the kernel's sum order depends on the
  /// channel count only), so the result does not depend on the grouping, the banding or the thread count.
  /// - x: `[n, h, w, channels]`; packedWeight: `[3, 3, channels, outputs]`; bias: `[outputs]` or nil;
  ///   y: `[n, h, w, outputs]`.
  private func directConvolution(_ x: UnsafePointer<Float>, _ g: ConvGeometry, packedWeight: UnsafePointer<Float>,
                                 outputs: Int, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
    precondition(g.kernelSize == 3 && g.stride == 1 && g.padding == 1 && g.dilation == 1 && outputs % 8 == 0,
                 "The direct kernel needs a 3×3 stride-1 pad-1 undilated convolution with outputs a multiple of 8, got \(g) with \(outputs) outputs.")
    let (n, h, w, c) = (g.batchSize, g.height, g.width, g.channels)
    let winograd = usesWinograd(g, outputs: outputs)
    if winograd && max(c, outputs) > Self.directMaximumChannels {
      wideWinogradConvolution(x, g, packedWeight: packedWeight, outputs: outputs, bias: bias, into: y)
      return
    }
    // Winograd's weights [16, c, outputs] (G g Gᵀ per channel pair), transformed once per call.
    let transformed = winograd ? UnsafeMutablePointer<Float>.allocate(capacity: 16 * c * outputs) : nil
    defer { transformed?.deallocate() }
    if let transformed { cconv_winograd3x3_weight(packedWeight, Int32(c), Int32(outputs), transformed) }
    let winogradScratch = winograd ? cconv_winograd3x3_scratch_floats(Int32(c), Int32(outputs)) : 0
    let minimumItems = 4 * Threads.count  // load balance under other work
    // Whole images while there are at least 4 per thread, else bands of rows (an even number for Winograd's 2×2
    // tiles; the height is then even, so every band is).
    let bandsPerImage = max(1, min(h, (minimumItems + n - 1) / n))
    var bandRows = (h + bandsPerImage - 1) / bandsPerImage
    if winograd { bandRows += bandRows % 2 }
    let bands = (h + bandRows - 1) / bandRows
    // Small images go several to a call, so that one output block's weights (up to 9 · 64 · 16 floats) are read
    // once per group rather than once per image: at 128 channels on 4×4 images the weights are 590 KB for 16
    // pixels an image, and one image a call ran at half the speed (`KernelBench --net quick`, "3x3 128 @4":
    // forward 17.5 → 8.6 ms, 69 → 140 GFLOP/s). A group's padded copy stays within `directGroupFloats`.
    let paddedImage = (h + 2) * (w + 2) * c
    let imagesPerItem = bands > 1 ? 1 : max(1, min(n / minimumItems, Self.directGroupFloats / paddedImage))
    let items = bands > 1 ? n * bands : (n + imagesPerItem - 1) / imagesPerItem
    let paddedScratch = bands > 1 ? (bandRows + 2) * (w + 2) * c : imagesPerItem * paddedImage
    // [padded band | Winograd's transformed tiles]
    parallelForEachWithScratch(items, floatsPerWorker: paddedScratch + winogradScratch) { item, padded in
      let images: Int, rows: Int, target: UnsafeMutablePointer<Float>
      if bands > 1 {
        let image = item / bands, firstRow = (item % bands) * bandRows
        (images, rows) = (1, min(bandRows, h - firstRow))
        cconv_pad_band(x + image * h * w * c, Int32(h), Int32(w), Int32(c), Int32(firstRow), Int32(rows), padded)
        target = y + (image * h + firstRow) * w * outputs
      } else {
        let first = item * imagesPerItem
        (images, rows) = (min(imagesPerItem, n - first), h)
        for k in 0..<images {
          cconv_pad_band(x + (first + k) * h * w * c, Int32(h), Int32(w), Int32(c), 0, Int32(h),
                         padded + k * paddedImage)
        }
        target = y + first * h * w * outputs
      }
      if let transformed {
        cconv_winograd3x3_band(padded, Int32(images), Int32(rows), Int32(w), Int32(c), transformed, Int32(outputs),
                               bias, target, padded + paddedScratch)
      } else {
        cconv_direct3x3_band(padded, Int32(images), Int32(rows), Int32(w), Int32(c), packedWeight, Int32(outputs),
                             bias, target)
      }
    }
  }

  /// Winograd F(2×2, 3×3) for layers wider than `directMaximumChannels`, whose 16 products per tile are real GEMMs:
  /// the whole batch's tiles are transformed into V `[16, tiles, c]` (all cores), M[ξ] = V[ξ] · U[ξ] runs as 16
  /// OpenBLAS sgemm calls `[tiles, c] × [c, outputs]` (all cores), and the output transform writes y. At 256 and
  /// 512 channels the transforms are a few per cent of the products, and the sgemm calls run near the BLAS's peak
  /// on 2.25 times fewer multiplications than the im2col GEMM. Every element's sum order is the sgemm's over c for
  /// fixed shapes, whatever the thread count (OpenBLAS splits rows and columns, not the inner dimension).
  /// - x: `[n, h, w, c]`, h and w even; packedWeight: `[3, 3, c, outputs]`; bias: `[outputs]` or nil;
  ///   y: `[n, h, w, outputs]`.
  private func wideWinogradConvolution(_ x: UnsafePointer<Float>, _ g: ConvGeometry,
                                       packedWeight: UnsafePointer<Float>, outputs: Int,
                                       bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
    let (n, h, w, c) = (g.batchSize, g.height, g.width, g.channels)
    let tiles = n * (h / 2) * (w / 2)
    let transformed = UnsafeMutablePointer<Float>.allocate(capacity: 16 * c * outputs)  // U [16, c, outputs]
    defer { transformed.deallocate() }
    cconv_winograd3x3_weight(packedWeight, Int32(c), Int32(outputs), transformed)
    let paddedImage = (h + 2) * (w + 2) * c
    let padded = UnsafeMutablePointer<Float>.allocate(capacity: n * paddedImage)
    defer { padded.deallocate() }
    let (vPosition, mPosition) = (tiles * c, tiles * outputs)
    let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * vPosition)  // [16, tiles, c]
    defer { v.deallocate() }
    let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * mPosition)  // [16, tiles, outputs]
    defer { m.deallocate() }
    let tilesPerImage = (h / 2) * (w / 2)
    parallelFor(0..<n, minimumChunk: 1) { images in
      for image in images {
        cconv_pad_band(x + image * h * w * c, Int32(h), Int32(w), Int32(c), 0, Int32(h), padded + image * paddedImage)
        cconv_winograd3x3_input_tiles(padded, Int32(h), Int32(w), Int32(c), Int32(image * tilesPerImage),
                                      Int32(tilesPerImage), v + image * tilesPerImage * c, vPosition)
      }
    }
    for position in 0..<16 {
      gemm(m: tiles, n: outputs, k: c, v + position * vPosition, transformed + position * c * outputs,
           into: m + position * mPosition)
    }
    parallelFor(0..<n, minimumChunk: 1) { images in
      for image in images {
        cconv_winograd3x3_output_tiles(m + image * tilesPerImage * outputs, mPosition, Int32(h), Int32(w),
                                       Int32(outputs), bias, Int32(image * tilesPerImage), Int32(tilesPerImage), y)
      }
    }
  }

  /// Whether dW of a layer with input geometry `g` runs by Winograd (`winogradWeightGradient`): a Winograd-covered
  /// layer whose dW the direct kernel does not take (in·out > `directWeightGradientMaximumProduct`, where dW went to
  /// im2col + GEMM), on images of at least `wideWinogradMinimumPixels`; `.always` takes every covered shape.
  func usesWinogradWeightGradient(_ g: ConvGeometry) -> Bool {
    guard usesDirectConvolution(g, outputs: outChannels), usesWinograd(g, outputs: outChannels) else { return false }
    switch winogradMode {
    case .never: return false
    case .always: return true
    case .automatic:
      return inChannels * outChannels > Self.directWeightGradientMaximumProduct
        && g.height * g.width >= Self.wideWinogradMinimumPixels
    }
  }

  /// dW[o, ky, kx, i] += Σ_{n, y, x} dy[n, y, x, o] · x[n, y + ky − 1, x + kx − 1, i] by the transpose of
  /// F(2×2, 3×3) (see Winograd3x3.c): dW = Gᵀ [Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B)] G, the sum over tiles as 16 GEMMs
  /// P[ξ] += V[ξ]ᵀ E[ξ] with the tiles as inner dimension: 16 products per tile and channel pair instead of the
  /// 36 of im2col's GEMM, and no 9-times-larger column matrix.
  ///
  /// The images are cut into calls of whole images (≥ 512 tiles a call where the batch allows, so the GEMMs' inner
  /// dimension is long; a call's tiles are transformed `winogradWeightChunkTiles` at a time) and the calls into `weightGradientPartials` contiguous groups, each accumulating its own P
  /// on one thread; the groups' P are added in group order. All of it depends on the shapes only, so the rounding
  /// does not depend on the thread count.
  /// - dy: `[n, h, w, out]`, x: `[n, h, w, in]` (geometry `g`, h and w even), gradient: OHWI `[out, 3, 3, in]`.
  func winogradWeightGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ g: ConvGeometry,
                              into gradient: UnsafeMutablePointer<Float>) {
    let (cin, cout, n, h, w) = (inChannels, outChannels, g.batchSize, g.height, g.width)
    precondition(g.channels == cin && usesWinograd(g, outputs: cout),
                 "The Winograd weight gradient needs even sizes and channels multiples of 8, got \(g) with \(cout) outputs.")
    let tilesPerImage = (h / 2) * (w / 2)
    let imagesPerCall = min(n, max(1, 512 / tilesPerImage))
    let calls = (n + imagesPerCall - 1) / imagesPerCall
    let groups = min(Self.weightGradientPartials, calls)
    let size = 16 * cin * cout
    let products = UnsafeMutablePointer<Float>.allocate(capacity: groups * size)  // [groups, 16, in, out]
    defer { products.deallocate() }
    let paddedImage = (h + 2) * (w + 2) * cin
    // The tiles of a call go through V and E at most `winogradWeightChunkTiles` at a time (a detection-size image
    // has tens of thousands), so the scratch stays bounded.
    let chunkTiles = min(imagesPerCall * tilesPerImage, Self.winogradWeightChunkTiles)
    // Scratch: [padded images | V (16, tiles, in) | E (16, tiles, out)]
    let scratch = imagesPerCall * paddedImage + 16 * chunkTiles * (cin + cout)
    withSingleThreadedBLAS {
      parallelForEachWithScratch(groups, floatsPerWorker: scratch) { group, buffer in
        let product = products + group * size
        let (padded, v) = (buffer, buffer + imagesPerCall * paddedImage)
        let e = v + 16 * chunkTiles * cin
        let groupCalls = (calls * group / groups)..<(calls * (group + 1) / groups)
        for call in groupCalls {
          let first = call * imagesPerCall, images = min(imagesPerCall, n - first)
          for k in 0..<images {
            cconv_pad_band(x + (first + k) * h * w * cin, Int32(h), Int32(w), Int32(cin), 0, Int32(h),
                           padded + k * paddedImage)
          }
          for firstTile in Swift.stride(from: 0, to: images * tilesPerImage, by: chunkTiles) {
            let tiles = min(chunkTiles, images * tilesPerImage - firstTile)
            cconv_winograd3x3_input_tiles(padded, Int32(h), Int32(w), Int32(cin), Int32(firstTile), Int32(tiles), v,
                                          tiles * cin)
            cconv_winograd3x3_gradient_tiles(dy + first * h * w * cout, Int32(h), Int32(w), Int32(cout),
                                             Int32(firstTile), Int32(tiles), e, tiles * cout)
            let overwrites = call == groupCalls.lowerBound && firstTile == 0  // the group's first chunk
            for position in 0..<16 {
              // P[ξ] (in × out) (+)= V[ξ]ᵀ (in × tiles) · E[ξ] (tiles × out)
              gemmOnThisThread(m: cin, n: cout, k: tiles, v + position * tiles * cin, transposeA: true,
                               e + position * tiles * cout, into: product + position * cin * cout,
                               beta: overwrites ? 0 : 1)
            }
          }
        }
      }
    }
    // Σ_group P, then Gᵀ P G → packed [3, 3, in, out], added to the OHWI gradient.
    for group in 1..<max(groups, 1) {
      let source = products + group * size
      parallelFor(0..<size, minimumChunk: 1 << 14) { range in
        for i in range { products[i] += source[i] }
      }
    }
    let packed = UnsafeMutablePointer<Float>.allocate(capacity: 9 * cin * cout)
    defer { packed.deallocate() }
    cconv_winograd3x3_weight_gradient(products, Int32(cin), Int32(cout), packed)
    parallelFor(0..<cout, minimumChunk: max(1, 16_384 / (9 * cin))) { outputs in
      for o in outputs {
        for tap in 0..<9 {
          let target = gradient + (o * 9 + tap) * cin
          for i in 0..<cin { target[i] += packed[(tap * cin + i) * cout + o] }
        }
      }
    }
  }

  /// The most tiles one Winograd dW step transforms at a time: V and E then take at most 16 · 4096 · (in + out)
  /// floats (64 MB at 128 + 128 channels), whatever the image size.
  static let winogradWeightChunkTiles = 4096

  /// The fewest pixels per image for which `.automatic` takes wide layers to Winograd. On 4×4 images the 4 tiles'
  /// transformed inputs are 4 times the image and the sgemm calls have few rows: `KernelBench --net r18`, "3x3 512
  /// @4", forward 67.5 ms by Winograd against 59.9 by im2col (256 @8: 34.8 against 53.1).
  static let wideWinogradMinimumPixels = 64

  /// The most floats of one forward group's padded images: 64 Ki (256 KB, within a core's L2 beside the weights).
  static let directGroupFloats = 1 << 16
}
