import Foundation
import Testing
import Tensors
import Models
import Datasets
@testable import Training

/// The pretraining kNN monitor runs Tensors' WeightedKNN (the `run knn` classifier). Its accuracy must be the one
/// its former classifier gave, kept below verbatim as the oracle, on random-init features (the monitor's baseline,
/// and where near-equal similarities are most common).
///
/// The two are not equal bit for bit: the former normalised rows with a Float sum of squares (WeightedKNN: Double)
/// and weighted a neighbour by exp(Double(sim / T)) with the division in Float (WeightedKNN: in Double), which
/// moves a vote by at most half an ulp of sim / T ≤ 1/0.07, a relative 5e-7. Top-k selection (lower bank index
/// first among equal similarities), the summation order of the votes and the tie rule (lower class first) are the
/// same, and so is the sgemm (one call per 256 queries over the whole bank). A prediction can only change where two
/// similarities at the k-th place, or two classes' votes, agree to about 1e-6.
@Suite struct KNNMonitorTests {
  @Test func syntheticDataGivesTheFormerAccuracy() throws {
    let config = try PretrainConfig.load(yaml: nil, source: "default")
    let bank = try PretrainDataset.open(kind: "synthetic", path: "", limit: 256, channels: 1)
    let queries = try PretrainDataset.open(kind: "synthetic", path: "", limit: 128, channels: 1, split: .test)
    try expectFormerAccuracy(config: config, bank: bank, queries: queries, bankCount: 256, queryCount: 128,
                             settings: [(20, 0.07), (5, 0.1), (200, 0.07)], seeds: [0])
  }

  /// Features in {-1, 0, 1}⁴: most similarities tie exactly, so the tie rules decide most predictions.
  @Test func tiedFeaturesGiveTheFormerAccuracy() throws {
    var rng = SplitMix64(seed: 7)
    func dataset(_ count: Int) -> (PretrainDataset, FeatureMatrix) {
      let image = Image(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 0, count: 64))
      let labels = (0..<count).map { _ in Int(rng.next() % 5) }
      let features = (0..<(count * 4)).map { _ in Float(Int(rng.next() % 3) - 1) }
      return (PretrainDataset(source: .memory([Image](repeating: image, count: count), labels: labels)),
              FeatureMatrix(rows: count, columns: 4, scalars: features))
    }
    let (bank, bankFeatures) = dataset(300), (queries, queryFeatures) = dataset(200)
    for (k, temperature) in [(1, Float(0.07)), (10, 0.07), (50, 0.5)] {
      let monitor = try KNNMonitor(bank: bank, queries: queries, bankCount: 300, queryCount: 200, k: k,
                                   temperature: temperature, imageSize: 8, channels: 1,
                                   normalization: Normalization(mean: [0], std: [1]))
      #expect(monitor.accuracy(bankFeatures: bankFeatures, queryFeatures: queryFeatures)
                == Self.formerAccuracy(monitor, bankFeatures: bankFeatures, queryFeatures: queryFeatures), "k \(k)")
    }
  }

  /// The quickstart's random-init baseline (Fashion-MNIST, 10 000 bank and 2 000 query images, k = 20, T = 0.07,
  /// the three seeds of `randomInitBaseline`). About 4 minutes per seed in a debug build, so it runs on request:
  /// SIMSIAM_KNN_MONITOR_PARITY=1 swift test --filter KNNMonitorTests
  @Test(.enabled(if: ProcessInfo.processInfo.environment["SIMSIAM_KNN_MONITOR_PARITY"] != nil
                   && FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist")))
  func fashionMNISTGivesTheFormerAccuracy() throws {
    let config = try PretrainConfig.load(yaml: nil, source: "default")
    let bank = try PretrainDataset.open(config.data, channels: config.model.inChannels)
    let queries = try PretrainDataset.open(config.data, channels: config.model.inChannels, split: .test)
    try expectFormerAccuracy(config: config, bank: bank, queries: queries, bankCount: config.monitor.knnTrainSamples,
                             queryCount: config.monitor.knnTestSamples,
                             settings: [(config.monitor.knnK, config.monitor.knnTemperature)],
                             seeds: (0..<UInt64(Pretrainer.randomBaselineSeedCount)).map { config.seed &+ $0 })
  }

  /// For each seed: a random-init backbone's pooled features, classified by the monitor and by its former classifier
  /// at every (k, T) of `settings`.
  func expectFormerAccuracy(config: PretrainConfig, bank: PretrainDataset, queries: PretrainDataset, bankCount: Int,
                            queryCount: Int, settings: [(k: Int, temperature: Float)], seeds: [UInt64]) throws {
    let monitors = try settings.map { k, temperature in
      try KNNMonitor(bank: bank, queries: queries, bankCount: bankCount, queryCount: queryCount, k: k,
                     temperature: temperature, imageSize: config.data.imageSize, channels: config.model.inChannels,
                     normalization: Normalization(mean: config.data.mean, std: config.data.std))
    }
    for seed in seeds {
      var rng = SplitMix64(seed: seed)
      let backbone = SimSiam(config.simSiam, using: &rng).backbone
      let bankFeatures = KNNMonitor.features(backbone, monitors[0].bank, batchSize: 256)
      let queryFeatures = KNNMonitor.features(backbone, monitors[0].queries, batchSize: 256)
      for monitor in monitors {
        let accuracy = monitor.accuracy(bankFeatures: bankFeatures, queryFeatures: queryFeatures)
        let former = Self.formerAccuracy(monitor, bankFeatures: bankFeatures, queryFeatures: queryFeatures)
        #expect(accuracy == former, "seed \(seed), k \(monitor.k), T \(monitor.temperature)")
        #expect(accuracy > 0)
      }
    }
  }

  /// The monitor's classifier before it used WeightedKNN (PretrainKNN.swift at 92d0d6b, `accuracy(of:)` and the
  /// normalisation of `features`), on the same pooled features.
  static func formerAccuracy(_ monitor: KNNMonitor, bankFeatures: FeatureMatrix, queryFeatures: FeatureMatrix)
    -> Double {
    func normalised(_ matrix: FeatureMatrix) -> Tensor {
      let width = matrix.columns
      var rows: [Float] = []
      let pooled = matrix.withUnsafeBufferPointer { Array($0) }
      for i in 0..<matrix.rows {
        var norm: Float = 0
        for j in 0..<width { norm += pooled[i * width + j] * pooled[i * width + j] }
        let scale = 1 / max(norm.squareRoot(), 1e-12)
        for j in 0..<width { rows.append(pooled[i * width + j] * scale) }
      }
      return Tensor(shape: [matrix.rows, width], scalars: rows)
    }
    let (bankLabels, queryLabels) = (monitor.bankLabels, monitor.queryLabels)
    let (k, temperature, classCount) = (monitor.k, monitor.temperature, monitor.classCount)
    let bankFeatures = normalised(bankFeatures), queryFeatures = normalised(queryFeatures)
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
            gemm(m: rows, n: b, k: d, queryBuffer.baseAddress! + start * d, bankBuffer.baseAddress!,
                 transposeB: true, into: simBuffer.baseAddress!)
            for row in 0..<rows {
              let sims = UnsafeBufferPointer(rebasing: simBuffer[(row * b)..<((row + 1) * b)])
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
}
