// EngineBench cases (f) and (g): one FCN-D8 training iteration (issue 15, item 8), timed the way `run fcn` trains.
//   (f) mmseg fcn_r50-d8 on a 512² crop, batch 2: ResNet-50 with strides (1, 2, 1, 1), dilations (1, 1, 2, 4),
//       contract_dilation; decode FCNHead 512 (2 convs + conv_cat over the concatenated input) on layer4, auxiliary
//       FCNHead 256 (1 conv) on layer3, Dropout2d 0.1, 21 classes; loss = CE(resize(decode)) + 0.4·CE(resize(aux)),
//       ignore 255, mean over all pixels; SGD lr 0.01, momentum 0.9, weight decay 5e-4.
//   (g) the scene miniature (configs/benchmarks/mmsegmentation/scenes/fcn_quick-d8_scenes.yaml): ResNet-18 CIFAR stem
//       width 0.25, 1 input channel, strides (1, 2, 2, 2), heads 128 / 64, 11 classes, 64² crops, batch 8.
// Both: random normalised images and random labels with ≈ 15 % set to 255; the same on the PyTorch side
// (torch_fcn.py). One iteration = zero gradients, `FCNSegmentor.trainingStep` (forward both heads, both losses,
// backward), `SGD.step`.
import Tensors
import Layers
import Models

/// Shapes of one FCN benchmark case.
struct FCNCase {
  var name: String
  var backbone: ResNetConfig
  var config: FCNConfig
  var batch: Int
  var crop: Int
  var warmup: Int
  var iterations: Int

  static func named(_ id: String) -> FCNCase? {
    switch id {
    case "f":
      return FCNCase(name: "FCN-D8 R50 512² b2 training iteration",
                     backbone: ResNetConfig(depth: 50).dilatedD8(),
                     config: FCNConfig(classCount: 21), batch: 2, crop: 512, warmup: 1, iterations: 2)
    case "g":
      let heads = FCNConfig(classCount: 11, decodeHead: FCNHeadConfig(channels: 128, convCount: 2, concatInput: true),
                            auxiliaryHead: FCNHeadConfig(channels: 64, convCount: 1, concatInput: false))
      return FCNCase(name: "FCN miniature R18 w0.25 64² b8 iteration",
                     backbone: ResNetConfig(depth: 18, widthMultiplier: 0.25, cifarStem: true, zeroInitResidual: true,
                                            inChannels: 1)
                       .withDilation(strides: [1, 2, 2, 2], dilations: [1, 1, 1, 1], contractDilation: true),
                     config: heads, batch: 8, crop: 64, warmup: 3, iterations: 20)
    default:
      return nil
    }
  }
}

/// Multiply-accumulates of one FCN head's convolutions on an h×w feature map (conv_seg included).
func headMACs(_ head: FCNHead, height: Int, width: Int) -> Double {
  let convs = head.convs.map(\.conv) + (head.concatConv.map { [$0.conv] } ?? []) + [head.classifier]
  return convs.reduce(0) { total, conv in
    total + Double(height * width * conv.outChannels * conv.inChannels * conv.kernelSize * conv.kernelSize)
  }
}

func runFCNCase(_ id: String, iterations requested: Int) -> CaseResult {
  guard let spec = FCNCase.named(id) else { fatalError("Unknown FCN case \(id); FCN cases are f, g.") }
  var rng = SplitMix64(seed: 0)
  let model = FCNSegmentor(backbone: spec.backbone, config: spec.config, using: &rng)
  let images = Tensor.randomNormal([spec.batch, spec.crop, spec.crop, spec.backbone.inChannels], using: &rng)
  let classes = UInt8(spec.config.classCount)
  let labels: [UInt8] = (0..<(spec.batch * spec.crop * spec.crop)).map { _ in
    rng.nextUniform() < 0.15 ? 255 : UInt8.random(in: 0..<classes, using: &rng)
  }
  let sgd = SGD(model.parameters, learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4)
  var dropoutGenerator = SplitMix64(seed: 1)
  let stepSeconds = time(warmup: spec.warmup, iterations: requested > 0 ? requested : spec.iterations) {
    sgd.zeroGrad()
    _ = model.trainingStep(images: images, labels: labels, dropout: &dropoutGenerator)
    sgd.step()
  }
  let mean = stepSeconds.reduce(0, +) / Double(stepSeconds.count)
  // Feature maps of layer3 / layer4 (the heads' inputs): crop / output stride.
  let side = spec.crop / spec.backbone.outputStride
  var forward = forwardMACs(of: model.backbone, height: spec.crop, width: spec.crop)
    + headMACs(model.decodeHead, height: side, width: side)
  if let auxiliary = model.auxiliaryHead {
    let auxiliarySide = spec.crop / (spec.backbone.outputStride / spec.backbone.strides[3])
    forward += headMACs(auxiliary, height: auxiliarySide, width: auxiliarySide)
  }
  let flops = 2 * 3 * forward * Double(spec.batch)  // training ≈ 3× forward
  return CaseResult(name: spec.name, batch: spec.batch, stepSeconds: stepSeconds,
                    imagesPerSecond: Double(spec.batch) / mean, gigaflopsPerSecond: flops / mean / 1e9,
                    peakResidentMegabytes: peakResidentMegabytes(),
                    trainableParameters: model.namedParameters.filter { !$0.parameter.isBuffer }
                      .reduce(0) { $0 + $1.parameter.value.count })
}
