#!/usr/bin/env python3
"""Golden fixtures for Mask R-CNN's mask branch (Swift: ConvTranspose2D, FCNMaskHead, maskTargets,
maskCrossEntropyLoss, pasteMasks), produced with PyTorch.

Run:  pip install torch==2.13.0+cpu numpy pycocotools
      python3 scripts/reference/make_mask_head_fixtures.py

Writes Tests/LayersTests/Fixtures/conv_transpose.json and Tests/ModelsTests/Fixtures/detection/mask_head.json.
No mmdet/mmcv install is needed: the pieces below are plain-torch re-implementations of mmdet 2.x (v2.25), following
its code:

  deconv      torch.nn.functional.conv_transpose2d itself (nn.ConvTranspose2d), several kernel / stride / padding /
              output_padding / dilation settings; autograd gradients of input, weight [in, out, kh, kw] and bias.
  mask head   roi_heads/mask_heads/fcn_mask_head.py FCNMaskHead.forward: num_convs x mmcv ConvModule(3x3, padding 1,
              conv -> norm -> ReLU; conv without bias when normed, with bias otherwise), upsample =
              ConvTranspose2d(c, c, 2, stride 2) + ReLU, conv_logits = Conv2d(c, classes, 1). BatchNorm in train mode
              (batch statistics over the k rois; SyncBN on one process), eps 1e-5, momentum 0.1.
  targets     core/mask/mask_target.py mask_target_single: pos boxes clipped with np.clip to [0, padded w] / [0, padded
              h]; core/mask/structures.py BitmapMasks.crop_and_resize: the masks (zero-padded to the pad size as
              mmdet's Pad does) index_select'ed by the assigned GT, mmcv roi_align(out, 1.0, 0, 'avg', aligned=True)
              with fake batch indices 0..k-1 (= make_detection_fixtures.roi_align, torchvision's CPU kernel, which
              mmcv's aligned CPU kernel equals), then >= 0.5.
  loss        losses/cross_entropy_loss.py mask_cross_entropy: pred[arange(k), labels], binary_cross_entropy_with_logits
              mean over all k*S*S values, loss weight 1; autograd through the whole head.
  paste       FCNMaskHead.get_seg_masks (rescale=True, CPU: one box per chunk) + _do_paste_mask(skip_empty=True):
              sigmoid, the label's channel, boxes / scale_factor (float32 [w, h, w, h]), integer window
              floor(x0)-1 .. ceil(x1)+1 clamped, grid (i + 0.5 - x0) / (x1 - x0) * 2 - 1 with inf -> 0,
              F.grid_sample(align_corners=False) itself, then >= mask_thr_binary 0.5.

Weights: the head's convs, upsample and conv_logits drawn N(0, 0.3^2) with biases N(0, 0.1^2) (instead of mmdet's
kaiming init and zero biases, so every bias gradient path is exercised), every BatchNorm re-randomised (weight U(0.5,
1.5), bias N(0, 0.1), running_mean N(0, 0.1), running_var U(0.5, 1.5)).

Layout in the JSON: activations NHWC flattened (ROI features [k, h, w, c], logits [k, S, S, classes], targets
[k, S, S]); parameters in PyTorch's state-dict layout with their shape (conv OIHW, deconv [in, out, kh, kw]); masks and
pasted maps row-major [h, w].

conv_transpose.json: cases[] with in/out channels, kernel, stride, padding, output_padding, dilation, input_shape
(NHWC), input, weight (PyTorch layout), bias, output, output_gradient (the upstream gradient), input_gradient,
weight_gradient (PyTorch layout), bias_gradient.

mask_head.json:
  head        config; parameter_names (state-dict order) and parameters {name: {shape, value}} (names relative to
              roi_head.mask_head.); features [5, 7, 7, 6];
              logits [5, 14, 14, 3] (train mode); labels; targets [5, 14, 14] (from `targets_small`); loss;
              gradients {name: value} in PyTorch layout; feature_gradient; running statistics after the step
              (running {name: value}); eval_logits (the initial head in eval mode).
  plain_head  the same without norm (2 convs with bias): logits, loss, gradients, feature_gradient.
  targets_small  the 5 training rois' targets at 14x14 (two images concatenated, as mask_target does).
  targets     one image, mask size 28: masks [g][h*w] at the unpadded size, padded size, boxes [p, 4], assigned,
              soft (the roi_align values), binary.
  paste       logits [5, 28, 28, 2], boxes [5, 4], labels, scale_factor [w, h], original size, probabilities
              [5][h*w] (pasted, before the threshold), masks [5][h*w], rles (pycocotools' compressed counts of each
              mask, as mmdet's encode_mask_results makes them).
"""
import json
import os
import sys

import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_detection_fixtures import roi_align  # noqa: E402  (torchvision's CPU kernel in torch ops)

torch.set_num_threads(1)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = "scripts/reference/make_mask_head_fixtures.py"


def flat(t):
    return [float(str(np.float32(v))) for v in torch.as_tensor(t).detach().reshape(-1).tolist()]


def nhwc(t):
    return flat(t.detach().permute(0, 2, 3, 1))


# --------------------------------------------------------------------------------------------------- deconv
def conv_transpose_cases(g):
    cases = []
    settings = [  # (in, out, k, stride, padding, output_padding, dilation, n, h, w)
        (3, 4, 2, 2, 0, 0, 1, 2, 5, 4),   # the mask head's upsampler (taps do not overlap)
        (2, 3, 3, 2, 1, 1, 1, 2, 4, 3),   # overlapping taps, padding, output padding
        (3, 2, 3, 1, 0, 0, 1, 1, 4, 5),   # stride 1: a "full" convolution
        (2, 3, 3, 3, 2, 1, 2, 1, 3, 4),   # dilation 2, stride 3
        (2, 2, 4, 2, 1, 0, 1, 2, 3, 3),   # kernel 4 stride 2 padding 1 (exact doubling, DCGAN-style)
    ]
    for cin, cout, k, s, p, op, d, n, h, w in settings:
        x = torch.randn(n, cin, h, w, generator=g).requires_grad_(True)
        weight = (torch.randn(cin, cout, k, k, generator=g) * 0.5).requires_grad_(True)
        bias = (torch.randn(cout, generator=g) * 0.1).requires_grad_(True)
        y = F.conv_transpose2d(x, weight, bias, stride=s, padding=p, output_padding=op, dilation=d)
        upstream = torch.randn(y.shape, generator=g)
        (y * upstream).sum().backward()
        cases.append({"in_channels": cin, "out_channels": cout, "kernel_size": k, "stride": s, "padding": p,
                      "output_padding": op, "dilation": d, "input_shape": [n, h, w, cin],
                      "output_shape": [n, y.shape[2], y.shape[3], cout],
                      "input": nhwc(x), "weight": flat(weight), "bias": flat(bias), "output": nhwc(y),
                      "output_gradient": nhwc(upstream), "input_gradient": nhwc(x.grad),
                      "weight_gradient": flat(weight.grad), "bias_gradient": flat(bias.grad)})
    return cases


# --------------------------------------------------------------------------------------------------- mask head
class ConvModule(torch.nn.Module):
    """mmcv ConvModule(in, out, 3, padding=1, norm_cfg) in the default order conv -> norm -> act."""

    def __init__(self, cin, cout, norm):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=not norm)
        if norm:
            self.bn = torch.nn.BatchNorm2d(cout)
        self.norm = norm

    def forward(self, x):
        x = self.conv(x)
        if self.norm:
            x = self.bn(x)
        return F.relu(x)


class FCNMaskHead(torch.nn.Module):
    def __init__(self, cin, channels, convs, classes, norm):
        super().__init__()
        self.convs = torch.nn.ModuleList(ConvModule(cin if i == 0 else channels, channels, norm) for i in range(convs))
        self.upsample = torch.nn.ConvTranspose2d(channels if convs else cin, channels, 2, stride=2)
        self.conv_logits = torch.nn.Conv2d(channels, classes, 1)

    def forward(self, x):
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(F.relu(self.upsample(x)))


def randomise(head, g):
    with torch.no_grad():
        for name, p in head.named_parameters():
            if ".bn." in name:
                continue
            p.copy_(torch.randn(p.shape, generator=g) * (0.1 if name.endswith("bias") else 0.3))
        for m in head.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def mask_cross_entropy(pred, target, labels):
    """mmdet 2.x losses/cross_entropy_loss.py mask_cross_entropy (reduction mean, no class weight)."""
    inds = torch.arange(0, pred.size(0), dtype=torch.long)
    pred_slice = pred[inds, labels].squeeze(1)
    return F.binary_cross_entropy_with_logits(pred_slice, target, reduction="mean")[None]


def state(head):
    return {name: {"shape": list(t.shape), "value": flat(t)} for name, t in head.state_dict().items()}


def head_case(g, features, targets, labels, norm, convs):
    head = FCNMaskHead(6, 8, convs, 3, norm)
    randomise(head, g)
    initial = state(head)
    eval_logits = None
    if norm:
        head.eval()
        with torch.no_grad():
            eval_logits = nhwc(head(features))
    head.train()
    x = features.clone().requires_grad_(True)
    logits = head(x)
    loss = mask_cross_entropy(logits, targets, labels)
    loss.backward()
    case = {"convs": convs, "uses_norm": norm, "parameter_names": list(initial), "parameters": initial,
            "logits": nhwc(logits),
            "loss": float(loss.detach()), "feature_gradient": nhwc(x.grad),
            "gradients": {name: flat(p.grad) for name, p in head.named_parameters()}}
    if norm:
        case["eval_logits"] = eval_logits
        case["running"] = {name: flat(t) for name, t in head.state_dict().items() if "running" in name}
    return case


# --------------------------------------------------------------------------------------------------- targets
def instance_masks(g, height, width, count):
    """Random blobs: an ellipse, a rectangle with a hole, and noise, as uint8 [count, h, w]."""
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    masks = []
    for i in range(count):
        cy, cx = float(torch.rand(1, generator=g)) * height, float(torch.rand(1, generator=g)) * width
        ry, rx = 3 + float(torch.rand(1, generator=g)) * height / 2, 3 + float(torch.rand(1, generator=g)) * width / 2
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        if i % 2 == 1:
            m = m ^ (torch.rand(height, width, generator=g) < 0.15)
        masks.append(m.to(torch.uint8))
    return torch.stack(masks)


def mask_targets(masks, padded_h, padded_w, boxes, assigned, size):
    """mask_target_single + BitmapMasks.crop_and_resize(binarize) on masks [g, h, w] zero-padded to the pad size."""
    g, h, w = masks.shape
    padded = torch.zeros(g, padded_h, padded_w, dtype=torch.uint8)
    padded[:, :h, :w] = masks
    proposals = boxes.numpy().copy()
    proposals[:, [0, 2]] = np.clip(proposals[:, [0, 2]], 0, padded_w)
    proposals[:, [1, 3]] = np.clip(proposals[:, [1, 3]], 0, padded_h)
    bboxes = torch.from_numpy(proposals)
    fake_inds = torch.arange(len(bboxes)).to(dtype=bboxes.dtype)[:, None]
    rois = torch.cat([fake_inds, bboxes], dim=1)
    gt = padded.index_select(0, torch.as_tensor(assigned)).to(dtype=rois.dtype)
    soft = roi_align(gt[:, None], rois, size, size, 1.0, 0, True).squeeze(1)
    return soft, (soft >= 0.5).float()


def target_cases(g):
    # One image, mask size 28: 3 GT instances on a 37 x 50 image padded to 40 x 56.
    masks = instance_masks(g, 37, 50, 3)
    boxes = torch.tensor([
        [4.0, 3.0, 30.0, 25.0],        # inside
        [-5.0, -2.5, 20.0, 18.0],      # crosses the top-left edge: clipped to 0
        [30.5, 20.25, 60.0, 45.0],     # beyond the padded size: clipped to 56 x 40 (the padding reads 0)
        [10.3, 12.7, 11.1, 13.2],      # smaller than a target pixel
        [0.0, 0.0, 56.0, 40.0],        # the whole padded image
        [22.0, 8.0, 22.0, 30.0],       # zero width
        [12.6, 5.4, 41.9, 33.3],       # fractional
    ], dtype=torch.float32)
    assigned = [0, 1, 2, 0, 1, 2, 2]
    soft, binary = mask_targets(masks, 40, 56, boxes, assigned, 28)
    big = {"height": 37, "width": 50, "padded_height": 40, "padded_width": 56, "mask_size": 28,
           "masks": [m.reshape(-1).tolist() for m in masks], "boxes": flat(boxes), "assigned": assigned,
           "soft": flat(soft), "binary": flat(binary)}
    # The mask head's 5 training rois at 14 x 14: image 0 (3 rois, 2 GTs, 30 x 38 padded to 32 x 40), image 1
    # (2 rois, 1 GT, 24 x 40 padded to 32 x 40); mask_target concatenates the images.
    images = []
    small_targets = []
    for (h, w, count, rois, assigned) in [
        (30, 38, 2, [[2.0, 1.0, 20.0, 17.0], [9.5, 6.0, 37.0, 29.5], [-3.0, 4.0, 15.0, 31.0]], [0, 1, 1]),
        (24, 40, 1, [[5.0, 2.0, 30.0, 22.0], [0.0, 0.0, 40.0, 32.0]], [0, 0]),
    ]:
        m = instance_masks(g, h, w, count)
        b = torch.tensor(rois, dtype=torch.float32)
        _, binary_small = mask_targets(m, 32, 40, b, assigned, 14)
        small_targets.append(binary_small)
        images.append({"height": h, "width": w, "padded_height": 32, "padded_width": 40,
                       "masks": [x.reshape(-1).tolist() for x in m], "boxes": flat(b), "assigned": assigned,
                       "binary": flat(binary_small)})
    return big, images, torch.cat(small_targets)


# --------------------------------------------------------------------------------------------------- paste
def do_paste_mask(masks, boxes, img_h, img_w):
    """mmdet 2.x fcn_mask_head.py _do_paste_mask with skip_empty=True, for one box (the CPU chunking)."""
    x0_int, y0_int = torch.clamp(boxes.min(dim=0).values.floor()[:2] - 1, min=0).to(dtype=torch.int32)
    x1_int = torch.clamp(boxes[:, 2].max().ceil() + 1, max=img_w).to(dtype=torch.int32)
    y1_int = torch.clamp(boxes[:, 3].max().ceil() + 1, max=img_h).to(dtype=torch.int32)
    x0, y0, x1, y1 = torch.split(boxes, 1, dim=1)
    n = masks.shape[0]
    img_y = torch.arange(y0_int, y1_int, dtype=torch.float32) + 0.5
    img_x = torch.arange(x0_int, x1_int, dtype=torch.float32) + 0.5
    img_y = (img_y - y0) / (y1 - y0) * 2 - 1
    img_x = (img_x - x0) / (x1 - x0) * 2 - 1
    if torch.isinf(img_x).any():
        img_x[torch.where(torch.isinf(img_x))] = 0
    if torch.isinf(img_y).any():
        img_y[torch.where(torch.isinf(img_y))] = 0
    gx = img_x[:, None, :].expand(n, img_y.size(1), img_x.size(1))
    gy = img_y[:, :, None].expand(n, img_y.size(1), img_x.size(1))
    grid = torch.stack([gx, gy], dim=3)
    img_masks = F.grid_sample(masks.to(dtype=torch.float32), grid, align_corners=False)
    return img_masks[:, 0], (slice(y0_int, y1_int), slice(x0_int, x1_int))


def paste_case(g):
    d, classes, size = 5, 2, 28
    logits = torch.randn(d, classes, size, size, generator=g) * 3
    # A smooth blob per map, so the masks have a shape and not only noise.
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    logits = logits + 6 - ((yy - 13.5) ** 2 + (xx - 13.5) ** 2) / 20
    boxes = torch.tensor([                # in the network input's frame (scale 1.6 x 1.5 of a 30 x 41 image)
        [8.0, 6.0, 40.0, 33.0],
        [-4.0, -3.5, 20.2, 15.7],         # crosses the top-left edge
        [50.3, 30.1, 70.0, 48.0],         # crosses the bottom-right edge
        [20.8, 10.2, 22.1, 11.4],         # a few pixels
        [19.68, 4.5, 19.68, 30.0],        # zero width: its grid x is inf -> 0
    ], dtype=torch.float32)
    labels = torch.tensor([1, 0, 1, 1, 0])
    scale_factor = np.array([1.6, 1.5, 1.6, 1.5], dtype=np.float32)
    img_h, img_w = 30, 41
    probs = logits.sigmoid()[range(d), labels][:, None]
    bboxes = boxes / torch.from_numpy(scale_factor)
    pasted = torch.zeros(d, img_h, img_w)
    for i in range(d):  # CPU: one chunk per box
        chunk, spatial = do_paste_mask(probs[i:i + 1], bboxes[i:i + 1], img_h, img_w)
        pasted[(slice(i, i + 1),) + spatial] = chunk
    masks = (pasted >= 0.5).to(torch.uint8)
    # mmdet 2.x core/mask/utils.py encode_mask_results: pycocotools encode of each mask as a Fortran-ordered uint8 array.
    rles = [mask_util.encode(np.array(m.numpy()[:, :, np.newaxis], order="F", dtype="uint8"))[0]["counts"].decode()
            for m in masks]
    return {"logits": nhwc(logits), "shape": [d, size, size, classes], "boxes": flat(boxes), "labels": labels.tolist(),
            "scale_factor": [1.6, 1.5], "original_height": img_h, "original_width": img_w,
            "probabilities": [flat(p) for p in pasted], "masks": [m.reshape(-1).tolist() for m in masks],
            "rles": rles}


def write(relative, payload):
    path = os.path.join(ROOT, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = {"torch_version": torch.__version__, "script": SCRIPT, **payload}
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {relative} ({os.path.getsize(path) // 1024} KB)")


def main():
    g = torch.Generator().manual_seed(2817)
    write("Tests/LayersTests/Fixtures/conv_transpose.json", {"cases": conv_transpose_cases(g)})
    big, images, small_targets = target_cases(g)
    features = torch.randn(5, 6, 7, 7, generator=g)
    labels = torch.tensor([2, 0, 0, 1, 1])
    head = head_case(g, features, small_targets, labels, norm=True, convs=4)
    plain = head_case(g, features, small_targets, labels, norm=False, convs=2)
    write("Tests/ModelsTests/Fixtures/detection/mask_head.json", {
        "config": {"in_channels": 6, "conv_channels": 8, "classes": 3},
        "features": nhwc(features), "feature_shape": [5, 7, 7, 6], "labels": labels.tolist(),
        "targets_small": {"images": images, "targets": flat(small_targets)},
        "head": head, "plain_head": plain, "targets": big, "paste": paste_case(g)})


if __name__ == "__main__":
    main()
