// The embedded default config: the text of configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml (a test
// checks that the two stay identical), so `simsiam-bench pretrain` runs without a config file.
import Foundation
import Support

extension PretrainConfig {
  /// The default config's name, which also names its work directory.
  public static let quickDefaultName = "simsiam_resnet18_fashion-mnist_quick"

  /// The default config's YAML text.
  public static let quickDefaultYAML = #"""
# SimSiam, ResNet-18 (CIFAR stem, width 0.25, 1 input channel) on Fashion-MNIST: the embedded default of
# `simsiam-bench pretrain`, sized for about 10 minutes on 2 CPU cores. The recipe is the best one measured in
# shared/spec/QUICK_DEFAULT.md (PyTorch reference, 600 s): d = 512, predictor 128, base lr 0.06, wd 5e-4,
# batch 256, RandomResizedCrop(32, 0.2–1) + flip + brightness/contrast jitter, zero_init_residual.
# It shows the pipeline end to end (loss falling toward −1, z-std near 1/√d); it does not learn much in 10 minutes.
# Measured here: about 200 images/s (two views each) on 2 idle cores, so 3 epochs of 20,000 images take about
# 5 minutes (about 9 minutes with other work on the machine).
model:
  depth: 18
  width_multiplier: 0.25
  cifar_stem: true
  in_channels: 1
  zero_init_residual: true
  projector_hidden: 512
  features: 512
  projector_layers: 3
  predictor_hidden: 128
data:
  kind: fashion-mnist
  path: /usr/share/datasets/fashion-mnist
  limit: 20000       # the first 20,000 training images: 3 epochs with a decaying cosine fit the 10-minute budget
  image_size: 32
  crop_scale_min: 0.2
  crop_scale_max: 1.0
  brightness: 0.4
  contrast: 0.4
  saturation: 0.0     # grayscale images: no saturation, hue or grayscale steps
  hue: 0.0
  color_jitter_p: 0.8
  grayscale_p: 0.0
  blur_p: 0.0
  flip_p: 0.5
  mean: [0.2860]      # Fashion-MNIST train-set pixel mean and std (x / 255)
  std: [0.3530]
  workers: 2
  prefetch: 2
  skip_corrupt: false # true: an unreadable image is replaced by the next readable one, counted and reported
optimizer:
  lr: 0.06            # for batch 256; the LR used is lr × batch_size / 256
  momentum: 0.9
  weight_decay: 5.0e-4
  fix_pred_lr: true
schedule:
  epochs: 3           # cosine per epoch over 3 epochs
  batch_size: 256
  min_lr: 0.0
  max_minutes: 10.0   # hard wall-clock budget; the run stops with a checkpoint when it is spent
checkpoint:
  interval: 1
  keep: 3
monitor:
  knn_interval: 0     # no kNN between epochs…
  knn_at_end: true    # …but before training (random init) and after it
  knn_k: 20
  knn_temperature: 0.07
  knn_train_samples: 10000
  knn_test_samples: 2000
  collapse_fraction: 0.5
seed: 0

"""#

  /// Loads a config: `yaml` (nil: the embedded default) over the built-in defaults, then each `key=value`.
  public static func load(yaml: String?, source: String, overrides: [String] = []) throws -> PretrainConfig {
    let config = try ConfigYAML.load(PretrainConfig.self, defaults: PretrainConfig(), yaml: yaml ?? quickDefaultYAML,
                                     source: yaml == nil ? "the embedded default config" : source,
                                     overrides: overrides)
    try config.validate()
    return config
  }

  /// The config as compact JSON with sorted keys (checkpoint metadata and the results store).
  public var json: String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
  }
}
