#!/usr/bin/env python3
"""Golden values for the region proposal network of Faster R-CNN C4 (issue 16 item 2; PROTOCOLS §5.1, §5.5).

mmdet and mmcv are not installed here (their compiled ops would not load either), so the reference below is our own
torch re-implementation of the mmdet 2.x code it follows (read, not copied), with the seed's config
(MMSelfSup configs/benchmarks/mmdetection/_base_/models/faster_rcnn_r50_c4.py):

- head: mmdet/models/dense_heads/rpn_head.py `RPNHead._init_layers`, `forward_single` (3×3 conv + ReLU, 1×1 cls with
  one sigmoid logit per anchor, 1×1 reg), outputs flattened with permute(0, 2, 3, 1)
- anchors: core/anchor/anchor_generator.py `AnchorGenerator` (base size = stride, centre offset 0, scale_major:
  ratio outer, scale inner), `single_level_grid_priors` (location-major), `anchor_inside_flags` (allowed_border 0)
- targets: dense_heads/anchor_head.py `_get_targets_single` / `get_targets`; core/bbox/assigners/max_iou_assigner.py
  `assign_wrt_overlaps` (pos 0.7, neg 0.3, min_pos_iou 0.3, gt_max_assign_all, match_low_quality);
  core/bbox/iou_calculators `bbox_overlaps`; core/bbox/samplers/random_sampler.py (num, pos_fraction; the
  torch.randperm draws are recorded as the sampled indices)
- losses: `AnchorHead.loss_single` / `loss` — losses/cross_entropy_loss.py `binary_cross_entropy` (use_sigmoid) and
  losses/smooth_l1_loss.py `l1_loss`, both through `weight_reduce_loss(..., avg_factor=num_pos + num_neg)`;
  core/bbox/coder/delta_xywh_bbox_coder.py `bbox2delta` (means 0, stds 1)
- proposals: rpn_head.py `_get_bboxes` (sort descending, nms_pre, `delta2bbox` with wh_ratio_clip 16/1000 clamping
  dw, dh on both sides and max_shape clipping, min_bbox_size filter w > s and h > s, batched_nms, max_per_img) and
  mmcv ops/csrc/pytorch/cpu/nms.cpp `nms_cpu` (offset 0, `ovr > iou_threshold` in float)

  python3 scripts/reference/make_rpn_fixtures.py     # writes Tests/ModelsTests/Fixtures/detection/rpn.json

The case is small: 2 images (64×90 and 50×70) padded to 64×96, stride 8, anchor sizes 16/32/64 × ratios 0.5/1/2
(A = 9, K = 8·12·9 = 864 anchors per image), 4 input channels, rpn_conv width 6, sampler 32 at 0.5. Ground truth:
image 0 has a box whose best anchors tie four ways (IoU 0.62: low-quality matches), a box crossing the right border,
a 3×2 box (best IoU < min_pos_iou: no positive) and a large box; image 1 has two boxes. The head's weights are drawn
wider than the N(0, 0.01) init so the outputs are not trivially small. Feature tensors are NHWC (our layout) in the
file, conv weights OIHW (PyTorch's). Deterministic (generator seed 161, one thread); floats are the shortest decimal
that round-trips their float32 value.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

STRIDE, SIZES, RATIOS = 8, [16.0, 32.0, 64.0], [0.5, 1.0, 2.0]
IN_CHANNELS, FEAT_CHANNELS = 4, 6
PADDED = (64, 96)
IMAGE_SIZES = [(64, 90), (50, 70)]
GT_BOXES = [
    [[12.0, 12.0, 44.0, 44.0], [60.0, 20.0, 100.0, 58.0], [30.0, 40.0, 33.0, 42.0], [5.0, 30.0, 40.0, 62.0]],
    [[10.0, 8.0, 42.0, 30.0], [40.0, 20.0, 68.0, 48.0]],
]
POS_IOU, NEG_IOU, MIN_POS_IOU, ALLOWED_BORDER = 0.7, 0.3, 0.3, 0
SAMPLER_NUM, POS_FRACTION = 32, 0.5
TRAIN_PROPOSALS = dict(nms_pre=12000, max_per_img=2000, iou_threshold=0.7, min_bbox_size=0)


def flat(t):
    return [float(str(np.float32(v))) for v in torch.as_tensor(t).detach().reshape(-1).tolist()]


# ------------------------------------------------------------------------------------------------ anchors
def base_anchors():
    """AnchorGenerator.gen_single_level_base_anchors with base size = stride, centre offset 0, scale_major=True."""
    base = float(STRIDE)
    scales = torch.tensor(SIZES) / base
    h_ratios = torch.sqrt(torch.tensor(RATIOS))
    w_ratios = 1 / h_ratios
    ws = (base * w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (base * h_ratios[:, None] * scales[None, :]).view(-1)
    return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], -1)


def grid_anchors(feat_h, feat_w):
    """single_level_grid_priors: shifts (x, y, x, y) in meshgrid order (row y outer), anchors inner."""
    shift_x = torch.arange(0, feat_w) * STRIDE
    shift_y = torch.arange(0, feat_h) * STRIDE
    xx = shift_x.repeat(len(shift_y))
    yy = shift_y.view(-1, 1).repeat(1, len(shift_x)).view(-1)
    shifts = torch.stack([xx, yy, xx, yy], -1).float()
    return (base_anchors()[None, :, :] + shifts[:, None, :]).view(-1, 4)


def anchor_inside_flags(anchors, img_h, img_w, allowed_border):
    return ((anchors[:, 0] >= -allowed_border) & (anchors[:, 1] >= -allowed_border)
            & (anchors[:, 2] < img_w + allowed_border) & (anchors[:, 3] < img_h + allowed_border))


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


def assign_wrt_overlaps(overlaps):
    """MaxIoUAssigner: gt_inds −1 ignore, 0 negative, i + 1 positive for gt i."""
    num_gts, num_bboxes = overlaps.shape
    assigned = torch.full((num_bboxes,), -1, dtype=torch.long)
    if num_gts == 0 or num_bboxes == 0:
        if num_gts == 0:
            assigned[:] = 0
        return assigned
    max_overlaps, argmax_overlaps = overlaps.max(dim=0)
    gt_max_overlaps, _ = overlaps.max(dim=1)
    assigned[(max_overlaps >= 0) & (max_overlaps < NEG_IOU)] = 0
    pos = max_overlaps >= POS_IOU
    assigned[pos] = argmax_overlaps[pos] + 1
    for i in range(num_gts):
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


def targets_single(anchors, gt, img_h, img_w, g):
    """_get_targets_single, unmapped to every anchor; also the assignment over every anchor for the test."""
    k = anchors.shape[0]
    inside = anchor_inside_flags(anchors, img_h, img_w, ALLOWED_BORDER)
    inside_idx = torch.nonzero(inside, as_tuple=False).squeeze(1)
    inner = anchors[inside]
    assigned = assign_wrt_overlaps(bbox_overlaps(gt, inner))
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
    # The assignment over all anchors: −1 ignore (outside or in the band), 0 negative, 1 positive; matched gt or −1.
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
    labels = torch.cat([t[0] for t in targets])
    label_weights = torch.cat([t[1] for t in targets])
    bbox_targets = torch.cat([t[2] for t in targets])
    bbox_weights = torch.cat([t[3] for t in targets])
    avg_factor = sum(t[4].numel() + t[5].numel() for t in targets)
    # binary_cross_entropy with use_sigmoid: labels expanded one-hot over 1 channel (bg label 1 → all zero).
    pred = objectness.reshape(-1, 1)
    onehot = (labels == 0).float().view(-1, 1)
    loss_cls = weight_reduce_loss(F.binary_cross_entropy_with_logits(pred, onehot, reduction="none"),
                                  label_weights.view(-1, 1), avg_factor)
    loss_bbox = weight_reduce_loss(torch.abs(deltas.reshape(-1, 4) - bbox_targets), bbox_weights, avg_factor)
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
    """mmcv nms_cpu with offset 0: descending sort, a later box is dropped when ovr > threshold (float)."""
    assert scores.unique().numel() == scores.numel(), "tied scores: the unstable sort would be ambiguous"
    order = scores.sort(descending=True)[1]
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


def get_bboxes_single(logits, deltas, anchors, img_shape, cfg):
    """_get_bboxes for one image and one level: returns (boxes [k, 4], scores [k])."""
    scores = logits.sigmoid()
    assert scores.unique().numel() == scores.numel(), "tied scores"
    ranked, rank_inds = scores.sort(descending=True)
    keep_top = rank_inds[:cfg["nms_pre"]]
    scores = ranked[:cfg["nms_pre"]]
    proposals = delta2bbox(anchors[keep_top], deltas[keep_top], img_shape)
    if cfg["min_bbox_size"] >= 0:
        w = proposals[:, 2] - proposals[:, 0]
        h = proposals[:, 3] - proposals[:, 1]
        valid = torch.nonzero((w > cfg["min_bbox_size"]) & (h > cfg["min_bbox_size"]), as_tuple=False).squeeze(1)
        proposals, scores = proposals[valid], scores[valid]
    keep = nms_cpu(proposals, scores, cfg["iou_threshold"])[:cfg["max_per_img"]]
    return proposals[keep], scores[keep]


# ------------------------------------------------------------------------------------------------ cases
def training_case(g):
    n = len(IMAGE_SIZES)
    feat_h, feat_w = PADDED[0] // STRIDE, PADDED[1] // STRIDE
    a = len(SIZES) * len(RATIOS)
    params = {
        "rpn_conv.weight": torch.randn(FEAT_CHANNELS, IN_CHANNELS, 3, 3, generator=g) * 0.15,
        "rpn_conv.bias": torch.randn(FEAT_CHANNELS, generator=g) * 0.1 + 0.8,  # no location all-zero after the ReLU (tied logits)
        "rpn_cls.weight": torch.randn(a, FEAT_CHANNELS, 1, 1, generator=g) * 0.5,
        "rpn_cls.bias": torch.randn(a, generator=g) * 0.1,
        "rpn_reg.weight": torch.randn(4 * a, FEAT_CHANNELS, 1, 1, generator=g) * 0.3,
        "rpn_reg.bias": torch.randn(4 * a, generator=g) * 0.1,
    }
    for p in params.values():
        p.requires_grad_(True)
    features = torch.randn(n, IN_CHANNELS, feat_h, feat_w, generator=g).requires_grad_(True)
    anchors = grid_anchors(feat_h, feat_w)
    objectness, deltas = head_forward(features, params)
    gts = [torch.tensor(b) for b in GT_BOXES]
    targets = [targets_single(anchors, gts[i], *IMAGE_SIZES[i], g) for i in range(n)]
    loss_cls, loss_bbox, avg_factor = rpn_loss(objectness, deltas, targets)
    (loss_cls + loss_bbox).backward()
    proposals = [get_bboxes_single(objectness[i].detach(), deltas[i].detach(), anchors, IMAGE_SIZES[i],
                                   TRAIN_PROPOSALS) for i in range(n)]
    for t in targets:
        assert (t[6] == 1).sum() > 0 and (t[6] == -1).sum() > 0
    return {
        "feature_shape": [n, feat_h, feat_w, IN_CHANNELS],
        "features": flat(features.detach().permute(0, 2, 3, 1)),
        "parameters": {name: {"shape": list(p.shape), "value": flat(p)} for name, p in params.items()},
        "anchors": flat(anchors),
        "objectness": flat(objectness), "deltas": flat(deltas),
        "labels": [t[6].tolist() for t in targets], "matches": [t[7].tolist() for t in targets],
        "sampled_positive": [sorted(t[4].tolist()) for t in targets],
        "sampled_negative": [sorted(t[5].tolist()) for t in targets],
        "avg_factor": avg_factor,
        "loss_cls": float(np.float32(loss_cls.item())), "loss_bbox": float(np.float32(loss_bbox.item())),
        "gradients": {name: flat(p.grad) for name, p in params.items()},
        "feature_gradient": flat(features.grad.permute(0, 2, 3, 1)),
        "proposals": [flat(b) for b, _ in proposals], "proposal_scores": [flat(s) for _, s in proposals],
    }


def proposal_cases(g):
    """Given logits and deltas on the fixture's anchors: top-k, both clamps, clipping, empty boxes, NMS, max."""
    anchors = grid_anchors(PADDED[0] // STRIDE, PADDED[1] // STRIDE)
    k = anchors.shape[0]
    cases = []
    for img_shape, cfg in [((50, 70), dict(nms_pre=300, max_per_img=40, iou_threshold=0.7, min_bbox_size=0)),
                           ((64, 90), dict(nms_pre=6000, max_per_img=1000, iou_threshold=0.5, min_bbox_size=4.0))]:
        logits = torch.randn(k, generator=g) * 3
        deltas = torch.randn(k, 4, generator=g) * 0.5
        best = logits.argsort(descending=True)[:10]
        deltas[best[0], 2] = -6.0  # below −log(1000/16): mmdet clamps from below too
        deltas[best[1], 3] = 7.0   # above the clamp
        deltas[best[2], 2] = -4.0  # inside: a thin box
        boxes, scores = get_bboxes_single(logits, deltas, anchors, img_shape, cfg)
        cases.append({"height": img_shape[0], "width": img_shape[1], "pre_nms_top_k": cfg["nms_pre"],
                      "post_nms_top_k": cfg["max_per_img"], "nms_threshold": cfg["iou_threshold"],
                      "min_box_size": cfg["min_bbox_size"], "objectness": flat(logits), "deltas": flat(deltas),
                      "boxes": flat(boxes), "scores": flat(scores)})
    return cases


def main():
    g = torch.Generator().manual_seed(161)
    path = os.path.join(ROOT, "Tests/ModelsTests/Fixtures/detection/rpn.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = {
        "torch_version": torch.__version__, "script": "scripts/reference/make_rpn_fixtures.py",
        "config": {"anchor_sizes": SIZES, "aspect_ratios": RATIOS, "stride": STRIDE, "in_channels": IN_CHANNELS,
                   "feature_channels": FEAT_CHANNELS, "batch_size_per_image": SAMPLER_NUM,
                   "positive_fraction": POS_FRACTION},
        "image_sizes": [list(s) for s in IMAGE_SIZES], "gt_boxes": [sum(b, []) for b in GT_BOXES],
        "training": training_case(g), "proposal_cases": proposal_cases(g),
    }
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path) // 1024} KB)")


if __name__ == "__main__":
    main()
