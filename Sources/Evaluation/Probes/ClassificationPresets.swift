// The embedded default configs: the text of configs/benchmarks/classification/fashion-mnist/*.yaml (a test checks
// that they stay identical), so `run linear` and `run knn` work without a config file on the embedded data.

/// An embedded config: its name (which also names the work directory) and YAML text.
public struct EmbeddedConfig: Sendable {
  public let name: String
  public let yaml: String

  public init(name: String, yaml: String) {
    self.name = name
    self.yaml = yaml
  }
}

public enum ClassificationPresets {
  public static let mheadQuick = EmbeddedConfig(name: "resnet18_mhead_fashion-mnist_quick", yaml: #"""
# The multi-head probe (PROTOCOLS §4.1) scaled to the embedded Fashion-MNIST default and the quick pretrained
# ResNet-18 (CIFAR stem, width 0.25, 1 channel, 32×32): the embedded default of `run linear --head mhead`.
# Small images: crops follow the data (Resize(32) → CenterCrop(32) at test, RandomResizedCrop(32) in training),
# and each stage is pooled adaptively to MMSelfSup's 12/6/4/3/2 grids (the fixed kernels assume 224 input).
# The schedule keeps the protocol's shape (SGD Nesterov, two ×0.1 steps at 1/3 and 2/3) over 12 epochs.
data:
  kind: fashion-mnist
  path: /usr/share/datasets/fashion-mnist
  limit: 10000              # first 10,000 training images (0: all 60,000)
  test_limit: 0             # all 10,000 test images
  resize: 32
  crop: 32
  train_transform: rrc-flip-jitter-lighting
  mean: [0.2860]            # Fashion-MNIST pixel mean and std (x / 255), as the pretraining config
  std: [0.3530]
  extract_batch_size: 256
head:
  type: mhead
  layers: [feature1, feature2, feature3, feature4, feature5]
  bn_momentum: 0.1
  init_std: 0.01
optimizer:
  type: sgd
  lr: 0.01
  base_batch_size: 256
  momentum: 0.9
  weight_decay: 1.0e-4
  nesterov: true
schedule:
  epochs: 12
  batch_size: 256
  policy: step
  milestones: [4, 8]
  gamma: 0.1
evaluation:
  interval: 1
cache_features: false
seed: 0
"""#)

  public static let avgpoolQuick = EmbeddedConfig(name: "resnet18_linear_fashion-mnist_quick", yaml: #"""
# The AvgPool probe (PROTOCOLS §4.2: GAP → Linear, MMSelfSup's LARS, cosine per epoch, 90 epochs) on the embedded
# Fashion-MNIST default: the embedded default of `run linear --head avgpool`. RandomResizedCrop(32) + flip; test
# Resize(32) → CenterCrop(32). Deviation: LARS moves each tensor by about lr · 0.001 · ‖w‖ per step, and a
# 10,000-image epoch has 1/128 of ImageNet's steps, so the linearly scaled rate (1.6 × 256 / 4096 = 0.1) leaves the
# head far from converged (measured: 16 % after 12 epochs); the quick config keeps lr 1.6 at batch 256.
data:
  kind: fashion-mnist
  path: /usr/share/datasets/fashion-mnist
  limit: 10000
  test_limit: 0
  resize: 32
  crop: 32
  train_transform: rrc-flip
  mean: [0.2860]
  std: [0.3530]
  extract_batch_size: 256
head:
  type: avgpool
  init_std: 0.01
optimizer:
  type: lars
  lr: 1.6
  base_batch_size: 256      # see above: 1.6 at batch 256, not scaled down from 4096
  momentum: 0.9
  weight_decay: 0.0
  nesterov: false
schedule:
  epochs: 90
  batch_size: 256
  policy: cosine
  min_lr: 0.0
evaluation:
  interval: 10
cache_features: false
seed: 0
"""#)

  public static let knnQuick = EmbeddedConfig(name: "knn_fashion-mnist_quick", yaml: #"""
# The kNN classifier (PROTOCOLS §4.5) on the embedded Fashion-MNIST default: all 60,000 training images are the
# bank and the 10,000 test images the queries, Resize(32) → CenterCrop(32) (the 28×28 images scaled to the
# pretraining size); k ∈ {10, 20, 100, 200}, T = 0.07. The embedded default of `run knn`.
data:
  kind: fashion-mnist
  path: /usr/share/datasets/fashion-mnist
  limit: 0
  test_limit: 0
  resize: 32
  crop: 32
  mean: [0.2860]
  std: [0.3530]
  extract_batch_size: 256
knn:
  k: [10, 20, 100, 200]
  temperature: 0.07
  query_block: 1024
  bank_block: 16384
seed: 0
"""#)
}
