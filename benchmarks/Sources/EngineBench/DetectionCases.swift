// EngineBench cases (h) and (i): Faster R-CNN R50-C4 (issue 16, item 9), MMSelfSup's `faster_rcnn_r50_c4` in mmdet
// 2.x (PROTOCOLS §5.1): `FasterRCNNC4(backbone: ResNet-50, config: .mmdetC4(classCount: 20, c4Channels: 1024))`.
//   (h) one training iteration as `run faster-rcnn` trains: zero gradients, `trainingStep` (trunk, RPN with 256
//       sampled anchors and 12000 → NMS 0.7 → 2000 proposals, 512 sampled ROIs, ROIAlign 14×14 → res5 → extra BN →
//       fc_cls / fc_reg, the four losses, backward), `SGD.step` (lr 0.02, momentum 0.9, weight decay 1e-4).
//   (i) detection on one image: `detect` (trunk and head with running statistics, RPN 6000 → NMS 0.7 → 1000
//       proposals, the ROI head on all of them, softmax, score > 0.05, per-class NMS 0.5, 100 per image).
// The scene, the same on the PyTorch side (torch_faster_rcnn.py): one 600×800 image padded to 608×800 (random
// normalised pixels, zeros in the padding as mmdet's Pad after Normalize), three ground-truth boxes.
// For (i) the first five classes' fc_cls biases are raised by 2 on both sides: a freshly drawn fc_cls scores every
// class ≈ 1/21 < 0.05, which would leave the per-class NMS nothing to do; with the bias 5 classes × 1000 rois pass.
import Foundation
import Tensors
import Layers
import Models

/// The fixed scene of cases (h) and (i) (torch_faster_rcnn.py's GT_BOXES, GT_LABELS).
enum DetectionScene {
  static let imageHeight = 600, imageWidth = 800, paddedHeight = 608
  static let classCount = 20
  static let gtBoxes: [Float] = [48, 60, 312, 420, 360, 180, 760, 560, 520, 40, 700, 200]
  static let gtLabels = [4, 11, 14]
  static let inferenceClassBias: Float = 2, inferenceBiasedClasses = 5

  /// `[1, 608, 800, 3]`: N(0, 1) pixels in the 600×800 image, zeros below it.
  static func image<G: RandomNumberGenerator>(using generator: inout G) -> Tensor {
    var image = Tensor.randomNormal([1, paddedHeight, imageWidth, 3], using: &generator)
    for index in (imageHeight * imageWidth * 3)..<image.scalars.count { image.scalars[index] = 0 }
    return image
  }
}

/// Wall time of each part of one training iteration, measured through `trainingStep(images:proposing:sampling:)`'s
/// seams (seconds): trunk forward; RPN forward + anchor targets + losses + proposals; ROI sampling; ROI head forward,
/// losses and backward (ROIAlign included); RPN backward; trunk backward; SGD step.
struct TrainingPhases: Codable {
  var trunkForward = 0.0, rpnForward = 0.0, roiSampling = 0.0, roiHead = 0.0, rpnBackward = 0.0
  var trunkBackward = 0.0, optimizer = 0.0

  var summary: String {
    [("trunk fwd", trunkForward), ("RPN fwd+targets+proposals", rpnForward), ("ROI sampling", roiSampling),
     ("ROI head fwd+bwd", roiHead), ("RPN bwd", rpnBackward), ("trunk bwd", trunkBackward), ("SGD", optimizer)]
      .map { String(format: "%@ %.2f s", $0.0, $0.1) }.joined(separator: ", ")
  }
}

/// Multiply-accumulates of `blocks` (convolutions only) on an h×w input; also the output size.
func blockMACs(_ blocks: [ResidualBlock], height: Int, width: Int) -> (macs: Double, height: Int, width: Int) {
  func outputSize(_ size: Int, _ conv: Conv2D) -> Int {
    (size + 2 * conv.padding - conv.dilation * (conv.kernelSize - 1) - 1) / conv.stride + 1
  }
  var (total, h, w) = (0.0, height, width)
  for block in blocks {
    var (bh, bw) = (h, w)
    for unit in block.branch {
      let (oh, ow) = (outputSize(bh, unit.conv), outputSize(bw, unit.conv))
      total += Double(oh * ow * unit.conv.outChannels * unit.conv.inChannels * unit.conv.kernelSize
                        * unit.conv.kernelSize)
      (bh, bw) = (oh, ow)
    }
    if let conv = block.downsample?.conv {
      total += Double(outputSize(h, conv) * outputSize(w, conv) * conv.outChannels * conv.inChannels)
    }
    (h, w) = (bh, bw)
  }
  return (total, h, w)
}

/// Forward MACs of the detector on the 608×800 input with `rois` rois: trunk (stem..layer3), RPN convs, res5 + fcs.
func fasterRCNNMACs(_ model: FasterRCNNC4, rois: Int) -> Double {
  let stem = model.backbone.stem.conv
  let (stemHeight, stemWidth) = (DetectionScene.paddedHeight / 2, DetectionScene.imageWidth / 2)
  let stemMACs = Double(stemHeight * stemWidth * stem.outChannels * stem.inChannels * stem.kernelSize * stem.kernelSize)
  let trunk = blockMACs(Array(model.backbone.stages[0..<3].joined()), height: stemHeight / 2, width: stemWidth / 2)
  let c4 = Double(trunk.height * trunk.width)
  let anchors = 15.0, channels = Double(model.c4Channels)
  let rpn = c4 * channels * (9 * channels + 5 * anchors)  // rpn_conv 3×3 (feat = in), rpn_cls A, rpn_reg 4A
  let pooled = model.roiHead.config.pooledSize
  let res5 = blockMACs(model.roiHead.res5, height: pooled, width: pooled).macs
  let fcOutputs = DetectionScene.classCount + 1 + 4 * DetectionScene.classCount  // fc_cls + fc_reg
  let fcs = Double(model.roiHead.res5.last!.outChannels * fcOutputs)
  return stemMACs + trunk.macs + rpn + Double(rois) * (res5 + fcs)
}

func runDetectionCase(_ id: String, iterations requested: Int) -> CaseResult {
  precondition(id == "h" || id == "i", "Unknown detection case \(id); detection cases are h, i.")
  var rng = SplitMix64(seed: 0)
  let backbone = ResNet(ResNetConfig(depth: 50), using: &rng)
  let config = FasterRCNNConfig.mmdetC4(classCount: DetectionScene.classCount,
                                        c4Channels: backbone.config.featureChannels[3])
  let model = FasterRCNNC4(backbone: backbone, config: config, using: &rng)
  let images = DetectionScene.image(using: &rng)
  let imageSizes = [(height: DetectionScene.imageHeight, width: DetectionScene.imageWidth)]
  let trainable = model.namedParameters.filter { !$0.parameter.isBuffer }.reduce(0) { $0 + $1.parameter.value.count }

  if id == "i" {
    if let bias = model.roiHead.classifier.bias {
      for label in 0..<DetectionScene.inferenceBiasedClasses {
        bias.value.scalars[label] += DetectionScene.inferenceClassBias
      }
    }
    var kept = 0
    let stepSeconds = time(warmup: 1, iterations: requested > 0 ? requested : 3) {
      kept = model.detect(images: images, imageSizes: imageSizes)[0].scores.count
    }
    let mean = stepSeconds.reduce(0, +) / Double(stepSeconds.count)
    let rois = config.rpn.postNMSTopKTest
    return CaseResult(name: "Faster R-CNN C4 600×800 detection", batch: 1, stepSeconds: stepSeconds,
                      imagesPerSecond: 1 / mean, gigaflopsPerSecond: 2 * fasterRCNNMACs(model, rois: rois) / mean / 1e9,
                      peakResidentMegabytes: peakResidentMegabytes(), trainableParameters: trainable,
                      note: "\(kept) detections kept")
  }

  let gtBoxes = [Tensor(shape: [DetectionScene.gtLabels.count, 4], scalars: DetectionScene.gtBoxes)]
  let gtLabels = [DetectionScene.gtLabels]
  let sgd = SGD(model.parameters, learningRate: 0.02, momentum: 0.9, weightDecay: 1e-4)
  var sampler = SplitMix64(seed: 1)
  var phases: [TrainingPhases] = []
  var sampledROIs = 0
  let clock = ContinuousClock()
  let stepSeconds = time(warmup: 1, iterations: requested > 0 ? requested : 2) {
    var phase = TrainingPhases()
    sgd.zeroGrad()
    var mark = clock.now
    func lap() -> Double {
      let now = clock.now
      defer { mark = now }
      return seconds(now - mark)
    }
    _ = model.trainingStep(images: images, proposing: { features in
      phase.trunkForward = lap()
      let pass = model.rpn.trainingPass(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes,
                                        sampler: &sampler)
      phase.rpnForward = lap()
      return RegionProposalPass(proposals: pass.proposals, classLoss: pass.classLoss, boxLoss: pass.boxLoss) {
        phase.roiHead = lap()
        let gradient = pass.backward()
        phase.rpnBackward = lap()
        return gradient
      }
    }, sampling: { proposals in
      let samples = zip(proposals, zip(gtBoxes, gtLabels)).map { boxes, truth in
        model.roiHead.config.sampleROIs(proposals: boxes, gtBoxes: truth.0, gtLabels: truth.1, using: &sampler)
      }
      sampledROIs = samples.reduce(0) { $0 + $1.boxes.shape[0] }
      phase.roiSampling = lap()
      return samples
    })
    phase.trunkBackward = lap()
    sgd.step()
    phase.optimizer = lap()
    phases.append(phase)
  }
  let mean = stepSeconds.reduce(0, +) / Double(stepSeconds.count)
  let timed = phases.suffix(stepSeconds.count)
  var average = TrainingPhases()
  for p in timed {
    average.trunkForward += p.trunkForward / Double(timed.count)
    average.rpnForward += p.rpnForward / Double(timed.count)
    average.roiSampling += p.roiSampling / Double(timed.count)
    average.roiHead += p.roiHead / Double(timed.count)
    average.rpnBackward += p.rpnBackward / Double(timed.count)
    average.trunkBackward += p.trunkBackward / Double(timed.count)
    average.optimizer += p.optimizer / Double(timed.count)
  }
  return CaseResult(name: "Faster R-CNN C4 600×800 training iteration", batch: 1, stepSeconds: stepSeconds,
                    imagesPerSecond: 1 / mean,
                    gigaflopsPerSecond: 2 * 3 * fasterRCNNMACs(model, rois: sampledROIs) / mean / 1e9,
                    peakResidentMegabytes: peakResidentMegabytes(), trainableParameters: trainable,
                    note: "\(sampledROIs) ROIs; " + average.summary)
}
