// The probe heads of one run with their optimiser and per-epoch schedule: MMSelfSup's multi-head probe
// (five heads, summed cross-entropy, SGD Nesterov, step LR; PROTOCOLS §4.1, §4.3, §4.4) or the AvgPool probe
// (GAP → Linear, LARS, cosine LR; §4.2). Heads train on pooled features of a frozen backbone.
import Foundation
import Checkpoints
import Layers
import Tensors

/// Which head the probe has (`--head`).
public enum ProbeKind: String, Codable, Sendable, CaseIterable {
  /// MMSelfSup `MultiClsHead`: one BN(affine=False) → Linear branch per stage, losses summed.
  case mhead
  /// MMSelfSup `ClsHead(with_avg_pool=True)`: GAP of layer4 → Linear.
  case avgpool
}

/// Optimiser and schedule of a probe, with the learning rate already scaled to the batch size.
public struct ProbeOptimization: Sendable, Equatable {
  public enum Method: String, Codable, Sendable { case sgd, lars }
  public var method: Method
  public var learningRate: Float
  public var momentum: Float
  public var weightDecay: Float
  public var nesterov: Bool
  public var schedule: LearningRateSchedule
  public var epochs: Int

  public init(method: Method, learningRate: Float, momentum: Float, weightDecay: Float, nesterov: Bool,
              schedule: LearningRateSchedule, epochs: Int) {
    self.method = method; self.learningRate = learningRate; self.momentum = momentum
    self.weightDecay = weightDecay; self.nesterov = nesterov; self.schedule = schedule; self.epochs = epochs
  }
}

/// Shape of one head's input: the layer, its channels and pooled grid side (1 for `avgpool`).
public struct ProbeInput: Sendable, Equatable {
  public var layer: FeatureLayer
  public var channels: Int
  public var grid: Int
  public init(layer: FeatureLayer, channels: Int, grid: Int) {
    self.layer = layer; self.channels = channels; self.grid = grid
  }
  public var dimension: Int { channels * grid * grid }

  /// The inputs of `layers` for a backbone with `featureChannels` (ResNetConfig.featureChannels).
  public static func inputs(_ layers: [FeatureLayer], featureChannels: [Int]) -> [ProbeInput] {
    layers.map { layer in
      ProbeInput(layer: layer, channels: featureChannels[layer.stageIndex],
                 grid: layer == .avgpool ? 1 : FeaturePooling.gridSizes[layer.stageIndex])
    }
  }
}

/// Top-1 / top-5 hit counts of one head.
public struct ProbeHits: Sendable, Equatable, Codable {
  public var top1: Int
  public var top5: Int
  public var count: Int
  public init(top1: Int = 0, top5: Int = 0, count: Int = 0) { self.top1 = top1; self.top5 = top5; self.count = count }
  public var top1Percent: Double { count == 0 ? 0 : 100 * Double(top1) / Double(count) }
  public var top5Percent: Double { count == 0 ? 0 : 100 * Double(top5) / Double(count) }
}

/// Adds the top-1 and top-5 hits of `logits` [n, classes] against `labels` (mmcls `accuracy(topk=(1, 5))`;
/// top-5 is top-min(5, classes); equal logits rank the lower class first).
public func countHits(logits: Tensor, labels: [Int], into hits: inout ProbeHits) {
  let (n, classes) = (logits.shape[0], logits.shape[1])
  precondition(labels.count == n, "countHits: \(n) rows of logits but \(labels.count) labels.")
  logits.scalars.withUnsafeBufferPointer { buffer in
    for row in 0..<n {
      let values = buffer.baseAddress! + row * classes
      let label = labels[row], own = values[label]
      var rank = 0
      for c in 0..<classes where values[c] > own || (values[c] == own && c < label) { rank += 1 }
      if rank == 0 { hits.top1 += 1 }
      if rank < min(5, classes) { hits.top5 += 1 }
    }
  }
  hits.count += n
}

/// The heads, their optimiser and the epoch counter of a probe run.
public final class LinearProbe {
  public let kind: ProbeKind
  public let inputs: [ProbeInput]
  public let heads: [ProbeHead]
  public let optimization: ProbeOptimization
  public let optimizer: any Optimizer
  /// Epochs finished (the next epoch to train is `completedEpochs`, 0-based).
  public var completedEpochs = 0

  /// Heads initialised from `generator` in input order (weights N(0, 0.01²), bias 0).
  public init<G: RandomNumberGenerator>(kind: ProbeKind, inputs: [ProbeInput], classCount: Int,
                                        optimization: ProbeOptimization, batchNormMomentum: Float = 0.1,
                                        initStd: Float = 0.01, using generator: inout G) {
    precondition(!inputs.isEmpty, "A probe needs at least one head.")
    self.kind = kind
    self.inputs = inputs
    self.optimization = optimization
    heads = inputs.map { input in
      ProbeHead(layer: input.layer, channels: input.channels, grid: input.grid, classCount: classCount,
                usesBatchNorm: kind == .mhead, batchNormMomentum: batchNormMomentum, initStd: initStd,
                using: &generator)
    }
    let parameters = heads.flatMap(\.trainableParameters)
    switch optimization.method {
    case .sgd:
      optimizer = SGD(parameters, learningRate: optimization.learningRate, momentum: optimization.momentum,
                      weightDecay: optimization.weightDecay, nesterov: optimization.nesterov)
    case .lars:
      optimizer = LARS(parameters, learningRate: optimization.learningRate, momentum: optimization.momentum,
                       weightDecay: optimization.weightDecay, nesterov: optimization.nesterov)
    }
  }

  public var classCount: Int { heads[0].classCount }

  /// Sets the learning rate for epoch `epoch` (0-based), mmcv's per-epoch LrUpdaterHook.
  public func beginEpoch(_ epoch: Int) {
    optimizer.updateLearningRates(optimization.schedule,
                                  at: TrainingProgress(epoch: epoch, totalEpochs: optimization.epochs))
  }

  public var learningRate: Float { optimizer.parameterGroups[0].learningRate }

  /// One step on a batch: `features[i]` [n, dim_i] feeds head i. Returns each head's mean cross-entropy; the
  /// summed loss is what is minimised (MultiClsHead's `loss.1 + … + loss.5`). `combineGradients` runs between the
  /// backward and the update: a data-parallel run averages the ranks' gradients there (DDP's allreduce).
  @discardableResult
  public func step(features: [Tensor], labels: [Int]) -> [Float] {
    step(features: features, labels: labels, combineGradients: {})
  }

  @discardableResult
  public func step(features: [Tensor], labels: [Int], combineGradients: () throws -> Void) rethrows -> [Float] {
    precondition(features.count == heads.count, "\(features.count) feature batches for \(heads.count) heads.")
    optimizer.zeroGrad()
    var losses: [Float] = []
    for (head, x) in zip(heads, features) {
      let (logits, cache) = head.forward(x, mode: .training)
      let (loss, dLogits) = crossEntropy(logits: logits, labels: labels)
      _ = head.backward(dLogits, cache)
      losses.append(loss)
    }
    try combineGradients()
    optimizer.step()
    return losses
  }

  /// Inference logits of every head.
  public func logits(features: [Tensor]) -> [Tensor] {
    zip(heads, features).map { head, x in head.forward(x, mode: .inference).0 }
  }

  /// Parameters and buffers under `head.*` names (MMSelfSup's `MultiClsHead` / `ClsHead` keys).
  public var namedParameters: [NamedParameter] {
    var named: [NamedParameter] = []
    for (index, head) in heads.enumerated() {
      named += prefixed("head", head.namedParameters(branch: kind == .mhead ? index : nil))
    }
    return named
  }

  // MARK: - Checkpoints

  /// Heads, BN running statistics, momentum buffers and `metadata` (plus the epoch) as a safetensors file.
  public func checkpoint(metadata: [String: String]) -> SafeTensors {
    var tensors = StateDict.tensors(of: namedParameters)
    let names = Dictionary(uniqueKeysWithValues: namedParameters.map { (ObjectIdentifier($0.parameter), $0.name) })
    for (parameter, buffer) in zip(optimizer.allParameters, optimizer.momentumBuffers) {
      if let buffer, let name = names[ObjectIdentifier(parameter)] {
        tensors["optimizer.momentum_buffer.\(name)"] = StoredTensor(buffer)
      }
    }
    var metadata = metadata
    metadata["epoch"] = String(completedEpochs)
    metadata["head"] = kind.rawValue
    return SafeTensors(tensors: tensors, metadata: metadata)
  }

  /// Restores heads, statistics, momentum and the epoch from `checkpoint`; `source` names it in errors.
  public func restore(_ checkpoint: SafeTensors, source: String) throws {
    let state = checkpoint.tensors.filter { !$0.key.hasPrefix("optimizer.") }
    try StateDict.load(state, into: namedParameters, source: source)
    let names = Dictionary(uniqueKeysWithValues: namedParameters.map { (ObjectIdentifier($0.parameter), $0.name) })
    let buffers: [Tensor?] = optimizer.allParameters.map { parameter in
      names[ObjectIdentifier(parameter)].flatMap { checkpoint.tensors["optimizer.momentum_buffer.\($0)"]?.value }
    }
    try optimizer.restoreMomentumBuffers(buffers)
    guard let epochText = checkpoint.metadata["epoch"], let epoch = Int(epochText) else {
      throw CheckpointError.stateDictMismatch(path: source, missing: ["__metadata__.epoch"], unexpected: [],
                                              wrongShapes: [])
    }
    completedEpochs = epoch
  }
}
