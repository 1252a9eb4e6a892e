// The kNN monitor (as solo-learn and the InstDisc/DINO evaluations compute it): global-pooled backbone features,
// L2-normalised; each query's k most cosine-similar bank samples vote for their class with weight exp(sim / T).
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
    let bankFeatures = Self.features(backbone, bank, batchSize: batchSize)      // [b, d]
    let queryFeatures = Self.features(backbone, queries, batchSize: batchSize)  // [q, d]
    let (b, q, d) = (bankFeatures.shape[0], queryFeatures.shape[0], bankFeatures.shape[1])
    let kk = min(k, b)
    var correct = 0
    let block = 256
    var similarities = [Float](repeating: 0, count: block * b)
    bankFeatures.scalars.withUnsafeBufferPointer { bankBuffer in
      queryFeatures.scalars.withUnsafeBufferPointer { queryBuffer in
        similarities.withUnsafeMutableBufferPointer { simBuffer in
          for start in stride(from: 0, to: q, by: block) {
            let rows = min(block, q - start)
            // [rows, d] × [b, d]ᵀ → [rows, b] cosine similarities.
            gemm(m: rows, n: b, k: d, queryBuffer.baseAddress! + start * d, bankBuffer.baseAddress!,
                 transposeB: true, into: simBuffer.baseAddress!)
            for row in 0..<rows {
              let sims = UnsafeBufferPointer(rebasing: simBuffer[(row * b)..<((row + 1) * b)])
              // Top-k by partial selection: keep the k best seen so far, sorted descending.
              var best: [(Float, Int)] = []
              best.reserveCapacity(kk + 1)
              for (index, value) in sims.enumerated() where best.count < kk || value > best[kk - 1].0 {
                let position = best.firstIndex { $0.0 < value } ?? best.count
                best.insert((value, index), at: position)
                if best.count > kk { best.removeLast() }
              }
              var votes = [Double](repeating: 0, count: classCount)
              for (value, index) in best { votes[bankLabels[index]] += exp(Double(value / temperature)) }
              let predicted = votes.indices.max { votes[$0] < votes[$1] }!
              if predicted == queryLabels[start + row] { correct += 1 }
            }
          }
        }
      }
    }
    return Double(correct) / Double(max(q, 1))
  }

  /// GAP(feature5), L2-normalised rows: [n, channels].
  static func features(_ backbone: ResNet, _ images: Tensor, batchSize: Int) -> Tensor {
    let n = images.shape[0], per = images.count / max(n, 1)
    var rows: [Float] = []
    var width = 0
    for start in stride(from: 0, to: n, by: batchSize) {
      let count = min(batchSize, n - start)
      let batch = Tensor(shape: [count] + Array(images.shape.dropFirst()),
                         scalars: Array(images.scalars[(start * per)..<((start + count) * per)]))
      let pooled = globalAvgPool(backbone.infer(batch))  // [count, c]
      width = pooled.shape[1]
      for i in 0..<count {
        var norm: Float = 0
        for j in 0..<width { norm += pooled.scalars[i * width + j] * pooled.scalars[i * width + j] }
        let scale = 1 / max(norm.squareRoot(), 1e-12)
        for j in 0..<width { rows.append(pooled.scalars[i * width + j] * scale) }
      }
    }
    return Tensor(shape: [n, width], scalars: rows)
  }
}
