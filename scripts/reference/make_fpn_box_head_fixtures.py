#!/usr/bin/env python3
"""Golden fixtures for the Swift FPN ROI extractor and Shared4Conv1FC box head of Mask R-CNN, produced with PyTorch.

Run:  pip install torch==2.13.0+cpu safetensors numpy
      python3 scripts/reference/make_fpn_box_head_fixtures.py [--out Tests/ModelsTests/Fixtures]

Writes fpn_box_head_tiny.safetensors (F32; `num_batches_tracked` I64; metadata: torch version, this script). No
mmdet/mmcv install is needed: the pieces below are plain-torch re-implementations of mmdet 2.x (as MMSelfSup v0.8.0's
mask_rcnn_r50_fpn_mstrain_1x_coco.py configures it), following its code:

  assigner    core/bbox/assigners/max_iou_assigner.py `assign_wrt_overlaps` with train_cfg.rcnn's pos_iou_thr 0.5,
              neg_iou_thr 0.5, min_pos_iou 0.5, match_low_quality True (gt_max_assign_all True): after the
              thresholds, every GT i in order whose best IoU >= 0.5 claims all proposals attaining it (a later GT
              overwrites); then `add_gt_` prepends the GT boxes. Image 1 holds a proposal the rule re-matches.
  sampler     RandomSampler(512 -> here 32 per image, 0.25, add_gt_as_proposals) with numpy RandomState draws
              (make_roi_head_fixtures.sample); the indices are stored.
  targets     BBoxHead._get_target_single + DeltaXYWHBBoxCoder(stds .1 .1 .2 .2) (make_roi_head_fixtures).
  extractor   roi_extractors/single_level_roi_extractor.py `SingleRoIExtractor(RoIAlign(7, sampling_ratio=0,
              aligned=True), featmap_strides=[4, 8, 16, 32], finest_scale=56)`: map_roi_levels = floor(log2(
              sqrt(w * h) / 56 + 1e-6)) clamped to [0, 3]; each level's rois pooled by roi_align(1 / stride) into
              a zero tensor at their positions. roi_align is the torchvision/mmcv avg kernel in differentiable
              torch ops from make_detection_fixtures.py (mmcv 1.x's CPU kernel computes the same samples).
  bbox head   bbox_heads/convfc_bbox_head.py Shared4Conv1FCBBoxHead(norm_cfg=BN): 4 mmcv ConvModules (conv 3x3
              pad 1 without bias, `bn`, ReLU), x.flatten(1) of NCHW, shared_fcs.0 + ReLU, fc_cls (classes + 1),
              fc_reg (4 * classes). Module order as mmdet registers it: fc_cls, fc_reg (BBoxHead.__init__),
              shared_convs, shared_fcs.
  losses      BBoxHead.loss: CE mean over the sampled rois, L1 over the positives' class deltas / #sampled rois.
  test time   make_roi_head_fixtures.get_bboxes (softmax, delta2bbox with the two-sided clamp, multiclass_nms).

Sizes: 3 classes, pyramid channels 2, conv channels 8, fc 16; two images 480x512 and 400x448 padded to
[2, 2, 480/s, 512/s] at strides 4, 8, 16, 32; the sampled rois cover all four levels. Weights: torch's default conv
init, BatchNorms re-randomised (weight U(0.5, 1.5), bias N(0, 0.1), running stats N(0, 0.1) / U(0.5, 1.5)), fcs
N(0, 0.1^2) (instead of mmdet's tiny init, so gradients reach the features with a useful size).

Tensors:
  init.<key>             head state dict, keys relative to `roi_head.bbox_head.`.
  input.features{l}      [2, 2, h_l, w_l] pyramid level l = 0..3 (NCHW).
  input.proposals{i}     [p, 4]; input.gt_boxes{i} [g, 4]; input.gt_labels{i} [g] (F32).
  assign.labels{i}       [g + p] per candidate (GT first): 1 positive, 0 negative, -1 ignored.
  assign.matched{i}      [g + p] the matched GT index of positives (-1 elsewhere).
  sample.positive{i}, sample.negative{i}   sampled candidate indices (ascending).
  target.labels [k], target.deltas [k, 4], rois [k, 5], levels [k] (map_roi_levels).
  pooled                 [k, 2, 7, 7] the extractor's output.
  train.class_logits [k, 4], train.box_deltas [k, 12], loss.cls, loss.bbox [1].
  grad.<key>             d(loss.cls + loss.bbox)/d parameter; grad.features{l} likewise per level (NCHW).
  eval.class_logits, eval.box_deltas   the initial head in eval mode on the same rois.
  test.boxes [d, 4], test.scores [d], test.labels [d]: image 0's eval outputs through get_bboxes (image 480x512,
                         score_thr 0.05, NMS 0.5, max_per_img 100).
  mapping.rois [m, 5], mapping.levels [m]: map_roi_levels at the level boundaries (scales 111.99, 112, 224, 448 ...).
  nonorm.init.<key>, nonorm.input [6, 2, 7, 7], nonorm.d_logits, nonorm.d_deltas (given upstream gradients),
  nonorm.class_logits, nonorm.box_deltas, nonorm.grad.<key>, nonorm.grad.input: the head without norm_cfg (conv
                         biases, mmcv's bias='auto'), train mode.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_detection_fixtures import roi_align  # noqa: E402  (torchvision/mmcv avg kernel, differentiable)
from make_roi_head_fixtures import (bbox_overlaps, bbox2delta, get_bboxes, jittered_proposals,  # noqa: E402
                                    roi_losses, sample, snapshot)

SCRIPT = "scripts/reference/make_fpn_box_head_fixtures.py"
CLASSES = 3  # make_roi_head_fixtures.roi_losses uses the same count
STRIDES = (4, 8, 16, 32)
IN_CHANNELS, CONV_CHANNELS, FC_CHANNELS, ROI = 2, 8, 16, 7


# ------------------------------------------------------------------------------------------------ the extractor

def map_roi_levels(rois, num_levels, finest_scale=56):
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    target = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return target.clamp(min=0, max=num_levels - 1).long()


def extract(feats, rois, out_size=ROI):
    """SingleRoIExtractor.forward (num_levels > 1, no roi_scale_factor)."""
    roi_feats = feats[0].new_zeros(rois.size(0), feats[0].size(1), out_size, out_size)
    levels = map_roi_levels(rois, len(feats))
    for i, stride in enumerate(STRIDES):
        inds = levels == i
        if inds.any():
            roi_feats[inds] = roi_align(feats[i], rois[inds], out_size, out_size, 1.0 / stride, 0, True)
    return roi_feats


# ------------------------------------------------------------------------------------------------ the head

class ConvModule(nn.Module):
    """mmcv ConvModule(k=3, padding=1, norm_cfg): conv (bias only without norm) -> bn -> ReLU."""

    def __init__(self, cin, cout, norm):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(cout)
        self.norm = norm

    def forward(self, x):
        x = self.conv(x)
        if self.norm:
            x = self.bn(x)
        return F.relu(x)


class Shared4Conv1FCBBoxHead(nn.Module):
    def __init__(self, norm=True):
        super().__init__()
        # BBoxHead.__init__ registers fc_cls / fc_reg first; ConvFCBBoxHead re-assigns them after its branches.
        self.fc_cls = nn.Linear(IN_CHANNELS, CLASSES + 1)
        self.fc_reg = nn.Linear(IN_CHANNELS, 4 * CLASSES)
        self.shared_convs = nn.ModuleList(
            [ConvModule(IN_CHANNELS if i == 0 else CONV_CHANNELS, CONV_CHANNELS, norm) for i in range(4)])
        self.shared_fcs = nn.ModuleList([nn.Linear(CONV_CHANNELS * ROI * ROI, FC_CHANNELS)])
        self.fc_cls = nn.Linear(FC_CHANNELS, CLASSES + 1)
        self.fc_reg = nn.Linear(FC_CHANNELS, 4 * CLASSES)

    def forward(self, x):
        for conv in self.shared_convs:
            x = conv(x)
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)


def randomise(model):
    for m in model.modules():
        with torch.no_grad():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.1)
                m.bias.normal_(0.0, 0.1)


# ------------------------------------------------------------------------------------------------ targets

def assign_low_quality(proposals, gts, pos_thr=0.5, neg_thr=0.5, min_pos_iou=0.5):
    """assign_wrt_overlaps with match_low_quality=True, then add_gt_: gt_inds over GT + proposals (0 neg, -1 ign)."""
    overlaps = bbox_overlaps(gts, proposals)  # [g, p]
    max_overlaps, argmax = overlaps.max(dim=0)
    gt_max_overlaps, _ = overlaps.max(dim=1)
    assigned = torch.full((len(proposals),), -1, dtype=torch.long)
    assigned[(max_overlaps >= 0) & (max_overlaps < neg_thr)] = 0
    pos = max_overlaps >= pos_thr
    assigned[pos] = argmax[pos] + 1
    for i in range(len(gts)):
        if gt_max_overlaps[i] >= min_pos_iou:
            assigned[overlaps[i, :] == gt_max_overlaps[i]] = i + 1
    rematched = int(((assigned > 0) & (assigned - 1 != argmax)).sum())
    return torch.cat([torch.arange(1, len(gts) + 1), assigned]), rematched


def targets_for_batch(rng, proposals, gt_boxes, gt_labels, num):
    out, rois, labels, deltas, rematched = [], [], [], [], []
    for i, (props, gts, cls) in enumerate(zip(proposals, gt_boxes, gt_labels)):
        gt_inds, count = assign_low_quality(props, gts)
        rematched.append(count)
        pos, neg = sample(rng, gt_inds, num)
        candidates = torch.cat([gts, props])
        chosen = torch.cat([pos, neg])
        rois.append(torch.cat([torch.full((len(chosen), 1), float(i)), candidates[chosen]], 1))
        labels.append(torch.cat([cls[gt_inds[pos] - 1], torch.full((len(neg),), CLASSES, dtype=torch.long)]))
        d = torch.zeros(len(chosen), 4)
        d[:len(pos)] = bbox2delta(candidates[pos], gts[gt_inds[pos] - 1])
        deltas.append(d)
        labels_out = torch.where(gt_inds > 0, 1, torch.where(gt_inds == 0, 0, -1))
        out.append((labels_out, gt_inds - 1, pos, neg))
    return out, torch.cat(rois), torch.cat(labels), torch.cat(deltas), rematched


# ------------------------------------------------------------------------------------------------ fixture

def store_inputs(out, proposals, gt_boxes, gt_labels, assignments):
    for i, (props, gts, cls, (labels, matched, pos, neg)) in enumerate(zip(proposals, gt_boxes, gt_labels,
                                                                            assignments)):
        out[f"input.proposals{i}"] = props.clone()
        out[f"input.gt_boxes{i}"] = gts.clone()
        out[f"input.gt_labels{i}"] = cls.to(torch.float32)
        out[f"assign.labels{i}"] = labels.to(torch.float32)
        out[f"assign.matched{i}"] = torch.where(labels > 0, matched, -1).to(torch.float32)
        out[f"sample.positive{i}"] = pos.to(torch.float32)
        out[f"sample.negative{i}"] = neg.to(torch.float32)


def head_fixture(out):
    torch.manual_seed(17)
    head = Shared4Conv1FCBBoxHead()
    randomise(head)
    g = torch.Generator().manual_seed(171)
    height, width = 480, 512
    features = [torch.randn(2, IN_CHANNELS, height // s, width // s, generator=g) for s in STRIDES]
    sizes = [(480, 512), (400, 448)]
    # Image 0: one GT per level (scales 55, 150, 285, 475). Image 1: GTs A and B overlap so that proposal
    # [48, 40, 148, 140] (IoU 0.85 with A, 0.79 with B) is B's best proposal: match_low_quality re-matches it to B.
    gt_boxes = [torch.tensor([[20., 30., 70., 90.], [100., 60., 260., 200.], [150., 150., 450., 420.],
                              [10., 10., 500., 470.]]),
                torch.tensor([[40., 40., 140., 140.], [60., 40., 160., 140.], [200., 180., 380., 390.]])]
    gt_labels = [torch.tensor([0, 2, 1, 2]), torch.tensor([1, 0, 2])]
    proposals = [jittered_proposals(g, gt_boxes[0], *sizes[0], 6, 24),
                 torch.cat([torch.tensor([[48., 40., 148., 140.]]),
                            jittered_proposals(g, gt_boxes[1][[0, 2]], *sizes[1], 4, 20)])]
    # Keep B's claim on the planted proposal: drop the jittered proposals that overlap B as much.
    iou_b = bbox_overlaps(gt_boxes[1][1:2], proposals[1])[0]
    proposals[1] = proposals[1][torch.cat([torch.tensor([True]), iou_b[1:] < iou_b[0] - 0.01])]
    rng = np.random.RandomState(1717)
    assignments, rois, labels, deltas, rematched = targets_for_batch(rng, proposals, gt_boxes, gt_labels, num=32)
    assert rematched[1] >= 1, rematched
    levels = map_roi_levels(rois, 4)
    assert set(levels.tolist()) == {0, 1, 2, 3}, levels

    snapshot(head.state_dict(), "init", out)
    for level, f in enumerate(features):
        out[f"input.features{level}"] = f.clone()
    store_inputs(out, proposals, gt_boxes, gt_labels, assignments)
    out["target.labels"] = labels.to(torch.float32)
    out["target.deltas"] = deltas.clone()
    out["rois"] = rois.clone()
    out["levels"] = levels.to(torch.float32)

    eval_head = Shared4Conv1FCBBoxHead()
    eval_head.load_state_dict(head.state_dict())
    eval_head.eval()
    with torch.no_grad():
        pooled = extract(features, rois)
        logits, box = eval_head(pooled)
    out["pooled"] = pooled.clone()
    out["eval.class_logits"], out["eval.box_deltas"] = logits.clone(), box.clone()
    first = rois[:, 0] == 0
    boxes, scores, det_labels = get_bboxes(logits[first], box[first], rois[first, 1:], sizes[0], 0.05, 0.5, 100)
    out["test.boxes"], out["test.scores"], out["test.labels"] = boxes, scores, det_labels.to(torch.float32)

    head.train()
    xs = [f.clone().requires_grad_(True) for f in features]
    logits, box = head(extract(xs, rois))
    loss_cls, loss_bbox = roi_losses(logits, box, labels, deltas)
    (loss_cls + loss_bbox).backward()
    out["train.class_logits"], out["train.box_deltas"] = logits.detach().clone(), box.detach().clone()
    out["loss.cls"], out["loss.bbox"] = loss_cls.detach().reshape(1), loss_bbox.detach().reshape(1)
    for k, p in head.named_parameters():
        out[f"grad.{k}"] = p.grad.detach().clone().contiguous()
    for level, x in enumerate(xs):
        out[f"grad.features{level}"] = x.grad.detach().clone()
    print(f"head: {len(rois)} rois over levels {torch.bincount(levels).tolist()}, rematched {rematched}, "
          f"loss_cls {loss_cls.item():.6f} loss_bbox {loss_bbox.item():.6f}, {len(scores)} detections")


def mapping_fixture(out):
    """map_roi_levels at and around its boundaries (finest_scale 56: 112, 224, 448), plus degenerate boxes."""
    sides = [1.0, 55.0, 111.99, 112.0, 112.01, 150.0, 223.99, 224.0, 300.0, 447.9, 448.0, 448.1, 900.0, 2000.0]
    rows = [[0.0, 10.0, 20.0, 10.0 + s, 20.0 + s] for s in sides]
    rows += [[1.0, 5.0, 5.0, 5.0, 5.0],            # zero area: log2(1e-6) -> level 0
             [0.0, 0.0, 0.0, 896.0, 224.0],        # elongated: sqrt(896 * 224) = 448 -> level 3
             [1.0, 3.5, 7.25, 115.5, 119.25]]      # 112 x 112 off-grid
    rois = torch.tensor(rows)
    out["mapping.rois"] = rois
    out["mapping.levels"] = map_roi_levels(rois, 4).to(torch.float32)


def nonorm_fixture(out):
    torch.manual_seed(18)
    head = Shared4Conv1FCBBoxHead(norm=False)
    randomise(head)
    g = torch.Generator().manual_seed(181)
    x = torch.randn(6, IN_CHANNELS, ROI, ROI, generator=g).requires_grad_(True)
    d_logits = torch.randn(6, CLASSES + 1, generator=g)
    d_deltas = torch.randn(6, 4 * CLASSES, generator=g)
    snapshot(head.state_dict(), "nonorm.init", out)
    head.train()
    logits, box = head(x)
    ((logits * d_logits).sum() + (box * d_deltas).sum()).backward()
    out["nonorm.input"], out["nonorm.d_logits"], out["nonorm.d_deltas"] = x.detach().clone(), d_logits, d_deltas
    out["nonorm.class_logits"], out["nonorm.box_deltas"] = logits.detach().clone(), box.detach().clone()
    for k, p in head.named_parameters():
        out[f"nonorm.grad.{k}"] = p.grad.detach().clone().contiguous()
    out["nonorm.grad.input"] = x.grad.detach().clone()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Tests", "ModelsTests", "Fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {}
    head_fixture(out)
    mapping_fixture(out)
    nonorm_fixture(out)
    path = os.path.join(args.out, "fpn_box_head_tiny.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path,
              metadata={"script": SCRIPT, "torch_version": torch.__version__})
    print(f"{os.path.relpath(path, root)}: {len(out)} tensors, {os.path.getsize(path) / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
