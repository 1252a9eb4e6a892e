// The losses the RPN and ROI head use (PROTOCOLS §5.5), with their reductions, against torch.nn.functional:
// smooth-L1 with beta 0 (= L1) summed and divided by 256 × images, sigmoid BCE summed over the sampled anchors
// (weight 0 elsewhere) with the same normaliser, and softmax CE averaged over the sampled ROIs.
import Foundation
import Testing
import Tensors
@testable import Layers

@Suite struct DetectionLossesTests {
  let losses = DetectionOpsGolden.shared.losses

  @Test func rpnBoxLossIsL1SumOverTheNormaliser() {
    let normaliser = Float(256 * losses.images)
    let x = Tensor(shape: [losses.l1.x.count / 4, 4], scalars: losses.l1.x)
    let (sum, gradient) = smoothL1(x, target: Tensor(shape: x.shape, scalars: losses.l1.target), beta: 0,
                                   reduction: .sum)
    #expect(abs(sum / normaliser - losses.l1.loss) <= 1e-5 * abs(losses.l1.loss))
    expectClose(gradient.scalars.map { $0 / normaliser }, losses.l1.gradient, "L1 gradient")
    #expect(gradient.scalars[0] == 0)  // d = 0: sign(0) = 0
  }

  @Test func rpnObjectnessLossIsWeightedBCESumOverTheNormaliser() {
    let normaliser = Float(256 * losses.images)
    let shape = [losses.bce.logits.count]
    let (sum, gradient) = binaryCrossEntropyWithLogits(
      Tensor(shape: shape, scalars: losses.bce.logits), targets: Tensor(shape: shape, scalars: losses.bce.targets),
      weights: Tensor(shape: shape, scalars: losses.bce.weights), reduction: .sum)
    #expect(abs(sum / normaliser - losses.bce.loss) <= 1e-5 * abs(losses.bce.loss))
    expectClose(gradient.scalars.map { $0 / normaliser }, losses.bce.gradient, "BCE gradient")
  }

  @Test func roiClassificationLossIsMeanCrossEntropy() {
    let logits = Tensor(shape: [losses.ce.labels.count, 21], scalars: losses.ce.logits)
    let (loss, gradient) = crossEntropy(logits: logits, labels: losses.ce.labels)
    #expect(abs(loss - losses.ce.loss) <= 1e-5 * abs(losses.ce.loss))
    expectClose(gradient.scalars, losses.ce.gradient, "CE gradient")
  }
}
