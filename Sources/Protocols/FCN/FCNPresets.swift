// The embedded FCN configs: the text of configs/benchmarks/mmsegmentation/*/*.yaml (FCNPresetTests checks that they
// stay identical), so `run fcn` and the quickstart need no config file; the default follows the data folder.
import Datasets
import Evaluation
import Foundation

public enum FCNPresets {
  /// configs/benchmarks/mmsegmentation/voc12aug/fcn_r50-d8_512x512_20k_voc12aug.yaml
  public static let voc12Aug = EmbeddedConfig(name: "fcn_r50-d8_512x512_20k_voc12aug", yaml: #"""
# MMSelfSup's FCN benchmark on Pascal VOC 2012 + Aug (PROTOCOLS §5.3; mmselfsup v0.8.0
# configs/benchmarks/mmsegmentation/voc12aug/fcn_r50-d8_512x512_20k_voc12aug.py and its _base_ files): a ResNet-50
# with strides (1,2,1,1) and dilations (1,1,2,4) (output stride 8), FCNHead on layer4 and an auxiliary FCNHead on
# layer3 (loss weight 0.4), fine-tuned end to end with batch statistics, SGD 0.01 with poly decay to 1e-4 over 20k
# iterations of 16 images (4 GPUs × 4 with SyncBN in the reference), scored by mIoU on val (1,449 images).
# 20k × 16 crops of 512² take about a month on 2 cores (PROTOCOLS §5 "What the full protocols cost").
model:
  strides: [1, 2, 1, 1]
  dilations: [1, 1, 2, 4]
  contract_dilation: true
  decode_channels: 512
  decode_convs: 2
  concat_input: true
  auxiliary_channels: 256
  auxiliary_weight: 0.4
  dropout: 0.1
  align_corners: false
data:
  path: data/VOCdevkit/VOC2012
  train_split: train+aug      # train.txt (SegmentationClass) + aug.txt (SegmentationClassAug)
  test_split: val
  img_scale: [2048, 512]
  ratio_range: [0.5, 2.0]
  crop_size: [512, 512]
  cat_max_ratio: 0.75
  flip_prob: 0.5
  photometric_distortion: true
  mean: [123.675, 116.28, 103.53]
  std: [58.395, 57.12, 57.375]
  test_scale: [2048, 512]
  test_mode: whole
  slide_crop: [769, 769]
  slide_stride: [513, 513]
  batch_size: 16
  test_limit: 0
  train_limit: 0
optimizer:
  lr: 0.01
  momentum: 0.9
  weight_decay: 0.0005
schedule:
  iterations: 20000
  power: 0.9
  min_lr: 0.0001
  checkpoint_interval: 2000
  evaluation_interval: 2000
seed: 0
"""#)

  /// configs/benchmarks/mmsegmentation/cityscapes/fcn_r50-d8_769x769_40k_cityscapes.yaml
  public static let cityscapes = EmbeddedConfig(name: "fcn_r50-d8_769x769_40k_cityscapes", yaml: #"""
# MMSelfSup's FCN benchmark config for Cityscapes (PROTOCOLS §5.4; mmselfsup v0.8.0
# configs/benchmarks/mmsegmentation/cityscapes/fcn_r50-d8_769x769_40k_cityscapes.py): the voc12aug model with 19
# classes and align_corners true, Resize((2049, 1025), ratio 0.5–2.0), RandomCrop 769², 40k iterations of 8 images
# (4 GPUs × 2), and slide inference (crop 769, stride 513) on val at (2049, 1025). No SimSiam number is published
# for it; it is here for users with machines that can run it.
model:
  strides: [1, 2, 1, 1]
  dilations: [1, 1, 2, 4]
  contract_dilation: true
  decode_channels: 512
  decode_convs: 2
  concat_input: true
  auxiliary_channels: 256
  auxiliary_weight: 0.4
  dropout: 0.1
  align_corners: true
data:
  path: data/cityscapes
  train_split: train
  test_split: val
  img_scale: [2049, 1025]
  ratio_range: [0.5, 2.0]
  crop_size: [769, 769]
  cat_max_ratio: 0.75
  flip_prob: 0.5
  photometric_distortion: true
  mean: [123.675, 116.28, 103.53]
  std: [58.395, 57.12, 57.375]
  test_scale: [2049, 1025]
  test_mode: slide
  slide_crop: [769, 769]
  slide_stride: [513, 513]
  batch_size: 8
  test_limit: 0
  train_limit: 0
optimizer:
  lr: 0.01
  momentum: 0.9
  weight_decay: 0.0005
schedule:
  iterations: 40000
  power: 0.9
  min_lr: 0.0001
  checkpoint_interval: 4000
  evaluation_interval: 4000
seed: 0
"""#)

  /// configs/benchmarks/mmsegmentation/scenes/fcn_quick-d8_scenes.yaml
  public static let scenesQuick = EmbeddedConfig(name: "fcn_quick-d8_scenes", yaml: #"""
# The FCN benchmark (PROTOCOLS §5.3) as a miniature on the quickstart's scene devkit (`data make-scenes`:
# Fashion-MNIST items, 28–112 px, on 96–256 px backgrounds, 10 classes + background, SegmentationClass masks) for the
# quick pretrained ResNet-18 (CIFAR stem, width 0.25, 1 channel, pretrained at 32 px): what `quickstart` runs for
# both backbones. The protocol's pieces are unchanged — FCNHead + auxiliary FCNHead (weight 0.4), CE with ignore 255
# averaged over all pixels, Resize with a ratio range, RandomCrop with cat_max_ratio 0.75, flip, photometric
# distortion, SGD + poly LR to min_lr, whole-image inference and mmseg's mIoU — scaled to the model and data:
# - output stride 8 without dilation: the CIFAR stem does not downsample, so strides (1,2,2,2) already give the
#   output stride D8 reaches with dilated layer3/layer4 on the ImageNet stem;
# - head widths × 0.25 like the backbone (512 → 128, 256 → 64);
# - images rescaled to a short side of 96 (ratio 0.75–1.5 in training), crops of 64², 1600 iterations of 8 (at 400
#   neither backbone gets past background vs foreground; at 1600 the pretrained one leads, see README `run fcn`);
# - trainval (200 scenes) to train, test (200 scenes) to score; Fashion-MNIST's mean and std on the 0–255 scale
#   (the 1-channel backbone sees the mean of the three normalised channels).
model:
  strides: [1, 2, 2, 2]
  dilations: [1, 1, 1, 1]
  contract_dilation: true
  decode_channels: 128
  decode_convs: 2
  concat_input: true
  auxiliary_channels: 64
  auxiliary_weight: 0.4
  dropout: 0.1
  align_corners: false
data:
  path: work_dirs/quickstart/scenes/VOCdevkit/VOC2007
  train_split: trainval
  test_split: test
  img_scale: [256, 96]
  ratio_range: [0.75, 1.5]
  crop_size: [64, 64]
  cat_max_ratio: 0.75
  flip_prob: 0.5
  photometric_distortion: true
  mean: [72.93, 72.93, 72.93]     # 0.2860 × 255, Fashion-MNIST's pixel mean, as the pretraining config
  std: [90.015, 90.015, 90.015]   # 0.3530 × 255
  test_scale: [256, 96]
  test_mode: whole
  slide_crop: [769, 769]
  slide_stride: [513, 513]
  batch_size: 8
  test_limit: 0
  train_limit: 0
optimizer:
  lr: 0.01
  momentum: 0.9
  weight_decay: 0.0005
schedule:
  iterations: 1600
  power: 0.9
  min_lr: 0.0001
  checkpoint_interval: 400
  evaluation_interval: 0
seed: 0
"""#)

  /// Every embedded FCN config, with its file under configs/benchmarks/mmsegmentation.
  public static let all: [(preset: EmbeddedConfig, file: String)] = [
    (voc12Aug, "voc12aug/fcn_r50-d8_512x512_20k_voc12aug.yaml"),
    (cityscapes, "cityscapes/fcn_r50-d8_769x769_40k_cityscapes.yaml"),
    (scenesQuick, "scenes/fcn_quick-d8_scenes.yaml"),
  ]

  /// The protocol of the folder at `path`: Cityscapes for a Cityscapes folder, the scene miniature for a VOC2007-style
  /// devkit (what `data make-scenes` writes), and voc12aug otherwise (also when no folder is given).
  public static func preset(forDataAt path: String?) -> EmbeddedConfig {
    guard let path, let layout = SegmentationDataset.layout(of: URL(fileURLWithPath: path)) else { return voc12Aug }
    switch layout {
    case .cityscapes: return cityscapes
    case .vocDevkit: return scenesQuick
    case .voc2012: return voc12Aug
    }
  }
}
