// The embedded Mask R-CNN configs: the text of configs/benchmarks/mmdetection/*/mask_rcnn_*.yaml (MaskRCNNPresetTests
// checks that they stay identical), so `run mask-rcnn` and the quickstart need no config file; the default follows
// the data folder (a scene set from `data make-scenes` → the scene miniature, anything else → the reference protocol).
import Evaluation
import Foundation

public enum MaskRCNNPresets {
  /// configs/benchmarks/mmdetection/coco/mask_rcnn_r50_fpn_mstrain_1x_coco.yaml
  public static let coco = EmbeddedConfig(name: "mask_rcnn_r50_fpn_mstrain_1x_coco", yaml: #"""
# MMSelfSup's detection and instance-segmentation benchmark on COCO2017 (PROTOCOLS §5.2; mmselfsup v0.8.0
# configs/benchmarks/mmdetection/coco/mask_rcnn_r50_fpn_mstrain_1x_coco.py on mmdet 2.x _base_/models/
# mask_rcnn_r50_fpn.py, _base_/datasets/coco_instance.py and _base_/schedules/schedule_1x.py): Mask R-CNN with a
# ResNet-50 (C2–C5, everything trainable, batch statistics = SyncBN), FPN 256 with BN (P2–P6), an RPN over the five
# levels (anchor scale 8, ratios 0.5/1/2, 2000 → 1000 proposals per image in training, 1000 → 1000 at test), RoIAlign
# 7×7 (box) / 14×14 (mask) on P2–P5 by mmdet's level rule, the Shared4Conv1FC box head and the 4-conv FCN mask head
# with BN; train2017 at (1333, 640…800 step 32), flip; SGD 0.02, warm-up 1000 iterations from 0.001, ×0.1 after
# epochs 8 and 11, 12 epochs of 16 images (8 GPUs × 2 with SyncBN in the reference); scored on val2017 by COCO box
# and mask AP (pycocotools' COCOeval: mAP, AP50, AP75 = the seed's COCO2017 columns).
# The whole schedule takes years on 2 cores (PROTOCOLS §5 "What the full protocols cost").
model:
  fpn_channels: 256
  norm: true                 # SyncBN in the neck and both heads (one process: batch statistics over the batch)
  anchor_scale: 8.0
  anchor_ratios: [0.5, 1.0, 2.0]
  rpn_batch_size: 256
  rpn_positive_fraction: 0.5
  rpn_pre_nms_train: 2000    # per level
  rpn_post_nms_train: 1000   # per image
  rpn_pre_nms_test: 1000
  rpn_post_nms_test: 1000
  rpn_nms_threshold: 0.7
  roi_batch_size: 512
  roi_positive_fraction: 0.25
  roi_finest_scale: 56.0
  box_roi_size: 7
  box_conv_channels: 256
  box_fc_channels: 1024
  mask_roi_size: 14
  mask_conv_channels: 256
  score_threshold: 0.05
  nms_threshold: 0.5
  detections_per_image: 100
  mask_threshold: 0.5
data:
  root: data/coco
  train_json: annotations/instances_train2017.json
  train_images: train2017
  test_json: annotations/instances_val2017.json
  test_images: val2017
  max_size: 1333
  train_short_sides: [640, 672, 704, 736, 768, 800]
  test_short_side: 800
  flip_prob: 0.5
  mean: [123.675, 116.28, 103.53]
  std: [58.395, 57.12, 57.375]
  pad_divisor: 32
  batch_size: 16
  train_limit: 0
  test_limit: 0
optimizer:
  lr: 0.02
  momentum: 0.9
  weight_decay: 0.0001
schedule:
  epochs: 12
  step_epochs: [8, 11]
  gamma: 0.1
  warmup_iterations: 1000
  warmup_ratio: 0.001
  checkpoint_interval: 5000
  evaluation_interval: 0
seed: 0
"""#)

  /// configs/benchmarks/mmdetection/scenes/mask_rcnn_quick-fpn_scenes.yaml
  public static let scenesQuick = EmbeddedConfig(name: "mask_rcnn_quick-fpn_scenes", yaml: #"""
# The Mask R-CNN FPN benchmark (PROTOCOLS §5.2) as a miniature on the quickstart's scene set (`data make-scenes`:
# Fashion-MNIST items on 96–256 px backgrounds, 10 classes, COCO json with RLE masks in annotations/) for the quick
# pretrained ResNet-18 (CIFAR stem, width 0.25, 1 channel, pretrained at 32 px). The protocol's pieces are
# unchanged — FPN with BN over C2–C5, the five-level RPN with its sampler, per-level proposals and NMS, the ROI
# level rule, RoIAlign 7 / 14, the Shared4Conv1FC box head and the FCN mask head with BN, the ROI sampler with GT
# added, CE + L1 + mask BCE losses, SGD with warm-up and steps, per-class NMS and mask pasting at test, COCO box and
# mask AP — scaled to the model and data (each a recorded protocol departure):
# - the CIFAR stem does not downsample, so P2–P6 sit at strides 1–16 and anchors (scale 8) are 8–128 px; the ROI
#   level rule's finest scale is 14 × P2's stride = 14;
# - short sides 48…80 step 8 (test 64), long side ≤ 128: the scenes at about half size, so the items come out near
#   the 32 px the backbone was pretrained at;
# - FPN and head convs of 32 channels, box fc 128; fewer proposals and 64 ROIs per image;
# - 16 epochs of 4 images (800 iterations) at the reference's lr 0.02, not scaled down to the batch: at 0.01 and
#   0.005 the miniature stays far from converged and pretrained and random init overlap over 3 seeds (README);
#   trainval (the scene set's first json) to train, test to score.
model:
  fpn_channels: 32
  norm: true
  anchor_scale: 8.0
  anchor_ratios: [0.5, 1.0, 2.0]
  rpn_batch_size: 256
  rpn_positive_fraction: 0.5
  rpn_pre_nms_train: 500
  rpn_post_nms_train: 300
  rpn_pre_nms_test: 500
  rpn_post_nms_test: 300
  rpn_nms_threshold: 0.7
  roi_batch_size: 64
  roi_positive_fraction: 0.25
  roi_finest_scale: 14.0
  box_roi_size: 7
  box_conv_channels: 32
  box_fc_channels: 128
  mask_roi_size: 14
  mask_conv_channels: 32
  score_threshold: 0.05
  nms_threshold: 0.5
  detections_per_image: 100
  mask_threshold: 0.5
data:
  root: work_dirs/quickstart/scenes
  train_json: annotations/instances_trainval.json
  train_images: .                 # file_name in the json is relative to the scene folder
  test_json: annotations/instances_test.json
  test_images: .
  max_size: 128
  train_short_sides: [48, 56, 64, 72, 80]
  test_short_side: 64
  flip_prob: 0.5
  mean: [72.93, 72.93, 72.93]     # 0.2860 × 255, Fashion-MNIST's pixel mean, as the pretraining config
  std: [90.015, 90.015, 90.015]   # 0.3530 × 255
  pad_divisor: 32
  batch_size: 4
  train_limit: 0
  test_limit: 0
optimizer:
  lr: 0.02
  momentum: 0.9
  weight_decay: 0.0001
schedule:
  epochs: 16
  step_epochs: [12, 14]
  gamma: 0.1
  warmup_iterations: 50
  warmup_ratio: 0.001
  checkpoint_interval: 200
  evaluation_interval: 0
seed: 0
"""#)

  /// Every embedded Mask R-CNN config, with its file under configs/benchmarks/mmdetection.
  public static let all: [(preset: EmbeddedConfig, file: String)] = [
    (coco, "coco/mask_rcnn_r50_fpn_mstrain_1x_coco.yaml"),
    (scenesQuick, "scenes/mask_rcnn_quick-fpn_scenes.yaml"),
  ]

  /// The protocol of the folder at `path`: the scene miniature for a `data make-scenes` output folder (it holds
  /// annotations/instances_trainval.json and a VOCdevkit), the reference protocol otherwise (or when none is given).
  public static func preset(forDataAt path: String?) -> EmbeddedConfig {
    guard let path else { return coco }
    let root = URL(fileURLWithPath: path)
    let isSceneSet = FileManager.default.fileExists(atPath: root.appendingPathComponent(
      "annotations/instances_trainval.json").path)
      && FileManager.default.fileExists(atPath: root.appendingPathComponent("VOCdevkit").path)
    return isSceneSet ? scenesQuick : coco
  }
}
