// `optimizer.*` of the fine-tuning protocols (run fcn, run faster-rcnn, run mask-rcnn): mmseg's and mmdet's default
// optimizer, SGD with momentum and weight decay on every parameter. One section for the three configs; each gives
// its reference protocol's defaults (mmseg 0.01 / 5e-4, mmdet 0.02 / 1e-4).
import Layers
import Support

/// SGD with momentum and weight decay on every parameter: `optimizer.lr`, `optimizer.momentum`,
/// `optimizer.weight_decay`.
public struct SGDSection: Codable, Sendable, Equatable {
  /// The base learning rate (the schedule scales it per iteration).
  public var lr: Double
  public var momentum: Double
  public var weightDecay: Double

  public init(lr: Double, momentum: Double = 0.9, weightDecay: Double) {
    self.lr = lr
    self.momentum = momentum
    self.weightDecay = weightDecay
  }

  enum CodingKeys: String, CodingKey {
    case lr, momentum
    case weightDecay = "weight_decay"
  }

  /// Range checks at load: lr in (0, 100], momentum in [0, 1), weight_decay in [0, 1].
  public func checkRanges() throws {
    let optimizer = ConfigRanges(prefix: "optimizer")
    try optimizer.check("lr", lr, from: 0, to: 100, lowerOpen: true)
    try optimizer.check("momentum", momentum, from: 0, to: 1, upperOpen: true)
    try optimizer.check("weight_decay", weightDecay, from: 0, to: 1)
  }

  /// The optimiser over `parameters`, at the base learning rate.
  public func makeSGD(_ parameters: [Parameter]) -> SGD {
    SGD(parameters, learningRate: Float(lr), momentum: Float(momentum), weightDecay: Float(weightDecay))
  }
}
