// The embedded VOC07 SVM configs: the text of configs/benchmarks/voc07/*.yaml (a test checks that they stay
// identical), so the quickstart's scene SVMs need no config file.

public enum VOCSVMPresets {
  public static let scenesQuick = EmbeddedConfig(name: "svm_voc07_scenes_quick", yaml: #"""
# The VOC07 SVMs and low-shot SVMs (PROTOCOLS §2, §3) on the quickstart's SVM scene devkit (`data make-scenes
# --min-side 64 --max-side 64 --min-scale 1 --max-scale 1.25 --max-objects 2 --background-brightness 0.2
# --tint-probability 0`: 64×64 scenes of 1–2 gray Fashion-MNIST items of 28–35 px on dark backgrounds, in the
# VOC2007 layout) with the quick pretrained ResNet-18 (CIFAR stem, 1 channel, trained at 32): what `quickstart`
# runs for both backbones. Departures from svm_voc07.yaml: Resize(64) → squash to 64 instead of 256 → 224 (the
# scenes are 64×64, so the items keep the scale the backbone was trained at), Fashion-MNIST's normalisation, and
# each stage pooled adaptively to MMSelfSup's 12/6/4/3/2 grids (the fixed AvgPool2d kernels assume 224 input). The
# SVMs, costs and low-shot draw are the protocol's. (On the default 96–256 px scenes squashed to 64, the items
# shrink to 7–28 px and even a supervised backbone stays near chance: README "The scene SVMs".)
data:
  path: work_dirs/quickstart/svm-scenes/VOCdevkit/VOC2007
  image_size: 64
  resize: 64
  resize_mode: squash
  resize_rule: pillow13       # bilinear pass order: pillow13 (default) or pillow9 (the published numbers' Pillow)
  mean: [0.2860]            # Fashion-MNIST pixel mean and std (x / 255), as the pretraining config
  std: [0.3530]
  batch_size: 32
layers: [feature1, feature2, feature3, feature4, feature5]
svm:
  costs: [1.0, 10.0, 100.0, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625, 0.001953125, 0.0009765625,
          0.00048828125, 0.000244140625, 0.0001220703125, 6.103515625e-05, 3.0517578125e-05, 1.52587890625e-05,
          7.62939453125e-06, 3.814697265625e-06, 1.9073486328125e-06]
  folds: 3
  eps: 1.0e-4
  positive_weight: 2.0
  negative_weight: 1.0
  bias: 1.0
  workers: 0
  deterministic: false
low_shot:
  enabled: true
  k: [1, 2, 4, 8, 16, 32, 64, 96]
  samples: 5
  samples_dir: ""
seed: 0
"""#)

  /// Every embedded VOC07 SVM config.
  public static let all = [scenesQuick]
}
