#!/usr/bin/env python3
"""Golden fixture for the Swift FCN-D8 segmentor (dilated ResNet-50 + mmseg FCN heads), produced with PyTorch.

Run:  pip install torch==2.13.0+cpu safetensors
      python3 scripts/reference/make_fcn_fixtures.py [--out Tests/ModelsTests/Fixtures]

Writes fcn_d8_tiny.safetensors (floats F32, `num_batches_tracked` I64; metadata: torch version, this script, the
configuration). No mmseg/mmcv install is needed: the modules below are plain-torch re-implementations of

  backbone        mmseg ResNet(depth=50, strides=(1,2,1,1), dilations=(1,1,2,4), contract_dilation=True,
                  style='pytorch') (mmseg/models/backbones/resnet.py, mmseg/models/utils/res_layer.py): Bottleneck
                  with the stride on the 3x3 conv2 (padding = dilation = the block's dilation) and on the 1x1
                  downsample conv; contract_dilation gives a stage's FIRST block dilation d/2 when d > 1 (layer3:
                  1, 2, 2, ...; layer4: 2, 4, 4). ImageNet stem conv1 7x7/2 + bn1 + ReLU + MaxPool(3, 2, 1).
                  Width 1/32: base widths 2, 4, 8, 16, stage outputs 8, 16, 32, 64. Output stride 8.
  decode_head     mmseg FCNHead(in_channels=64 (layer4), channels=16 (512/32), num_convs=2, concat_input=True,
                  dropout_ratio=0.1, num_classes=5, align_corners=False):
                  convs.{0,1} = ConvModule(3x3, padding 1, conv without bias, BN, ReLU) with names conv / bn,
                  conv_cat = ConvModule over torch.cat([x, convs(x)], dim=1), Dropout2d(0.1), conv_seg 1x1 + bias.
  auxiliary_head  mmseg FCNHead(in_channels=32 (layer3), channels=8 (256/32), num_convs=1, concat_input=False,
                  dropout_ratio=0.1, num_classes=5), loss weight 0.4.
  loss            BaseDecodeHead.losses: F.interpolate(logits, size=label size, mode='bilinear',
                  align_corners=False), then CrossEntropyLoss(avg_non_ignore=False): F.cross_entropy(reduction='none',
                  ignore_index=255) followed by .mean() over ALL n*H*W pixels (weight_reduce_loss), times the loss
                  weight (1.0 decode, 0.4 auxiliary). Total loss = decode + auxiliary.
  dropout         nn.Dropout2d = F.dropout2d: one Bernoulli(1 - p) draw per (sample, channel), kept planes scaled by
                  1/(1 - p). The masks are drawn with torch's own F.dropout2d under a fixed seed (on a ones tensor
                  [n, c, 1, 1]: the draws do not depend on h, w), stored as 0/1 `[n, c]` keep masks, and applied
                  as x * (keep / (1 - p))[:, :, None, None]; the script asserts this equals F.dropout2d on the real
                  features under the same seed.
  optimizer       torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=5e-4) on every parameter (mmseg's
                  schedule_20k optimizer), one step from a fresh optimizer.

Weights: torch's default conv init, then every BatchNorm re-randomised (weight U(0.5, 1.5), bias N(0, 0.1),
running_mean N(0, 0.1), running_var U(0.5, 1.5); num_batches_tracked 0) and conv_seg weights N(0, 0.1²), biases
N(0, 0.1²) (instead of mmseg's N(0, 0.01²) and 0, so the heads pass gradients of a useful size to the backbone).

Inputs: images [2, 3, 40, 40] torch.randn; labels [2, 40, 40] uniform in 0..4, then about 15% set to 255 (ignored).

Tensors (activations NCHW, conv weights OIHW, exactly as PyTorch holds them; <key> = state_dict key starting with
`backbone.`, `decode_head.` or `auxiliary_head.`):
  init.<key>              every parameter and buffer before anything ran.
  input.images            [2, 3, 40, 40].
  input.labels            [2, 40, 40] as F32 (class index or 255).
  input.decode_keep       [2, 16] 0/1 keep mask of the decode head's Dropout2d.
  input.auxiliary_keep    [2, 8] 0/1 keep mask of the auxiliary head's Dropout2d.
  train.feature4          [2, 32, 5, 5] layer3 output in train mode (batch statistics).
  train.feature5          [2, 64, 5, 5] layer4 output in train mode.
  train.decode_logits     [2, 5, 5, 5] decode head output (before the resize).
  train.auxiliary_logits  [2, 5, 5, 5] auxiliary head output.
  loss.decode             [1] 1.0 * decode cross-entropy.
  loss.auxiliary          [1] 0.4 * auxiliary cross-entropy.
  grad.<key>              d(loss.decode + loss.auxiliary)/d parameter for every parameter.
  step.<key>              every parameter and buffer after the SGD step (BN running stats updated once by the
                          training forward, num_batches_tracked = 1).
  eval.logits             [2, 5, 40, 40] model.eval() (running statistics, no dropout) decode logits of the INITIAL
                          model, resized to 40x40 with align_corners=False (mmseg whole inference before argmax).
  lossonly.logits         [2, 5, 7, 6] torch.randn: a standalone check of the loss with both align_corners.
  lossonly.labels         [2, 23, 17] (F32) classes 0..4 and ~15% 255.
  lossonly.{false,true}.loss      [1] weight 0.7 * mean CE of the logits resized to 23x17 (align_corners False/True).
  lossonly.{false,true}.grad      [2, 5, 7, 6] its gradient w.r.t. the logits.
"""
import argparse
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

SCRIPT = "scripts/reference/make_fcn_fixtures.py"
IGNORE = 255
CLASSES = 5


# ---------------------------------------------------------------------------------------------- backbone

class Bottleneck(nn.Module):
    """mmseg Bottleneck, style='pytorch': conv1 1x1, conv2 3x3 (stride, padding = dilation = dilation), conv3 1x1."""
    expansion = 4

    def __init__(self, cin, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


class DilatedResNet(nn.Module):
    """mmseg ResNet-50 with strides/dilations/contract_dilation (ResLayer); returns (feature1, ..., feature5)."""

    def __init__(self, width, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True):
        super().__init__()
        widths = [int(64 * width * m) for m in (1, 2, 4, 8)]
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (planes, blocks) in enumerate(zip(widths, (3, 4, 6, 3))):
            setattr(self, f"layer{i + 1}", self._res_layer(planes, blocks, strides[i], dilations[i], contract_dilation))

    def _res_layer(self, planes, blocks, stride, dilation, contract_dilation):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        first_dilation = dilation // 2 if (dilation > 1 and contract_dilation) else dilation
        mods = [Bottleneck(self.inplanes, planes, stride, first_dilation, downsample)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            mods.append(Bottleneck(self.inplanes, planes, 1, dilation, None))
        return nn.Sequential(*mods)

    def forward(self, x):
        f1 = F.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return f1, f2, f3, f4, f5


# ---------------------------------------------------------------------------------------------- heads

class ConvModule(nn.Module):
    """mmcv ConvModule(conv k x k without bias, BN, ReLU) with its submodule names conv / bn."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class FCNHead(nn.Module):
    """mmseg FCNHead + BaseDecodeHead.cls_seg, with the Dropout2d applied through an explicit keep mask."""

    def __init__(self, cin, channels, num_convs, concat_input, dropout, classes):
        super().__init__()
        self.dropout = dropout
        self.convs = nn.Sequential(*[ConvModule(cin if i == 0 else channels, channels, 3) for i in range(num_convs)])
        self.concat_input = concat_input
        if concat_input:
            self.conv_cat = ConvModule(cin + channels, channels, 3)
        self.conv_seg = nn.Conv2d(channels, classes, 1)

    def features(self, x):
        out = self.convs(x)
        if self.concat_input:
            out = self.conv_cat(torch.cat([x, out], dim=1))
        return out

    def forward(self, x, keep=None):
        out = self.features(x)
        if keep is not None:
            out = out * (keep / (1 - self.dropout))[:, :, None, None]  # F.dropout2d: noise.div_(1 - p), x * noise
        return self.conv_seg(out)


class FCNSegmentor(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.backbone = DilatedResNet(width)
        c4, c5 = int(256 * width) * 4, int(512 * width) * 4  # layer3 / layer4 output channels
        self.decode_head = FCNHead(c5, int(512 * width), 2, True, 0.1, CLASSES)
        self.auxiliary_head = FCNHead(c4, int(256 * width), 1, False, 0.1, CLASSES)


def seg_loss(logits, labels, weight, align_corners):
    """BaseDecodeHead.losses with CrossEntropyLoss(avg_non_ignore=False, loss_weight=weight)."""
    resized = F.interpolate(logits, size=labels.shape[1:], mode="bilinear", align_corners=align_corners)
    per_pixel = F.cross_entropy(resized, labels, reduction="none", ignore_index=IGNORE)
    return weight * per_pixel.mean()  # weight_reduce_loss(reduction='mean', avg_factor=None)


def random_labels(shape, generator):
    labels = torch.randint(0, CLASSES, shape, generator=generator)
    ignored = torch.rand(shape, generator=generator) < 0.15
    labels[ignored] = IGNORE
    return labels


def draw_keep_mask(n, c, p, seed):
    """nn.Dropout2d's own mask, drawn by F.dropout2d on ones [n, c, 1, 1] under `seed`, as 0/1."""
    torch.manual_seed(seed)
    y = F.dropout2d(torch.ones(n, c, 1, 1), p=p, training=True)
    return (y[:, :, 0, 0] != 0).to(torch.float32)


def snapshot(state, prefix, out):
    for k, v in state.items():
        t = v.detach().clone().contiguous()
        if t.is_floating_point():
            t = t.to(torch.float32)
        else:
            assert k.endswith("num_batches_tracked"), k
            t = t.to(torch.int64)
        out[f"{prefix}.{k}"] = t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Tests", "ModelsTests", "Fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(15)
    width = 1 / 32
    model = FCNSegmentor(width)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    for head in (model.decode_head, model.auxiliary_head):
        with torch.no_grad():
            head.conv_seg.weight.normal_(0.0, 0.1)
            head.conv_seg.bias.normal_(0.0, 0.1)

    generator = torch.Generator().manual_seed(151)
    images = torch.randn(2, 3, 40, 40, generator=generator)
    labels = random_labels((2, 40, 40), generator)
    decode_keep = draw_keep_mask(2, model.decode_head.conv_seg.in_channels, 0.1, seed=1501)
    auxiliary_keep = draw_keep_mask(2, model.auxiliary_head.conv_seg.in_channels, 0.1, seed=1502)
    assert decode_keep.min() == 0 and auxiliary_keep.min() == 0, "pick seeds whose masks drop some channel"

    out = {}
    snapshot(model.state_dict(), "init", out)
    out["input.images"] = images.clone()
    out["input.labels"] = labels.to(torch.float32)
    out["input.decode_keep"] = decode_keep
    out["input.auxiliary_keep"] = auxiliary_keep

    # Eval-mode inference of the initial model (mmseg whole inference: decode logits resized to the image).
    eval_model = copy.deepcopy(model).eval()
    with torch.no_grad():
        f5 = eval_model.backbone(images)[4]
        out["eval.logits"] = F.interpolate(eval_model.decode_head(f5), size=(40, 40), mode="bilinear",
                                           align_corners=False).contiguous()

    # One training step.
    step_model = copy.deepcopy(model).train()
    opt = torch.optim.SGD(step_model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    opt.zero_grad(set_to_none=True)
    features = step_model.backbone(images)
    decode_logits = step_model.decode_head(features[4], decode_keep)
    auxiliary_logits = step_model.auxiliary_head(features[3], auxiliary_keep)
    # The explicit mask is exactly nn.Dropout2d under the same seed (on a copy of the head: a second train-mode
    # forward would update the BN running statistics again).
    with torch.no_grad():
        decode_features = copy.deepcopy(step_model.decode_head).features(features[4])
        torch.manual_seed(1501)
        reference = F.dropout2d(decode_features, p=0.1, training=True)
        assert torch.equal(reference, decode_features * (decode_keep / (1 - 0.1))[:, :, None, None])
    decode_loss = seg_loss(decode_logits, labels, 1.0, False)
    auxiliary_loss = seg_loss(auxiliary_logits, labels, 0.4, False)
    (decode_loss + auxiliary_loss).backward()
    out["train.feature4"] = features[3].detach().contiguous().clone()
    out["train.feature5"] = features[4].detach().contiguous().clone()
    out["train.decode_logits"] = decode_logits.detach().contiguous().clone()
    out["train.auxiliary_logits"] = auxiliary_logits.detach().contiguous().clone()
    out["loss.decode"] = decode_loss.detach().reshape(1).clone()
    out["loss.auxiliary"] = auxiliary_loss.detach().reshape(1).clone()
    for k, p in step_model.named_parameters():
        assert p.grad is not None, k
        out[f"grad.{k}"] = p.grad.detach().clone().contiguous()
    opt.step()
    snapshot(step_model.state_dict(), "step", out)

    # The loss alone, both align_corners, on an odd-sized resize.
    loss_logits = torch.randn(2, CLASSES, 7, 6, generator=generator)
    loss_labels = random_labels((2, 23, 17), generator)
    out["lossonly.logits"] = loss_logits.clone()
    out["lossonly.labels"] = loss_labels.to(torch.float32)
    for align in (False, True):
        x = loss_logits.clone().requires_grad_(True)
        loss = seg_loss(x, loss_labels, 0.7, align)
        loss.backward()
        out[f"lossonly.{str(align).lower()}.loss"] = loss.detach().reshape(1).clone()
        out[f"lossonly.{str(align).lower()}.grad"] = x.grad.detach().clone()

    meta = {
        "script": SCRIPT,
        "torch_version": torch.__version__,
        "backbone": "mmseg ResNet-50 D8 (strides 1,2,1,1; dilations 1,1,2,4; contract_dilation), width 1/32",
        "heads": "decode FCNHead(64->16, num_convs 2, concat_input), auxiliary FCNHead(32->8, num_convs 1)",
        "classes": str(CLASSES),
        "input": "images [2,3,40,40] NCHW, labels [2,40,40] with ~15% 255",
        "optimizer": "SGD(lr=0.01, momentum=0.9, weight_decay=5e-4), one step",
    }
    path = os.path.join(args.out, "fcn_d8_tiny.safetensors")
    save_file(out, path, metadata=meta)
    print(f"decode loss {decode_loss.item():.6f} auxiliary loss {auxiliary_loss.item():.6f} "
          f"tensors {len(out)} params {sum(p.numel() for p in model.parameters())}")
    print(f"{os.path.relpath(path, root)}: {os.path.getsize(path) / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
