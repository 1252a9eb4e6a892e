"""PyTorch side of EngineBench's Faster R-CNN C4 cases (h) and (i): plain torch modules equivalent to mmdet 2.x's
Faster R-CNN R50-C4 as MMSelfSup's `faster_rcnn_r50_c4` builds it (PROTOCOLS §5.1, §5.5), no mmdet, mmcv or
torchvision needed. Used by torch_bench.py (--only h / --only i).

  trunk      ResNet-50 stem..layer3 (mmdet ResNet(depth=50, num_stages=3, strides=(1,2,2)), style='pytorch': the
             stride on the 3x3 conv), BN in train mode (norm_eval=False, nothing frozen). C4: 1024 channels, stride 16.
  rpn        mmdet RPNHead(in=1024, feat=1024): rpn_conv 3x3 + ReLU, rpn_cls 1x1 (15 sigmoid logits: 3 ratios x 5
             scales), rpn_reg 1x1 (60), N(0, 0.01) init. Anchors: mmdet AnchorGenerator(base 16, scales 2..32,
             ratios 0.5/1/2, centre offset 0), ratio-major. Training: MaxIoUAssigner(0.7, 0.3, min_pos 0.3, low-quality
             matches with gt_max_assign_all), allowed_border 0 on the unpadded image, RandomSampler(256, 0.5), BCE and
             L1 both divided by the sampled count. Proposals (`_get_bboxes_single`): top nms_pre by sigmoid score,
             delta2bbox (stds 1, dw/dh clamped at +-log(1000/16), clipped to the image), min_bbox_size 0, NMS 0.7,
             max_per_img (12000/2000 training, 6000/1000 testing). No gradient through the proposals.
  roi head   GT boxes prepended to the proposals (add_gt_as_proposals), MaxIoUAssigner(0.5, 0.5, 0.5, no low-quality),
             RandomSampler(512, 0.25); RoIAlign(14x14, 1/16, sampling_ratio 0, aligned=True) -> res5 (ResNet layer4,
             stride 2 -> 7x7) -> extra BN (MMSelfSup ResLayerExtraNorm) -> 7x7 mean -> fc_cls (21, N(0, 0.01)) and
             fc_reg (80, N(0, 0.001)). CE mean over the 512 samples; L1 on the positives' class-specific deltas (stds
             0.1, 0.1, 0.2, 0.2) divided by 512. Test: softmax, class-specific delta2bbox clipped to the image,
             score > 0.05, per-class NMS 0.5 (mmcv batched_nms: class offsets, one NMS), the best 100.

torchvision's compiled ops (roi_align, nms) do not load on the project machine (and torchvision is not installed),
so two ops are our own torch code, checked at start-up against the references of
scripts/reference/make_detection_fixtures.py:
  - RoIAlign: the kernel's bilinear weights are separable (w = wy * wx, invalid samples weigh 0 on their axis), so a
    roi's 14x14 output is Ay [14, H] @ F [H, W, C] contracted with Ax [14, W]: two small GEMMs per roi on the crop of
    F its weights touch, and a hand-written backward (the transposed GEMMs, added into the crop). Exact up to
    summation order. A Python loop over the rois and more arithmetic than torchvision's C++ kernel (whole crop rows
    instead of the 4 neighbours per sample), so its time is measured on its own (`roi_align_s`) and EngineBench also
    reports the ratio with it excluded.
  - NMS: torchvision's nms_kernel.cpp greedy loop in Python over vectorised IoU rows (stable descending sort, IoU >
    threshold), stopping once `limit` boxes are kept (the same first boxes a following top-k would keep).
"""
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_fcn import Bottleneck

# The same fixed scene on both sides (Sources/EngineBench/DetectionCases.swift): a 600x800 image padded to 608x800,
# three ground-truth boxes (x1, y1, x2, y2 in pixels) with 0-based foreground labels among 20 VOC classes.
IMAGE_HEIGHT, IMAGE_WIDTH, PADDED_HEIGHT = 600, 800, 608
GT_BOXES = [[48.0, 60.0, 312.0, 420.0], [360.0, 180.0, 760.0, 560.0], [520.0, 40.0, 700.0, 200.0]]
GT_LABELS = [4, 11, 14]
CLASSES = 20
# Case (i): a randomly initialised fc_cls scores every class ~1/21 < score_thr 0.05, so the per-class NMS would have
# nothing to do. Both sides add this bias to the first 5 classes' logits (score ~0.14) so that test-time detection
# runs as it does with a trained head: 5 classes x 1000 candidates into the per-class NMS.
INFERENCE_CLASS_BIAS, INFERENCE_BIASED_CLASSES = 2.0, 5

ROI_ALIGN_SECONDS = [0.0]  # accumulated by RoIAlignFunction (forward + backward), read by torch_bench.py


# ---------------------------------------------------------------------------------------------- model

def make_layer(cin, planes, blocks, stride):
    downsample = None
    if stride != 1 or cin != planes * 4:
        downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
    layers = [Bottleneck(cin, planes, stride, 1, downsample)]
    layers += [Bottleneck(planes * 4, planes, 1, 1, None) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class FasterRCNNC4(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = make_layer(64, 64, 3, 1)
        self.layer2 = make_layer(256, 128, 4, 2)
        self.layer3 = make_layer(512, 256, 6, 2)
        self.rpn_conv = nn.Conv2d(1024, 1024, 3, padding=1)
        self.rpn_cls = nn.Conv2d(1024, 15, 1)
        self.rpn_reg = nn.Conv2d(1024, 60, 1)
        for conv in (self.rpn_conv, self.rpn_cls, self.rpn_reg):
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.zeros_(conv.bias)
        self.layer4 = make_layer(1024, 512, 3, 2)  # shared_head.layer4 (res5)
        self.norm = nn.BatchNorm2d(2048)           # shared_head.norm
        self.fc_cls = nn.Linear(2048, CLASSES + 1)
        self.fc_reg = nn.Linear(2048, 4 * CLASSES)
        nn.init.normal_(self.fc_cls.weight, 0, 0.01)
        nn.init.normal_(self.fc_reg.weight, 0, 0.001)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.zeros_(self.fc_reg.bias)

    def trunk(self, images):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(images))), 3, 2, 1)
        return self.layer3(self.layer2(self.layer1(x)))

    def rpn(self, c4):
        h = F.relu(self.rpn_conv(c4))
        # [n, A, h, w] -> [n, h*w*A] in mmdet's permute(0, 2, 3, 1) order (location-major, anchors inside)
        logits = self.rpn_cls(h).permute(0, 2, 3, 1).reshape(c4.shape[0], -1)
        deltas = self.rpn_reg(h).permute(0, 2, 3, 1).reshape(c4.shape[0], -1, 4)
        return logits, deltas

    def roi_head(self, c4, rois):
        pooled = roi_align(c4, rois)  # [k, 1024, 14, 14] (channels_last)
        x = self.norm(self.layer4(pooled))
        x = x.mean((2, 3))
        return self.fc_cls(x), self.fc_reg(x)


# ---------------------------------------------------------------------------------------------- boxes

def anchors(height, width, stride=16):
    """mmdet AnchorGenerator(strides=[16], ratios=[0.5, 1, 2], scales=[2, 4, 8, 16, 32]), centre offset 0."""
    scales = torch.tensor([2.0, 4.0, 8.0, 16.0, 32.0])
    h_ratios = torch.sqrt(torch.tensor([0.5, 1.0, 2.0]))
    ws = (stride * (1 / h_ratios)[:, None] * scales[None, :]).reshape(-1)
    hs = (stride * h_ratios[:, None] * scales[None, :]).reshape(-1)
    cell = torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], -1)
    sx = torch.arange(0, width * stride, stride, dtype=torch.float32)
    sy = torch.arange(0, height * stride, stride, dtype=torch.float32)
    yy, xx = torch.meshgrid(sy, sx, indexing="ij")
    shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], 1)
    return (shifts[:, None, :] + cell[None]).reshape(-1, 4)


def box_iou(a, b):
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def bbox2delta(proposals, gt, stds):
    pw, ph = proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]
    px, py = (proposals[:, 0] + proposals[:, 2]) * 0.5, (proposals[:, 1] + proposals[:, 3]) * 0.5
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = (gt[:, 0] + gt[:, 2]) * 0.5, (gt[:, 1] + gt[:, 3]) * 0.5
    deltas = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], 1)
    return deltas / torch.tensor(stds)


def delta2bbox(rois, deltas, stds, height, width):
    """mmdet 2.x delta2bbox: deltas [k, 4j] on rois [k, 4], dw/dh clamped at +-log(1000/16), clipped to the image."""
    d = deltas * torch.tensor(stds).repeat(deltas.shape[1] // 4)
    max_ratio = abs(math.log(16 / 1000))
    dx, dy = d[:, 0::4], d[:, 1::4]
    dw, dh = d[:, 2::4].clamp(-max_ratio, max_ratio), d[:, 3::4].clamp(-max_ratio, max_ratio)
    px, py = ((rois[:, 0] + rois[:, 2]) * 0.5)[:, None], ((rois[:, 1] + rois[:, 3]) * 0.5)[:, None]
    pw, ph = (rois[:, 2] - rois[:, 0])[:, None], (rois[:, 3] - rois[:, 1])[:, None]
    gw, gh = pw * dw.exp(), ph * dh.exp()
    gx, gy = px + pw * dx, py + ph * dy
    x1, x2 = (gx - gw * 0.5).clamp(0, width), (gx + gw * 0.5).clamp(0, width)
    y1, y2 = (gy - gh * 0.5).clamp(0, height), (gy + gh * 0.5).clamp(0, height)
    return torch.stack([x1, y1, x2, y2], -1).reshape(deltas.shape)


def nms(boxes, scores, threshold, limit=None):
    """torchvision nms_kernel.cpp: visit in a stable descending score order, keep a box unless a kept box overlaps it
    with IoU > threshold (areas without +1); stop after `limit` kept boxes."""
    order = torch.sort(scores, stable=True, descending=True).indices
    b = boxes[order]
    x1, y1, x2, y2 = b.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    limit = len(order) if limit is None else limit
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= limit:
            break
        w = (torch.min(x2[i], x2[i + 1:]) - torch.max(x1[i], x1[i + 1:])).clamp(min=0)
        h = (torch.min(y2[i], y2[i + 1:]) - torch.max(y1[i], y1[i + 1:])).clamp(min=0)
        inter = w * h
        suppressed[i + 1:] |= inter / (areas[i] + areas[i + 1:] - inter) > threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def max_iou_assign(boxes, gt, pos_thr, neg_thr, min_pos, low_quality):
    """mmdet MaxIoUAssigner: -1 ignore, 0 negative, i + 1 = matched to GT i."""
    overlaps = box_iou(gt, boxes)  # [g, k]
    assigned = torch.full((boxes.shape[0],), -1, dtype=torch.long)
    max_overlaps, argmax = overlaps.max(0)
    assigned[(max_overlaps >= 0) & (max_overlaps < neg_thr)] = 0
    positive = max_overlaps >= pos_thr
    assigned[positive] = argmax[positive] + 1
    if low_quality:
        gt_max = overlaps.max(1).values
        for i in range(gt.shape[0]):
            if gt_max[i] >= min_pos:
                assigned[overlaps[i] == gt_max[i]] = i + 1
    return assigned


def random_sample(assigned, num, pos_fraction, generator):
    """mmdet RandomSampler (neg_pos_ub -1): up to num * pos_fraction positives, the rest negatives, by randperm."""
    pos = torch.nonzero(assigned > 0).flatten()
    neg = torch.nonzero(assigned == 0).flatten()
    expected = int(num * pos_fraction)
    if len(pos) > expected:
        pos = pos[torch.randperm(len(pos), generator=generator)[:expected]]
    if len(neg) > num - len(pos):
        neg = neg[torch.randperm(len(neg), generator=generator)[:num - len(pos)]]
    return pos, neg


def proposals(logits, deltas, all_anchors, nms_pre, max_per_img):
    """mmdet RPNHead._get_bboxes_single for one image and one level (no gradient)."""
    scores = logits.sigmoid()
    scores, top = scores.sort(descending=True)
    scores, top = scores[:nms_pre], top[:nms_pre]
    boxes = delta2bbox(all_anchors[top], deltas[top], [1.0, 1.0, 1.0, 1.0], IMAGE_HEIGHT, IMAGE_WIDTH)
    valid = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    boxes, scores = boxes[valid], scores[valid]
    return boxes[nms(boxes, scores, 0.7, limit=max_per_img)]


# ---------------------------------------------------------------------------------------------- RoIAlign

def roi_align_weights(starts, ends, size, out=14):
    """Per roi the [out, size] matrix of one axis's averaged bilinear weights (aligned=True, sampling_ratio 0):
    sample (p, i) at start + p*bin + (i + 0.5)*bin/grid, grid = ceil(roi / out); < -1 or > size contributes 0,
    else clamped to >= 0 and snapped to size - 1 at the far edge (roi_align_kernel.cpp bilinear_interpolate)."""
    k = starts.shape[0]
    length = ends - starts
    bin_ = length / out
    grid = torch.ceil(length / out).clamp(min=0)
    big = max(int(grid.max()), 1)
    p = torch.arange(out, dtype=torch.float32)[None, :, None]
    i = torch.arange(big, dtype=torch.float32)[None, None, :]
    step = bin_[:, None, None]
    coord = starts[:, None, None] + p * step + (i + 0.5) * step / grid.clamp(min=1)[:, None, None]
    inside = (i < grid[:, None, None]) & ~((coord < -1.0) | (coord > size))
    c = coord.clamp(min=0)
    low = c.long().clamp(max=size - 1)
    snap = c.long() >= size - 1
    high = torch.where(snap, low, low + 1)
    frac = torch.where(snap, torch.zeros_like(c), c - low.float())
    scale = inside.float() / grid.clamp(min=1)[:, None, None]
    weights = torch.zeros(k, out, size + 1)
    weights.scatter_add_(2, low.reshape(k, out, -1), ((1 - frac) * scale).reshape(k, out, -1))
    weights.scatter_add_(2, high.reshape(k, out, -1), (frac * scale).reshape(k, out, -1))
    return weights[:, :, :size]


class RoIAlignFunction(torch.autograd.Function):
    """roi_align(features NCHW, rois [k, 5], 14, 1/16, 0, aligned=True) as Ay @ F @ Ax^T per roi on the crop of F that
    its weights touch (two small GEMMs per roi); returns [k, C, 14, 14] in channels_last memory. Time (forward +
    backward) goes to ROI_ALIGN_SECONDS."""

    @staticmethod
    def forward(ctx, features, rois):
        start = time.perf_counter()
        n, c, h, w = features.shape
        pixels = features.permute(0, 2, 3, 1).contiguous()  # [n, h, w, c]
        scaled = rois[:, 1:] / 16 - 0.5
        ay = roi_align_weights(scaled[:, 1], scaled[:, 3], h)  # [k, 14, h]
        ax = roi_align_weights(scaled[:, 0], scaled[:, 2], w)  # [k, 14, w]
        spans = support(ay) + support(ax)  # per roi (y0, y1, x0, x1), inclusive-exclusive
        out = torch.zeros(rois.shape[0], 14, 14, c)
        for r, (image, (y0, y1, x0, x1)) in enumerate(zip(rois[:, 0].long().tolist(), zip(*spans))):
            if y1 <= y0 or x1 <= x0:
                continue
            crop = pixels[image, y0:y1, x0:x1].reshape(y1 - y0, -1)           # [hs, ws*c]
            rows = (ay[r, :, y0:y1] @ crop).reshape(14, x1 - x0, c)            # [14 (p), ws, c]
            out[r] = ax[r, :, x0:x1] @ rows                                    # [14 (p), 14 (q), c]
        ctx.save_for_backward(ay, ax, rois[:, 0].long())
        ctx.spans = spans
        ctx.shape = (n, c, h, w)
        ROI_ALIGN_SECONDS[0] += time.perf_counter() - start
        return out.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad_out):
        start = time.perf_counter()
        ay, ax, images = ctx.saved_tensors
        n, c, h, w = ctx.shape
        g = grad_out.permute(0, 2, 3, 1).contiguous()  # [k, 14, 14, c]
        grad = torch.zeros(n, h, w, c)
        for r, (image, (y0, y1, x0, x1)) in enumerate(zip(images.tolist(), zip(*ctx.spans))):
            if y1 <= y0 or x1 <= x0:
                continue
            rows = ax[r, :, x0:x1].t() @ g[r]                                  # [14 (p), ws, c]
            crop = ay[r, :, y0:y1].t() @ rows.reshape(14, -1)                  # [hs, ws*c]
            grad[image, y0:y1, x0:x1] += crop.reshape(y1 - y0, x1 - x0, c)
        ROI_ALIGN_SECONDS[0] += time.perf_counter() - start
        return grad.permute(0, 3, 1, 2), None


def support(weights):
    """First and one-past-last column with a non-zero weight, per roi of [k, 14, size] weights (two lists)."""
    touched = weights.abs().sum(1) > 0  # [k, size]
    size = touched.shape[1]
    first = touched.float().argmax(1)
    last = size - touched.flip(1).float().argmax(1)
    empty = ~touched.any(1)
    return [torch.where(empty, 0, first).tolist(), torch.where(empty, 0, last).tolist()]


def roi_align(features, rois):
    return RoIAlignFunction.apply(features, rois)


def check_against_fixture_references():
    """Our RoIAlign and NMS against scripts/reference/make_detection_fixtures.py (forward, backward, kept indices)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "reference"))
    import make_detection_fixtures as reference
    g = torch.Generator().manual_seed(5)
    features = torch.randn(2, 8, 20, 24, generator=g)
    xy = torch.rand(40, 2, generator=g) * torch.tensor([300.0, 250.0])
    wh = 4 + torch.rand(40, 2, generator=g) * 200
    rois = torch.cat([torch.randint(0, 2, (40, 1), generator=g).float(), xy - 20, xy + wh], 1)
    ours_f = features.clone().requires_grad_(True)
    ref_f = features.clone().requires_grad_(True)
    ours = roi_align(ours_f, rois)
    ref = reference.roi_align(ref_f, rois, 14, 14, 1 / 16, 0, True)
    upstream = torch.randn(ref.shape, generator=g)
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    forward_error = (ours - ref).abs().max().item()
    backward_error = (ours_f.grad - ref_f.grad).abs().max().item()
    boxes = reference.random_boxes(g, 600, extent=300, max_size=80)
    scores = torch.rand(600, generator=g)
    nms_equal = nms(boxes, scores, 0.5).tolist() == reference.nms(boxes, scores, 0.5)
    assert forward_error < 1e-4 and backward_error < 1e-4 and nms_equal, \
        f"roi_align/nms disagree with the fixture references: {forward_error}, {backward_error}, {nms_equal}"
    ROI_ALIGN_SECONDS[0] = 0.0
    return f"roi_align fwd {forward_error:.1e}, bwd {backward_error:.1e}, nms equal"


# ---------------------------------------------------------------------------------------------- steps

def make_detection_step(case, channels_last):
    """Case h: one training iteration (zero grads, forward, the four losses, backward, SGD lr 0.02, momentum 0.9,
    wd 1e-4). Case i: detection on one image (eval mode, no_grad). Returns (step, trainable scalars, check)."""
    check = check_against_fixture_references()
    torch.manual_seed(0)
    model = FasterRCNNC4()
    images = torch.randn(1, 3, PADDED_HEIGHT, IMAGE_WIDTH)
    images[:, :, IMAGE_HEIGHT:] = 0  # mmdet's Pad after Normalize: zeros
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    gt = torch.tensor(GT_BOXES)
    gt_labels = torch.tensor(GT_LABELS)
    grid_anchors = anchors(PADDED_HEIGHT // 16, IMAGE_WIDTH // 16)
    inside = ((grid_anchors[:, 0] >= 0) & (grid_anchors[:, 1] >= 0) & (grid_anchors[:, 2] < IMAGE_WIDTH)
              & (grid_anchors[:, 3] < IMAGE_HEIGHT))
    inside_index = torch.nonzero(inside).flatten()
    sampler = torch.Generator().manual_seed(1)
    trainable = sum(p.numel() for p in model.parameters())

    if case == "i":
        model.eval()
        with torch.no_grad():
            model.fc_cls.bias[:INFERENCE_BIASED_CLASSES] += INFERENCE_CLASS_BIAS

        def step():
            with torch.no_grad():
                c4 = model.trunk(images)
                logits, deltas = model.rpn(c4)
                boxes = proposals(logits[0], deltas[0], grid_anchors, 6000, 1000)
                rois = torch.cat([torch.zeros(len(boxes), 1), boxes], 1)
                cls, reg = model.roi_head(c4, rois)
                scores = F.softmax(cls, -1)[:, :CLASSES]
                decoded = delta2bbox(boxes, reg, [0.1, 0.1, 0.2, 0.2], IMAGE_HEIGHT, IMAGE_WIDTH)
                decoded = decoded.reshape(-1, CLASSES, 4)
                keep = scores > 0.05  # multiclass_nms: (roi, class) pairs above score_thr, row-major
                roi_index, label = torch.nonzero(keep, as_tuple=True)
                candidates, candidate_scores = decoded[roi_index, label], scores[roi_index, label]
                offset = label[:, None].float() * (candidates.max() + 1)  # mmcv batched_nms: one NMS, classes apart
                kept = nms(candidates + offset, candidate_scores, 0.5, limit=100)
                return candidates[kept], candidate_scores[kept], label[kept]
        return step, trainable, check

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)

    def step():
        c4 = model.trunk(images)
        logits, deltas = model.rpn(c4)
        # RPN targets and loss on the anchors inside the unpadded image (allowed_border 0)
        assigned = max_iou_assign(grid_anchors[inside_index], gt, 0.7, 0.3, 0.3, True)
        pos, neg = random_sample(assigned, 256, 0.5, sampler)
        sampled = len(pos) + len(neg)
        pos_anchor, neg_anchor = inside_index[pos], inside_index[neg]
        cls_logits = torch.cat([logits[0, pos_anchor], logits[0, neg_anchor]])
        cls_targets = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
        rpn_cls = F.binary_cross_entropy_with_logits(cls_logits, cls_targets, reduction="sum") / sampled
        targets = bbox2delta(grid_anchors[pos_anchor], gt[assigned[pos] - 1], [1.0, 1.0, 1.0, 1.0])
        rpn_box = (deltas[0, pos_anchor] - targets).abs().sum() / sampled
        with torch.no_grad():
            boxes = proposals(logits[0].detach(), deltas[0].detach(), grid_anchors, 12000, 2000)
        # ROI targets: GT boxes first (add_gt_as_proposals), IoU 0.5, 512 at 0.25
        candidates = torch.cat([gt, boxes])
        roi_assigned = max_iou_assign(candidates, gt, 0.5, 0.5, 0.5, False)
        rpos, rneg = random_sample(roi_assigned, 512, 0.25, sampler)
        chosen = torch.cat([rpos, rneg])
        rois = torch.cat([torch.zeros(len(chosen), 1), candidates[chosen]], 1)
        labels = torch.cat([gt_labels[roi_assigned[rpos] - 1], torch.full((len(rneg),), CLASSES)])
        cls, reg = model.roi_head(c4, rois)
        roi_cls = F.cross_entropy(cls, labels)
        roi_targets = bbox2delta(candidates[rpos], gt[roi_assigned[rpos] - 1], [0.1, 0.1, 0.2, 0.2])
        pos_reg = reg[:len(rpos)].reshape(len(rpos), CLASSES, 4)[torch.arange(len(rpos)), labels[:len(rpos)]]
        roi_box = (pos_reg - roi_targets).abs().sum() / len(chosen)
        loss = rpn_cls + rpn_box + roi_cls + roi_box
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, trainable, check
