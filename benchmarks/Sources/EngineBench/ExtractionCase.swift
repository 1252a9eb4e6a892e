// Case (e), issue 19 item 3: the VOC07 SVM protocol's feature extraction without the image loading — ResNet-50 at
// 224×224, batch 32, all five stages (`ResNet.inferFeatures`, BN folded as in case (a)), each pooled with
// MMSelfSup's specified kernels to its 12/6/4/3/2 grid, flattened in NCHW order and copied into a preallocated
// [images, dim] matrix per layer (the in-memory sink's work; the cache writer appends the same rows to a file).
// Its images/s against case (a)'s in the same EngineBench run is the item's ratio (target ≥ 0.9): pooling,
// flattening and the copy may cost at most 10 % of the network's time. torch_bench.py --only e is the same work
// in PyTorch (forward hooks on the five stages, nn.AvgPool2d, flatten).
import Evaluation
import Models
import Tensors

func runExtractionCase(iterations requested: Int) -> CaseResult {
  var rng = SplitMix64(seed: 0)
  let batch = 32
  let backbone = ResNet(ResNetConfig(depth: 50), using: &rng)
  let x = Tensor.randomNormal([batch, 224, 224, 3], using: &rng)
  let extractor = FeatureExtractor(backbone: backbone)
  let pooling = extractor.pooling(forInputSize: 224)
  let layers = FeatureLayer.stages
  let dimensions = layers.map { extractor.dimension(of: $0) }
  // One batch's rows per layer; the timed step overwrites them (a sink of `batch` images).
  var sinks = dimensions.map { [Float](repeating: 0, count: batch * $0) }
  let stepSeconds = time(warmup: 1, iterations: requested > 0 ? requested : 3) {
    let stages = backbone.inferFeatures(x, upTo: 5)
    for (slot, layer) in layers.enumerated() {
      let flat = pooling.pooledFlat(stages[layer.stageIndex], layer: layer)  // [batch, dim]
      flat.scalars.withUnsafeBufferPointer { rows in
        sinks[slot].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: rows.baseAddress!, count: rows.count) }
      }
    }
  }
  precondition(sinks.allSatisfy { $0.contains { $0 != 0 } }, "Extraction wrote no features.")
  let mean = stepSeconds.reduce(0, +) / Double(stepSeconds.count)
  let flops = 2 * forwardMACs(of: backbone, height: 224, width: 224) * Double(batch)
  return CaseResult(name: "ResNet-50 224 b32 five-layer extraction", batch: batch, stepSeconds: stepSeconds,
                    imagesPerSecond: Double(batch) / mean, gigaflopsPerSecond: flops / mean / 1e9,
                    peakResidentMegabytes: peakResidentMegabytes(),
                    note: "feature1–5 dims " + dimensions.map(String.init).joined(separator: "/")
                      + " (pooling " + pooling.rawValue + ")")
}
