// Frozen-backbone feature extraction for the evaluators (PROTOCOLS §2.2, §4.5): eval-mode backbone (BN folded,
// running statistics), each requested stage pooled by `FeaturePooling` and flattened in NCHW order. Images are
// decoded and transformed by loader threads while the backbone runs the previous batch; with a cache, each
// layer's rows stream into its cache file, so memory stays bounded by a few batches whatever the list's size.
import Foundation
import Datasets
import Models
import Tensors

/// What to extract.
public struct FeatureExtractionRequest: Sendable {
  /// SHA-256 of the checkpoint the backbone was loaded from (feature-cache key).
  public var checkpointSHA256: String
  public var source: any EvaluationImageSource
  /// Deterministic preprocessing: `.svm` (Resize 256 → squash 224) or `.centerCrop` (Resize 256 → CenterCrop 224),
  /// or the same with the dataset's own size for small images.
  public var transform: EvaluationTransform
  public var layers: [FeatureLayer]
  public var batchSize: Int
  /// Threads decoding and transforming images ahead of the backbone (`BatchLoader` workers).
  public var loaderThreads: Int

  public init(checkpointSHA256: String, source: any EvaluationImageSource, transform: EvaluationTransform,
              layers: [FeatureLayer], batchSize: Int = 32, loaderThreads: Int = 2) {
    precondition(!layers.isEmpty && batchSize >= 1 && loaderThreads >= 1,
                 "A feature extraction needs ≥ 1 layer, batch size ≥ 1 and ≥ 1 loader thread, got \(layers.count), "
                   + "\(batchSize) and \(loaderThreads).")
    self.checkpointSHA256 = checkpointSHA256
    self.source = source
    self.transform = transform
    self.layers = layers
    self.batchSize = batchSize
    self.loaderThreads = loaderThreads
  }
}

/// Extracted features: one [images, dim] matrix per requested layer, and the pooling rule used.
public struct ExtractedFeatures: Sendable {
  public var matrices: [FeatureLayer: FeatureMatrix]
  public var pooling: FeaturePooling
  /// Layers the backbone computed in this call; the others came from the cache.
  public var computedLayers: [FeatureLayer]
  /// The cache file of each layer (empty without a cache).
  public var cacheFiles: [FeatureLayer: URL]

  public init(matrices: [FeatureLayer: FeatureMatrix], pooling: FeaturePooling, computedLayers: [FeatureLayer] = [],
              cacheFiles: [FeatureLayer: URL] = [:]) {
    self.matrices = matrices
    self.pooling = pooling
    self.computedLayers = computedLayers
    self.cacheFiles = cacheFiles
  }
}

/// Runs a frozen backbone over an image source.
public struct FeatureExtractor {
  public let backbone: ResNet

  public init(backbone: ResNet) { self.backbone = backbone }

  /// The pooling rule for images of `size × size`: `specified` only when the stage maps are MMSelfSup's.
  public func pooling(forInputSize size: Int) -> FeaturePooling {
    FeaturePooling.rule(forStageSizes: stageSizes(forInputSize: size))
  }

  /// Side of each stage's map for a `size × size` input.
  public func stageSizes(forInputSize size: Int) -> [Int] {
    func convolved(_ s: Int, kernel: Int, stride: Int, padding: Int) -> Int { (s + 2 * padding - kernel) / stride + 1 }
    let stem = backbone.config.cifarStem ? size : convolved(size, kernel: 7, stride: 2, padding: 3)
    let layer1 = backbone.config.cifarStem ? stem : convolved(stem, kernel: 3, stride: 2, padding: 1)
    var sizes = [stem, layer1]
    for _ in 0..<3 { sizes.append(convolved(sizes.last!, kernel: 3, stride: 2, padding: 1)) }
    return sizes
  }

  /// Feature dimension of `layer` for this backbone.
  public func dimension(of layer: FeatureLayer) -> Int {
    FeaturePooling.dimension(of: layer, channels: backbone.config.featureChannels[layer.stageIndex])
  }

  /// The cache key of `layer` for `request`.
  public func cacheKey(_ request: FeatureExtractionRequest, layer: FeatureLayer) -> FeatureCacheKey {
    FeatureCacheKey(checkpointSHA256: request.checkpointSHA256, datasetFingerprint: request.source.fingerprint,
                    layer: layer, transform: request.transform, pooling: pooling(forInputSize: request.transform.size),
                    architecture: backbone.config)
  }

  /// Extracts all requested layers. `progress(done, total)` is called after each batch the backbone runs.
  ///
  /// With a `cache`, layers with a valid cache file are mapped from it; the missing ones are extracted in one pass
  /// over the source (the backbone is not run at all when every layer hits), streamed into new cache files, and
  /// returned mapped. Without a cache the matrices are held in memory. An unreadable image throws the source's
  /// `DatasetError` naming the file; no cache file of this pass is then left behind.
  public func extract(_ request: FeatureExtractionRequest, cache: FeatureCache? = nil,
                      progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> ExtractedFeatures {
    let total = request.source.count
    let pooling = pooling(forInputSize: request.transform.size)
    var layers: [FeatureLayer] = []
    for layer in request.layers where !layers.contains(layer) { layers.append(layer) }

    var matrices: [FeatureLayer: FeatureMatrix] = [:]
    var cacheFiles: [FeatureLayer: URL] = [:]
    var missing: [FeatureLayer] = []
    for layer in layers {
      guard let cache else { missing.append(layer); continue }
      let key = cacheKey(request, layer: layer)
      cacheFiles[layer] = cache.url(for: key)
      if let matrix = cache.matrix(for: key, rows: total, columns: dimension(of: layer)) {
        matrices[layer] = matrix
      } else {
        missing.append(layer)
      }
    }
    guard !missing.isEmpty else {
      return ExtractedFeatures(matrices: matrices, pooling: pooling, cacheFiles: cacheFiles)
    }

    let sinks = try missing.map { layer -> any FeatureSink in
      guard let cache else { return MemorySink(rows: total, columns: dimension(of: layer)) }
      return try cache.makeWriter(for: cacheKey(request, layer: layer), rows: total, columns: dimension(of: layer))
    }
    try stream(request, layers: missing, pooling: pooling, into: sinks, progress: progress)
    for (layer, sink) in zip(missing, sinks) { matrices[layer] = try sink.finish() }
    return ExtractedFeatures(matrices: matrices, pooling: pooling, computedLayers: missing, cacheFiles: cacheFiles)
  }

  /// The layers of `request` whose cache file is valid, mapped (`matrices`), with every layer's cache file; the
  /// ones missing are in `request.layers` but not in `matrices`. The first half of `extract`, for a caller that
  /// computes the missing ones itself (a sharded extraction).
  public func cached(_ request: FeatureExtractionRequest, in cache: FeatureCache) -> ExtractedFeatures {
    var matrices: [FeatureLayer: FeatureMatrix] = [:]
    var cacheFiles: [FeatureLayer: URL] = [:]
    for layer in request.layers {
      let key = cacheKey(request, layer: layer)
      cacheFiles[layer] = cache.url(for: key)
      if let matrix = cache.matrix(for: key, rows: request.source.count, columns: dimension(of: layer)) {
        matrices[layer] = matrix
      }
    }
    return ExtractedFeatures(matrices: matrices, pooling: pooling(forInputSize: request.transform.size),
                             cacheFiles: cacheFiles)
  }

  /// Writes `matrix` ([all images, dim]) as `layer`'s cache file for `request` and returns it mapped.
  public func store(_ matrix: FeatureMatrix, layer: FeatureLayer, for request: FeatureExtractionRequest,
                    in cache: FeatureCache) throws -> FeatureMatrix {
    precondition(matrix.rows == request.source.count && matrix.columns == dimension(of: layer),
                 "\(layer.rawValue) features of \(matrix.rows) × \(matrix.columns) stored for \(request.source.count) "
                   + "images of \(dimension(of: layer)) dims.")
    let writer = try cache.makeWriter(for: cacheKey(request, layer: layer), rows: matrix.rows,
                                      columns: matrix.columns)
    try matrix.withUnsafeBufferPointer { try writer.append($0) }
    return try writer.finish()
  }

  /// `layers` of the images `images` of the source only, in memory: [images.count, dim] per layer, row i being
  /// image `images.lowerBound + i`. One process's share of a sharded extraction; with `images.lowerBound` a
  /// multiple of the batch size, every batch holds the images it holds in a whole pass.
  public func extract(_ request: FeatureExtractionRequest, layers: [FeatureLayer], images: Range<Int>,
                      progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> [FeatureLayer: FeatureMatrix] {
    precondition(images.lowerBound >= 0 && images.upperBound <= request.source.count,
                 "Images \(images) of a source of \(request.source.count).")
    guard !images.isEmpty, !layers.isEmpty else {
      return Dictionary(uniqueKeysWithValues: layers.map {
        ($0, FeatureMatrix(rows: 0, columns: dimension(of: $0), scalars: []))
      })
    }
    var share = request
    share.source = ImageRange(base: request.source, images: images)
    let sinks = layers.map { MemorySink(rows: images.count, columns: dimension(of: $0)) }
    try stream(share, layers: layers, pooling: pooling(forInputSize: request.transform.size), into: sinks,
               progress: progress)
    var matrices: [FeatureLayer: FeatureMatrix] = [:]
    for (layer, sink) in zip(layers, sinks) { matrices[layer] = try sink.finish() }
    return matrices
  }

  /// One pass over the source: loader threads prepare batch b + 1, b + 2 while the backbone runs batch b; each of
  /// `layers` is pooled and appended to its sink.
  private func stream(_ request: FeatureExtractionRequest, layers: [FeatureLayer], pooling: FeaturePooling,
                      into sinks: [any FeatureSink], progress: ((Int, Int) -> Void)?) throws {
    let total = request.source.count
    let channels = backbone.config.inChannels
    let transform = request.transform
    let source = request.source
    precondition(transform.normalization.mean.count == channels,
                 "The evaluation transform normalises \(transform.normalization.mean.count) channels; the backbone "
                   + "takes \(channels).")
    let lastStage = layers.map(\.stageIndex).max()! + 1
    let plan = EpochPlan(sampleCount: total, batchSize: request.batchSize, shuffle: false, dropLast: false, seed: 0,
                         epoch: 0)
    let loader = BatchLoader<Tensor>(plan: plan, workers: request.loaderThreads, prefetch: 2) { indices, _ in
      try Self.makeBatch(indices, source: source, transform: transform, channels: channels)
    }
    defer { loader.cancel() }  // the workers stop even when a batch or a sink throws
    var done = 0
    while let batch = try loader.next() {
      let stages = backbone.inferFeatures(batch, upTo: lastStage)
      for (layer, sink) in zip(layers, sinks) {
        let flat = pooling.pooledFlat(stages[layer.stageIndex], layer: layer)  // [n, dim]
        precondition(flat.shape == [batch.shape[0], sink.columns],
                     "\(layer.rawValue) features have shape \(flat.shape), expected [\(batch.shape[0]), \(sink.columns)].")
        try sink.append(flat)
      }
      done += batch.shape[0]
      progress?(done, total)
    }
  }

  /// Decodes, transforms and normalises the images `indices` into one [n, size, size, channels] batch.
  public static func makeBatch(_ indices: [Int], source: any EvaluationImageSource, transform: EvaluationTransform,
                        channels: Int) throws -> Tensor {
    let images = try indices.map { index in
      let image = transform.image(try source.image(at: index, channels: channels))
      precondition(image.width == transform.size && image.height == transform.size && image.channels == channels,
                   "The evaluation transform made a \(image.width)×\(image.height)×\(image.channels) image of "
                     + "\(source.location(of: index)); expected \(transform.size)×\(transform.size)×\(channels).")
      return image
    }
    let perImage = transform.size * transform.size * channels
    return Tensor(uninitializedShape: [indices.count, transform.size, transform.size, channels]) { buffer in
      for (slot, image) in images.enumerated() {
        image.writeNormalized(into: buffer.baseAddress! + slot * perImage, normalization: transform.normalization)
      }
    }
  }
}

/// Images `images` of `base`, renumbered from 0 (one process's share of a sharded extraction).
private struct ImageRange: EvaluationImageSource {
  var base: any EvaluationImageSource
  var images: Range<Int>
  var count: Int { images.count }
  var fingerprint: String { base.fingerprint + "[\(images.lowerBound)..<\(images.upperBound)]" }
  func image(at index: Int, channels: Int) throws -> Image { try base.image(at: images.lowerBound + index,
                                                                             channels: channels) }
  func location(of index: Int) -> String { base.location(of: images.lowerBound + index) }
}

// MARK: - Sinks

/// Where one layer's rows go during a pass.
private protocol FeatureSink: AnyObject {
  var columns: Int { get }
  func append(_ rows: Tensor) throws
  func finish() throws -> FeatureMatrix
}

/// Rows kept in memory (extraction without a cache).
private final class MemorySink: FeatureSink {
  let rows: Int
  let columns: Int
  private var scalars: [Float] = []

  init(rows: Int, columns: Int) {
    self.rows = rows
    self.columns = columns
    scalars.reserveCapacity(rows * columns)
  }

  func append(_ rowsTensor: Tensor) throws { scalars.append(contentsOf: rowsTensor.scalars) }

  func finish() throws -> FeatureMatrix { FeatureMatrix(rows: rows, columns: columns, scalars: scalars) }
}

/// Rows streamed into a cache file, mapped back when the pass completes.
extension FeatureCacheWriter: FeatureSink {
  func finish() throws -> FeatureMatrix {
    try commit()
    // The checksum was computed while writing; reading it back now would only re-hash what was just written.
    return try FeatureCache.read(url, verifyingChecksum: false).matrix
  }
}
