#!/usr/bin/env python3
"""Golden values for the FPN neck and the multi-level RPN of Mask R-CNN R50-FPN (issue 17; PROTOCOLS §5.2, §5.5).

mmdet and mmcv are not installed here (their compiled ops would not load either), so the reference below is our own
torch re-implementation of the mmdet 2.x / mmcv 1.x code it follows (read, not copied), with MMSelfSup v0.8.0's
configs/benchmarks/mmdetection/coco/mask_rcnn_r50_fpn_mstrain_1x_coco.py on _base_/models/mask_rcnn_r50_fpn.py:

- neck: mmdet/models/necks/fpn.py `FPN.forward` (start_level 0, add_extra_convs False): lateral ConvModule 1×1 and
  fpn ConvModule 3×3 (mmcv/cnn/bricks/conv_module.py: conv with bias='auto' → no bias when a norm follows, then the
  norm, act_cfg None); top-down `laterals[i - 1] += F.interpolate(laterals[i], size=prev_shape, mode='nearest')`;
  extra level `F.max_pool2d(outs[-1], 1, stride=2)`. The norm is SyncBN (= BatchNorm with batch statistics on one
  process; eps 1e-5, momentum 0.1); one case has no norm (plain mmdet: conv with bias).
- head: dense_heads/rpn_head.py `RPNHead._init_layers`, `forward_single` (3×3 conv + ReLU, 1×1 cls with one sigmoid
  logit per anchor, 1×1 reg) shared by every level, outputs flattened with permute(0, 2, 3, 1)
- anchors: core/anchor/anchor_generator.py `AnchorGenerator` (base size = stride, centre offset 0, scale_major:
  ratio outer, scale inner), `single_level_grid_priors` (location-major), `valid_flags` / `single_level_valid_flags`
  on each image's pad_shape (its size rounded up to the Pad size_divisor 32), `anchor_inside_flags` (allowed_border
  −1: the valid flags)
- targets: dense_heads/anchor_head.py `get_anchors`, `get_targets` (all levels' anchors of an image concatenated;
  `num_total_pos = sum(max(pos.numel(), 1))`, same for negatives), `_get_targets_single`;
  core/bbox/assigners/max_iou_assigner.py `assign_wrt_overlaps` (pos 0.7, neg 0.3, min_pos_iou 0.3,
  gt_max_assign_all, match_low_quality; no ground truth → all negative); core/bbox/samplers/random_sampler.py (the
  torch.randperm draws are recorded as the sampled indices)
- losses: `AnchorHead.loss_single` / `loss` — losses/cross_entropy_loss.py `binary_cross_entropy` (use_sigmoid) and
  losses/smooth_l1_loss.py `l1_loss` (the config's `loss_bbox=dict(type='L1Loss')`), both through
  `weight_reduce_loss(..., avg_factor=num_total_pos + num_total_neg)`; `bbox2delta` (means 0, stds 1)
- proposals: rpn_head.py `_get_bboxes` (per level: sort descending, nms_pre; all levels: `delta2bbox` with
  wh_ratio_clip 16/1000 clamping dw, dh on both sides and max_shape clipping, min_bbox_size filter w > s and h > s,
  mmcv ops/nms.py `batched_nms` with the level ids — the per-id path that runs above split_thr, i.e. NMS within each
  level, then a descending sort by score — and `max_per_img`); mmcv ops/csrc/pytorch/cpu/nms.cpp `nms_cpu` (offset 0,
  `ovr > iou_threshold` in float). Equal scores (distinct logits can share a float32 sigmoid) are ordered by logit,
  then by position — mmdet's unstable sorts leave that order open; this is the one our Swift code takes.

  python3 scripts/reference/make_fpn_fixtures.py     # writes Tests/ModelsTests/Fixtures/detection/fpn.json

Cases (tiny widths: C2…C5 with 3, 4, 5, 6 channels, FPN width 4, rpn_conv width 5; anchor scale 4 so the anchors
are 16…256 px on 64×96 inputs; A = 3):
- `fpn_cases`: the neck alone on random inputs with a random weighting R_l of each output (loss Σ_l Σ R_l·P_l), so
  ∂L/∂P_l = R_l: outputs, the running statistics after the forward, every parameter's gradient and ∂L/∂C_i. One case
  with BN on a 64×96 batch (exact 2× steps), one without norm on odd sizes 13×19, 7×10, 4×5, 2×3 (non-2× nearest).
- `training`: 3 images (64×90, 30×60, 50×70) in a 64×96 batch; C2…C5 → FPN (BN) → RPN: P_l, objectness and deltas
  (objectness: all levels concatenated per image), labels and matches over the concatenated anchors, the sampled anchors, the
  avg factor (image 2 has no ground truth: all its valid anchors negative, and it counts one positive), both losses,
  the gradients of every RPN and FPN parameter, the RPN's ∂L/∂P_l (P5's without the part through P6) and ∂L/∂C_i, the rpn_proposal proposals (2000 / 1000).
- `proposal_cases`: given per-level logits and deltas on the training anchors: per-level top-k (25 and 1000),
  both delta clamps, clipping, min_bbox_size 4, NMS 0.7 / 0.5 within each level, max_per_img.

Activations are NHWC (our layout) in the file, conv weights OIHW (PyTorch's). Deterministic (generator seed SEED = 173,
one thread); floats are the shortest decimal that round-trips their float32 value.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

IN_CHANNELS, OUT_CHANNELS, NUM_OUTS = [3, 4, 5, 6], 4, 5
STRIDES, SCALES, RATIOS = [4, 8, 16, 32, 64], [4.0], [0.5, 1.0, 2.0]
FEAT_CHANNELS, SIZE_DIVISOR = 5, 32
PADDED = (64, 96)
IMAGE_SIZES = [(64, 90), (30, 60), (50, 70)]
GT_BOXES = [
    [[12.0, 12.0, 44.0, 44.0], [60.0, 20.0, 88.0, 58.0], [30.0, 40.0, 33.0, 42.0], [5.0, 30.0, 40.0, 62.0],
     [2.0, 2.0, 80.0, 60.0]],
    [[4.0, 3.0, 26.0, 22.0], [30.0, 5.0, 58.0, 28.0]],
    [],
]
POS_IOU, NEG_IOU, MIN_POS_IOU = 0.7, 0.3, 0.3
SAMPLER_NUM, POS_FRACTION = 48, 0.5
SEED = 173
TRAIN_PROPOSALS = dict(nms_pre=2000, max_per_img=1000, iou_threshold=0.7, min_bbox_size=0)


def flat(t):
    return [float(str(np.float32(v))) for v in torch.as_tensor(t).detach().reshape(-1).tolist()]


def nhwc(t):
    return flat(t.detach().permute(0, 2, 3, 1))


def short_randn(shape, g, scale=1.0):
    """N(0, scale²) rounded to 2 decimals: inputs whose exact value does not matter, written in a few characters."""
    return torch.round(torch.randn(shape, generator=g) * scale * 100) / 100


# ------------------------------------------------------------------------------------------------ FPN
def fpn_parameters(g, norm):
    """Conv weights N(0, 0.4²) (wider than Xavier so nothing is tiny), BN γ U(0.5, 1.5), β N(0, 0.1), running stats
    random; without norm the convs carry a bias (ConvModule bias='auto')."""
    params, buffers = {}, {}
    for kind, k in [("lateral_convs", 1), ("fpn_convs", 3)]:
        for i, c in enumerate(IN_CHANNELS):
            name = f"{kind}.{i}"
            cin = c if kind == "lateral_convs" else OUT_CHANNELS
            params[f"{name}.conv.weight"] = torch.randn(OUT_CHANNELS, cin, k, k, generator=g) * 0.4
            if norm:
                params[f"{name}.bn.weight"] = torch.rand(OUT_CHANNELS, generator=g) + 0.5
                params[f"{name}.bn.bias"] = torch.randn(OUT_CHANNELS, generator=g) * 0.1
                buffers[f"{name}.bn.running_mean"] = torch.randn(OUT_CHANNELS, generator=g) * 0.1
                buffers[f"{name}.bn.running_var"] = torch.rand(OUT_CHANNELS, generator=g) + 0.5
            else:
                params[f"{name}.conv.bias"] = torch.randn(OUT_CHANNELS, generator=g) * 0.1
    for p in params.values():
        p.requires_grad_(True)
    return params, buffers


def conv_module(x, params, buffers, name, padding):
    """mmcv ConvModule(act_cfg=None): conv, then BN in training mode (batch statistics, running stats updated)."""
    y = F.conv2d(x, params[f"{name}.conv.weight"], params.get(f"{name}.conv.bias"), padding=padding)
    if f"{name}.bn.weight" in params:
        y = F.batch_norm(y, buffers[f"{name}.bn.running_mean"], buffers[f"{name}.bn.running_var"],
                         params[f"{name}.bn.weight"], params[f"{name}.bn.bias"], training=True, momentum=0.1,
                         eps=1e-5)
    return y


def fpn_forward(inputs, params, buffers):
    laterals = [conv_module(x, params, buffers, f"lateral_convs.{i}", 0) for i, x in enumerate(inputs)]
    for i in range(len(laterals) - 1, 0, -1):
        prev_shape = laterals[i - 1].shape[2:]
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=prev_shape, mode="nearest")
    outs = [conv_module(lat, params, buffers, f"fpn_convs.{i}", 1) for i, lat in enumerate(laterals)]
    while len(outs) < NUM_OUTS:
        outs.append(F.max_pool2d(outs[-1], 1, stride=2))
    return outs


def fpn_case(g, norm, sizes, batch):
    params, buffers = fpn_parameters(g, norm)
    initial = {k: flat(v) for k, v in buffers.items()}
    inputs = [short_randn((batch, c, h, w), g).requires_grad_(True) for c, (h, w) in zip(IN_CHANNELS, sizes)]
    outs = fpn_forward(inputs, params, buffers)
    weights = [short_randn(o.shape, g) for o in outs]
    sum((o * r).sum() for o, r in zip(outs, weights)).backward()
    return {
        "norm": norm,
        "input_shapes": [list(x.permute(0, 2, 3, 1).shape) for x in inputs],
        "inputs": [nhwc(x) for x in inputs],
        "parameters": {k: {"shape": list(v.shape), "value": flat(v)} for k, v in params.items()},
        "buffers": initial,
        "output_shapes": [list(o.permute(0, 2, 3, 1).shape) for o in outs],
        "outputs": [nhwc(o) for o in outs],
        "output_weights": [nhwc(r) for r in weights],
        "running_after": {k: flat(v) for k, v in buffers.items()},
        "gradients": {k: flat(v.grad) for k, v in params.items()},
        "input_gradients": [nhwc(x.grad) for x in inputs],
    }


# ------------------------------------------------------------------------------------------------ anchors
def base_anchors(stride):
    """AnchorGenerator.gen_single_level_base_anchors with base size = stride, centre offset 0, scale_major=True."""
    base = stride
    scales = torch.tensor(SCALES)
    h_ratios = torch.sqrt(torch.tensor(RATIOS))
    w_ratios = 1 / h_ratios
    ws = (base * w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (base * h_ratios[:, None] * scales[None, :]).view(-1)
    return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], -1)


def grid_anchors(stride, feat_h, feat_w):
    """single_level_grid_priors: shifts (x, y, x, y) in meshgrid order (row y outer), anchors inner."""
    shift_x = torch.arange(0, feat_w) * stride
    shift_y = torch.arange(0, feat_h) * stride
    xx = shift_x.repeat(len(shift_y))
    yy = shift_y.view(-1, 1).repeat(1, len(shift_x)).view(-1)
    shifts = torch.stack([xx, yy, xx, yy], -1).float()
    return (base_anchors(stride)[None, :, :] + shifts[:, None, :]).view(-1, 4)


def valid_flags(featmap_sizes, pad_shape):
    """AnchorGenerator.valid_flags: locations inside ⌈pad / stride⌉ (capped at the map), expanded to every anchor."""
    flags = []
    a = len(SCALES) * len(RATIOS)
    for stride, (feat_h, feat_w) in zip(STRIDES, featmap_sizes):
        valid_h = min(int(np.ceil(pad_shape[0] / stride)), feat_h)
        valid_w = min(int(np.ceil(pad_shape[1] / stride)), feat_w)
        valid_x = torch.zeros(feat_w, dtype=torch.bool)
        valid_y = torch.zeros(feat_h, dtype=torch.bool)
        valid_x[:valid_w] = True
        valid_y[:valid_h] = True
        xx = valid_x.repeat(len(valid_y))
        yy = valid_y.view(-1, 1).repeat(1, len(valid_x)).view(-1)
        flags.append((xx & yy)[:, None].expand(-1, a).reshape(-1))
    return torch.cat(flags)


def pad_shape(h, w):
    return (int(np.ceil(h / SIZE_DIVISOR)) * SIZE_DIVISOR, int(np.ceil(w / SIZE_DIVISOR)) * SIZE_DIVISOR)


# ------------------------------------------------------------------------------------------------ targets
def bbox_overlaps(bboxes1, bboxes2, eps=1e-6):
    area1 = (bboxes1[:, 2] - bboxes1[:, 0]) * (bboxes1[:, 3] - bboxes1[:, 1])
    area2 = (bboxes2[:, 2] - bboxes2[:, 0]) * (bboxes2[:, 3] - bboxes2[:, 1])
    lt = torch.max(bboxes1[:, None, :2], bboxes2[None, :, :2])
    rb = torch.min(bboxes1[:, None, 2:], bboxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = torch.max(area1[:, None] + area2[None, :] - overlap, torch.tensor([eps]))
    return overlap / union


def assign(gt, anchors):
    """MaxIoUAssigner.assign / assign_wrt_overlaps: gt_inds −1 ignore, 0 negative, i + 1 positive for gt i."""
    num_bboxes = anchors.shape[0]
    if gt.shape[0] == 0:
        return torch.zeros(num_bboxes, dtype=torch.long)
    overlaps = bbox_overlaps(gt, anchors)
    assigned = torch.full((num_bboxes,), -1, dtype=torch.long)
    max_overlaps, argmax_overlaps = overlaps.max(dim=0)
    gt_max_overlaps, _ = overlaps.max(dim=1)
    assigned[(max_overlaps >= 0) & (max_overlaps < NEG_IOU)] = 0
    pos = max_overlaps >= POS_IOU
    assigned[pos] = argmax_overlaps[pos] + 1
    for i in range(gt.shape[0]):
        if gt_max_overlaps[i] >= MIN_POS_IOU:
            assigned[overlaps[i, :] == gt_max_overlaps[i]] = i + 1  # gt_max_assign_all
    return assigned


def random_choice(gallery, num, g):
    perm = torch.randperm(gallery.numel(), generator=g)[:num]
    return gallery[perm]


def sample(assigned, g):
    """RandomSampler(num, pos_fraction, neg_pos_ub=-1, add_gt_as_proposals=False) on the inside anchors."""
    pos = torch.nonzero(assigned > 0, as_tuple=False).squeeze(1)
    expected_pos = int(SAMPLER_NUM * POS_FRACTION)
    if pos.numel() > expected_pos:
        pos = random_choice(pos, expected_pos, g)
    pos = pos.unique()
    neg = torch.nonzero(assigned == 0, as_tuple=False).squeeze(1)
    expected_neg = SAMPLER_NUM - pos.numel()
    if neg.numel() > expected_neg:
        neg = random_choice(neg, expected_neg, g)
    return pos, neg.unique()


def bbox2delta(proposals, gt):
    px = (proposals[:, 0] + proposals[:, 2]) * 0.5
    py = (proposals[:, 1] + proposals[:, 3]) * 0.5
    pw = proposals[:, 2] - proposals[:, 0]
    ph = proposals[:, 3] - proposals[:, 1]
    gx = (gt[:, 0] + gt[:, 2]) * 0.5
    gy = (gt[:, 1] + gt[:, 3]) * 0.5
    gw = gt[:, 2] - gt[:, 0]
    gh = gt[:, 3] - gt[:, 1]
    return torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], -1)


def targets_single(anchors, flags, gt, g):
    """_get_targets_single (allowed_border −1: inside = valid), unmapped to every anchor; also the assignment over
    every anchor for the test."""
    k = anchors.shape[0]
    inside_idx = torch.nonzero(flags, as_tuple=False).squeeze(1)
    inner = anchors[flags]
    assigned = assign(gt, inner)
    pos, neg = sample(assigned, g)
    labels = torch.full((k,), 1, dtype=torch.long)  # background = num_classes = 1
    label_weights = torch.zeros(k)
    bbox_targets = torch.zeros(k, 4)
    bbox_weights = torch.zeros(k, 4)
    if pos.numel() > 0:
        bbox_targets[inside_idx[pos]] = bbox2delta(inner[pos], gt[assigned[pos] - 1])
        bbox_weights[inside_idx[pos]] = 1.0
        labels[inside_idx[pos]] = 0  # foreground is class 0 since mmdet v2.5
        label_weights[inside_idx[pos]] = 1.0  # pos_weight -1
    label_weights[inside_idx[neg]] = 1.0
    full_labels = torch.full((k,), -1, dtype=torch.long)
    full_matches = torch.full((k,), -1, dtype=torch.long)
    full_labels[inside_idx] = torch.where(assigned > 0, 1, torch.where(assigned == 0, 0, -1))
    full_matches[inside_idx] = torch.where(assigned > 0, assigned - 1, -1)
    return (labels, label_weights, bbox_targets, bbox_weights, inside_idx[pos], inside_idx[neg], full_labels,
            full_matches)


# ------------------------------------------------------------------------------------------------ head + loss
def head_forward(x, params):
    h = F.relu(F.conv2d(x, params["rpn_conv.weight"], params["rpn_conv.bias"], padding=1))
    cls = F.conv2d(h, params["rpn_cls.weight"], params["rpn_cls.bias"])
    reg = F.conv2d(h, params["rpn_reg.weight"], params["rpn_reg.bias"])
    n = x.shape[0]
    return cls.permute(0, 2, 3, 1).reshape(n, -1), reg.permute(0, 2, 3, 1).reshape(n, -1, 4)


def weight_reduce_loss(loss, weight, avg_factor):
    eps = torch.finfo(torch.float32).eps
    return (loss * weight).sum() / (avg_factor + eps)


def rpn_loss(objectness, deltas, targets):
    """AnchorHead.loss: per level loss_single with the same avg_factor; the sum over levels is computed here on the
    concatenation (the same terms)."""
    labels = torch.stack([t[0] for t in targets])
    label_weights = torch.stack([t[1] for t in targets])
    bbox_targets = torch.stack([t[2] for t in targets])
    bbox_weights = torch.stack([t[3] for t in targets])
    num_total_pos = sum(max(t[4].numel(), 1) for t in targets)
    num_total_neg = sum(max(t[5].numel(), 1) for t in targets)
    avg_factor = num_total_pos + num_total_neg
    pred = objectness.reshape(-1, 1)
    onehot = (labels.reshape(-1) == 0).float().view(-1, 1)
    loss_cls = weight_reduce_loss(F.binary_cross_entropy_with_logits(pred, onehot, reduction="none"),
                                  label_weights.reshape(-1, 1), avg_factor)
    loss_bbox = weight_reduce_loss(torch.abs(deltas.reshape(-1, 4) - bbox_targets.reshape(-1, 4)),
                                   bbox_weights.reshape(-1, 4), avg_factor)
    return loss_cls, loss_bbox, avg_factor


# ------------------------------------------------------------------------------------------------ proposals
def delta2bbox(rois, deltas, max_shape, wh_ratio_clip=16 / 1000):
    dxy, dwh = deltas[:, :2], deltas[:, 2:]
    pxy = (rois[:, :2] + rois[:, 2:]) * 0.5
    pwh = rois[:, 2:] - rois[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = np.abs(np.log(wh_ratio_clip))
    dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], -1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=max_shape[1])
    boxes[:, 1::2] = boxes[:, 1::2].clamp(min=0, max=max_shape[0])
    return boxes


def nms_cpu(boxes, scores, iou_threshold):
    """mmcv nms_cpu with offset 0: descending sort, a later box is dropped when ovr > threshold (float). mmcv's sort
    is unstable; equal scores are taken in input order here (the order our Swift code uses, one of mmcv's)."""
    order = scores.sort(descending=True, stable=True)[1]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    select = torch.ones(boxes.shape[0], dtype=torch.bool)
    threshold = torch.tensor(iou_threshold, dtype=torch.float32)
    for a in range(order.numel()):
        if not select[a]:
            continue
        i = order[a]
        rest = order[a + 1:]
        w = (torch.min(x2[i], x2[rest]) - torch.max(x1[i], x1[rest])).clamp(min=0)
        h = (torch.min(y2[i], y2[rest]) - torch.max(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        ovr = inter / (areas[i] + areas[rest] - inter)
        select[a + 1:] &= ~(ovr > threshold)
    return order[select]


def batched_nms(boxes, scores, ids, iou_threshold):
    """mmcv batched_nms, per-id path: NMS within each id, the kept boxes sorted by descending score."""
    total = torch.zeros(scores.numel(), dtype=torch.bool)
    for i in torch.unique(ids):
        mask = (ids == i).nonzero(as_tuple=False).view(-1)
        total[mask[nms_cpu(boxes[mask], scores[mask], iou_threshold)]] = True
    keep = total.nonzero(as_tuple=False).view(-1)
    return keep[scores[keep].sort(descending=True, stable=True)[1]]


def get_bboxes_single(level_logits, level_deltas, level_anchors, img_shape, cfg):
    """_get_bboxes for one image: returns (boxes [k, 4], scores [k])."""
    scores_l, deltas_l, anchors_l, ids_l = [], [], [], []
    for level, (logits, deltas, anchors) in enumerate(zip(level_logits, level_deltas, level_anchors)):
        # mmdet sorts sigmoid(logits) (unstable); distinct logits can share a float32 sigmoid. Sorting the logits
        # (stable) gives one valid descending order of the scores — the one our Swift code takes.
        rank_inds = logits.sort(descending=True, stable=True)[1]
        top = rank_inds[:cfg["nms_pre"]]
        scores_l.append(logits[top].sigmoid())
        deltas_l.append(deltas[top])
        anchors_l.append(anchors[top])
        ids_l.append(torch.full((top.numel(),), level, dtype=torch.long))
    scores, ids = torch.cat(scores_l), torch.cat(ids_l)
    # Equal float32 sigmoids of distinct logits leave mmdet's order open, and which logits collide depends on the
    # last ulp of exp (torch's vectorised exp vs libm); the fixture avoids them (the seed is chosen so).
    assert scores.unique().numel() == scores.numel(), "tied scores: choose another seed"
    proposals = delta2bbox(torch.cat(anchors_l), torch.cat(deltas_l), img_shape)
    if cfg["min_bbox_size"] >= 0:
        w = proposals[:, 2] - proposals[:, 0]
        h = proposals[:, 3] - proposals[:, 1]
        valid = torch.nonzero((w > cfg["min_bbox_size"]) & (h > cfg["min_bbox_size"]), as_tuple=False).squeeze(1)
        proposals, scores, ids = proposals[valid], scores[valid], ids[valid]
    keep = batched_nms(proposals, scores, ids, cfg["iou_threshold"])[:cfg["max_per_img"]]
    return proposals[keep], scores[keep]


# ------------------------------------------------------------------------------------------------ cases
def feature_sizes(h, w):
    """ResNet C2…C5 sizes of a 32-divisible padded batch (strides 4…32) and the FPN's P6."""
    return [(h // s, w // s) for s in STRIDES[:4]]


def training_case(g):
    n = len(IMAGE_SIZES)
    a = len(SCALES) * len(RATIOS)
    fpn_params, fpn_buffers = fpn_parameters(g, norm=True)
    rpn_params = {
        "rpn_conv.weight": torch.randn(FEAT_CHANNELS, OUT_CHANNELS, 3, 3, generator=g) * 0.1,
        "rpn_conv.bias": torch.randn(FEAT_CHANNELS, generator=g) * 0.1 + 0.8,  # no all-zero ReLU row (tied logits)
        "rpn_cls.weight": torch.randn(a, FEAT_CHANNELS, 1, 1, generator=g) * 0.5,
        "rpn_cls.bias": torch.randn(a, generator=g) * 0.1,
        "rpn_reg.weight": torch.randn(4 * a, FEAT_CHANNELS, 1, 1, generator=g) * 0.3,
        "rpn_reg.bias": torch.randn(4 * a, generator=g) * 0.1,
    }
    for p in rpn_params.values():
        p.requires_grad_(True)
    initial_buffers = {k: flat(v) for k, v in fpn_buffers.items()}
    inputs = [short_randn((n, c, h, w), g).requires_grad_(True) for c, (h, w) in zip(IN_CHANNELS, feature_sizes(*PADDED))]
    pyramid = fpn_forward(inputs, fpn_params, fpn_buffers)
    # The RPN on detached copies, so ∂L/∂P_l is the RPN's own gradient of each level (P5's excludes what reaches it
    # through P6's max-pool); the neck's backward then takes all five.
    levels = [p.detach().requires_grad_(True) for p in pyramid]
    outs = [head_forward(p, rpn_params) for p in levels]
    objectness = torch.cat([o[0] for o in outs], 1)
    deltas = torch.cat([o[1] for o in outs], 1)
    sizes = [tuple(p.shape[2:]) for p in pyramid]
    level_anchors = [grid_anchors(s, h, w) for s, (h, w) in zip(STRIDES, sizes)]
    anchors = torch.cat(level_anchors)
    gts = [torch.tensor(b).reshape(-1, 4) for b in GT_BOXES]
    targets = [targets_single(anchors, valid_flags(sizes, pad_shape(*IMAGE_SIZES[i])), gts[i], g) for i in range(n)]
    loss_cls, loss_bbox, avg_factor = rpn_loss(objectness, deltas, targets)
    (loss_cls + loss_bbox).backward()
    torch.autograd.backward(pyramid, grad_tensors=[p.grad for p in levels])
    proposals = []
    for i in range(n):
        level_logits = [o[0][i].detach() for o in outs]
        level_deltas = [o[1][i].detach() for o in outs]
        proposals.append(get_bboxes_single(level_logits, level_deltas, level_anchors, IMAGE_SIZES[i],
                                           TRAIN_PROPOSALS))
    for t in targets[:2]:
        assert (t[6] == 1).sum() > 0 and (t[6] == -1).sum() > 0
    assert (targets[1][6] == -1).sum() > (targets[0][6] == -1).sum()  # image 1's invalid anchors are ignored
    assert targets[2][4].numel() == 0  # no ground truth: counts as one positive in avg_factor
    return {
        "input_shapes": [list(x.permute(0, 2, 3, 1).shape) for x in inputs],
        "inputs": [nhwc(x) for x in inputs],
        "fpn_parameters": {k: {"shape": list(v.shape), "value": flat(v)} for k, v in fpn_params.items()},
        "fpn_buffers": initial_buffers,
        "rpn_parameters": {k: {"shape": list(v.shape), "value": flat(v)} for k, v in rpn_params.items()},
        "feature_shapes": [list(p.permute(0, 2, 3, 1).shape) for p in pyramid],
        "features": [nhwc(p) for p in pyramid],
        "anchors": flat(anchors),
        "objectness": flat(objectness),
        "labels": [t[6].tolist() for t in targets], "matches": [t[7].tolist() for t in targets],
        "sampled_positive": [sorted(t[4].tolist()) for t in targets],
        "sampled_negative": [sorted(t[5].tolist()) for t in targets],
        "avg_factor": avg_factor,
        "loss_cls": float(np.float32(loss_cls.item())), "loss_bbox": float(np.float32(loss_bbox.item())),
        "rpn_gradients": {k: flat(v.grad) for k, v in rpn_params.items()},
        "fpn_gradients": {k: flat(v.grad) for k, v in fpn_params.items()},
        "feature_gradients": [nhwc(p.grad) for p in levels],
        "input_gradients": [nhwc(x.grad) for x in inputs],
        "proposals": [flat(b) for b, _ in proposals], "proposal_scores": [flat(s) for _, s in proposals],
    }


def proposal_cases(g):
    """Given per-level logits and deltas on the training anchors."""
    sizes = [(PADDED[0] // s, PADDED[1] // s) for s in STRIDES[:4]]
    sizes.append(((sizes[-1][0] - 1) // 2 + 1, (sizes[-1][1] - 1) // 2 + 1))
    level_anchors = [grid_anchors(s, h, w) for s, (h, w) in zip(STRIDES, sizes)]
    cases = []
    for img_shape, cfg in [((30, 60), dict(nms_pre=25, max_per_img=40, iou_threshold=0.7, min_bbox_size=0)),
                           ((64, 90), dict(nms_pre=1000, max_per_img=1000, iou_threshold=0.5, min_bbox_size=4.0))]:
        logits = [torch.randn(a.shape[0], generator=g) * 3 for a in level_anchors]
        deltas = [short_randn((a.shape[0], 4), g, 0.5) for a in level_anchors]
        best = logits[0].argsort(descending=True)[:10]
        deltas[0][best[0], 2] = -6.0  # below −log(1000/16): mmdet clamps from below too
        deltas[0][best[1], 3] = 7.0   # above the clamp
        deltas[0][best[2], 2] = -4.0  # inside: a thin box
        boxes, scores = get_bboxes_single(logits, deltas, level_anchors, img_shape, cfg)
        cases.append({"height": img_shape[0], "width": img_shape[1], "pre_nms_top_k": cfg["nms_pre"],
                      "post_nms_top_k": cfg["max_per_img"], "nms_threshold": cfg["iou_threshold"],
                      "min_box_size": cfg["min_bbox_size"], "feature_sizes": [list(s) for s in sizes],
                      "objectness": [flat(x) for x in logits], "deltas": [flat(x) for x in deltas],
                      "boxes": flat(boxes), "scores": flat(scores)})
    return cases


def main():
    g = torch.Generator().manual_seed(SEED)
    path = os.path.join(ROOT, "Tests/ModelsTests/Fixtures/detection/fpn.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = {
        "torch_version": torch.__version__, "script": "scripts/reference/make_fpn_fixtures.py",
        "config": {"in_channels": IN_CHANNELS, "out_channels": OUT_CHANNELS, "num_outs": NUM_OUTS,
                   "strides": STRIDES, "anchor_scales": SCALES, "aspect_ratios": RATIOS,
                   "feature_channels": FEAT_CHANNELS, "size_divisor": SIZE_DIVISOR,
                   "batch_size_per_image": SAMPLER_NUM, "positive_fraction": POS_FRACTION},
        "image_sizes": [list(s) for s in IMAGE_SIZES], "gt_boxes": [sum(b, []) for b in GT_BOXES],
        "fpn_cases": [fpn_case(g, True, feature_sizes(*PADDED), 2),
                      fpn_case(g, False, [(13, 19), (7, 10), (4, 5), (2, 3)], 2)],
        "training": training_case(g), "proposal_cases": proposal_cases(g),
    }
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path) // 1024} KB)")


if __name__ == "__main__":
    main()
