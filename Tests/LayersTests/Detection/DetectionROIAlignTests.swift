// ROIAlign (aligned, adaptive sampling) forward and backward against the torch re-implementation of torchvision's
// CPU kernel (backward by autograd), plus determinism of the backward across thread counts.
import Foundation
import Testing
import Tensors
import TestSupport
@testable import Layers

@Suite(.serialized) struct DetectionROIAlignTests {
  @Test func forwardAndBackwardMatchTorchvisionKernel() {
    for item in DetectionOpsGolden.shared.roiAlign {
      let op = ROIAlign(outputHeight: item.outputHeight, outputWidth: item.outputWidth, spatialScale: item.spatialScale,
                        samplingRatio: item.samplingRatio, aligned: item.aligned)
      let features = Tensor(shape: item.featureShape, scalars: item.features)
      let rois = Tensor(shape: [item.rois.count / 5, 5], scalars: item.rois)
      let what = "\(item.outputHeight)×\(item.outputWidth) ratio \(item.samplingRatio) aligned \(item.aligned)"
      let output = op.forward(features: features, rois: rois)
      #expect(output.shape == [rois.shape[0], item.outputHeight, item.outputWidth, item.featureShape[3]])
      expectClose(output.scalars, item.output, "forward \(what)")
      let gradient = op.backward(outputGradient: Tensor(shape: output.shape, scalars: item.outputGradient), rois: rois,
                                 featureShape: item.featureShape)
      expectClose(gradient.scalars, item.featureGradient, "backward \(what)")
    }
  }

  @Test func backwardIsTheAdjointAndDeterministic() {
    // ⟨forward(x), g⟩ = ⟨x, backward(g)⟩ for a linear map; and the same bits with 1 or 2 threads.
    var rng = SplitMix64(seed: 16)
    let features = Tensor.randomNormal([2, 12, 10, 40], using: &rng)
    let rois = Tensor(shape: [3, 5], scalars: [0, 3, 4, 150, 170, 1, -20, 10, 90, 60, 0, 50, 50, 52, 51])
    let op = ROIAlign(outputHeight: 7, outputWidth: 7, spatialScale: 1.0 / 16)
    let output = op.forward(features: features, rois: rois)
    let upstream = Tensor.randomNormal(output.shape, using: &rng)
    let gradient = op.backward(outputGradient: upstream, rois: rois, featureShape: features.shape)
    let lhs = zip(output.scalars, upstream.scalars).reduce(0.0) { $0 + Double($1.0 * $1.1) }
    let rhs = zip(features.scalars, gradient.scalars).reduce(0.0) { $0 + Double($1.0 * $1.1) }
    #expect(abs(lhs - rhs) <= 1e-4 * max(abs(lhs), 1))
    let single = ThreadCountLock.holding {
      Threads.configure(1)
      return op.backward(outputGradient: upstream, rois: rois, featureShape: features.shape)
    }
    #expect(single.scalars == gradient.scalars)
  }

  @Test func constantFeaturesPoolToTheConstant() {
    // Every valid sample of a constant map is the constant, so bins fully inside give it exactly.
    let features = Tensor(repeating: 2.5, shape: [1, 8, 8, 2])
    let output = ROIAlign(outputHeight: 2, outputWidth: 2, spatialScale: 1)
      .forward(features: features, rois: Tensor(shape: [1, 5], scalars: [0, 1, 1, 6, 5]))
    #expect(output.scalars.allSatisfy { abs($0 - 2.5) < 1e-6 })
  }
}
