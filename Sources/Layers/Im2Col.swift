// im2col / col2im for NHWC convolutions (darknet's im2col_cpu, transposed to row-per-output-pixel for NHWC).
//
// Row r of the column matrix belongs to output pixel r of the flattened [n, outH, outW] grid; its
// kh·kw·c entries are the window taps in (kh, kw, c) order, which matches an OHWI weight flattened to
// [out, kh·kw·in]. In NHWC each tap is a contiguous run of c floats.
// col2im comes in two forms: a gather over input pixels (writes dx once, no zero-fill, no write collisions;
// used when a chunk holds whole images) and a scatter-add over output pixels (for chunks that split an image).
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// The geometry of a square-kernel 2-D convolution window over an NHWC input (PyTorch `nn.Conv2d` arithmetic).
public struct ConvGeometry: Sendable, Equatable {
  public let batchSize: Int, height: Int, width: Int, channels: Int
  public let kernelSize: Int, stride: Int, padding: Int, dilation: Int
  /// ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1, as in `nn.Conv2d`.
  public let outputHeight: Int, outputWidth: Int

  public init(inputShape: [Int], kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1) {
    precondition(inputShape.count == 4, "A convolution input must be NHWC [n, h, w, c], got shape \(inputShape).")
    precondition(kernelSize >= 1 && stride >= 1 && padding >= 0 && dilation >= 1,
                 "Invalid convolution kernel \(kernelSize), stride \(stride), padding \(padding), dilation \(dilation).")
    batchSize = inputShape[0]; height = inputShape[1]; width = inputShape[2]; channels = inputShape[3]
    self.kernelSize = kernelSize; self.stride = stride; self.padding = padding; self.dilation = dilation
    let extent = dilation * (kernelSize - 1) + 1
    outputHeight = (height + 2 * padding - extent) / stride + 1
    outputWidth = (width + 2 * padding - extent) / stride + 1
    precondition(height + 2 * padding >= extent && width + 2 * padding >= extent,
                 "Input \(inputShape) padded by \(padding) is smaller than the kernel extent \(extent).")
  }

  /// Rows of the column matrix: one per output pixel, n·outH·outW.
  public var rows: Int { batchSize * outputHeight * outputWidth }
  /// Columns of the column matrix: kh·kw·c.
  public var columnWidth: Int { kernelSize * kernelSize * channels }
  public var outputPixelsPerImage: Int { outputHeight * outputWidth }
}

// MARK: - Tensor-level entry points (tests, reference)

/// The im2col matrix of an NHWC input: `[n·outH·outW, k·k·c]`, zeros at padding taps.
public func im2col(_ x: Tensor, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1) -> Tensor {
  let g = ConvGeometry(inputShape: x.shape, kernelSize: kernelSize, stride: stride, padding: padding,
                       dilation: dilation)
  return Tensor(uninitializedShape: [g.rows, g.columnWidth]) { columns in
    x.scalars.withUnsafeBufferPointer { xb in
      im2col(xb.baseAddress!, g, rows: 0..<g.rows, into: columns.baseAddress!)
    }
  }
}

/// The adjoint of `im2col`: scatter-adds `[n·outH·outW, k·k·c]` columns back into an NHWC tensor of `inputShape`.
public func col2im(_ columns: Tensor, inputShape: [Int], kernelSize: Int, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1) -> Tensor {
  let g = ConvGeometry(inputShape: inputShape, kernelSize: kernelSize, stride: stride, padding: padding,
                       dilation: dilation)
  precondition(columns.shape == [g.rows, g.columnWidth],
               "col2im expects columns [\(g.rows), \(g.columnWidth)] for input \(inputShape), got \(columns.shape).")
  return Tensor(uninitializedShape: inputShape) { dx in
    columns.scalars.withUnsafeBufferPointer { cb in
      col2im(cb.baseAddress!, g, images: 0..<g.batchSize, into: dx.baseAddress!)
    }
  }
}

// MARK: - Kernels

/// Writes rows `rows` of the im2col matrix of `x` (`[n, h, w, c]`) into `columns` (`[rows.count, k·k·c]`).
/// Runs on all cores; every row is written in full (padding taps get zeros).
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, rows: Range<Int>,
            into columns: UnsafeMutablePointer<Float>) {
  let width = g.columnWidth
  parallelFor(rows, minimumChunk: max(1, 32_768 / width)) { range in
    im2colOnThisThread(x, g, rows: range, into: columns + (range.lowerBound - rows.lowerBound) * width)
  }
}

/// `im2col` on the calling thread only (for a `parallelFor` chunk that follows it with its own GEMM):
/// writes rows `rows` into `columns` (`[rows.count, k·k·c]`).
func im2colOnThisThread(_ x: UnsafePointer<Float>, _ g: ConvGeometry, rows: Range<Int>,
                        into columns: UnsafeMutablePointer<Float>) {
  guard !rows.isEmpty else { return }
  let width = g.columnWidth
  // Output coordinates of the first row, then stepped along: no divisions per row.
  var image = rows.lowerBound / g.outputPixelsPerImage
  let pixel = rows.lowerBound - image * g.outputPixelsPerImage
  var oy = pixel / g.outputWidth, ox = pixel - (pixel / g.outputWidth) * g.outputWidth
  for row in rows {
    im2colRow(x, g, image: image, oy: oy, ox: ox, into: columns + (row - rows.lowerBound) * width)
    ox += 1
    if ox == g.outputWidth {
      ox = 0; oy += 1
      if oy == g.outputHeight { oy = 0; image += 1 }
    }
  }
}

/// Scatter-adds rows `rows` of a column matrix (`[rows.count, k·k·c]`) into `dx` (`[n, h, w, c]`).
///
/// Windows overlap, so two rows of one image may add into the same element: work is split by image
/// (each image's rows on one thread), or, when the rows lie in a single image, by channel slices.
func col2imAdd(_ columns: UnsafePointer<Float>, _ g: ConvGeometry, rows: Range<Int>,
               into dx: UnsafeMutablePointer<Float>) {
  guard !rows.isEmpty else { return }
  let width = g.columnWidth
  let perImage = g.outputPixelsPerImage
  let firstImage = rows.lowerBound / perImage
  let imageCount = (rows.upperBound - 1) / perImage - firstImage + 1
  if imageCount >= 2 {
    parallelFor(firstImage..<(firstImage + imageCount), minimumChunk: 1) { images in
      for image in images {
        let start = max(rows.lowerBound, image * perImage), end = min(rows.upperBound, (image + 1) * perImage)
        for row in start..<end {
          col2imRow(columns + (row - rows.lowerBound) * width, g, row: row, channels: 0..<g.channels, into: dx)
        }
      }
    }
  } else {
    parallelFor(0..<g.channels, minimumChunk: 16) { channels in
      for row in rows {
        col2imRow(columns + (row - rows.lowerBound) * width, g, row: row, channels: channels, into: dx)
      }
    }
  }
}

/// Writes images `images` of `dx` (`[n, h, w, c]`) in full, each element once, from the column matrix of
/// exactly those images' rows (`[images.count·outH·outW, k·k·c]`). No zero-fill is needed beforehand.
///
/// A gather: each input pixel sums the taps of the windows that cover it, so threads split input rows
/// freely without write collisions.
func col2im(_ columns: UnsafePointer<Float>, _ g: ConvGeometry, images: Range<Int>,
            into dx: UnsafeMutablePointer<Float>) {
  col2imGather(columns, g, images: images, into: dx, onThisThread: false)
}

/// `col2im` on the calling thread only (for a `parallelFor` chunk that produced these images' columns).
func col2imOnThisThread(_ columns: UnsafePointer<Float>, _ g: ConvGeometry, images: Range<Int>,
                        into dx: UnsafeMutablePointer<Float>) {
  col2imGather(columns, g, images: images, into: dx, onThisThread: true)
}

private func col2imGather(_ columns: UnsafePointer<Float>, _ g: ConvGeometry, images: Range<Int>,
                          into dx: UnsafeMutablePointer<Float>, onThisThread: Bool) {
  let (h, w, c, k) = (g.height, g.width, g.channels, g.kernelSize)
  // windowTable[i·k + t]: the output coordinate whose tap t reads input coordinate i, or −1 (rows then
  // columns). Built once, so the per-pixel loop has no divisions.
  let windowTable = UnsafeMutablePointer<Int32>.allocate(capacity: (h + w) * k)
  defer { windowTable.deallocate() }
  for (offset, size, outSize) in [(0, h, g.outputHeight), (h * k, w, g.outputWidth)] {
    for i in 0..<size {
      for t in 0..<k {
        let n = i + g.padding - t * g.dilation
        let valid = n >= 0 && n % g.stride == 0 && n / g.stride < outSize
        windowTable[offset + i * k + t] = valid ? Int32(n / g.stride) : -1
      }
    }
  }
  let (rowTable, columnTable) = (UnsafePointer(windowTable), UnsafePointer(windowTable + h * k))
  let first = images.lowerBound
  let body = { (range: Range<Int>) in
    for imageRow in range {
      let image = imageRow / h, iy = imageRow - (imageRow / h) * h
      col2imInputRow(columns + (image - first) * g.outputPixelsPerImage * g.columnWidth, g,
                     rowTaps: rowTable + iy * k, columnTable: columnTable, into: dx + imageRow * w * c)
    }
  }
  let imageRows = (images.lowerBound * h)..<(images.upperBound * h)
  if onThisThread {
    body(imageRows)
  } else {
    parallelFor(imageRows, minimumChunk: max(1, 32_768 / (w * c)), body)
  }
}

/// One input row of one image: dx[iy, ix, :] = Σ over the windows (oy, ox) and taps (ky, kx) that read
/// pixel (iy, ix) of cols[oy·outW + ox, (ky·k + kx)·c ..< +c]. `rowTaps[ky]` is that oy (or −1);
/// `columnTable[ix·k + kx]` that ox (or −1).
@inline(__always)
private func col2imInputRow(_ imageColumns: UnsafePointer<Float>, _ g: ConvGeometry, rowTaps: UnsafePointer<Int32>,
                            columnTable: UnsafePointer<Int32>, into target: UnsafeMutablePointer<Float>) {
  let (w, c, k, outW, width) = (g.width, g.channels, g.kernelSize, g.outputWidth, g.columnWidth)
  for ix in 0..<w {
    let pixel = target + ix * c
    let columnTaps = columnTable + ix * k
    var written = false
    for ky in 0..<k {
      let oy = Int(rowTaps[ky])
      if oy < 0 { continue }
      let windowRow = imageColumns + oy * outW * width + ky * k * c
      for kx in 0..<k {
        let ox = Int(columnTaps[kx])
        if ox < 0 { continue }
        let tap = windowRow + ox * width + kx * c
        if written {
          for channel in 0..<c { pixel[channel] += tap[channel] }
        } else {
          pixel.update(from: tap, count: c)
          written = true
        }
      }
    }
    if !written { pixel.update(repeating: 0, count: c) }
  }
}

/// Asks Linux to back `bytes` of a fresh, not yet touched allocation with 2 MB transparent huge pages
/// (THP runs in "madvise" mode here): one page fault per 2 MB instead of 512. Ignored elsewhere.
func adviseHugePages(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
  #if os(Linux)
  let hugePage = 1 << 21
  guard bytes >= 2 * hugePage else { return }
  let start = (Int(bitPattern: pointer) + hugePage - 1) & ~(hugePage - 1)
  let end = (Int(bitPattern: pointer) + bytes) & ~(hugePage - 1)
  if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE) }
  #endif
}

/// An uninitialised float buffer aligned to 2 MB and advised for huge pages (im2col scratch). Free with
/// `deallocate()`.
func allocateScratch(_ count: Int) -> UnsafeMutablePointer<Float> {
  let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 1 << 21)
  adviseHugePages(raw, bytes: count * MemoryLayout<Float>.stride)
  return raw.bindMemory(to: Float.self, capacity: count)
}

/// `parallelForEach(count)` with a scratch buffer of `floatsPerWorker` floats (uninitialised, huge-page aligned) per
/// worker thread: `body(index, scratch)` gets the buffer of the worker running it. The worker count is read once
/// and passed on, so the buffers cover every worker index even if `Threads.count` changes meanwhile.
func parallelForEachWithScratch(_ count: Int, floatsPerWorker: Int,
                                _ body: (_ index: Int, _ scratch: UnsafeMutablePointer<Float>) -> Void) {
  let workers = parallelForEachWorkers(count)
  let scratch = allocateScratch(workers * floatsPerWorker)
  defer { scratch.deallocate() }
  parallelForEach(count, workers: workers) { index, worker in body(index, scratch + worker * floatsPerWorker) }
}

/// One im2col row: the k·k·c window values of output pixel (image, oy, ox).
@inline(__always)
private func im2colRow(_ x: UnsafePointer<Float>, _ g: ConvGeometry, image: Int, oy: Int, ox: Int,
                       into destination: UnsafeMutablePointer<Float>) {
  let (h, w, c, k, d) = (g.height, g.width, g.channels, g.kernelSize, g.dilation)
  let iy0 = oy * g.stride - g.padding, ix0 = ox * g.stride - g.padding
  let imageBase = x + image * h * w * c
  var out = destination
  for ky in 0..<k {
    let iy = iy0 + ky * d
    if iy < 0 || iy >= h {
      out.update(repeating: 0, count: k * c)
      out += k * c
      continue
    }
    let rowBase = imageBase + iy * w * c
    if d == 1 {
      // Undilated taps along kw are adjacent pixels: one contiguous run of (valid taps)·c floats.
      let kxStart = min(k, max(0, -ix0)), kxEnd = max(kxStart, min(k, w - ix0))
      if kxStart > 0 {
        out.update(repeating: 0, count: kxStart * c)
        out += kxStart * c
      }
      let run = (kxEnd - kxStart) * c
      out.update(from: rowBase + (ix0 + kxStart) * c, count: run)
      out += run
      if kxEnd < k {
        out.update(repeating: 0, count: (k - kxEnd) * c)
        out += (k - kxEnd) * c
      }
    } else {
      for kx in 0..<k {
        let ix = ix0 + kx * d
        if ix < 0 || ix >= w {
          out.update(repeating: 0, count: c)
        } else {
          out.update(from: rowBase + ix * c, count: c)
        }
        out += c
      }
    }
  }
}

/// One col2im row: adds channels `channels` of each in-image tap of output pixel `row` into `dx`.
@inline(__always)
private func col2imRow(_ source: UnsafePointer<Float>, _ g: ConvGeometry, row: Int, channels: Range<Int>,
                       into dx: UnsafeMutablePointer<Float>) {
  let (h, w, c, k, d) = (g.height, g.width, g.channels, g.kernelSize, g.dilation)
  let perImage = g.outputPixelsPerImage
  let image = row / perImage
  let pixel = row - image * perImage
  let oy = pixel / g.outputWidth, ox = pixel - (pixel / g.outputWidth) * g.outputWidth
  let iy0 = oy * g.stride - g.padding, ix0 = ox * g.stride - g.padding
  let imageBase = dx + image * h * w * c
  let (c0, c1) = (channels.lowerBound, channels.upperBound)
  for ky in 0..<k {
    let iy = iy0 + ky * d
    if iy < 0 || iy >= h { continue }
    let rowBase = imageBase + iy * w * c
    for kx in 0..<k {
      let ix = ix0 + kx * d
      if ix < 0 || ix >= w { continue }
      let target = rowBase + ix * c
      let tap = source + (ky * k + kx) * c
      for channel in c0..<c1 { target[channel] += tap[channel] }
    }
  }
}
