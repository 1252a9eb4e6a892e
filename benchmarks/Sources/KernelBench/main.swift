// KernelBench: per-shape Conv2D forward/backward speed against plain sgemm of the same GEMM shapes.
//
// Usage: KernelBench [--threads N] [--repeats R] [--net r50|r18|all] [--only SUBSTRING] [--skip-validation]
//                    [--chunk FLOATS] [--keep-heap] [--direct on|off] [--direct-dw on|off] [--winograd on|off]
//                    (--net quick: the convolutions of EngineBench case (d))
// Every shape is first validated against a direct Double convolution (random output, dx and dW entries,
// batch 2, full spatial size), then timed at the network's batch size (best of R runs after one warm-up).
import ArgumentParser
import Foundation
import Tensors
@_spi(Benchmarks) import Layers

// MARK: - Options

struct Options: Sendable {
  var threads = 2, repeats = 3, network = "all", only: String? = nil, validates = true
  var chunkElements: Int? = nil, keepsHeap = false

  /// The command line (`--help` prints the options; a bad one exits 64 with a message, as the CLI does).
  static func parse() -> Options {
    let parsed = KernelBenchArguments.parseOrExit()
    return Options(threads: parsed.threads, repeats: parsed.repeats, network: parsed.net, only: parsed.only,
                   validates: !parsed.skipValidation, chunkElements: parsed.chunk, keepsHeap: parsed.keepHeap)
  }
}

struct KernelBenchArguments: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "KernelBench", abstract: "Per-shape Conv2D forward/backward speed against plain sgemm.")
  @Option(help: "Threads.") var threads = 2
  @Option(help: "Timed runs per shape (the best is kept).") var repeats = 3
  @Option(help: "Network whose shapes are timed: r50, r18, quick or all.") var net = "all"
  @Option(help: "Only shapes whose name contains this text.") var only: String?
  @Flag(help: "Skip the direct-convolution check of each shape.") var skipValidation = false
  @Option(help: ArgumentHelp("Chunk size in floats.", valueName: "floats")) var chunk: Int?
  @Flag(help: "Keep freed memory in the heap (Allocator.retainFreedMemory).") var keepHeap = false
  @Option(help: ArgumentHelp("Per-thread pipeline chunk in floats (Conv2D.pipelineChunkElements).",
                             valueName: "floats")) var pipelineChunk: Int?
  @Option(help: ArgumentHelp("Row-fold stride-1 convs with at most this many outputs (0: never).",
                             valueName: "channels")) var foldMax: Int?
  @Option(help: "The direct 3×3 AVX2/FMA kernel, on or off (Conv2D.directConvolutions; default on).") var direct: String?
  @Option(help: "dW on the direct kernel too, on or off (Conv2D.directWeightGradients; default on).")
  var directDw: String?
  @Option(help: "Winograd F(2×2, 3×3) for the direct layers it covers, on or off (Conv2D.winogradConvolutions; default on).")
  var winograd: String?

  func validate() throws {
    guard (1...Threads.maximum).contains(threads), repeats > 0 else {
      throw ValidationError("--threads must be in 1…\(Threads.maximum) and --repeats positive.")
    }
    guard ["r50", "r18", "quick", "all"].contains(net) else {
      throw ValidationError("--net is r50, r18, quick or all, got '\(net)'.")
    }
    if let chunk, chunk <= 0 { throw ValidationError("--chunk must be positive, got \(chunk).") }
    for (name, value) in [("--direct", direct), ("--direct-dw", directDw), ("--winograd", winograd)] {
      if let value, !["on", "off"].contains(value) { throw ValidationError("\(name) is on or off, got '\(value)'.") }
    }
  }
}
let options = Options.parse()
let (threads, repeats, network, only, validates) =
  (options.threads, options.repeats, options.network, options.only, options.validates)
Threads.configure(threads)
if options.keepsHeap { Allocator.retainFreedMemory() }
if let pipelineChunk = KernelBenchArguments.parseOrExit().pipelineChunk { Conv2D.pipelineChunkElements = pipelineChunk }
if let foldMax = KernelBenchArguments.parseOrExit().foldMax { Conv2D.rowFoldingMaximumOutputs = foldMax }
if let direct = KernelBenchArguments.parseOrExit().direct { Conv2D.directConvolutions = direct == "on" }
if let winograd = KernelBenchArguments.parseOrExit().winograd { Conv2D.winogradConvolutions = winograd == "on" }
if let directDw = KernelBenchArguments.parseOrExit().directDw { Conv2D.directWeightGradients = directDw == "on" }

// MARK: - Shapes

/// One distinct convolution of a network, and how many times a forward pass runs it.
struct ConvShape {
  let name: String
  let batch: Int, size: Int, inChannels: Int, outChannels: Int, kernel: Int, stride: Int
  let count: Int
  /// False for the stem: the network never asks for the image gradient.
  var inputGradient = true
  var padding: Int { kernel / 2 }
  var outputSize: Int { (size + 2 * padding - kernel) / stride + 1 }
  var rows: Int { batch * outputSize * outputSize }
  var depth: Int { kernel * kernel * inChannels }
  var forwardFLOPs: Double { 2 * Double(rows) * Double(depth) * Double(outChannels) }
  var backwardFLOPs: Double { forwardFLOPs * (inputGradient ? 2 : 1) }
}

/// torchvision ResNet-50 (v1.5: stride on the 3×3) at 224×224, batch 32.
func resnet50Shapes(batch b: Int = 32) -> [ConvShape] {
  var shapes = [ConvShape(name: "stem 7x7/2 3>64 @224", batch: b, size: 224, inChannels: 3, outChannels: 64,
                          kernel: 7, stride: 2, count: 1, inputGradient: false)]
  let stages = [(56, 64, 3), (28, 128, 4), (14, 256, 6), (7, 512, 3)]  // (output size, width, blocks)
  var inputChannels = 64
  for (index, (size, width, blocks)) in stages.enumerated() {
    let out = 4 * width
    let inSize = index == 0 ? size : 2 * size
    shapes.append(ConvShape(name: "1x1 \(inputChannels)>\(width) @\(inSize)", batch: b, size: inSize,
                            inChannels: inputChannels, outChannels: width, kernel: 1, stride: 1, count: 1))
    if index > 0 {
      shapes.append(ConvShape(name: "3x3/2 \(width) @\(inSize)", batch: b, size: inSize, inChannels: width,
                              outChannels: width, kernel: 3, stride: 2, count: 1))
    }
    shapes.append(ConvShape(name: "3x3 \(width) @\(size)", batch: b, size: size, inChannels: width,
                            outChannels: width, kernel: 3, stride: 1, count: index > 0 ? blocks - 1 : blocks))
    shapes.append(ConvShape(name: "1x1 \(width)>\(out) @\(size)", batch: b, size: size, inChannels: width,
                            outChannels: out, kernel: 1, stride: 1, count: blocks + (index == 0 ? 1 : 0)))
    shapes.append(ConvShape(name: "1x1 \(out)>\(width) @\(size)", batch: b, size: size, inChannels: out,
                            outChannels: width, kernel: 1, stride: 1, count: blocks - 1))
    if index > 0 {
      shapes.append(ConvShape(name: "ds 1x1/2 \(inputChannels)>\(out) @\(inSize)", batch: b, size: inSize,
                              inChannels: inputChannels, outChannels: out, kernel: 1, stride: 2, count: 1))
    }
    inputChannels = out
  }
  return shapes
}

/// SimSiam's CIFAR ResNet-18 (3×3 stem, no max-pool) on one 32×32 view of batch 128.
func resnet18CIFARShapes(batch b: Int = 128) -> [ConvShape] {
  var shapes = [ConvShape(name: "stem 3x3 3>64 @32", batch: b, size: 32, inChannels: 3, outChannels: 64,
                          kernel: 3, stride: 1, count: 1, inputGradient: false)]
  shapes.append(ConvShape(name: "3x3 64 @32", batch: b, size: 32, inChannels: 64, outChannels: 64, kernel: 3,
                          stride: 1, count: 4))
  for (size, width) in [(16, 128), (8, 256), (4, 512)] {
    let inWidth = width / 2
    shapes.append(ConvShape(name: "3x3/2 \(inWidth)>\(width) @\(2 * size)", batch: b, size: 2 * size,
                            inChannels: inWidth, outChannels: width, kernel: 3, stride: 2, count: 1))
    shapes.append(ConvShape(name: "3x3 \(width) @\(size)", batch: b, size: size, inChannels: width,
                            outChannels: width, kernel: 3, stride: 1, count: 3))
    shapes.append(ConvShape(name: "ds 1x1/2 \(inWidth)>\(width) @\(2 * size)", batch: b, size: 2 * size,
                            inChannels: inWidth, outChannels: width, kernel: 1, stride: 2, count: 1))
  }
  return shapes
}

/// The quick config's encoder (width 0.25: 16/32/64/128 channels, 1 input channel, CIFAR stem) on one 32×32 view of
/// batch 256: the convolutions of EngineBench case (d).
func quickShapes(batch b: Int = 256) -> [ConvShape] {
  var shapes = [ConvShape(name: "stem 3x3 1>16 @32", batch: b, size: 32, inChannels: 1, outChannels: 16,
                          kernel: 3, stride: 1, count: 1, inputGradient: false)]
  shapes.append(ConvShape(name: "3x3 16 @32", batch: b, size: 32, inChannels: 16, outChannels: 16, kernel: 3,
                          stride: 1, count: 4))
  for (size, width) in [(16, 32), (8, 64), (4, 128)] {
    let inWidth = width / 2
    shapes.append(ConvShape(name: "3x3/2 \(inWidth)>\(width) @\(2 * size)", batch: b, size: 2 * size,
                            inChannels: inWidth, outChannels: width, kernel: 3, stride: 2, count: 1))
    shapes.append(ConvShape(name: "3x3 \(width) @\(size)", batch: b, size: size, inChannels: width,
                            outChannels: width, kernel: 3, stride: 1, count: 3))
    shapes.append(ConvShape(name: "ds 1x1/2 \(inWidth)>\(width) @\(2 * size)", batch: b, size: 2 * size,
                            inChannels: inWidth, outChannels: width, kernel: 1, stride: 2, count: 1))
  }
  return shapes
}

// MARK: - Helpers

func now() -> Double {
  var t = timespec()
  clock_gettime(CLOCK_MONOTONIC, &t)
  return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Best wall time of `repeats` runs after one warm-up.
func best(_ body: () -> Void) -> Double {
  body()
  var result = Double.infinity
  for _ in 0..<repeats {
    let start = now()
    body()
    result = min(result, now() - start)
  }
  return result
}

/// Uniform values in [-1, 1), filled on all cores (normal draws would dominate the run time).
func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
  Tensor(uninitializedShape: shape) { buffer in
    let pointer = buffer.baseAddress!
    parallelFor(0..<buffer.count, minimumChunk: 1 << 16) { range in
      var rng = SplitMix64.derived(seed, UInt64(range.lowerBound))
      for i in range { pointer[i] = 2 * rng.nextUniform() - 1 }
    }
  }
}

func makeConv(_ s: ConvShape, seed: UInt64) -> Conv2D {
  var rng = SplitMix64(seed: seed)
  let conv = Conv2D(inChannels: s.inChannels, outChannels: s.outChannels, kernelSize: s.kernel, stride: s.stride,
                    padding: s.padding, using: &rng)
  conv.computesInputGradient = s.inputGradient
  if let chunk = options.chunkElements { conv.columnBufferElements = chunk }
  return conv
}

// MARK: - Validation against a direct convolution

/// Checks random entries of y, dx and dW of a batch-2 run against Double sums straight from the definition.
/// The error bound is relative to Σ|terms| of each entry. Returns the worst error/bound ratio (≤ 1 passes).
func validate(_ s: ConvShape) -> Double {
  let small = ConvShape(name: s.name, batch: 2, size: s.size, inChannels: s.inChannels, outChannels: s.outChannels,
                        kernel: s.kernel, stride: s.stride, count: 1, inputGradient: s.inputGradient)
  let conv = makeConv(small, seed: 11)
  let x = randomTensor([2, s.size, s.size, s.inChannels], seed: 12)
  let (y, cache) = conv.forward(x, mode: .training)
  let dy = randomTensor(y.shape, seed: 13)
  let dx = conv.backward(dy, cache)
  let (h, c, o, k, st, p, oh) = (s.size, s.inChannels, s.outChannels, s.kernel, s.stride, s.padding, small.outputSize)
  let xs = x.scalars, ws = conv.weight.value.scalars, dys = dy.scalars
  var rng = SplitMix64(seed: 14)
  var worst = 0.0
  func check(_ value: Float, _ total: Double, _ magnitude: Double) {
    worst = max(worst, abs(Double(value) - total) / (2e-6 * magnitude + 1e-6))
  }
  for _ in 0..<300 {  // y[n, oy, ox, o] = Σ x[n, oy·s−p+ky, ox·s−p+kx, i] · W[o, ky, kx, i]
    let (n, oy, ox, oc) = (Int(rng.next() % 2), Int(rng.next() % UInt64(oh)), Int(rng.next() % UInt64(oh)),
                           Int(rng.next() % UInt64(o)))
    var total = 0.0, magnitude = 0.0
    for ky in 0..<k { for kx in 0..<k {
      let iy = oy * st - p + ky, ix = ox * st - p + kx
      guard iy >= 0 && iy < h && ix >= 0 && ix < h else { continue }
      for i in 0..<c {
        let term = Double(xs[((n * h + iy) * h + ix) * c + i]) * Double(ws[((oc * k + ky) * k + kx) * c + i])
        total += term; magnitude += abs(term)
      }
    } }
    check(y.scalars[((n * oh + oy) * oh + ox) * o + oc], total, magnitude)
  }
  for _ in 0..<100 {  // dW[o, ky, kx, i] = Σ_{n, oy, ox} dy[n, oy, ox, o] · x[n, iy, ix, i]
    let (oc, ky, kx, i) = (Int(rng.next() % UInt64(o)), Int(rng.next() % UInt64(k)), Int(rng.next() % UInt64(k)),
                           Int(rng.next() % UInt64(c)))
    var total = 0.0, magnitude = 0.0
    for n in 0..<2 { for oy in 0..<oh { for ox in 0..<oh {
      let iy = oy * st - p + ky, ix = ox * st - p + kx
      guard iy >= 0 && iy < h && ix >= 0 && ix < h else { continue }
      let term = Double(dys[((n * oh + oy) * oh + ox) * o + oc]) * Double(xs[((n * h + iy) * h + ix) * c + i])
      total += term; magnitude += abs(term)
    } } }
    check(conv.weight.grad.scalars[((oc * k + ky) * k + kx) * c + i], total, magnitude)
  }
  if s.inputGradient {
    for _ in 0..<300 {  // dx[n, iy, ix, i] = Σ over windows covering (iy, ix) of dy · W
      let (n, iy, ix, i) = (Int(rng.next() % 2), Int(rng.next() % UInt64(h)), Int(rng.next() % UInt64(h)),
                            Int(rng.next() % UInt64(c)))
      var total = 0.0, magnitude = 0.0
      for ky in 0..<k { for kx in 0..<k {
        let ny = iy + p - ky, nx = ix + p - kx
        guard ny >= 0 && nx >= 0 && ny % st == 0 && nx % st == 0 && ny / st < oh && nx / st < oh else { continue }
        let (oy, ox) = (ny / st, nx / st)
        for oc in 0..<o {
          let term = Double(dys[((n * oh + oy) * oh + ox) * o + oc]) * Double(ws[((oc * k + ky) * k + kx) * c + i])
          total += term; magnitude += abs(term)
        }
      } }
      check(dx.scalars[((n * h + iy) * h + ix) * c + i], total, magnitude)
    }
  }
  return worst
}

// MARK: - Timing

struct Timing {
  var forward = 0.0, forwardLowering = 0.0, backward = 0.0, backwardLowering = 0.0
  var gemmForward = 0.0, gemmBackward = 0.0
}

func time(_ s: ConvShape) -> Timing {
  var t = Timing()
  let conv = makeConv(s, seed: 21)
  let x = randomTensor([s.batch, s.size, s.size, s.inChannels], seed: 22)
  let dy = randomTensor([s.batch, s.outputSize, s.outputSize, s.outChannels], seed: 23)
  var cache: Conv2D.Cache? = nil
  conv.loweringSeconds = 0
  t.forward = best {
    conv.loweringSeconds = 0
    cache = conv.forward(x, mode: .training).1
  }
  t.forwardLowering = conv.loweringSeconds!
  t.backward = best {
    conv.loweringSeconds = 0
    _ = conv.backward(dy, cache!)
  }
  t.backwardLowering = conv.loweringSeconds!
  cache = nil

  // Plain sgemm over the whole batch: columns [rows, depth], W [out, depth], dY [rows, out].
  let (m, kk, n) = (s.rows, s.depth, s.outChannels)
  let columns = UnsafeMutablePointer<Float>.allocate(capacity: m * kk)
  let output = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
  let weightGrad = UnsafeMutablePointer<Float>.allocate(capacity: n * kk)
  defer { columns.deallocate(); output.deallocate(); weightGrad.deallocate() }
  parallelFor(0..<(m * kk), minimumChunk: 1 << 16) { r in for i in r { columns[i] = Float(i % 7) * 0.1 - 0.3 } }
  parallelFor(0..<(m * n), minimumChunk: 1 << 16) { r in for i in r { output[i] = Float(i % 5) * 0.1 - 0.2 } }
  weightGrad.initialize(repeating: 0, count: n * kk)
  conv.weight.value.scalars.withUnsafeBufferPointer { wb in
    let w = wb.baseAddress!
    t.gemmForward = best { gemm(m: m, n: n, k: kk, columns, w, transposeB: true, into: output) }
    t.gemmBackward = best {
      gemm(m: n, n: kk, k: m, output, transposeA: true, columns, into: weightGrad, beta: 1)
      if s.inputGradient { gemm(m: m, n: kk, k: n, output, w, into: columns) }
    }
  }
  return t
}

// MARK: - Report

func gflops(_ flops: Double, _ seconds: Double) -> String { String(format: "%6.1f", flops / seconds / 1e9) }
func ms(_ seconds: Double) -> String { String(format: "%8.2f", seconds * 1e3) }
func percent(_ part: Double, _ whole: Double) -> String { String(format: "%4.0f%%", 100 * part / whole) }
func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }

func run(_ title: String, _ shapes: [ConvShape]) {
  print("\n## \(title)")
  print(pad("shape", 26) + "  n   fwd ms  GF/s  low%  gemm GF/s |   bwd ms  GF/s  low%  gemm GF/s | check")
  var sum = (forward: 0.0, backward: 0.0, gemmForward: 0.0, gemmBackward: 0.0, forwardFLOPs: 0.0,
             backwardFLOPs: 0.0, lowering: 0.0)
  for s in shapes where only.map({ s.name.contains($0) }) ?? true {
    let check = validates ? validate(s) : 0
    let t = time(s)
    let counted = Double(s.count)
    sum.forward += counted * t.forward; sum.backward += counted * t.backward
    sum.gemmForward += counted * t.gemmForward; sum.gemmBackward += counted * t.gemmBackward
    sum.forwardFLOPs += counted * s.forwardFLOPs; sum.backwardFLOPs += counted * s.backwardFLOPs
    sum.lowering += counted * (t.forwardLowering + t.backwardLowering)
    let status = !validates ? "-" : check <= 1 ? "ok" : String(format: "FAIL %.1f", check)
    print(pad(s.name, 26) + String(format: "%3d", s.count)
          + " \(ms(t.forward)) \(gflops(s.forwardFLOPs, t.forward)) \(percent(t.forwardLowering, t.forward))"
          + "     \(gflops(s.forwardFLOPs, t.gemmForward)) |"
          + " \(ms(t.backward)) \(gflops(s.backwardFLOPs, t.backward)) \(percent(t.backwardLowering, t.backward))"
          + "     \(gflops(s.backwardFLOPs, t.gemmBackward)) | \(status)")
    fflush(nil)
  }
  guard sum.forward > 0 else { return }
  print(String(format: "TOTAL conv-only (weighted): forward %.0f ms = %.1f GF/s (sgemm %.1f), "
               + "backward %.0f ms = %.1f GF/s (sgemm %.1f), fwd+bwd %.1f GF/s (sgemm %.1f), im2col/col2im %.0f%%",
               sum.forward * 1e3, sum.forwardFLOPs / sum.forward / 1e9, sum.forwardFLOPs / sum.gemmForward / 1e9,
               sum.backward * 1e3, sum.backwardFLOPs / sum.backward / 1e9, sum.backwardFLOPs / sum.gemmBackward / 1e9,
               (sum.forwardFLOPs + sum.backwardFLOPs) / (sum.forward + sum.backward) / 1e9,
               (sum.forwardFLOPs + sum.backwardFLOPs) / (sum.gemmForward + sum.gemmBackward) / 1e9,
               100 * sum.lowering / (sum.forward + sum.backward)))
}

print("KernelBench: \(blasDescription); Threads.count = \(Threads.count); best of \(repeats) after 1 warm-up;"
      + (options.keepsHeap ? " heap kept (no mmap)" : " default malloc"))
print("GF/s = useful conv FLOPs (2·rows·k²·in·out per GEMM) / time; gemm = plain sgemm of the same whole-batch shapes;")
print("low% = share of the time in im2col / col2im; check = random y, dx, dW entries vs a Double direct conv (batch 2)")
if network == "all" || network == "r50" { run("ResNet-50, 224x224, batch 32", resnet50Shapes()) }
if network == "all" || network == "r18" { run("ResNet-18-CIFAR, 32x32, batch 128 (one view)", resnet18CIFARShapes()) }
if network == "all" || network == "quick" {
  run("quick config (R18 CIFAR stem, width 0.25, 1 channel), 32x32, batch 256 (one view)", quickShapes())
}
