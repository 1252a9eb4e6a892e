#!/usr/bin/env python3
"""Golden fixture for the whole Mask R-CNN FPN (Swift: MaskRCNNFPN.trainingStep with supplied draws, detect), produced
with PyTorch.

Run:  pip install torch==2.13.0+cpu safetensors numpy
      python3 scripts/reference/make_mask_rcnn_fixtures.py [--out Tests/ModelsTests/Fixtures]

Writes mask_rcnn_fpn_tiny.safetensors. No mmdet/mmcv install is needed: the model is assembled from the plain-torch
re-implementations that the piece-wise parity fixtures already use (imported as modules, their module constants set
to this model's sizes below), wired as mmdet 2.x's `TwoStageDetector.forward_train` / `simple_test` with
`StandardRoIHead` (share_roi_extractor False) wires them for MMSelfSup v0.8.0's mask_rcnn_r50_fpn_mstrain_1x_coco.py:

  backbone    make_engine_fixtures.ResNet (torchvision's architecture and names; mmdet's ResNet has the same state
              dict): ResNet-18 at width 1/16 (C2…C5 with 4, 8, 16, 32 channels), ImageNet stem (7×7/2 + max-pool),
              train-mode BN (MMSelfSup: SyncBN, norm_eval False). C2…C5 = layer1…layer4.
  neck        make_fpn_fixtures.fpn_parameters / the FPN forward (lateral 1×1 + fpn 3×3 ConvModules with BN, nearest
              top-down, P6 = max_pool2d(P5, 1, stride 2)), 8 channels.
  rpn         make_fpn_fixtures: RPNHead (rpn_conv 8 wide), AnchorGenerator (scale 4 — anchors 16…256 px on these
              small images —, ratios 0.5/1/2, strides 4…64), valid flags on each image's pad_shape, MaxIoUAssigner
              0.7/0.3/0.3 with low-quality matches, RandomSampler(256, 0.5) — its torch.randperm draws are stored as
              the sampled anchor indices —, BCE + L1 over avg_factor; `_get_bboxes` with the rpn_proposal settings
              (2000 per level, 1000 per image, NMS 0.7 per level) for training and test_cfg.rpn (1000 / 1000) at test.
  roi targets make_fpn_box_head_fixtures.assign_low_quality (MaxIoUAssigner 0.5/0.5/0.5 with match_low_quality, GT
              prepended) + make_roi_head_fixtures.sample (RandomSampler(512, 0.25) with numpy draws, stored as the
              sampled candidate indices) + bbox2delta (stds 0.1 0.1 0.2 0.2).
  extractors  SingleRoIExtractor over P2…P5 (strides 4…32): map_roi_levels with finest_scale 8 (mmdet's 56 scaled to
              these 64×96 images, so the sampled rois reach all four levels), RoIAlign(7) for the box head and
              RoIAlign(14) for the mask head, aligned, sampling ratio 0 (make_detection_fixtures.roi_align).
  box head    make_fpn_box_head_fixtures.Shared4Conv1FCBBoxHead with BN (in 8, convs 8, fc 16, 3 classes);
              make_roi_head_fixtures.roi_losses (CE mean, L1 over the positives / #rois).
  mask head   make_mask_head_fixtures.FCNMaskHead (4 ConvModules with BN, 8 channels, deconv 2×2/2, 3 classes) on
              the sampled positives' boxes; mask_targets (GT bitmaps at the image's pad_shape, aligned RoIAlign 28,
              ≥ 0.5) and mask_cross_entropy.
  test        eval mode (running statistics = those after the training step): RPN proposals, the box head on them,
              make_roi_head_fixtures.get_bboxes (softmax, delta2bbox, multiclass NMS 0.5, score_thr 0.05,
              max_per_img 10 — fewer than mmdet's 100 to keep the file small), then the mask head on the kept boxes.

Loss = loss_rpn_cls + loss_rpn_bbox + loss_cls + loss_bbox + loss_mask (every weight 1); autograd gives the
gradient of every parameter. Weights: the ResNet's convs torchvision's init; the FPN's N(0, 0.4²) (fpn_parameters);
the RPN's N(0, σ²) with σ 0.1 / 0.5 / 0.3 (conv / cls / reg, as make_fpn_fixtures); the heads' as their fixtures
randomise them; every BatchNorm re-randomised (weight U(0.5, 1.5), bias N(0, 0.1), running_mean N(0, 0.1),
running_var U(0.5, 1.5)).

Inputs: two images (64×96 and 50×70) padded into one [2, 3, 64, 96] batch; their values are float16-representable
and stored as F16 (exact in both readers); three and two GT boxes with labels and instance bitmaps (F16, at the pad
shape 64×96 of both images).

Tensors (activations NCHW, conv weights OIHW, boxes x1 y1 x2 y2 in input pixels; indices as F32):
  init.<key>                    every parameter and buffer (mmdet state-dict names: backbone., neck., rpn_head.,
                                roi_head.bbox_head., roi_head.mask_head.), before the step
  input.images [2, 3, 64, 96], input.image_sizes [2, 2] (h, w), input.gt_boxes{i} [g, 4], input.gt_labels{i} [g],
  input.gt_masks{i} [g, 64, 96]
  rpn.positive{i}, rpn.negative{i}          sampled anchors (into the image's concatenated P2…P6 anchors, ascending)
  rpn.proposals{i} [p, 4]                   the training proposals (no gradient)
  roi.positive{i}, roi.negative{i}          sampled candidates (GT boxes first, then the proposals; ascending)
  roi.levels [k]                            map_roi_levels of the sampled rois (all four levels occur)
  loss.rpn_cls, loss.rpn_bbox, loss.cls, loss.bbox, loss.mask   [1]
  grad.<key>                    ∂loss/∂ every trainable parameter
                                (losses and gradients: the step in float64 with the same draws, rounded to float32;
                                PyTorch's float32 gradients are up to ~3e-3 of a tensor's scale away from them, see
                                compare_with_float64)
  torch_float32.grad_error [1]  max over tensors of PyTorch float32's scaled gradient error against float64
  torch_float32.loss_error [1]  the same for the losses (relative)
  running.<key>                 every BN buffer after the float32 step (running mean / var, num_batches_tracked 1)
  test.proposals{i} [p, 4], test.boxes{i} [d, 4], test.scores{i} [d], test.labels{i} [d],
  test.mask_logits{i} [d, 3, 28, 28]        detect with init weights + running buffers

Deterministic (fixed seeds, one thread): rerunning gives identical tensors.
"""
import argparse
import os
import sys
from copy import deepcopy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_engine_fixtures as engine  # noqa: E402
import make_fpn_box_head_fixtures as box_fixtures  # noqa: E402
import make_fpn_fixtures as fpn_fixtures  # noqa: E402
import make_mask_head_fixtures as mask_fixtures  # noqa: E402
import make_roi_head_fixtures as roi_fixtures  # noqa: E402
from make_detection_fixtures import roi_align  # noqa: E402

SCRIPT = "scripts/reference/make_mask_rcnn_fixtures.py"
CLASSES = 3
WIDTH = 1 / 16
FPN_CHANNELS = 8
ROI_STRIDES = (4, 8, 16, 32)
FINEST_SCALE = 8.0
PADDED = (64, 96)
IMAGE_SIZES = [(64, 96), (50, 70)]
GT_BOXES = [[[8.0, 6.0, 40.0, 50.0], [44.0, 20.0, 90.0, 58.0], [30.0, 2.0, 52.0, 22.0]],
            [[4.0, 10.0, 34.0, 46.0], [36.0, 4.0, 66.0, 30.0]]]
GT_LABELS = [[0, 2, 1], [1, 0]]
TEST_DETECTIONS = 10
CLASS_WEIGHT_SCALE = 10.0
MIN_SCORE_GAP = 1e-4
SEED = 2024

# The imported references read their sizes from module constants: set them to this model's.
fpn_fixtures.IN_CHANNELS = [int(64 * WIDTH), int(128 * WIDTH), int(256 * WIDTH), int(512 * WIDTH)]
fpn_fixtures.OUT_CHANNELS = FPN_CHANNELS
fpn_fixtures.SCALES = [4.0]
fpn_fixtures.SAMPLER_NUM, fpn_fixtures.POS_FRACTION = 256, 0.5
box_fixtures.IN_CHANNELS, box_fixtures.CONV_CHANNELS, box_fixtures.FC_CHANNELS = FPN_CHANNELS, 8, 16
assert box_fixtures.CLASSES == roi_fixtures.CLASSES == CLASSES
TRAIN_PROPOSALS = fpn_fixtures.TRAIN_PROPOSALS
TEST_PROPOSALS = dict(nms_pre=1000, max_per_img=1000, iou_threshold=0.7, min_bbox_size=0)


# ------------------------------------------------------------------------------------------------ the model

def fpn_forward(inputs, params, buffers, training):
    """make_fpn_fixtures.fpn_forward with the BN mode chosen (its conv_module is train-only)."""
    def conv_module(x, name, padding):
        y = F.conv2d(x, params[f"{name}.conv.weight"], padding=padding)
        return F.batch_norm(y, buffers[f"{name}.bn.running_mean"], buffers[f"{name}.bn.running_var"],
                            params[f"{name}.bn.weight"], params[f"{name}.bn.bias"], training=training,
                            momentum=0.1, eps=1e-5)

    laterals = [conv_module(x, f"lateral_convs.{i}", 0) for i, x in enumerate(inputs)]
    for i in range(len(laterals) - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
    outs = [conv_module(lat, f"fpn_convs.{i}", 1) for i, lat in enumerate(laterals)]
    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
    return outs


def rpn_parameters(g):
    a = len(fpn_fixtures.SCALES) * len(fpn_fixtures.RATIOS)
    params = {
        "rpn_conv.weight": torch.randn(FPN_CHANNELS, FPN_CHANNELS, 3, 3, generator=g) * 0.1,
        "rpn_conv.bias": torch.randn(FPN_CHANNELS, generator=g) * 0.1 + 0.8,
        "rpn_cls.weight": torch.randn(a, FPN_CHANNELS, 1, 1, generator=g) * 0.5,
        "rpn_cls.bias": torch.randn(a, generator=g) * 0.1,
        "rpn_reg.weight": torch.randn(4 * a, FPN_CHANNELS, 1, 1, generator=g) * 0.3,
        "rpn_reg.bias": torch.randn(4 * a, generator=g) * 0.1,
    }
    return {k: v.requires_grad_(True) for k, v in params.items()}


def extract(feats, rois, out_size):
    """SingleRoIExtractor.forward with finest_scale FINEST_SCALE (make_fpn_box_head_fixtures.extract fixes 56)."""
    roi_feats = feats[0].new_zeros(rois.size(0), feats[0].size(1), out_size, out_size)
    levels = box_fixtures.map_roi_levels(rois, len(ROI_STRIDES), FINEST_SCALE)
    for i, stride in enumerate(ROI_STRIDES):
        inds = levels == i
        if inds.any():
            roi_feats[inds] = roi_align(feats[i], rois[inds], out_size, out_size, 1.0 / stride, 0, True)
    return roi_feats, levels


class MaskRCNN:
    """The detector's parameters under mmdet's state-dict names, and its forward passes."""

    def __init__(self, g):
        torch.manual_seed(SEED)
        self.backbone = engine.ResNet(engine.BasicBlock, [2, 2, 2, 2], width=WIDTH)
        self.neck_params, self.neck_buffers = fpn_fixtures.fpn_parameters(g, norm=True)
        self.neck_tracked = {k.replace("running_mean", "num_batches_tracked"): torch.tensor(0)
                             for k in self.neck_buffers if k.endswith("running_mean")}
        self.rpn = rpn_parameters(g)
        self.bbox_head = box_fixtures.Shared4Conv1FCBBoxHead(norm=True)
        self.mask_head = mask_fixtures.FCNMaskHead(FPN_CHANNELS, 8, 4, CLASSES, True)
        engine.randomize_bn(self.backbone)
        box_fixtures.randomise(self.bbox_head)
        with torch.no_grad():  # spread the class scores so the test-time order has clear gaps
            self.bbox_head.fc_cls.weight.mul_(CLASS_WEIGHT_SCALE)
        mask_fixtures.randomise(self.mask_head, g)

    def state_dict(self):
        state = {f"backbone.{k}": v for k, v in self.backbone.state_dict().items()}
        state.update({f"neck.{k}": v for k, v in {**self.neck_params, **self.neck_buffers,
                                                  **self.neck_tracked}.items()})
        state.update({f"rpn_head.{k}": v for k, v in self.rpn.items()})
        state.update({f"roi_head.bbox_head.{k}": v for k, v in self.bbox_head.state_dict().items()})
        state.update({f"roi_head.mask_head.{k}": v for k, v in self.mask_head.state_dict().items()})
        return {k: v.detach().clone() for k, v in state.items()}

    def named_parameters(self):
        named = [(f"backbone.{k}", p) for k, p in self.backbone.named_parameters()]
        named += [(f"neck.{k}", p) for k, p in self.neck_params.items()]
        named += [(f"rpn_head.{k}", p) for k, p in self.rpn.items()]
        named += [(f"roi_head.bbox_head.{k}", p) for k, p in self.bbox_head.named_parameters()]
        named += [(f"roi_head.mask_head.{k}", p) for k, p in self.mask_head.named_parameters()]
        return named

    def train(self, training):
        for module in (self.backbone, self.bbox_head, self.mask_head):
            module.train(training)

    def pyramid(self, images, training):
        _, c2, c3, c4, c5 = self.backbone(images)
        if training:
            for k in self.neck_tracked:
                self.neck_tracked[k] += 1
        return fpn_forward([c2, c3, c4, c5], self.neck_params, self.neck_buffers, training)

    def rpn_outputs(self, pyramid):
        outs = [fpn_fixtures.head_forward(p, self.rpn) for p in pyramid]
        sizes = [tuple(p.shape[2:]) for p in pyramid]
        level_anchors = [fpn_fixtures.grid_anchors(s, h, w) for s, (h, w) in zip(fpn_fixtures.STRIDES, sizes)]
        return outs, sizes, level_anchors

    def proposals(self, outs, level_anchors, cfg):
        return [fpn_fixtures.get_bboxes_single([o[0][i].detach() for o in outs], [o[1][i].detach() for o in outs],
                                               level_anchors, IMAGE_SIZES[i], cfg)[0]
                for i in range(len(IMAGE_SIZES))]


# ------------------------------------------------------------------------------------------------ inputs

def make_inputs(g):
    """Smooth random images (float16-exact), GT boxes, labels, and an ellipse bitmap inside each box (with a few
    pixels flipped), zero outside the image, at the pad shape."""
    images = torch.zeros(2, 3, *PADDED)
    for i, (h, w) in enumerate(IMAGE_SIZES):
        coarse = torch.randn(1, 3, h // 4 + 1, w // 4 + 1, generator=g)
        images[i, :, :h, :w] = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
    images = images.half().float()
    yy, xx = torch.meshgrid(torch.arange(PADDED[0]) + 0.5, torch.arange(PADDED[1]) + 0.5, indexing="ij")
    masks = []
    for i, boxes in enumerate(GT_BOXES):
        h, w = IMAGE_SIZES[i]
        image_masks = []
        for x1, y1, x2, y2 in boxes:
            cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
            m = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
            m = m ^ (torch.rand(PADDED, generator=g) < 0.05)
            m[h:, :] = False
            m[:, w:] = False
            image_masks.append(m.to(torch.uint8))
        masks.append(torch.stack(image_masks))
    return images, [torch.tensor(b) for b in GT_BOXES], [torch.tensor(c) for c in GT_LABELS], masks


# ------------------------------------------------------------------------------------------------ training step

def training_step(model, images, gt_boxes, gt_labels, gt_masks, g, rng, out):
    model.train(True)
    pyramid = model.pyramid(images, training=True)
    outs, sizes, level_anchors = model.rpn_outputs(pyramid)
    objectness = torch.cat([o[0] for o in outs], 1)
    deltas = torch.cat([o[1] for o in outs], 1)
    anchors = torch.cat(level_anchors)
    targets = [fpn_fixtures.targets_single(anchors, fpn_fixtures.valid_flags(sizes, fpn_fixtures.pad_shape(*size)),
                                           gt_boxes[i], g) for i, size in enumerate(IMAGE_SIZES)]
    loss_rpn_cls, loss_rpn_bbox, _ = fpn_fixtures.rpn_loss(objectness, deltas, targets)
    proposals = model.proposals(outs, level_anchors, TRAIN_PROPOSALS)

    # ROI targets: the box head on every sampled roi, the mask head on the positives.
    assignments, rois, labels, box_targets, _ = box_fixtures.targets_for_batch(rng, proposals, gt_boxes, gt_labels,
                                                                              num=512)
    levels_in = pyramid[:4]
    pooled, levels = extract(levels_in, rois, 7)
    class_logits, box_deltas = model.bbox_head(pooled)
    loss_cls, loss_bbox = roi_fixtures.roi_losses(class_logits, box_deltas, labels, box_targets)

    pos_rois, mask_targets, mask_labels = [], [], []
    for i, (_, matched, pos, _) in enumerate(assignments):
        candidates = torch.cat([gt_boxes[i], proposals[i]])
        boxes = candidates[pos]
        assigned = matched[pos]
        pos_rois.append(torch.cat([torch.full((len(pos), 1), float(i)), boxes], 1))
        _, binary = mask_fixtures.mask_targets(gt_masks[i], PADDED[0], PADDED[1], boxes, assigned.tolist(), 28)
        mask_targets.append(binary)
        mask_labels.append(gt_labels[i][assigned])
    mask_pooled, _ = extract(levels_in, torch.cat(pos_rois), 14)
    mask_logits = model.mask_head(mask_pooled)
    loss_mask = mask_fixtures.mask_cross_entropy(mask_logits, torch.cat(mask_targets), torch.cat(mask_labels))[0]

    (loss_rpn_cls + loss_rpn_bbox + loss_cls + loss_bbox + loss_mask).backward()

    for i, t in enumerate(targets):
        out[f"rpn.positive{i}"] = t[4].sort().values.float()
        out[f"rpn.negative{i}"] = t[5].sort().values.float()
        out[f"rpn.proposals{i}"] = proposals[i].clone()
        out[f"roi.positive{i}"] = assignments[i][2].float()
        out[f"roi.negative{i}"] = assignments[i][3].float()
    out["roi.levels"] = levels.float()
    for name, value in [("rpn_cls", loss_rpn_cls), ("rpn_bbox", loss_rpn_bbox), ("cls", loss_cls),
                        ("bbox", loss_bbox), ("mask", loss_mask)]:
        out[f"loss.{name}"] = value.detach().reshape(1).clone()
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad.detach().clone().contiguous()
    print(f"train: rpn pos {[len(t[4]) for t in targets]} neg {[len(t[5]) for t in targets]}, proposals "
          f"{[len(p) for p in proposals]}, rois {len(rois)} over levels {torch.bincount(levels, minlength=4).tolist()},"
          f" mask rois {len(mask_logits)}; losses {loss_rpn_cls.item():.5f} {loss_rpn_bbox.item():.5f} "
          f"{loss_cls.item():.5f} {loss_bbox.item():.5f} {loss_mask.item():.5f}")
    assert set(levels.tolist()) == {0, 1, 2, 3}, "the sampled rois must reach every level"


def as_float64(model):
    """A float64 copy of the model (same weights and buffers)."""
    copy = MaskRCNN.__new__(MaskRCNN)
    copy.backbone = deepcopy(model.backbone).double()
    copy.bbox_head = deepcopy(model.bbox_head).double()
    copy.mask_head = deepcopy(model.mask_head).double()
    copy.neck_params = {k: v.detach().double().requires_grad_(True) for k, v in model.neck_params.items()}
    copy.neck_buffers = {k: v.double() for k, v in model.neck_buffers.items()}
    copy.neck_tracked = {k: v.clone() for k, v in model.neck_tracked.items()}
    copy.rpn = {k: v.detach().double().requires_grad_(True) for k, v in model.rpn.items()}
    return copy


def compare_with_float64(out, out64):
    """The float32 step drew the same samples from the same proposals; its losses and gradients are replaced by the
    float64 step's (rounded to float32), and PyTorch's own float32 error is recorded: the box head's cross-entropy
    over 1024 rois, back through batch-statistics BNs, puts PyTorch's float32 gradients up to ~3e-3 (scaled) away
    from float64 on this model — more than the 1e-3 our Swift-vs-PyTorch budget would allow between two float32
    results — so the Swift test compares with float64 and is told how close float32 can get."""
    for k in out:
        if k.startswith(("rpn.positive", "rpn.negative", "roi.")):
            assert torch.equal(out[k], out64[k]), k
        if k.startswith("rpn.proposals"):
            assert (out[k] - out64[k]).abs().max() < 1e-3, k
    errors = {}
    for k in out:
        if k.startswith(("loss.", "grad.")):
            reference = out64[k].float()
            errors[k] = float((out[k] - reference).abs().max() / reference.abs().max())
            out[k] = reference
    worst = max((e, k) for k, e in errors.items() if k.startswith("grad."))
    loss_error = max(e for k, e in errors.items() if k.startswith("loss."))
    out["torch_float32.grad_error"] = torch.tensor([worst[0]])
    out["torch_float32.loss_error"] = torch.tensor([loss_error])
    print(f"PyTorch float32 vs float64: losses {loss_error:.2e} (relative), gradients up to {worst[0]:.2e} "
          f"({worst[1]})")


# ------------------------------------------------------------------------------------------------ test time

@torch.no_grad()
def detect(model, images, out):
    model.train(False)
    pyramid = model.pyramid(images, training=False)
    outs, _, level_anchors = model.rpn_outputs(pyramid)
    proposals = model.proposals(outs, level_anchors, TEST_PROPOSALS)
    for i, boxes in enumerate(proposals):
        rois = torch.cat([torch.full((len(boxes), 1), float(i)), boxes], 1)
        pooled, _ = extract(pyramid[:4], rois, 7)
        class_logits, box_deltas = model.bbox_head(pooled)
        det_boxes, scores, labels = roi_fixtures.get_bboxes(class_logits, box_deltas, boxes, IMAGE_SIZES[i], 0.05,
                                                            0.5, 10_000)
        # Neither the order of the kept detections nor the max_per_img cut may hinge on near-equal scores (float
        # rounding could swap them).
        gaps = scores[:TEST_DETECTIONS + 1][:-1] - scores[:TEST_DETECTIONS + 1][1:]
        assert len(gaps) == 0 or float(gaps.min()) > MIN_SCORE_GAP, f"image {i}: score gaps {gaps.tolist()}"
        det_boxes, scores, labels = det_boxes[:TEST_DETECTIONS], scores[:TEST_DETECTIONS], labels[:TEST_DETECTIONS]
        mask_rois = torch.cat([torch.full((len(det_boxes), 1), float(i)), det_boxes], 1)
        mask_logits = model.mask_head(extract(pyramid[:4], mask_rois, 14)[0])
        out[f"test.proposals{i}"] = boxes.clone()
        out[f"test.boxes{i}"], out[f"test.scores{i}"] = det_boxes.clone(), scores.clone()
        out[f"test.labels{i}"] = labels.float()
        out[f"test.mask_logits{i}"] = mask_logits.clone()
        print(f"test image {i}: {len(boxes)} proposals, {len(scores)} detections, labels {labels.tolist()}, "
              f"scores {[round(s, 4) for s in scores.tolist()]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Tests", "ModelsTests", "Fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(SEED)
    rng = np.random.RandomState(SEED)
    model = MaskRCNN(g)
    images, gt_boxes, gt_labels, gt_masks = make_inputs(g)

    out = {}
    initial = model.state_dict()
    roi_fixtures.snapshot(initial, "init", out)
    out["input.images"] = images.half()
    out["input.image_sizes"] = torch.tensor(IMAGE_SIZES, dtype=torch.float32)
    for i in range(len(IMAGE_SIZES)):
        out[f"input.gt_boxes{i}"] = gt_boxes[i].clone()
        out[f"input.gt_labels{i}"] = gt_labels[i].float()
        out[f"input.gt_masks{i}"] = gt_masks[i].half()

    # The step in float64 first, on a copy, with the same random draws: its losses and gradients are the reference.
    model64, draws = as_float64(model), (g.get_state(), rng.get_state())
    out64 = {}
    training_step(model64, images.double(), gt_boxes, gt_labels, gt_masks, g, rng, out64)
    g.set_state(draws[0])
    rng.set_state(draws[1])
    training_step(model, images, gt_boxes, gt_labels, gt_masks, g, rng, out)
    compare_with_float64(out, out64)
    after = model.state_dict()
    buffers = [k for k in after if "running" in k or "num_batches_tracked" in k]
    roi_fixtures.snapshot({k: after[k] for k in buffers}, "running", out)
    # Test time with the initial weights (no optimiser step was taken) and the updated running statistics.
    assert all(torch.equal(after[k], initial[k]) for k in after if k not in buffers)
    detect(model, images, out)

    path = os.path.join(args.out, "mask_rcnn_fpn_tiny.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path,
              metadata={"script": SCRIPT, "torch_version": torch.__version__})
    print(f"{os.path.relpath(path, root)}: {len(out)} tensors, {os.path.getsize(path) / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
