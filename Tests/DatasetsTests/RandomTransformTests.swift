// The random wrappers: draws stay in their documented ranges, frequencies are roughly right, and the
// pipelines replay exactly from their parameters.
import Foundation
import Testing
import Datasets
import Tensors
import TestSupport

/// A smooth RGB test image with some structure (not constant, so crops and colour ops change it).
func gradientImage(width: Int, height: Int) -> Image {
  var image = Image(width: width, height: height, channels: 3)
  for y in 0..<height {
    for x in 0..<width {
      image[x, y, 0] = UInt8(x * 255 / max(width - 1, 1))
      image[x, y, 1] = UInt8(y * 255 / max(height - 1, 1))
      image[x, y, 2] = UInt8((x * 7 + y * 13) % 256)
    }
  }
  return image
}

@Suite struct RandomTransformTests {
  @Test func randomResizedCropBoxesLieInTheScaleAndRatioRanges() {
    var rng = SplitMix64(seed: 1)
    let (w, h) = (500, 375)
    var fractions: [Double] = []
    for _ in 0..<2000 {
      let box = RandomResizedCrop.parameters(width: w, height: h, scale: 0.2...1.0,
                                             ratio: (3.0 / 4.0)...(4.0 / 3.0), using: &rng)
      #expect(box.x >= 0 && box.y >= 0 && box.width > 0 && box.height > 0
                && box.x + box.width <= w && box.y + box.height <= h, "box \(box) leaves the image")
      let fraction = Double(box.width * box.height) / Double(w * h)
      // Rounding w and h to integers moves the area by at most about one row and one column.
      #expect(fraction >= 0.2 - 0.01 && fraction <= 1.0, "area fraction \(fraction)")
      let aspect = Double(box.width) / Double(box.height)
      #expect(aspect >= 0.75 * 0.98 && aspect <= 4.0 / 3.0 * 1.02, "aspect \(aspect)")
      fractions.append(fraction)
    }
    // Accepted draws are U(0.2, 1) conditioned on fitting; large areas get rejected more often, so the mean
    // sits below 0.6 but well above the lower bound.
    let mean = fractions.reduce(0, +) / Double(fractions.count)
    #expect(mean > 0.4 && mean < 0.6, "mean area fraction \(mean)")
    #expect(fractions.min()! < 0.25 && fractions.max()! > 0.9)
  }

  @Test func randomResizedCropFallsBackToTheCentredRatioClippedImage() {
    var rng = SplitMix64(seed: 2)
    // 1000×10 with scale ≥ 0.9: every attempt needs h ≥ 82 > 10, so torchvision's fallback runs:
    // in_ratio 100 > 4/3 → h = 10, w = int(round(10 · 4/3)) = 13, centred.
    let box = RandomResizedCrop.parameters(width: 1000, height: 10, scale: 0.9...1.0,
                                           ratio: (3.0 / 4.0)...(4.0 / 3.0), using: &rng)
    #expect(box == CropBox(x: 493, y: 0, width: 13, height: 10))
    // 10×1000: in_ratio 0.01 < 3/4 → w = 10, h = int(round(10 / 0.75)) = 13.
    let tall = RandomResizedCrop.parameters(width: 10, height: 1000, scale: 0.9...1.0,
                                            ratio: (3.0 / 4.0)...(4.0 / 3.0), using: &rng)
    #expect(tall == CropBox(x: 0, y: 493, width: 10, height: 13))
  }

  @Test func colorJitterDrawsFactorsInRangeAndUniformOrders() {
    var rng = SplitMix64(seed: 3)
    let jitter = ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1)
    var firstCounts = [0, 0, 0, 0]
    for _ in 0..<4000 {
      let p = jitter.parameters(using: &rng)
      #expect(p.order.sorted() == [0, 1, 2, 3])
      firstCounts[p.order[0]] += 1
      for f in [p.brightness!, p.contrast!, p.saturation!] { #expect(f >= 0.6 && f <= 1.4) }
      #expect(p.hue! >= -0.1 && p.hue! <= 0.1)
    }
    for count in firstCounts { #expect(count > 850 && count < 1150, "first-op counts \(firstCounts)") }
    // hue = 0 disables the hue op (torchvision returns None for it); strength 1 clamps the low end at 0.
    let p = ColorJitter(brightness: 1, hue: 0).parameters(using: &rng)
    #expect(p.hue == nil && p.contrast == nil && p.saturation == nil && p.brightness! >= 0 && p.brightness! <= 2)
  }

  @Test func blurAppliesWithItsProbabilityAndSigmaRange() {
    var rng = SplitMix64(seed: 4)
    let blur = RandomGaussianBlur(sigma: 0.1...2.0, probability: 0.5)
    var applied = 0
    for _ in 0..<4000 {
      if let sigma = blur.parameters(using: &rng) {
        applied += 1
        #expect(sigma >= 0.1 && sigma <= 2.0)
      }
    }
    #expect(applied > 1800 && applied < 2200)
  }

  @Test func simSiamViewsAreIndependentAndReplayable() {
    let image = gradientImage(width: 48, height: 40)
    let augmentation = SimSiamAugmentation(size: 24)
    var rng = SplitMix64(seed: 5)
    let view1 = augmentation(image, using: &rng)
    let view2 = augmentation(image, using: &rng)
    #expect(view1.shape == [24, 24, 3] && view2.shape == [24, 24, 3])
    #expect(view1 != view2)
    // The same seed gives the same view; the same parameters give the same image.
    var again = SplitMix64(seed: 5)
    #expect(augmentation(image, using: &again) == view1)
    var draw = SplitMix64(seed: 6)
    let parameters = augmentation.parameters(for: image, using: &draw)
    var replay = SplitMix64(seed: 6)
    #expect(augmentation.augmentedImage(image, using: &replay) == augmentation.augmentedImage(image, parameters: parameters))
  }

  @Test func simSiamApplicationFrequencies() {
    let image = gradientImage(width: 20, height: 20)
    let augmentation = SimSiamAugmentation(size: 8)
    var rng = SplitMix64(seed: 7)
    var jitter = 0, gray = 0, blur = 0, flip = 0
    let n = 4000
    for _ in 0..<n {
      let p = augmentation.parameters(for: image, using: &rng)
      if p.colorJitter != nil { jitter += 1 }
      if p.grayscale { gray += 1 }
      if p.blurRadius != nil { blur += 1 }
      if p.flip { flip += 1 }
    }
    #expect(abs(Double(jitter) / Double(n) - 0.8) < 0.03)
    #expect(abs(Double(gray) / Double(n) - 0.2) < 0.03)
    #expect(abs(Double(blur) / Double(n) - 0.5) < 0.03)
    #expect(abs(Double(flip) / Double(n) - 0.5) < 0.03)
  }

  @Test func grayImagesStayGrayThroughTheSimSiamPipeline() {
    var gray = Image(width: 28, height: 28, channels: 1)
    for i in 0..<gray.pixels.count { gray.pixels[i] = UInt8(i % 251) }
    let augmentation = SimSiamAugmentation(size: 16, normalization: .unit(channels: 1))
    var rng = SplitMix64(seed: 8)
    for _ in 0..<20 {
      let view = augmentation(gray, using: &rng)
      #expect(view.shape == [16, 16, 1])
      #expect(view.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
  }

  @Test func linearProbeAddsLightingBeforeNormalize() {
    let image = gradientImage(width: 40, height: 30)
    let augmentation = LinearProbeAugmentation(size: 16)
    var rng = SplitMix64(seed: 9)
    let p = augmentation.parameters(for: image, using: &rng)
    #expect(p.lightingOffsets.count == 3 && p.colorJitter.hue == nil)
    let tensor = augmentation.tensor(image, parameters: p)
    #expect(tensor.shape == [16, 16, 3])
    // Lighting shifts every channel by a constant before Normalize: tensor − no-lighting tensor = offset / std.
    let plain = augmentation.augmentedImage(image, parameters: p).toTensor()
    for c in 0..<3 {
      let shift = tensor.scalars[c] - plain.scalars[c]
      #expect(abs(shift - p.lightingOffsets[c] / Normalization.imagenet.std[c]) < 1e-5)
    }
  }

  @Test func lightingOffsetsByHand() {
    // alpha = (1, 0, 0) picks eigenvalue 0.2175 times the first eigenvector column.
    let offsets = Lighting.offsets(alpha: [1, 0, 0])
    #expect(abs(offsets[0] - (-0.5675 * 0.2175)) < 1e-7)
    #expect(abs(offsets[1] - (-0.5808 * 0.2175)) < 1e-7)
    #expect(abs(offsets[2] - (-0.5836 * 0.2175)) < 1e-7)
  }

  @Test func evaluationTransforms() {
    let image = gradientImage(width: 50, height: 40)
    let svm = EvaluationTransform(resize: 32, size: 28, mode: .squash)
    // Resize(32): 50×40 → int(32 · 50 / 40) = 40 × 32, then a squash to 28×28.
    #expect(svm.image(image) == image.resized(width: 40, height: 32).resized(width: 28, height: 28))
    let crop = EvaluationTransform(resize: 32, size: 28, mode: .centerCrop)
    // CenterCrop(28) of 40×32: left = round(6.0) = 6, top = round(2.0) = 2.
    #expect(crop.image(image) == image.resized(width: 40, height: 32).cropped(x: 6, y: 2, width: 28, height: 28))
    #expect(EvaluationTransform.svm(image).shape == [224, 224, 3])
    #expect(EvaluationTransform.centerCrop.resize == 256 && EvaluationTransform.centerCrop.size == 224)
  }
}
