// Frozen-backbone feature extraction for the evaluators (PROTOCOLS §2.2, §4.5): eval-mode backbone (BN folded,
// running statistics), each requested stage pooled by `FeaturePooling` and flattened in NCHW order.
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

  public init(checkpointSHA256: String, source: any EvaluationImageSource, transform: EvaluationTransform,
              layers: [FeatureLayer], batchSize: Int = 32) {
    precondition(!layers.isEmpty && batchSize >= 1,
                 "A feature extraction needs ≥ 1 layer and batch size ≥ 1, got \(layers.count) and \(batchSize).")
    self.checkpointSHA256 = checkpointSHA256
    self.source = source
    self.transform = transform
    self.layers = layers
    self.batchSize = batchSize
  }
}

/// Extracted features: one [images, dim] matrix per requested layer, and the pooling rule used.
public struct ExtractedFeatures: Sendable {
  public var matrices: [FeatureLayer: FeatureMatrix]
  public var pooling: FeaturePooling
  public init(matrices: [FeatureLayer: FeatureMatrix], pooling: FeaturePooling) {
    self.matrices = matrices
    self.pooling = pooling
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

  /// Extracts all requested layers in one pass over the source. `progress(done, total)` is called after each batch.
  ///
  /// Plain in-memory version: one batch at a time on the calling thread, every matrix held in memory.
  public func extract(_ request: FeatureExtractionRequest,
                      progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> ExtractedFeatures {
    let total = request.source.count
    let pooling = pooling(forInputSize: request.transform.size)
    let lastStage = request.layers.map(\.stageIndex).max()! + 1
    let channels = backbone.config.inChannels
    let dims = request.layers.map {
      FeaturePooling.dimension(of: $0, channels: backbone.config.featureChannels[$0.stageIndex])
    }
    var columns = dims.map { [Float](repeating: 0, count: total * $0) }
    var start = 0
    while start < total {
      let end = min(start + request.batchSize, total)
      let images = try (start..<end).map { index in
        request.transform(try request.source.image(at: index, channels: channels))
      }
      let stages = backbone.inferFeatures(collate(images), upTo: lastStage)
      for (slot, layer) in request.layers.enumerated() {
        let flat = pooling.pooledFlat(stages[layer.stageIndex], layer: layer)
        precondition(flat.shape == [end - start, dims[slot]],
                     "\(layer.rawValue) features have shape \(flat.shape), expected [\(end - start), \(dims[slot])].")
        columns[slot].replaceSubrange((start * dims[slot])..<(end * dims[slot]), with: flat.scalars)
      }
      start = end
      progress?(start, total)
    }
    var matrices: [FeatureLayer: FeatureMatrix] = [:]
    for (slot, layer) in request.layers.enumerated() {
      matrices[layer] = FeatureMatrix(rows: total, columns: dims[slot], scalars: columns[slot])
    }
    return ExtractedFeatures(matrices: matrices, pooling: pooling)
  }
}
