#!/usr/bin/env python3
"""Golden fixtures for the Swift C4 ROI head of Faster R-CNN and the C4 detector around it, produced with PyTorch.

Run:  pip install torch==2.13.0+cpu safetensors numpy
      python3 scripts/reference/make_roi_head_fixtures.py [--out Tests/ModelsTests/Fixtures]

Writes roi_head_tiny.safetensors and faster_rcnn_c4_tiny.safetensors (F32; `num_batches_tracked` I64; metadata: torch
version, this script). No mmdet/mmcv install is needed: the pieces below are plain-torch re-implementations of mmdet
2.x, following its code:

  assigner    core/bbox/assigners/max_iou_assigner.py `assign_wrt_overlaps` (pos_iou_thr 0.5, neg_iou_thr 0.5,
              min_pos_iou 0.5, match_low_quality False): max/argmax over the GT axis of bbox_overlaps (no +1);
              0 <= max < 0.5 -> 0 (negative), max >= 0.5 -> argmax + 1.
  sampler     core/bbox/samplers/base_sampler.py + random_sampler.py (num, pos_fraction 0.25, add_gt_as_proposals):
              GT boxes PREPENDED to the proposals (`add_gt_`: each GT is a positive of itself); positives = first
              int(num * 0.25) of a numpy shuffle when there are more, all otherwise, then `unique()` (ascending);
              negatives likewise with num - #positives. numpy RandomState draws; the indices are stored.
  targets     bbox_heads/bbox_head.py `_get_target_single`: labels = GT class (0-based) for positives, num_classes
              (background LAST) for negatives; DeltaXYWHBBoxCoder.encode (bbox2delta, means 0, stds .1 .1 .2 .2).
  roi feats   roi_extractors/single_level_roi_extractor.py, one level: RoIAlign(14, spatial_scale 1/16,
              sampling_ratio 0, aligned True) = torchvision roi_align (the autograd-differentiable reference of
              make_detection_fixtures.py), rois = bbox2roi (image index, x1, y1, x2, y2) image by image.
  shared head MMSelfSup tools/benchmarks/mmdetection/res_layer_extra_norm.py `ResLayerExtraNorm`: res5 (mmdet
              ResLayer(depth 50, stage 3, stride 2), Bottleneck 'pytorch' style) then `norm` (BatchNorm, no ReLU).
  bbox head   BBoxHead(with_avg_pool=True, roi_feat_size 7): AvgPool2d(7), fc_cls (classes + 1), fc_reg (4 * classes).
  losses      BBoxHead.loss: CrossEntropyLoss mean over the sampled rois (avg_factor = #sampled); L1Loss on the
              positives' deltas of their GT class, summed / #sampled rois of the batch.
  test time   BBoxHead.get_bboxes: softmax, delta2bbox (dw/dh clamped to +-log(1000/16), clipped to the image),
              core/post_processing/bbox_nms.py multiclass_nms: scores[:, :-1] > score_thr, mmcv batched_nms (boxes
              offset by label * (max coordinate + 1), one NMS: IoU > thr suppresses, stable descending sort),
              first max_per_img.

Weights: torch's default conv init, every BatchNorm re-randomised (weight U(0.5, 1.5), bias N(0, 0.1), running_mean
N(0, 0.1), running_var U(0.5, 1.5)); fc_cls and fc_reg weights and biases N(0, 0.1^2) instead of mmdet's N(0, 0.01^2)
/ N(0, 0.001^2) and 0, so the heads pass gradients of a useful size back to the features.

roi_head_tiny.safetensors (the head alone, 3 classes; res5 = ResNet-50 width 1/32 layer4: 32 -> 64 channels):
  init.<key>             head parameters and buffers, keys relative to `roi_head.` (shared_head.layer4.*,
                         shared_head.norm.*, bbox_head.fc_cls.*, bbox_head.fc_reg.*).
  input.features         [2, 32, 6, 8] C4 features (NCHW); images 96x128 and 80x112 (second one padded).
  input.proposals{0,1}   [p, 4] proposals per image; input.gt_boxes{i} [g, 4]; input.gt_labels{i} [g] (F32).
  assign.labels{i}       [g + p] per candidate (GT first): 1 positive, 0 negative, -1 ignored.
  assign.matched{i}      [g + p] the matched GT index (argmax; self for GT candidates).
  sample.positive{i}     sampled positive candidate indices (ascending); sample.negative{i} likewise (F32).
  target.labels          [k] the sampled rois' labels (3 = background); target.deltas [k, 4] (0 for negatives).
  rois                   [k, 5] the sampled rois.
  train.class_logits     [k, 4], train.box_deltas [k, 12] (train mode: batch statistics over the k rois).
  loss.cls, loss.bbox    [1] each.
  grad.<key>             d(loss.cls + loss.bbox)/d parameter; grad.features [2, 32, 6, 8] NCHW.
  eval.class_logits      [k, 4], eval.box_deltas [k, 12]: the initial head in eval mode (running statistics).
  test.logits [30, 4], test.deltas [30, 12], test.proposals [30, 4] (image 100 x 150, some deltas past the clamp):
  test.boxes [d, 4], test.scores [d], test.labels [d] (F32): get_bboxes + multiclass_nms with score_thr 0.05,
                         NMS 0.5, max_per_img 10.

faster_rcnn_c4_tiny.safetensors (the detector without its RPN, 3 classes: ResNet-50 width 1/32 stem..layer3 trunk,
layer4 as the shared head; BN in train mode everywhere; images 64x96 and 56x80 padded to [2, 3, 64, 96]):
  init.<key>             mmdet names: backbone.{conv1,bn1,layer1..3}.*, roi_head.shared_head.{layer4,norm}.*,
                         roi_head.bbox_head.{fc_cls,fc_reg}.*.
  input.images           [2, 3, 64, 96]; input.proposals{i}, input.gt_boxes{i}, input.gt_labels{i};
  sample.positive{i}, sample.negative{i} as above; train.c4 [2, 32, 4, 6] (layer3 output);
  loss.cls, loss.bbox;   grad.<key> for every parameter;
  truth.grad.<key>       the same gradients computed in float64 (a deep copy of the model in .double()), stored F32.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_detection_fixtures import roi_align  # noqa: E402  (torchvision's kernel in torch ops, differentiable)
from make_fcn_fixtures import Bottleneck, DilatedResNet  # noqa: E402  (torchvision/mmdet Bottleneck, 'pytorch')

SCRIPT = "scripts/reference/make_roi_head_fixtures.py"
CLASSES = 3
STDS = torch.tensor([0.1, 0.1, 0.2, 0.2])


# ------------------------------------------------------------------------------------------------ the head

class ROIHead(nn.Module):
    """StandardRoIHead with ResLayerExtraNorm (layer4 + norm) and BBoxHead(with_avg_pool=True)."""

    def __init__(self, layer4, channels, classes):
        super().__init__()
        self.shared_head = nn.Module()
        self.shared_head.layer4 = layer4
        self.shared_head.norm = nn.BatchNorm2d(channels)
        self.bbox_head = nn.Module()
        self.bbox_head.fc_cls = nn.Linear(channels, classes + 1)
        self.bbox_head.fc_reg = nn.Linear(channels, 4 * classes)

    def forward(self, features, rois):
        x = roi_align(features, rois, 14, 14, 1.0 / 16, 0, True)
        x = self.shared_head.norm(self.shared_head.layer4(x))
        x = F.avg_pool2d(x, 7).flatten(1)
        return self.bbox_head.fc_cls(x), self.bbox_head.fc_reg(x)


def make_layer4(cin, planes):
    downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, 2, bias=False), nn.BatchNorm2d(planes * 4))
    blocks = [Bottleneck(cin, planes, 2, 1, downsample)] + [Bottleneck(planes * 4, planes, 1, 1, None) for _ in range(2)]
    return nn.Sequential(*blocks)


def randomise(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, 0.1)
                m.bias.normal_(0.0, 0.1)


# ------------------------------------------------------------------------------------------------ targets

def bbox_overlaps(a, b):
    """mmdet bbox_overlaps(mode='iou'), no +1: [len(a), len(b)]."""
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area2 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = torch.clamp(area1[:, None] + area2[None, :] - overlap, min=1e-6)
    return overlap / union


def assign(proposals, gt_boxes):
    """MaxIoUAssigner (0.5 / 0.5, no low-quality matches) then add_gt_: (gt_inds over GT + proposals)."""
    overlaps = bbox_overlaps(gt_boxes, proposals)
    max_overlaps, argmax = overlaps.max(dim=0)
    gt_inds = torch.full((len(proposals),), -1, dtype=torch.long)
    gt_inds[(max_overlaps >= 0) & (max_overlaps < 0.5)] = 0
    pos = max_overlaps >= 0.5
    gt_inds[pos] = argmax[pos] + 1
    gt_inds = torch.cat([torch.arange(1, len(gt_boxes) + 1), gt_inds])
    matched = torch.cat([torch.arange(len(gt_boxes)), argmax])
    return gt_inds, matched


def random_choice(rng, gallery, num):
    cands = np.arange(len(gallery))
    rng.shuffle(cands)
    return gallery[torch.from_numpy(cands[:num]).long()]


def sample(rng, gt_inds, num, pos_fraction=0.25):
    pos = torch.nonzero(gt_inds > 0).squeeze(1)
    expected = int(num * pos_fraction)
    if len(pos) > expected:
        pos = random_choice(rng, pos, expected)
    pos = pos.unique()
    neg = torch.nonzero(gt_inds == 0).squeeze(1)
    if len(neg) > num - len(pos):
        neg = random_choice(rng, neg, num - len(pos))
    return pos, neg.unique()


def bbox2delta(proposals, gt):
    px, py = (proposals[:, 0] + proposals[:, 2]) * 0.5, (proposals[:, 1] + proposals[:, 3]) * 0.5
    pw, ph = proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]
    gx, gy = (gt[:, 0] + gt[:, 2]) * 0.5, (gt[:, 1] + gt[:, 3]) * 0.5
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    deltas = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], -1)
    return deltas / STDS


def targets_for_batch(rng, proposals, gt_boxes, gt_labels, num):
    """Per image: assignment, sampled indices, candidate boxes, labels, deltas; then bbox2roi."""
    out, rois, labels, deltas = [], [], [], []
    for i, (props, gts, cls) in enumerate(zip(proposals, gt_boxes, gt_labels)):
        gt_inds, matched = assign(props, gts)
        pos, neg = sample(rng, gt_inds, num)
        candidates = torch.cat([gts, props])
        chosen = torch.cat([pos, neg])
        boxes = candidates[chosen]
        rois.append(torch.cat([torch.full((len(chosen), 1), float(i)), boxes], 1))
        labels.append(torch.cat([cls[gt_inds[pos] - 1], torch.full((len(neg),), CLASSES, dtype=torch.long)]))
        d = torch.zeros(len(chosen), 4)
        d[:len(pos)] = bbox2delta(candidates[pos], gts[gt_inds[pos] - 1])
        deltas.append(d)
        labels_out = torch.where(gt_inds > 0, 1, torch.where(gt_inds == 0, 0, -1))
        out.append((labels_out, matched, pos, neg))
        assert len(pos) > 0 and len(neg) > 0
    return out, torch.cat(rois), torch.cat(labels), torch.cat(deltas)


def roi_losses(class_logits, box_deltas, labels, deltas):
    k = len(labels)
    loss_cls = F.cross_entropy(class_logits, labels)
    pos = labels < CLASSES
    pred = box_deltas.view(k, -1, 4)[pos, labels[pos]]
    loss_bbox = (pred - deltas[pos]).abs().sum() / k
    return loss_cls, loss_bbox


# ------------------------------------------------------------------------------------------------ test time

def delta2bbox(rois, deltas, max_shape):
    denorm = deltas * STDS.repeat(deltas.size(-1) // 4)
    dx, dy, dw, dh = denorm[:, 0::4], denorm[:, 1::4], denorm[:, 2::4], denorm[:, 3::4]
    px = ((rois[:, 0] + rois[:, 2]) * 0.5)[:, None].expand_as(dx)
    py = ((rois[:, 1] + rois[:, 3]) * 0.5)[:, None].expand_as(dy)
    pw = (rois[:, 2] - rois[:, 0])[:, None].expand_as(dw)
    ph = (rois[:, 3] - rois[:, 1])[:, None].expand_as(dh)
    max_ratio = np.abs(np.log(16 / 1000))
    dw, dh = dw.clamp(min=-max_ratio, max=max_ratio), dh.clamp(min=-max_ratio, max=max_ratio)
    gw, gh = pw * dw.exp(), ph * dh.exp()
    gx, gy = px + pw * dx, py + ph * dy
    boxes = torch.stack([gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5], -1).view(deltas.size())
    max_xy = torch.tensor([max_shape[1], max_shape[0]] * (deltas.size(-1) // 2), dtype=torch.float32)
    boxes = torch.where(boxes < 0, torch.zeros(()), boxes)
    return torch.where(boxes > max_xy, max_xy, boxes)


def nms(boxes, scores, threshold):
    """mmcv nms (offset 0): descending score order, a box with IoU > threshold with a kept box is dropped."""
    order = torch.sort(scores, stable=True, descending=True).indices
    x1, y1, x2, y2 = boxes[order].unbind(1)
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
        suppressed[i + 1:] |= (inter / (areas[i] + areas[i + 1:] - inter) > threshold).numpy()
    return torch.tensor(keep, dtype=torch.long)


def get_bboxes(logits, deltas, proposals, img_shape, score_thr, iou_thr, max_per_img):
    scores = F.softmax(logits, dim=-1)
    boxes = delta2bbox(proposals, deltas, img_shape)
    boxes = boxes.view(len(proposals), -1, 4)
    fg = scores[:, :-1]
    valid = fg > score_thr
    b, s = boxes[valid], fg[valid]
    labels = valid.nonzero()[:, 1]
    offsets = labels.to(b) * (b.max() + 1)
    keep = nms(b + offsets[:, None], s, iou_thr)[:max_per_img]
    return b[keep], s[keep], labels[keep]


# ------------------------------------------------------------------------------------------------ inputs

def jittered_proposals(g, gts, height, width, per_gt, extra):
    rows = []
    for box in gts:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        w, h = box[2] - box[0], box[3] - box[1]
        for _ in range(per_gt):
            j = torch.randn(4, generator=g) * torch.tensor([0.15, 0.15, 0.2, 0.2])
            nw, nh = w * torch.exp(j[2]), h * torch.exp(j[3])
            nx, ny = cx + j[0] * w, cy + j[1] * h
            rows.append(torch.stack([nx - nw / 2, ny - nh / 2, nx + nw / 2, ny + nh / 2]))
    for _ in range(extra):
        c = torch.rand(2, generator=g) * torch.tensor([width, height])
        s = 6 + torch.rand(2, generator=g) * torch.tensor([width, height]) * 0.4
        rows.append(torch.cat([c - s / 2, c + s / 2]))
    boxes = torch.stack(rows)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return boxes


def snapshot(state, prefix, out):
    for k, v in state.items():
        t = v.detach().clone().contiguous()
        if t.is_floating_point():
            t = t.to(torch.float32)
        else:
            assert k.endswith("num_batches_tracked"), k
            t = t.to(torch.int64)
        out[f"{prefix}.{k}"] = t


def store_inputs(out, proposals, gt_boxes, gt_labels, assignments):
    for i, (props, gts, cls, (labels, matched, pos, neg)) in enumerate(zip(proposals, gt_boxes, gt_labels,
                                                                            assignments)):
        out[f"input.proposals{i}"] = props.clone()
        out[f"input.gt_boxes{i}"] = gts.clone()
        out[f"input.gt_labels{i}"] = cls.to(torch.float32)
        out[f"assign.labels{i}"] = labels.to(torch.float32)
        out[f"assign.matched{i}"] = matched.to(torch.float32)
        out[f"sample.positive{i}"] = pos.to(torch.float32)
        out[f"sample.negative{i}"] = neg.to(torch.float32)


def head_fixture(out):
    torch.manual_seed(16)
    head = ROIHead(make_layer4(32, 16), 64, CLASSES)
    randomise(head)
    g = torch.Generator().manual_seed(161)
    features = torch.randn(2, 32, 6, 8, generator=g)
    sizes = [(96, 128), (80, 112)]
    gt_boxes = [torch.tensor([[10., 12., 60., 70.], [50., 30., 120., 90.], [5., 60., 40., 95.]]),
                torch.tensor([[20., 10., 90., 60.], [60., 40., 110., 78.]])]
    gt_labels = [torch.tensor([0, 2, 1]), torch.tensor([1, 1])]
    proposals = [jittered_proposals(g, gts, h, w, 5, 8) for gts, (h, w) in zip(gt_boxes, sizes)]
    rng = np.random.RandomState(1616)
    assignments, rois, labels, deltas = targets_for_batch(rng, proposals, gt_boxes, gt_labels, num=16)

    snapshot(head.state_dict(), "init", out)
    out["input.features"] = features.clone()
    store_inputs(out, proposals, gt_boxes, gt_labels, assignments)
    out["target.labels"] = labels.to(torch.float32)
    out["target.deltas"] = deltas.clone()
    out["rois"] = rois.clone()

    eval_head = ROIHead(make_layer4(32, 16), 64, CLASSES)
    eval_head.load_state_dict(head.state_dict())
    eval_head.eval()
    with torch.no_grad():
        logits, box = eval_head(features, rois)
    out["eval.class_logits"], out["eval.box_deltas"] = logits.clone(), box.clone()

    head.train()
    x = features.clone().requires_grad_(True)
    logits, box = head(x, rois)
    loss_cls, loss_bbox = roi_losses(logits, box, labels, deltas)
    (loss_cls + loss_bbox).backward()
    out["train.class_logits"], out["train.box_deltas"] = logits.detach().clone(), box.detach().clone()
    out["loss.cls"], out["loss.bbox"] = loss_cls.detach().reshape(1), loss_bbox.detach().reshape(1)
    for k, p in head.named_parameters():
        out[f"grad.{k}"] = p.grad.detach().clone().contiguous()
    out["grad.features"] = x.grad.detach().clone()
    print(f"head: {len(rois)} rois, loss_cls {loss_cls.item():.6f} loss_bbox {loss_bbox.item():.6f}")

    # Test time on fixed outputs.
    centres = torch.tensor([[30., 30.], [90., 40.], [60., 75.], [120., 20.]])
    rows = []
    for i in range(30):
        c = centres[i % 4] + torch.randn(2, generator=g) * 4
        s = torch.tensor([30., 24.]) * torch.exp(torch.randn(2, generator=g) * 0.2)
        rows.append(torch.cat([c - s / 2, c + s / 2]))
    test_proposals = torch.stack(rows)
    test_logits = torch.randn(30, CLASSES + 1, generator=g) * 2
    test_deltas = torch.randn(30, 4 * CLASSES, generator=g) * 0.5
    test_deltas[3, 2], test_deltas[7, 7], test_deltas[11, 10] = -30.0, 25.0, -22.0  # past +-log(1000/16) / 0.2
    boxes, scores, det_labels = get_bboxes(test_logits, test_deltas, test_proposals, (100, 150), 0.05, 0.5, 10)
    out["test.logits"], out["test.deltas"], out["test.proposals"] = test_logits, test_deltas, test_proposals
    out["test.boxes"], out["test.scores"], out["test.labels"] = boxes, scores, det_labels.to(torch.float32)
    print(f"test: {len(scores)} detections")


# ------------------------------------------------------------------------------------------------ detector

class C4Detector(nn.Module):
    """mmdet FasterRCNN(backbone=ResNet(num_stages=3, out_indices=(2,)), roi_head) without the RPN."""

    def __init__(self, width):
        super().__init__()
        resnet = DilatedResNet(width, strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1), contract_dilation=False)
        layer4 = resnet.layer4
        del resnet.layer4
        self.backbone = resnet
        self.roi_head = ROIHead(layer4, int(512 * width) * 4, CLASSES)

    def c4(self, images):
        b = self.backbone
        x = b.maxpool(F.relu(b.bn1(b.conv1(images))))
        return b.layer3(b.layer2(b.layer1(x)))


def detector_fixture(out):
    torch.manual_seed(17)
    model = C4Detector(1 / 32)
    randomise(model)
    g = torch.Generator().manual_seed(171)
    images = torch.randn(2, 3, 64, 96, generator=g)
    images[1, :, 56:, :] = 0
    images[1, :, :, 80:] = 0
    sizes = [(64, 96), (56, 80)]
    gt_boxes = [torch.tensor([[8., 6., 40., 50.], [44., 20., 90., 60.]]),
                torch.tensor([[10., 12., 50., 40.], [30., 30., 76., 54.]])]
    gt_labels = [torch.tensor([2, 0]), torch.tensor([1, 2])]
    proposals = [jittered_proposals(g, gts, h, w, 5, 8) for gts, (h, w) in zip(gt_boxes, sizes)]
    rng = np.random.RandomState(1717)
    assignments, rois, labels, deltas = targets_for_batch(rng, proposals, gt_boxes, gt_labels, num=16)

    snapshot(model.state_dict(), "init", out)
    out["input.images"] = images.clone()
    store_inputs(out, proposals, gt_boxes, gt_labels, assignments)

    model.train()
    c4 = model.c4(images)
    logits, box = model.roi_head(c4, rois)
    loss_cls, loss_bbox = roi_losses(logits, box, labels, deltas)
    (loss_cls + loss_bbox).backward()
    out["train.c4"] = c4.detach().clone()
    out["loss.cls"], out["loss.bbox"] = loss_cls.detach().reshape(1), loss_bbox.detach().reshape(1)
    for k, p in model.named_parameters():
        assert p.grad is not None, k
        out[f"grad.{k}"] = p.grad.detach().clone().contiguous()
    # The same gradients in float64 (rounded to F32 once): the oracle the test judges ours against, relative to how
    # far PyTorch's own float32 gradients above lie from it (some are sums of thousands of terms of both signs).
    truth = copy.deepcopy(model).double()
    truth.zero_grad(set_to_none=True)
    truth.train()
    logits64, box64 = truth.roi_head(truth.c4(images.double()), rois.double())
    loss_cls64, loss_bbox64 = roi_losses(logits64, box64, labels, deltas.double())
    (loss_cls64 + loss_bbox64).backward()
    for k, p in truth.named_parameters():
        out[f"truth.grad.{k}"] = p.grad.detach().to(torch.float32).contiguous()
    print(f"detector: {len(rois)} rois, loss_cls {loss_cls.item():.6f} loss_bbox {loss_bbox.item():.6f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Tests", "ModelsTests", "Fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    meta = {"script": SCRIPT, "torch_version": torch.__version__}
    for name, build in (("roi_head_tiny", head_fixture), ("faster_rcnn_c4_tiny", detector_fixture)):
        out = {}
        build(out)
        path = os.path.join(args.out, f"{name}.safetensors")
        save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
        print(f"{os.path.relpath(path, root)}: {len(out)} tensors, {os.path.getsize(path) / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
