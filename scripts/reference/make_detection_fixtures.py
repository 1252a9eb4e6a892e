#!/usr/bin/env python3
"""Golden values for the detection ops and the VOC detection AP evaluators (issue 16; PROTOCOLS §5.1, §5.5).

torchvision's compiled ops do not load on the project machine, so every reference below is our own torch / numpy
re-implementation written from the upstream code it names (read, not copied):

- anchors: detectron2 modeling/anchor_generator.py (generate_cell_anchors, _create_grid_offsets) and mmdet 2.x
  core/anchor/anchor_generator.py (AnchorGenerator / LegacyAnchorGenerator gen_single_level_base_anchors)
- box coding: detectron2 modeling/box_regression.py Box2BoxTransform (get_deltas / apply_deltas, scale clamp)
- IoU: detectron2 structures/boxes.py pairwise_iou
- NMS: torchvision csrc/ops/cpu/nms_kernel.cpp (stable descending sort, IoU > threshold in double),
  torchvision/ops/boxes.py _batched_nms_vanilla
- matcher / sampler: detectron2 modeling/matcher.py, modeling/sampling.py subsample_labels (permutations recorded)
- ROIAlign: torchvision csrc/ops/cpu/roi_align_kernel.cpp (forward) — backward by torch autograd through it
- losses: torch.nn.functional smooth_l1_loss (beta 0), binary_cross_entropy_with_logits, cross_entropy
- VOC AP: mmdet 2.x core/evaluation/mean_ap.py (eval_map, tpfp_default, average_precision; legacy coordinates,
  'voc07' → 11 points) and detectron2 evaluation/pascal_voc_evaluation.py (the result-file text, voc_eval, voc_ap)

  python3 scripts/reference/make_detection_fixtures.py            # writes both fixture files
  python3 scripts/reference/make_detection_fixtures.py --bench    # times the torch ROIAlign / NMS references

Writes Tests/LayersTests/Fixtures/detection/ops.json and Tests/EvaluationTests/Fixtures/detection/voc_ap.json.
Feature tensors are NHWC (our layout) in the files; the torch code runs in NCHW. Deterministic (fixed seeds).
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def flat(t):
    """Float32 values as their shortest round-trip decimals (the files stay small; Float(text) is exact)."""
    return [float(str(np.float32(v))) for v in torch.as_tensor(t).detach().reshape(-1).tolist()]


# --------------------------------------------------------------------------------------------------- anchors
def detectron2_cell_anchors(sizes, ratios):
    rows = []
    for size in sizes:
        area = size ** 2.0
        for ratio in ratios:
            w = math.sqrt(area / ratio)
            h = ratio * w
            rows.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(rows, dtype=torch.float32)


def mmdet_cell_anchors(base, scales, ratios, center_offset, legacy):
    scales = torch.tensor(scales, dtype=torch.float32)
    ratios = torch.tensor(ratios, dtype=torch.float32)
    w = h = float(base)
    cx = center_offset * (w - 1) if legacy else center_offset * w
    cy = center_offset * (h - 1) if legacy else center_offset * h
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w * w_ratios[:, None] * scales[None, :]).view(-1)  # scale_major=True: ratio outer, scale inner
    hs = (h * h_ratios[:, None] * scales[None, :]).view(-1)
    if legacy:
        a = torch.stack([cx - 0.5 * (ws - 1), cy - 0.5 * (hs - 1), cx + 0.5 * (ws - 1), cy + 0.5 * (hs - 1)], -1)
        return a.round()
    return torch.stack([cx - 0.5 * ws, cy - 0.5 * hs, cx + 0.5 * ws, cy + 0.5 * hs], -1)


def grid(cell, stride, height, width, offset):
    sx = torch.arange(offset * stride, width * stride, step=stride, dtype=torch.float32)
    sy = torch.arange(offset * stride, height * stride, step=stride, dtype=torch.float32)
    yy, xx = torch.meshgrid(sy, sx, indexing="ij")
    shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], 1)
    return (shifts.view(-1, 1, 4) + cell.view(1, -1, 4)).reshape(-1, 4)


def anchor_cases():
    sizes, ratios, stride = [32, 64, 128, 256, 512], [0.5, 1.0, 2.0], 16
    cases = []
    for offset in [0.0, 0.5]:
        cell = detectron2_cell_anchors(sizes, ratios)
        cases.append({"convention": "detectron2", "offset": offset, "sizes": sizes, "ratios": ratios,
                      "stride": stride, "height": 3, "width": 4, "anchors": flat(grid(cell, stride, 3, 4, offset))})
    for convention, offset in [("mmdet", 0.0), ("mmdet", 0.5), ("mmdetLegacy", 0.5)]:
        cell = mmdet_cell_anchors(stride, [s / stride for s in sizes], ratios, offset, convention == "mmdetLegacy")
        cases.append({"convention": convention, "offset": offset, "sizes": sizes, "ratios": ratios,
                      "stride": stride, "height": 3, "width": 4, "anchors": flat(grid(cell, stride, 3, 4, 0.0))})
    return cases


# --------------------------------------------------------------------------------------------------- boxes
def random_boxes(g, n, extent=100.0, min_size=1.0, max_size=60.0):
    xy = torch.rand(n, 2, generator=g) * extent
    wh = min_size + torch.rand(n, 2, generator=g) * (max_size - min_size)
    return torch.cat([xy, xy + wh], 1)


def get_deltas(src, tgt, weights):
    sw, sh = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
    sx, sy = src[:, 0] + 0.5 * sw, src[:, 1] + 0.5 * sh
    tw, th = tgt[:, 2] - tgt[:, 0], tgt[:, 3] - tgt[:, 1]
    tx, ty = tgt[:, 0] + 0.5 * tw, tgt[:, 1] + 0.5 * th
    wx, wy, ww, wh = weights
    return torch.stack([wx * (tx - sx) / sw, wy * (ty - sy) / sh, ww * torch.log(tw / sw), wh * torch.log(th / sh)], 1)


def apply_deltas(deltas, boxes, weights, clamp=math.log(1000.0 / 16)):
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h
    wx, wy, ww, wh = weights
    dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy
    dw, dh = torch.clamp(deltas[:, 2::4] / ww, max=clamp), torch.clamp(deltas[:, 3::4] / wh, max=clamp)
    px, py = dx * w[:, None] + cx[:, None], dy * h[:, None] + cy[:, None]
    pw, ph = torch.exp(dw) * w[:, None], torch.exp(dh) * h[:, None]
    return torch.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], -1).reshape(deltas.shape)


def box_coding_cases(g):
    cases = []
    for weights, groups in [((1.0, 1.0, 1.0, 1.0), 1), ((10.0, 10.0, 5.0, 5.0), 3)]:
        src, tgt = random_boxes(g, 20), random_boxes(g, 20)
        deltas = torch.randn(20, 4 * groups, generator=g) * 2
        deltas[0, 2] = 40.0  # far beyond the clamp (log(1000/16) · weight)
        deltas[1, 3] = 30.0
        cases.append({"weights": list(weights), "sources": flat(src), "targets": flat(tgt),
                      "encoded": flat(get_deltas(src, tgt, weights)), "deltas": flat(deltas), "groups": groups,
                      "decoded": flat(apply_deltas(deltas, src, weights))})
    return cases


def pairwise_iou(a, b):
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area2 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = (torch.min(a[:, None, 2:], b[:, 2:]) - torch.max(a[:, None, :2], b[:, :2])).clamp(min=0)
    inter = wh.prod(dim=2)
    return torch.where(inter > 0, inter / (area1[:, None] + area2 - inter), torch.zeros(1))


def iou_case(g):
    a, b = random_boxes(g, 12), random_boxes(g, 9)
    b[0] = a[0]  # identical
    b[1] = torch.tensor([5.0, 5.0, 5.0, 20.0])  # zero width
    a[1] = torch.tensor([200.0, 200.0, 210.0, 210.0])  # far away
    return {"a": flat(a), "b": flat(b), "iou": flat(pairwise_iou(a, b))}


# --------------------------------------------------------------------------------------------------- NMS
def nms(boxes, scores, threshold):
    order = torch.sort(scores, stable=True, descending=True).indices
    b = boxes[order]
    x1, y1, x2, y2 = b.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        w = (torch.min(x2[i], x2[i + 1:]) - torch.max(x1[i], x1[i + 1:])).clamp(min=0)
        h = (torch.min(y2[i], y2[i + 1:]) - torch.max(y1[i], y1[i + 1:])).clamp(min=0)
        inter = w * h
        ovr = inter / (areas[i] + areas[i + 1:] - inter)
        suppressed[i + 1:] |= (ovr.double() > threshold).numpy()
    return keep


def batched_nms(boxes, scores, classes, threshold):
    mask = torch.zeros_like(scores, dtype=torch.bool)
    for c in torch.unique(classes):
        idx = torch.where(classes == c)[0]
        mask[idx[nms(boxes[idx], scores[idx], threshold)]] = True
    kept = torch.where(mask)[0]
    return kept[torch.sort(scores[kept], stable=True, descending=True).indices].tolist()


def nms_cases(g):
    cases = []
    boxes = random_boxes(g, 300, extent=120, max_size=50)
    scores = torch.rand(300, generator=g)
    scores[10:20] = scores[5]  # ties keep their input order
    boxes[30] = boxes[31]  # identical boxes: IoU 1
    # exactly IoU 0.5 (not suppressed at 0.5: IoU must be greater): [0,0,10,10] vs [0,0,10,20]
    boxes[40], boxes[41] = torch.tensor([0.0, 0.0, 10.0, 10.0]), torch.tensor([0.0, 0.0, 10.0, 20.0])
    scores[40], scores[41] = 0.999, 0.998
    classes = torch.randint(0, 4, (300,), generator=g)
    for threshold in [0.7, 0.5, 0.3]:
        cases.append({"boxes": flat(boxes), "scores": flat(scores), "classes": classes.tolist(),
                      "threshold": threshold, "keep": nms(boxes, scores, threshold),
                      "batched_keep": batched_nms(boxes, scores, classes, threshold)})
    return cases


# --------------------------------------------------------------------------------------------------- matcher
def match(quality, thresholds, labels, low_quality):
    if quality.numel() == 0:
        return [0] * quality.shape[1], [labels[0]] * quality.shape[1]
    vals, matches = quality.max(dim=0)
    bounds = [-float("inf")] + thresholds + [float("inf")]
    out = torch.ones_like(matches, dtype=torch.int8)
    for l, lo, hi in zip(labels, bounds[:-1], bounds[1:]):
        out[(vals >= lo) & (vals < hi)] = l
    if low_quality:
        best = quality.max(dim=1).values
        _, preds = torch.nonzero(quality == best[:, None], as_tuple=True)
        out[preds] = 1
    return matches.tolist(), out.tolist()


def matcher_cases(g):
    gts = random_boxes(g, 5, extent=100, min_size=10, max_size=50)
    anchors = random_boxes(g, 80, extent=120, min_size=5, max_size=70)
    anchors[7] = gts[2]  # IoU exactly 1
    anchors[8] = gts[2]  # a tie for gt 2's best
    gts[4] = torch.tensor([500.0, 500.0, 510.0, 510.0])  # overlaps nothing: highest IoU 0 → detectron2 marks every 0
    quality = pairwise_iou(gts, anchors)
    cases = []
    for name, thresholds, labels, low in [("rpn", [0.3, 0.7], [0, -1, 1], True), ("roi", [0.5], [0, 1], False)]:
        for use_far in [False, True]:
            q = quality if use_far else quality[:4]
            m, l = match(q, thresholds, labels, low)
            cases.append({"name": name, "gts": q.shape[0], "anchors": q.shape[1], "quality": flat(q),
                          "matches": m, "labels": l})
    m, l = match(torch.zeros(0, 6), [0.3, 0.7], [0, -1, 1], True)
    cases.append({"name": "rpn", "gts": 0, "anchors": 6, "quality": [], "matches": m, "labels": l})
    return cases


def sampler_cases(g):
    cases = []
    for labels, batch, fraction, bg in [
        (torch.randint(-1, 2, (400,), generator=g), 256, 0.5, 0),  # RPN: plenty of both
        (torch.tensor([1] * 5 + [0] * 300 + [-1] * 20), 256, 0.5, 0),  # few positives: filled with negatives
        (torch.tensor([1] * 200 + [0] * 30), 256, 0.5, 0),  # few negatives
        (torch.randint(0, 21, (600,), generator=g), 512, 0.25, 20),  # ROI head: classes 0..19, background 20
    ]:
        positive = torch.nonzero((labels != -1) & (labels != bg)).flatten()
        negative = torch.nonzero(labels == bg).flatten()
        num_pos = min(positive.numel(), int(batch * fraction))
        num_neg = min(negative.numel(), batch - num_pos)
        perm_pos = torch.randperm(positive.numel(), generator=g)
        perm_neg = torch.randperm(negative.numel(), generator=g)
        cases.append({"labels": labels.tolist(), "batch": batch, "fraction": fraction, "background": bg,
                      "perm_positive": perm_pos.tolist(), "perm_negative": perm_neg.tolist(),
                      "positive": positive[perm_pos[:num_pos]].tolist(),
                      "negative": negative[perm_neg[:num_neg]].tolist()})
    return cases


# --------------------------------------------------------------------------------------------------- ROIAlign
def axis_samples(coord, size):
    """One axis of roi_align_kernel.cpp's bilinear_interpolate: (low, high, low weight, high weight)."""
    valid = ~((coord < -1.0) | (coord > size))
    c = coord.clamp(min=0)
    low = c.long()
    snap = low >= size - 1
    low = torch.where(snap, torch.full_like(low, size - 1), low)
    high = torch.where(snap, torch.full_like(low, size - 1), low + 1)
    c = torch.where(snap, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    zero = torch.zeros_like(frac)
    return low, high, torch.where(valid, 1 - frac, zero), torch.where(valid, frac, zero)


def roi_align(features, rois, out_h, out_w, scale, sampling_ratio, aligned):
    """features NCHW (may require grad); rois [k, 5]; returns [k, C, out_h, out_w]."""
    _, channels, height, width = features.shape
    offset = 0.5 if aligned else 0.0
    outputs = []
    for r in rois:
        b = int(r[0])
        sx, sy = r[1] * scale - offset, r[2] * scale - offset
        ex, ey = r[3] * scale - offset, r[4] * scale - offset
        rw, rh = ex - sx, ey - sy
        if not aligned:
            rw, rh = torch.clamp(rw, min=1.0), torch.clamp(rh, min=1.0)
        bh, bw = rh / out_h, rw / out_w
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rh / out_h)))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rw / out_w)))
        count = max(gh * gw, 1)
        if gh <= 0 or gw <= 0:
            outputs.append(features.new_zeros(channels, out_h, out_w))
            continue
        ph = torch.arange(out_h, dtype=torch.float32)[:, None]
        iy = torch.arange(gh, dtype=torch.float32)[None, :]
        y = (sy + ph * bh + (iy + 0.5) * bh / gh).reshape(-1)
        pw = torch.arange(out_w, dtype=torch.float32)[:, None]
        ix = torch.arange(gw, dtype=torch.float32)[None, :]
        x = (sx + pw * bw + (ix + 0.5) * bw / gw).reshape(-1)
        yl, yh, wyl, wyh = axis_samples(y, height)
        xl, xh, wxl, wxh = axis_samples(x, width)
        f = features[b]
        v = (wyl[:, None] * wxl[None, :] * f[:, yl[:, None], xl[None, :]]
             + wyl[:, None] * wxh[None, :] * f[:, yl[:, None], xh[None, :]]
             + wyh[:, None] * wxl[None, :] * f[:, yh[:, None], xl[None, :]]
             + wyh[:, None] * wxh[None, :] * f[:, yh[:, None], xh[None, :]])
        outputs.append(v.reshape(channels, out_h, gh, out_w, gw).sum((2, 4)) / count)
    return torch.stack(outputs)


def roi_align_batched(features, rois, out_h, out_w, scale, chunk=64):
    """The same op (aligned, sampling ratio 0) vectorised over chunks of rois, for the speed comparison: each chunk's
    sample grid is padded to its largest ceil(roi / out) and masked (torchvision's _roi_align does the same with the
    whole feature height as the bound, which does not fit in memory at 512 rois × 1024 channels)."""
    _, channels, height, width = features.shape
    pixels = features.permute(0, 2, 3, 1).reshape(-1, channels)  # [n·h·w, c]: one row per pixel, gathered by index
    outputs = []
    for start in range(0, len(rois), chunk):
        r = rois[start:start + chunk]
        k = len(r)
        sx, sy, ex, ey = (r[:, i] * scale - 0.5 for i in range(1, 5))
        rw, rh = ex - sx, ey - sy
        bh, bw = rh / out_h, rw / out_w
        gh, gw = torch.ceil(rh / out_h).clamp(min=0), torch.ceil(rw / out_w).clamp(min=0)
        count = (gh * gw).clamp(min=1)
        big_h, big_w = int(gh.max()), int(gw.max())

        def coords(start_, bin_, grid_, out, big):
            p = torch.arange(out, dtype=torch.float32)[None, :, None]
            i = torch.arange(big, dtype=torch.float32)[None, None, :]
            c = start_[:, None, None] + p * bin_[:, None, None] + (i + 0.5) * bin_[:, None, None] / grid_.clamp(min=1)[:, None, None]
            return c.reshape(k, -1), (i < grid_[:, None, None]).expand(k, out, big).reshape(k, -1)

        y, ymask = coords(sy, bh, gh, out_h, big_h)
        x, xmask = coords(sx, bw, gw, out_w, big_w)
        yl, yh, wyl, wyh = axis_samples(y, height)
        xl, xh, wxl, wxh = axis_samples(x, width)
        wyl, wyh = wyl * ymask, wyh * ymask
        wxl, wxh = wxl * xmask, wxh * xmask
        rows_base = (r[:, 0].long() * height * width)[:, None, None]
        total = 0
        for yi, wy in [(yl, wyl), (yh, wyh)]:
            for xi, wx in [(xl, wxl), (xh, wxh)]:
                rows = (rows_base + yi[:, :, None] * width + xi[:, None, :]).reshape(-1)
                weight = (wy[:, :, None] * wx[:, None, :]).reshape(k, -1, 1)
                total = total + weight * pixels[rows].reshape(k, -1, channels)
        total = total.reshape(k, out_h, big_h, out_w, big_w, channels).sum((2, 4))
        outputs.append(total.permute(0, 3, 1, 2) / count[:, None, None, None])
    return torch.cat(outputs)


def roi_align_cases(g):
    n, c, h, w = 2, 3, 9, 11
    features = torch.randn(n, c, h, w, generator=g)
    scale = 0.5
    rois = torch.tensor([
        [0, 2.0, 3.0, 15.0, 12.0],     # inside
        [1, 0.0, 0.0, 22.0, 18.0],     # the whole map
        [0, -6.0, -4.0, 5.0, 7.0],     # crosses the top-left edge (samples in [−1, 0) clamp to 0)
        [1, 12.0, 8.0, 30.0, 26.0],    # crosses the bottom-right edge (samples beyond H / W are dropped)
        [0, 7.3, 4.1, 7.9, 4.6],       # smaller than a bin
        [1, 5.0, 5.0, 5.0, 9.0],       # zero width
        [0, 9.0, 9.0, 6.0, 6.0],       # negative size (aligned: no samples, output 0)
        [1, 40.0, 40.0, 60.0, 50.0],   # entirely outside
        [0, 1.25, 2.75, 19.5, 17.0],   # fractional
    ], dtype=torch.float32)
    cases = []
    for out_h, out_w, ratio, aligned in [(4, 3, 0, True), (2, 5, 2, True), (3, 3, 0, False), (7, 7, 0, True)]:
        feats = features.clone().requires_grad_(True)
        out = roi_align(feats, rois, out_h, out_w, scale, ratio, aligned)
        upstream = torch.randn(out.shape, generator=g)
        (out * upstream).sum().backward()
        cases.append({"output_height": out_h, "output_width": out_w, "sampling_ratio": ratio, "aligned": aligned,
                      "spatial_scale": scale, "feature_shape": [n, h, w, c],
                      "features": flat(features.permute(0, 2, 3, 1)), "rois": flat(rois),
                      "output": flat(out.detach().permute(0, 2, 3, 1)),
                      "output_gradient": flat(upstream.permute(0, 2, 3, 1)),
                      "feature_gradient": flat(feats.grad.permute(0, 2, 3, 1))})
    return cases


# --------------------------------------------------------------------------------------------------- losses
def loss_cases(g):
    import torch.nn.functional as F
    images = 2
    deltas = torch.randn(40, 4, generator=g)
    targets = deltas + torch.randn(40, 4, generator=g) * 0.5
    targets[0, 0] = deltas[0, 0]  # d = 0 exactly: L1's gradient there is 0
    x = deltas.clone().requires_grad_(True)
    l1 = F.smooth_l1_loss(x, targets, beta=0.0, reduction="sum") / (256 * images)  # RPN box loss normaliser
    l1.backward()
    logits = torch.randn(60, generator=g) * 3
    labels = (torch.rand(60, generator=g) < 0.4).float()
    valid = (torch.rand(60, generator=g) < 0.8).float()  # sampled anchors: weight 1, others 0
    z = logits.clone().requires_grad_(True)
    bce = F.binary_cross_entropy_with_logits(z, labels, weight=valid, reduction="sum") / (256 * images)
    bce.backward()
    cls_logits = torch.randn(16, 21, generator=g)
    cls_labels = torch.randint(0, 21, (16,), generator=g)
    y = cls_logits.clone().requires_grad_(True)
    ce = F.cross_entropy(y, cls_labels)
    ce.backward()
    return {"images": images,
            "l1": {"x": flat(deltas), "target": flat(targets), "loss": float(l1.detach()), "gradient": flat(x.grad)},
            "bce": {"logits": flat(logits), "targets": flat(labels), "weights": flat(valid), "loss": float(bce.detach()),
                    "gradient": flat(z.grad)},
            "ce": {"logits": flat(cls_logits), "labels": cls_labels.tolist(), "loss": float(ce.detach()),
                   "gradient": flat(y.grad)}}


# --------------------------------------------------------------------------------------------------- VOC AP
def mmdet_overlaps_legacy(dets, gts):
    """mmdet bbox_overlaps(use_legacy_coordinate=True) in float32."""
    d, gt = dets.astype(np.float32), gts.astype(np.float32)
    one = np.float32(1.0)
    area1 = (d[:, 2] - d[:, 0] + one) * (d[:, 3] - d[:, 1] + one)
    area2 = (gt[:, 2] - gt[:, 0] + one) * (gt[:, 3] - gt[:, 1] + one)
    ious = np.zeros((len(d), len(gt)), dtype=np.float32)
    for i in range(len(d)):
        w = np.maximum(np.minimum(d[i, 2], gt[:, 2]) - np.maximum(d[i, 0], gt[:, 0]) + one, np.float32(0))
        h = np.maximum(np.minimum(d[i, 3], gt[:, 3]) - np.maximum(d[i, 1], gt[:, 1]) + one, np.float32(0))
        overlap = w * h
        union = np.maximum(area1[i] + area2 - overlap, np.float32(1e-6))
        ious[i] = overlap / union
    return ious


def mmdet_tpfp(dets, gts, gts_ignore, thr):
    ignore = np.concatenate([np.zeros(len(gts), bool), np.ones(len(gts_ignore), bool)])
    allgt = np.vstack([gts, gts_ignore])
    tp = np.zeros(len(dets), np.float32)
    fp = np.zeros(len(dets), np.float32)
    if len(allgt) == 0:
        fp[:] = 1
        return tp, fp
    ious = mmdet_overlaps_legacy(dets[:, :4], allgt)
    imax, iarg = ious.max(axis=1), ious.argmax(axis=1)
    covered = np.zeros(len(allgt), bool)
    for i in np.argsort(-dets[:, -1]):
        if imax[i] >= thr:
            j = iarg[i]
            if not ignore[j]:
                if not covered[j]:
                    covered[j] = True
                    tp[i] = 1
                else:
                    fp[i] = 1
        else:
            fp[i] = 1
    return tp, fp


def mmdet_eval_map(images, classes, thr=0.5, mode="11points"):
    aps, counts = [], []
    for c in range(classes):
        tps, fps, dets_all, num_gts = [], [], [], 0
        for im in images:
            dets = np.array([d["box"] + [d["score"]] for d in im["detections"][c]], np.float32).reshape(-1, 5)
            gts = np.array([o["box"] for o in im["objects"] if o["class"] == c and not o["difficult"]],
                           np.float32).reshape(-1, 4)
            ign = np.array([o["box"] for o in im["objects"] if o["class"] == c and o["difficult"]],
                           np.float32).reshape(-1, 4)
            tp, fp = mmdet_tpfp(dets, gts, ign, thr)
            tps.append(tp), fps.append(fp), dets_all.append(dets)
            num_gts += len(gts)
        dets_all = np.vstack(dets_all)
        order = np.argsort(-dets_all[:, -1])
        assert (order == np.argsort(-dets_all[:, -1], kind="stable")).all(), "fixture scores must not tie"
        tp = np.cumsum(np.hstack(tps)[order])
        fp = np.cumsum(np.hstack(fps)[order])
        eps = np.finfo(np.float32).eps
        recalls = tp / np.maximum(np.array([num_gts]), eps)[0]
        precisions = tp / np.maximum(tp + fp, eps)
        if mode == "11points":
            ap = np.float32(0)
            for t in np.arange(0, 1 + 1e-3, 0.1):
                precs = precisions[recalls >= t]
                ap += precs.max() if precs.size > 0 else 0
            ap = np.float32(ap / 11)
        else:
            mrec = np.hstack([[0.0], recalls, [1.0]])
            mpre = np.hstack([[0.0], precisions, [0.0]])
            for i in range(len(mpre) - 1, 0, -1):
                mpre[i - 1] = max(mpre[i - 1], mpre[i])
            ind = np.where(mrec[1:] != mrec[:-1])[0]
            ap = np.float32(np.sum((mrec[ind + 1] - mrec[ind]) * mpre[ind + 1]))
        aps.append(float(ap))
        counts.append(num_gts)
    counted = [a for a, n in zip(aps, counts) if n > 0]
    mean = float(np.array(counted, np.float32).mean()) if counted else 0.0
    return mean, aps, counts


def detectron2_eval(images, classes, use_07=True):
    """PascalVOCDetectionEvaluator: the per-class result-file lines, then voc_eval per threshold."""
    lines = {c: [] for c in range(classes)}
    for image_id, im in enumerate(images):
        for c in range(classes):
            for d in im["detections"][c]:
                x1, y1, x2, y2 = np.array(d["box"], np.float32)
                x1 += 1  # "The inverse of data loading logic in datasets/pascal_voc.py" (float32, as the boxes)
                y1 += 1
                score = float(np.float32(d["score"]))
                lines[c].append(f"{image_id} {score:.3f} {x1:.1f} {y1:.1f} {x2:.1f} {y2:.1f}")
    aps = {t: [] for t in range(50, 100, 5)}
    for c in range(classes):
        split = [x.strip().split(" ") for x in "\n".join(lines[c]).splitlines()]
        for t in range(50, 100, 5):
            aps[t].append(voc_eval(split, images, c, t / 100.0, use_07) * 100)
    m = {t: float(np.mean(v)) for t, v in aps.items()}
    return {"AP": float(np.mean(list(m.values()))), "AP50": m[50], "AP75": m[75],
            "per_class": [aps[t] for t in range(50, 100, 5)]}


def voc_eval(split, images, c, ovthresh, use_07):
    recs, npos = {}, 0
    for image_id, im in enumerate(images):
        objs = [o for o in im["objects"] if o["class"] == c]
        # parse_rec reads the XML's integers: our model-frame boxes + 1 on xmin / ymin
        bbox = np.array([[int(o["box"][0] + 1), int(o["box"][1] + 1), int(o["box"][2]), int(o["box"][3])]
                         for o in objs]).reshape(-1, 4)
        difficult = np.array([o["difficult"] for o in objs]).astype(bool)
        npos += int(np.sum(~difficult))
        recs[str(image_id)] = {"bbox": bbox, "difficult": difficult, "det": [False] * len(objs)}
    ids = [x[0] for x in split]
    conf = np.array([float(x[1]) for x in split])
    bb_all = np.array([[float(z) for z in x[2:]] for x in split]).reshape(-1, 4)
    order = np.argsort(-conf)
    assert (order == np.argsort(-conf, kind="stable")).all(), "fixture scores must not tie at 3 decimals"
    bb_all, ids = bb_all[order], [ids[i] for i in order]
    tp, fp = np.zeros(len(ids)), np.zeros(len(ids))
    for d in range(len(ids)):
        r, bb, ovmax = recs[ids[d]], bb_all[d].astype(float), -np.inf
        g = r["bbox"].astype(float)
        if g.size > 0:
            iw = np.maximum(np.minimum(g[:, 2], bb[2]) - np.maximum(g[:, 0], bb[0]) + 1.0, 0.0)
            ih = np.maximum(np.minimum(g[:, 3], bb[3]) - np.maximum(g[:, 1], bb[1]) + 1.0, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) + (g[:, 2] - g[:, 0] + 1.0) * (g[:, 3] - g[:, 1] + 1.0) - inters
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax > ovthresh:
            if not r["difficult"][jmax]:
                if not r["det"][jmax]:
                    tp[d], r["det"][jmax] = 1.0, True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def voc_dataset(rng, images=12, classes=5):
    """Random images: integer ground truths (some difficult), jittered true detections, duplicates, false alarms.
    Class 3 has detections but no ground truth (empty class); class 4 has ground truth but no detections.
    Scores are distinct at 3 decimals (both references sort with numpy's unstable argsort)."""
    score_pool = list(rng.permutation(np.arange(50, 1000)))
    data = []
    for _ in range(images):
        objects, dets = [], [[] for _ in range(classes)]
        for _ in range(rng.integers(0, 5)):
            c = int(rng.choice([0, 1, 2, 4]))
            x1, y1 = rng.integers(0, 300, 2)
            w, h = rng.integers(8, 150, 2)
            box = [float(x1) - 1, float(y1) - 1, float(x1 + w), float(y1 + h)]  # model frame: XML − 1 on xmin/ymin
            objects.append({"box": box, "class": c, "difficult": bool(rng.random() < 0.2)})
            if c != 4:
                for _ in range(rng.integers(0, 3)):  # 0: missed, 2: a duplicate
                    jitter = rng.normal(0, 0.12, 4) * np.array([w, h, w, h])
                    dets[c].append([float(v) for v in np.float32(np.array(box) + jitter)])
        for _ in range(rng.integers(0, 4)):  # false alarms, some in the empty class 3
            c = int(rng.choice([0, 1, 2, 3]))
            x1, y1 = rng.uniform(0, 300, 2)
            w, h = rng.uniform(5, 120, 2)
            dets[c].append([float(v) for v in np.float32([x1, y1, x1 + w, y1 + h])])
        detections = [[{"box": b, "score": float(np.float32(score_pool.pop() / 1000 + rng.uniform(-3e-4, 3e-4)))}
                       for b in per] for per in dets]
        data.append({"detections": detections, "objects": objects})
    return data


def edge_dataset():
    """Hand-made: IoU exactly 0.5 for mmdet (matched, ≥) and for detectron2 (not matched, >), a detection whose
    best ground truth is difficult (ignored), a duplicate (FP) and an image without objects."""
    def det(box, score):
        return {"box": box, "score": score}
    return [
        {"objects": [{"box": [0.0, 0.0, 9.0, 9.0], "class": 0, "difficult": False}],  # legacy area 100
         "detections": [[det([0.0, 0.0, 9.0, 19.0], 0.9)], []]},  # mmdet IoU 100/200 = 0.5
        {"objects": [{"box": [0.0, 0.0, 10.0, 10.0], "class": 0, "difficult": False}],  # detectron2: 10×10
         "detections": [[det([0.0, 0.0, 10.0, 20.0], 0.8)], []]},  # detectron2 IoU 100/200 = 0.5
        {"objects": [{"box": [20.0, 20.0, 60.0, 60.0], "class": 1, "difficult": True},
                     {"box": [50.0, 50.0, 90.0, 90.0], "class": 1, "difficult": False}],
         "detections": [[], [det([21.0, 21.0, 61.0, 61.0], 0.7), det([50.0, 50.0, 90.0, 91.0], 0.6),
                             det([51.0, 50.0, 90.0, 90.0], 0.5)]]},
        {"objects": [], "detections": [[det([5.0, 5.0, 30.0, 30.0], 0.4)], [det([1.0, 1.0, 3.0, 3.0], 0.3)]]},
    ]


def voc_cases():
    rng = np.random.default_rng(16)
    cases = []
    for name, data, classes in [("random", voc_dataset(rng), 5), ("random_large", voc_dataset(rng, 60, 5), 5),
                                ("edge", edge_dataset(), 2)]:
        mean, aps, counts = mmdet_eval_map(data, classes)
        mean_area, aps_area, _ = mmdet_eval_map(data, classes, mode="area")
        d2 = detectron2_eval(data, classes)
        d2_area = detectron2_eval(data, classes, use_07=False)
        cases.append({"name": name, "classes": classes, "images": data,
                      "mmdet": {"mAP": mean, "per_class": aps, "num_gts": counts},
                      "mmdet_area": {"mAP": mean_area, "per_class": aps_area},
                      "detectron2": d2, "detectron2_2012": d2_area})
    return cases


# --------------------------------------------------------------------------------------------------- main
def nan_to_null(value):
    """JSON has no NaN: detectron2's all-point AP of a class without ground truth is NaN (0/0 recalls); write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [nan_to_null(v) for v in value]
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    return value


def write(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(nan_to_null(payload), f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path) // 1024} KB)")


def bench():
    """The benchmark cases of benchmarks/Sources/DetectionBench, with these torch references (ms, best of runs)."""
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 1024, 38, 50, generator=g)  # a 600×800 image at stride 16
    xy = torch.rand(512, 2, generator=g) * torch.tensor([700.0, 500.0])
    wh = 16 + torch.rand(512, 2, generator=g) * 300
    rois = torch.cat([torch.zeros(512, 1), xy, xy + wh], 1)
    def timed(fn, runs=3):
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best * 1000
    check = torch.randn(2, 8, 20, 24, generator=g)
    check_rois = torch.cat([torch.randint(0, 2, (40, 1), generator=g).float(), xy[:40] / 3, xy[:40] / 3 + wh[:40] / 2], 1)
    assert torch.allclose(roi_align_batched(check, check_rois, 14, 14, 1 / 16),
                          roi_align(check, check_rois, 14, 14, 1 / 16, 0, True), atol=1e-5), "batched ≠ reference"
    feats = features.clone().requires_grad_(True)
    forward = timed(lambda: roi_align_batched(features, rois, 14, 14, 1 / 16))
    upstream = torch.randn(512, 1024, 14, 14, generator=g)
    backward = timed(lambda: torch.autograd.grad((roi_align_batched(feats, rois, 14, 14, 1 / 16) * upstream).sum(), feats))
    boxes = random_boxes(g, 12000, extent=800, min_size=8, max_size=300)
    scores = torch.rand(12000, generator=g)
    nms_ms = timed(lambda: nms(boxes, scores, 0.7), runs=1)
    print(json.dumps({"roi_align_forward_ms": forward, "roi_align_forward_backward_ms": backward, "nms_12000_ms": nms_ms}))


def main():
    if "--bench" in sys.argv:
        bench()
        return
    g = torch.Generator().manual_seed(16)
    write(os.path.join(ROOT, "Tests/LayersTests/Fixtures/detection/ops.json"), {
        "torch_version": torch.__version__, "script": "scripts/reference/make_detection_fixtures.py",
        "anchors": anchor_cases(), "box_coding": box_coding_cases(g), "iou": iou_case(g), "nms": nms_cases(g),
        "matcher": matcher_cases(g), "sampler": sampler_cases(g), "roi_align": roi_align_cases(g),
        "losses": loss_cases(g)})
    write(os.path.join(ROOT, "Tests/EvaluationTests/Fixtures/detection/voc_ap.json"), {
        "numpy_version": np.__version__, "script": "scripts/reference/make_detection_fixtures.py",
        "cases": voc_cases()})


if __name__ == "__main__":
    main()
