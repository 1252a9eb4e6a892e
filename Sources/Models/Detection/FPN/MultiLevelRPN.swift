// The RPN of Mask R-CNN R50-FPN (mmdet 2.x `RPNHead.forward_train` / `simple_test_rpn` on P2…P6): one head shared by
// every level, the anchors of each level, the training targets and losses over all levels, and the proposals.
import Tensors
import Layers

/// What a training forward returns: proposals (no gradient), the two losses, and what `backward` needs.
public struct MultiLevelRPNTrainingOutput {
  /// Per image, the `rpn_proposal` proposals `[k, 4]` (x1, y1, x2, y2 in input pixels), best first.
  public let proposals: [Tensor]
  /// Per image, σ(objectness) of each proposal.
  public let proposalScores: [[Float]]
  /// `loss_rpn_cls` and `loss_rpn_bbox` (each the sum over levels of mmdet's per-level losses).
  public let classificationLoss: Float
  public let boxLoss: Float
  /// Per image, the assignment and the sampled anchors, indexed into the concatenation of all levels' anchors
  /// (level-major, then `AnchorGenerator.gridAnchors` order).
  public let assignments: [RPNAnchorAssignment]
  public let samples: [RPNSampledAnchors]
  /// mmdet's `avg_factor` (`rpnAverageFactor(samples)`).
  public let averageFactor: Int
  /// ∂loss/∂objectness `[n, K_l]` and ∂loss/∂deltas `[n, K_l, 4]` per level, and the head's caches per level.
  let objectnessGradients: [Tensor]
  let deltasGradients: [Tensor]
  let headCaches: [RPNHead.Cache]

  public var loss: Float { classificationLoss + boxLoss }
}

/// mmdet 2.x `RPNHead` over the FPN levels with `MultiLevelRPNConfig` (anchor scale 8, ratios 0.5/1/2, strides
/// 4…64, allowed_border −1, MaxIoUAssigner 0.7/0.3/0.3, RandomSampler 256 at 0.5, sigmoid BCE + L1, proposals
/// 2000/1000 training and 1000/1000 testing per level/image, NMS 0.7 per level).
public final class MultiLevelRPN {
  public let config: MultiLevelRPNConfig
  /// `rpn_conv` / `rpn_cls` / `rpn_reg`, shared by every level (N(0, 0.01²) weights, zero biases).
  public let head: RPNHead
  public let anchorGenerators: [AnchorGenerator]

  public init<G: RandomNumberGenerator>(inChannels: Int, config: MultiLevelRPNConfig, using generator: inout G) {
    precondition(!config.strides.isEmpty && config.strides.allSatisfy { $0 >= 1 },
                 "MultiLevelRPN needs positive strides, got \(config.strides).")
    self.config = config
    anchorGenerators = config.strides.indices.map { config.anchorGenerator(level: $0) }
    head = RPNHead(inChannels: inChannels, featureChannels: config.featureChannels,
                   anchorsPerLocation: config.anchorsPerLocation, using: &generator)
  }

  /// Each level's anchors `[h_l·w_l·A, 4]` for feature maps of the given sizes, in the head's output order.
  public func anchors(featureSizes: [(height: Int, width: Int)]) -> [Tensor] {
    precondition(featureSizes.count == anchorGenerators.count,
                 "MultiLevelRPN.anchors: \(featureSizes.count) feature sizes for \(anchorGenerators.count) levels.")
    return zip(anchorGenerators, featureSizes).map {
      $0.gridAnchors(featureHeight: $1.height, featureWidth: $1.width)
    }
  }

  /// Training forward with the seeded sampler. `features` P2…P6 `[n, h_l, w_l, C]` of the padded batch;
  /// `imageSizes` each image's unpadded (height, width) in input pixels (mmdet `img_shape`; its `pad_shape` is that
  /// rounded up to `config.sizeDivisor`); `gtBoxes` per image `[g, 4]` (x1, y1, x2, y2; g may be 0).
  public func forwardTraining<G: RandomNumberGenerator>(features: [Tensor], imageSizes: [(height: Int, width: Int)],
                                                        gtBoxes: [Tensor], sampler: inout G)
    -> MultiLevelRPNTrainingOutput {
    forwardTraining(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes) { assignments in
      assignments.map { sampleMultiLevelRPNAnchors($0, config: config, using: &sampler) }
    }
  }

  /// Training forward with given sampled anchors (indices into each image's concatenated anchors, e.g. PyTorch's),
  /// for parity tests. Each sampled positive must be assigned positive and each negative negative.
  public func forwardTraining(features: [Tensor], imageSizes: [(height: Int, width: Int)], gtBoxes: [Tensor],
                              sampledAnchors: [RPNSampledAnchors]) -> MultiLevelRPNTrainingOutput {
    forwardTraining(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes) { _ in sampledAnchors }
  }

  private func forwardTraining(features: [Tensor], imageSizes: [(height: Int, width: Int)], gtBoxes: [Tensor],
                               sample: ([RPNAnchorAssignment]) -> [RPNSampledAnchors]) -> MultiLevelRPNTrainingOutput {
    checkBatch(features, imageSizes)
    precondition(gtBoxes.count == imageSizes.count,
                 "MultiLevelRPN: \(gtBoxes.count) ground-truth sets for \(imageSizes.count) images.")
    var objectness = [Tensor](), deltas = [Tensor](), caches = [RPNHead.Cache]()
    for level in features {
      let (logits, levelDeltas, cache) = head.forward(level, mode: .training)
      objectness.append(logits)
      deltas.append(levelDeltas)
      caches.append(cache)
    }
    let featureSizes = features.map { (height: $0.shape[1], width: $0.shape[2]) }
    let levelAnchors = anchors(featureSizes: featureSizes)
    let allAnchors = Tensor(shape: [levelAnchors.reduce(0) { $0 + $1.shape[0] }, 4],
                            scalars: levelAnchors.flatMap(\.scalars))
    let assignments = imageSizes.indices.map { image in
      let (height, width) = imageSizes[image]
      let valid = multiLevelValidFlags(featureSizes: featureSizes, strides: config.strides,
                                       anchorsPerLocation: config.anchorsPerLocation,
                                       padHeight: paddedSize(height), padWidth: paddedSize(width))
      return assignMultiLevelRPNAnchors(anchors: allAnchors, validFlags: valid, groundTruth: gtBoxes[image],
                                        height: height, width: width, config: config)
    }
    let samples = sample(assignments)
    precondition(samples.count == imageSizes.count,
                 "MultiLevelRPN: \(samples.count) sampled sets for \(imageSizes.count) images.")
    let loss = multiLevelRPNLoss(objectness: concatenateLevels(objectness), deltas: concatenateLevels(deltas),
                                 anchors: allAnchors, groundTruth: gtBoxes, assignments: assignments, samples: samples)
    let proposals = proposals(objectness: objectness, deltas: deltas, anchors: levelAnchors, imageSizes: imageSizes,
                              settings: config.proposalSettings(.training))
    return MultiLevelRPNTrainingOutput(
      proposals: proposals.map(\.boxes), proposalScores: proposals.map(\.scores),
      classificationLoss: loss.classification, boxLoss: loss.box, assignments: assignments, samples: samples,
      averageFactor: loss.sampledCount,
      objectnessGradients: splitLevels(loss.objectnessGradient, like: objectness),
      deltasGradients: splitLevels(loss.deltasGradient, like: deltas), headCaches: caches)
  }

  /// ∂(loss_rpn_cls + loss_rpn_bbox)/∂P_l `[n, h_l, w_l, C]` for every level, times `scale`; adds the shared head's
  /// parameter gradients (summed over the levels).
  public func backward(_ output: MultiLevelRPNTrainingOutput, scale: Float = 1) -> [Tensor] {
    output.headCaches.indices.map { level in
      let (dObjectness, dDeltas) = scale == 1
        ? (output.objectnessGradients[level], output.deltasGradients[level])
        : (scale * output.objectnessGradients[level], scale * output.deltasGradients[level])
      return head.backward(objectnessGradient: dObjectness, deltasGradient: dDeltas, output.headCaches[level])
    }
  }

  /// Inference: per image its `test_cfg.rpn` proposals `[k, 4]`, best first.
  public func proposals(features: [Tensor], imageSizes: [(height: Int, width: Int)]) -> [Tensor] {
    proposalsWithScores(features: features, imageSizes: imageSizes).map(\.boxes)
  }

  /// Inference proposals with their scores.
  public func proposalsWithScores(features: [Tensor], imageSizes: [(height: Int, width: Int)]) -> [RPNProposals] {
    checkBatch(features, imageSizes)
    var objectness = [Tensor](), deltas = [Tensor]()
    for level in features {
      let (logits, levelDeltas, _) = head.forward(level, mode: .inference)
      objectness.append(logits)
      deltas.append(levelDeltas)
    }
    return proposals(objectness: objectness, deltas: deltas,
                     anchors: anchors(featureSizes: features.map { (height: $0.shape[1], width: $0.shape[2]) }),
                     imageSizes: imageSizes, settings: config.proposalSettings(.inference))
  }

  /// Per image, `generateMultiLevelRPNProposals` on its rows of each level's objectness `[n, K_l]` and deltas
  /// `[n, K_l, 4]` with the level's anchors `[K_l, 4]`.
  public func proposals(objectness: [Tensor], deltas: [Tensor], anchors: [Tensor],
                        imageSizes: [(height: Int, width: Int)], settings: RPNProposalSettings) -> [RPNProposals] {
    let n = imageSizes.count
    for level in anchors.indices {
      let k = anchors[level].shape[0]
      precondition(objectness[level].shape == [n, k] && deltas[level].shape == [n, k, 4],
                   "MultiLevelRPN.proposals: level \(level) objectness \(objectness[level].shape) and deltas "
                     + "\(deltas[level].shape) for \(n) images of \(k) anchors.")
    }
    var result = [RPNProposals?](repeating: nil, count: n)
    result.withUnsafeMutableBufferPointer { slots in
      let slotsPointer = slots.baseAddress!
      parallelFor(0..<n, minimumChunk: 1) { images in
        for image in images {
          let logits = anchors.indices.map { level -> ArraySlice<Float> in
            let k = anchors[level].shape[0]
            return objectness[level].scalars[(image * k)..<((image + 1) * k)]
          }
          let levelDeltas = anchors.indices.map { level -> ArraySlice<Float> in
            let k = anchors[level].shape[0]
            return deltas[level].scalars[(image * k * 4)..<((image + 1) * k * 4)]
          }
          slotsPointer[image] = generateMultiLevelRPNProposals(
            objectness: logits, deltas: levelDeltas, anchors: anchors, height: imageSizes[image].height,
            width: imageSizes[image].width, settings: settings)
        }
      }
    }
    return result.map { $0! }
  }

  /// mmdet's names under the head (`rpn_conv.*`, `rpn_cls.*`, `rpn_reg.*`); the detector prefixes `rpn_head.`.
  public var namedParameters: [NamedParameter] { head.namedParameters }

  public var parameters: [Parameter] { head.parameters }

  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }

  /// mmdet `Pad(size_divisor)`: the image's size rounded up to the divisor (its `pad_shape`).
  private func paddedSize(_ size: Int) -> Int {
    let divisor = max(config.sizeDivisor, 1)
    return (size + divisor - 1) / divisor * divisor
  }

  private func checkBatch(_ features: [Tensor], _ imageSizes: [(height: Int, width: Int)]) {
    precondition(features.count == config.levelCount,
                 "MultiLevelRPN expects \(config.levelCount) feature levels, got \(features.count).")
    for (level, map) in features.enumerated() {
      precondition(map.rank == 4 && map.shape[0] == imageSizes.count && map.shape[3] == head.inChannels,
                   "MultiLevelRPN expects NHWC level \(level) [\(imageSizes.count), h, w, \(head.inChannels)], "
                     + "got \(map.shape).")
    }
    let (stride, height, width) = (config.strides[0], features[0].shape[1], features[0].shape[2])
    for size in imageSizes {
      precondition(size.height > 0 && size.width > 0 && size.height <= height * stride && size.width <= width * stride,
                   "MultiLevelRPN: image \(size.height)×\(size.width) does not fit the first level's \(height)×\(width) "
                     + "map at stride \(stride).")
    }
  }
}

/// Per-image concatenation over levels: tensors `[n, K_l, …]` → `[n, ΣK_l, …]` (level-major within each image).
func concatenateLevels(_ levels: [Tensor]) -> Tensor {
  let n = levels[0].shape[0]
  let rowWidths = levels.map { $0.count / max(n, 1) }
  let tail = Array(levels[0].shape.dropFirst(2))
  let total = levels.reduce(0) { $0 + $1.shape[1] }
  var scalars = [Float]()
  scalars.reserveCapacity(levels.reduce(0) { $0 + $1.count })
  for image in 0..<n {
    for (level, width) in zip(levels, rowWidths) {
      scalars += level.scalars[(image * width)..<((image + 1) * width)]
    }
  }
  return Tensor(shape: [n, total] + tail, scalars: scalars)
}

/// The inverse of `concatenateLevels`: `[n, ΣK_l, …]` → tensors shaped like `levels`.
func splitLevels(_ tensor: Tensor, like levels: [Tensor]) -> [Tensor] {
  let n = tensor.shape[0]
  let rowWidth = tensor.count / max(n, 1)
  var offset = 0
  return levels.map { level in
    let width = level.count / max(n, 1)
    var scalars = [Float]()
    scalars.reserveCapacity(level.count)
    for image in 0..<n {
      let start = image * rowWidth + offset
      scalars += tensor.scalars[start..<(start + width)]
    }
    offset += width
    return Tensor(shape: level.shape, scalars: scalars)
  }
}
