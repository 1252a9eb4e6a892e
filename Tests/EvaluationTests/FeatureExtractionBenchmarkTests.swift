// Throughput figures for the report and benchmarks/README.md, not correctness checks. Run in release:
//   SIMSIAM_BENCH_FEATURES=1 swift build -c release --build-tests --scratch-path .build-features
//   SIMSIAM_BENCH_FEATURES=1 swift test -c release --skip-build --scratch-path .build-features \
//     --filter FeatureExtractionBenchmarkTests
import Support
import Foundation
import Testing
import Tensors
import Datasets
import Models
import Evaluation

let runsFeatureBenchmarks = ProcessInfo.processInfo.environment["SIMSIAM_BENCH_FEATURES"] != nil

@Suite(.serialized, .enabled(if: runsFeatureBenchmarks)) struct FeatureExtractionBenchmarkTests {
  static func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  }

  /// ResNet-50 at 224 (Resize 256 → squash 224) over synthetic VOC-sized JPEGs, all five SVM layers into the cache.
  @Test func resNet50ExtractionThroughput() throws {
    let threads = Int(ProcessInfo.processInfo.environment["SIMSIAM_BENCH_THREADS"] ?? "2") ?? 2
    Threads.configure(threads)
    let count = Int(ProcessInfo.processInfo.environment["SIMSIAM_BENCH_IMAGES"] ?? "64") ?? 64
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    var generator = SplitMix64(seed: 8)
    var urls: [URL] = []
    for index in 0..<count {
      let (width, height) = index % 2 == 0 ? (500, 375) : (375, 500)
      var pixels = [UInt8](repeating: 0, count: width * height * 3)
      for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: (i / 3 % width) + (i / (3 * width)) + Int(generator.next() % 32)) }
      let url = directory.appendingPathComponent("img\(index).jpg")
      try Image(width: width, height: height, channels: 3, pixels: pixels).write(to: url, jpegQuality: 90)
      urls.append(url)
    }
    var modelGenerator = SplitMix64(seed: 1)
    let extractor = FeatureExtractor(backbone: ResNet(ResNetConfig(depth: 50), using: &modelGenerator))
    let cache = try FeatureCache(directory: directory.appendingPathComponent("cache"))
    let request = FeatureExtractionRequest(checkpointSHA256: "bench", source: FileListSource(urls: urls),
                                           transform: .svm, layers: FeatureLayer.stages, batchSize: 32,
                                           loaderThreads: 2)
    let decode = try Self.seconds {
      for index in 0..<count {
        _ = try FeatureExtractor.makeBatch([index], source: request.source, transform: .svm, channels: 3)
      }
    }
    // The backbone alone on one prepared batch of 16: the rate the pipeline approaches when decoding overlaps.
    let batch = try FeatureExtractor.makeBatch(Array(0..<16), source: request.source, transform: .svm, channels: 3)
    let backboneOnly = Self.seconds { _ = extractor.backbone.inferFeatures(batch, upTo: 5) }
    print(String(format: "ResNet-50 @224 inferFeatures alone: %.2f img/s (batch 16)", 16 / backboneOnly))
    var features: ExtractedFeatures?
    let cold = try Self.seconds { features = try extractor.extract(request, cache: cache) }
    let bytes = features!.matrices.values.reduce(0) { $0 + $1.rows * $1.columns * 4 }
    var hit: ExtractedFeatures?
    let warm = try Self.seconds { hit = try extractor.extract(request, cache: cache) }
    #expect(hit!.computedLayers.isEmpty)
    print(String(format: "ResNet-50 @224, %d JPEGs 500×375, %d threads: decode+transform alone %.1f img/s (1 thread); "
                   + "extraction of feature1…5 %.2f img/s (%.1f s); cache hit of %.1f MB in %.3f s (%.2f GB/s, "
                   + "checksums verified)",
                 count, threads, Double(count) / decode, Double(count) / cold, cold, Double(bytes) / 1e6, warm,
                 Double(bytes) / warm / 1e9))
  }

  /// Checksum and mapped-read speed on a VOC07-sized feature file (5,011 × 9,216 float32 = 185 MB).
  @Test func cacheReadAndChecksumSpeed() throws {
    let (rows, columns) = (5_011, 9_216)
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let cache = try FeatureCache(directory: directory)
    let key = FeatureCacheKey(checkpointSHA256: "bench", datasetFingerprint: "voc07", layer: .feature1,
                              transform: .svm, pooling: .specified, architecture: ResNetConfig(depth: 50))
    var block = [Float](repeating: 0, count: 64 * columns)
    for i in block.indices { block[i] = Float(i % 977) * 0.01 }
    let writer = try cache.makeWriter(for: key, rows: rows, columns: columns)
    let write = try Self.seconds {
      var written = 0
      while written < rows {
        let n = min(64, rows - written)
        try block.withUnsafeBufferPointer { try writer.append(UnsafeBufferPointer(rebasing: $0[0..<(n * columns)])) }
        written += n
      }
      try writer.commit()
    }
    let megabytes = Double(rows * columns * 4) / 1e6
    var sum: Float = 0
    let verified = try Self.seconds {
      let matrix = try #require(cache.matrix(for: key, rows: rows, columns: columns))
      matrix.withUnsafeBufferPointer { for i in stride(from: 0, to: $0.count, by: 1024) { sum += $0[i] } }
    }
    let unverified = try Self.seconds {
      let matrix = try FeatureCache.read(cache.url(for: key), verifyingChecksum: false).matrix
      matrix.withUnsafeBufferPointer { for i in stride(from: 0, to: $0.count, by: 1024) { sum += $0[i] } }
    }
    let sample = [UInt8](repeating: 7, count: 64 << 20)
    let xxh = Self.seconds { _ = sample.withUnsafeBytes { XXHash64.digest($0) } }
    let sha = Self.seconds { _ = SHA256.hexDigest(of: sample) }
    print(String(format: "Cache file %.0f MB: write+fsync %.2f s (%.2f GB/s); open with checksum %.3f s (%.2f GB/s); "
                   + "open without %.4f s; XXH64 %.2f GB/s, SHA-256 %.3f GB/s (sum %g)",
                 megabytes, write, megabytes / 1e3 / write, verified, megabytes / 1e3 / verified, unverified,
                 64 * 1.048576 / 1e3 / xxh, 64 * 1.048576 / 1e3 / sha, sum))
  }
}
