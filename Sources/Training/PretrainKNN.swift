// The kNN monitor of pretraining: global-pooled backbone features of a labelled bank and query set, classified by
// the one weighted kNN (Tensors' WeightedKNN, MMSelfSup's: L2-normalised rows, each query's k most cosine-similar
// bank samples vote for their class with weight exp(sim / T)), top-1 only.
import Foundation
import Tensors
import Layers
import Models
import Datasets

/// Labelled feature bank and queries for the kNN monitor, preprocessed once (resize to the training size,
/// normalise; no augmentation).
public struct KNNMonitor: Sendable {
  public let bank: Tensor       // [b, s, s, c] images
  public let bankLabels: [Int]
  public let queries: Tensor    // [q, s, s, c]
  public let queryLabels: [Int]
  public let k: Int
  public let temperature: Float
  public let classCount: Int

  public init(bank: PretrainDataset, queries: PretrainDataset, bankCount: Int, queryCount: Int, k: Int,
              temperature: Float, imageSize: Int, channels: Int, normalization: Normalization) throws {
    func load(_ dataset: PretrainDataset, _ count: Int) throws -> (Tensor, [Int]) {
      let n = min(count, dataset.count)
      let images = try (0..<n).map { index -> Image in
        let image = try dataset.image(at: index, channels: channels)
        return image.width == imageSize && image.height == imageSize ? image
          : image.resized(width: imageSize, height: imageSize)
      }
      return (collate(images, normalization: normalization), (0..<n).map(dataset.label(at:)))
    }
    (self.bank, bankLabels) = try load(bank, bankCount)
    (self.queries, queryLabels) = try load(queries, queryCount)
    self.k = k
    self.temperature = temperature
    classCount = (bankLabels.max() ?? 0) + 1
  }

  /// Top-1 accuracy (0…1) of `backbone`'s features.
  public func accuracy(of backbone: ResNet, batchSize: Int = 256) -> Double {
    accuracy(bankFeatures: Self.features(backbone, bank, batchSize: batchSize),
             queryFeatures: Self.features(backbone, queries, batchSize: batchSize))
  }

  /// Top-1 accuracy (0…1) of the kNN on pooled features [b, d] and [q, d] (normalised here).
  func accuracy(bankFeatures: FeatureMatrix, queryFeatures: FeatureMatrix) -> Double {
    // One sgemm per 256 queries over the whole bank, the monitor's blocking before it shared the classifier.
    let knn = WeightedKNN(ks: [k], temperature: temperature, queryBlock: 256, bankBlock: max(bankFeatures.rows, 1))
    // Query labels the bank lacks get classes with no votes, which no query can be assigned.
    let classes = max(classCount, (queryLabels.max() ?? -1) + 1)
    let hits = knn.hitCounts(bank: bankFeatures, bankLabels: bankLabels, queries: queryFeatures,
                             queryLabels: queryLabels, classCount: classes)
    return Double(hits[0].top1) / Double(max(queryFeatures.rows, 1))
  }

  /// GAP(feature5) rows: [n, channels].
  static func features(_ backbone: ResNet, _ images: Tensor, batchSize: Int) -> FeatureMatrix {
    let n = images.shape[0], per = images.count / max(n, 1)
    var rows: [Float] = []
    var width = 0
    for start in stride(from: 0, to: n, by: batchSize) {
      let count = min(batchSize, n - start)
      let batch = Tensor(shape: [count] + Array(images.shape.dropFirst()),
                         scalars: Array(images.scalars[(start * per)..<((start + count) * per)]))
      let pooled = globalAvgPool(backbone.infer(batch))  // [count, c]
      width = pooled.shape[1]
      rows += pooled.scalars
    }
    return FeatureMatrix(rows: n, columns: width, scalars: rows)
  }
}
