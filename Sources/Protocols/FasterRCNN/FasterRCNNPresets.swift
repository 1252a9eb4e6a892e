// The embedded Faster R-CNN configs: the text of configs/benchmarks/mmdetection/*/*.yaml (FasterRCNNPresetTests
// checks that they stay identical), so `run faster-rcnn` and the quickstart need no config file; the default follows
// the data folder (the 20 VOC classes → the reference protocol, any other class list → the scene miniature).
import Datasets
import Evaluation
import Foundation

public enum FasterRCNNPresets {
  /// configs/benchmarks/mmdetection/voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.yaml
  public static let voc0712 = EmbeddedConfig(name: "faster_rcnn_r50_c4_mstrain_24k_voc0712", yaml: #"""
# MMSelfSup's detection benchmark on Pascal VOC07+12 (PROTOCOLS §5.1; mmselfsup v0.8.0
# configs/benchmarks/mmdetection/voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.py with _base_/models/
# faster_rcnn_r50_c4.py and _base_/schedules/schedule_24k.py): Faster R-CNN with a ResNet-50 C4 trunk (stem..res4,
# everything trainable, batch statistics), RPN on res4, RoIAlign 14×14 → res5 (from the checkpoint) + extra BN →
# mean pool → box classifier and class-specific regressor; VOC2007 trainval + VOC2012 trainval, multi-scale
# (short side 480…800 step 32, long side ≤ 1333), flip; SGD 0.02, warm-up 100 iterations from 0.001, ×0.1 at 18k and
# 22k, 24k iterations of 16 images (8 GPUs × 2 with SyncBN in the reference); scored on VOC2007 test by mmdet's
# eval_map (11-point AP at IoU 0.5 = the seed's AP50) and detectron2's AP / AP75.
# The whole schedule takes months on 2 cores (PROTOCOLS §5 "What the full protocols cost").
model:
  anchor_sizes: [32, 64, 128, 256, 512]
  anchor_ratios: [0.5, 1.0, 2.0]
  rpn_batch_size: 256
  rpn_positive_fraction: 0.5
  rpn_pre_nms_train: 12000
  rpn_post_nms_train: 2000
  rpn_pre_nms_test: 6000
  rpn_post_nms_test: 1000
  rpn_nms_threshold: 0.7
  roi_batch_size: 512
  roi_positive_fraction: 0.25
  roi_size: 14
  score_threshold: 0.05
  nms_threshold: 0.5
  detections_per_image: 100
data:
  paths: [data/VOCdevkit/VOC2007, data/VOCdevkit/VOC2012]   # trained on together; the first one's test split scores
  train_split: trainval
  test_split: test
  max_size: 1333
  train_short_sides: [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800]
  test_short_side: 800
  flip_prob: 0.5
  mean: [123.675, 116.28, 103.53]
  std: [58.395, 57.12, 57.375]
  pad_divisor: 32
  difficult: ignore          # mmdet 2.x: difficult boxes are not trained on; `keep` is detectron2's choice
  box_convention: mmdet      # mmdet 2.x XMLDataset: all four XML coordinates − 1; `detectron2`: xmin, ymin − 1
  batch_size: 16
  train_limit: 0
  test_limit: 0
optimizer:
  lr: 0.02
  momentum: 0.9
  weight_decay: 0.0001
schedule:
  iterations: 24000
  warmup_iterations: 100
  warmup_ratio: 0.001
  steps: [18000, 22000]
  gamma: 0.1
  checkpoint_interval: 2000
  evaluation_interval: 2000
seed: 0
"""#)

  /// configs/benchmarks/mmdetection/scenes/faster_rcnn_quick-c4_scenes.yaml
  public static let scenesQuick = EmbeddedConfig(name: "faster_rcnn_quick-c4_scenes", yaml: #"""
# The Faster R-CNN C4 benchmark (PROTOCOLS §5.1) as a miniature on the quickstart's scene devkit (`data make-scenes`:
# Fashion-MNIST items, 28–112 px, on 96–256 px backgrounds, 10 classes, VOC XML boxes) for the quick pretrained
# ResNet-18 (CIFAR stem, width 0.25, 1 channel, pretrained at 32 px): what `quickstart --all` runs for both
# backbones. The protocol's pieces are unchanged — RPN on the C4 trunk (layer3) with its sampler, proposals, NMS,
# RoIAlign → layer4 as the ROI head + extra BN, the ROI sampler with GT added, CE + L1 losses, SGD with warm-up and
# steps, per-class NMS at test, mmdet's VOC AP — scaled to the model and data (each a recorded protocol departure):
# - the C4 trunk is layer3 at stride 4 (the CIFAR stem does not downsample);
# - short sides 48…80 step 8 (test 64), long side ≤ 128: the scenes at about half their size, so the items (median
#   ≈ 50 px in the scenes) come out near the 32 px the backbone was pretrained at; anchors 8–64 px to match;
# - fewer proposals and ROIs (the ROI head costs per ROI: 64 per image), RoIAlign 8 → 4×4 after layer4;
# - 800 iterations of 4, steps at 600 and 700;
# - trainval (200 scenes) to train, test (200 scenes) to score; Fashion-MNIST's mean and std on the 0–255 scale.
# What it shows for the quickstart's pretrained backbone and its random-init twin (3 seeds each): README `run
# faster-rcnn`.
model:
  anchor_sizes: [8, 16, 32, 64]
  anchor_ratios: [0.5, 1.0, 2.0]
  rpn_batch_size: 256
  rpn_positive_fraction: 0.5
  rpn_pre_nms_train: 2000
  rpn_post_nms_train: 500
  rpn_pre_nms_test: 1000
  rpn_post_nms_test: 300
  rpn_nms_threshold: 0.7
  roi_batch_size: 64
  roi_positive_fraction: 0.25
  roi_size: 8
  score_threshold: 0.05
  nms_threshold: 0.5
  detections_per_image: 100
data:
  paths: [work_dirs/quickstart/scenes/VOCdevkit/VOC2007]
  train_split: trainval
  test_split: test
  max_size: 128
  train_short_sides: [48, 56, 64, 72, 80]
  test_short_side: 64
  flip_prob: 0.5
  mean: [72.93, 72.93, 72.93]     # 0.2860 × 255, Fashion-MNIST's pixel mean, as the pretraining config
  std: [90.015, 90.015, 90.015]   # 0.3530 × 255
  pad_divisor: 32
  difficult: ignore
  box_convention: mmdet
  batch_size: 4
  train_limit: 0
  test_limit: 0
optimizer:
  lr: 0.01
  momentum: 0.9
  weight_decay: 0.0001
schedule:
  iterations: 800
  warmup_iterations: 50
  warmup_ratio: 0.001
  steps: [600, 700]
  gamma: 0.1
  checkpoint_interval: 200
  evaluation_interval: 0
seed: 0
"""#)

  /// Every embedded Faster R-CNN config, with its file under configs/benchmarks/mmdetection.
  public static let all: [(preset: EmbeddedConfig, file: String)] = [
    (voc0712, "voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.yaml"),
    (scenesQuick, "scenes/faster_rcnn_quick-c4_scenes.yaml"),
  ]

  /// The protocol of the devkit year folder at `path`: the reference for a devkit whose ImageSets/Main lists the 20
  /// VOC classes (or when no folder is given), the scene miniature for any other class list (`data make-scenes`).
  public static func preset(forDataAt path: String?) -> EmbeddedConfig {
    guard let path else { return voc0712 }
    let main = URL(fileURLWithPath: path).appendingPathComponent("ImageSets/Main")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: main.path)) ?? []
    let classes = Set(names.filter { $0.hasSuffix("_trainval.txt") }.map { String($0.dropLast("_trainval.txt".count)) })
    return classes.isEmpty || classes == Set(SegmentationClasses.voc.dropFirst()) ? voc0712 : scenesQuick
  }
}
