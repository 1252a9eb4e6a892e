#!/usr/bin/env python3
"""Golden fixtures for the Swift engine's ResNet / SimSiam code, produced with PyTorch.

Run:  pip install torch==2.13.0+cpu safetensors
      python3 scripts/reference/make_engine_fixtures.py [--out Tests/ModelsTests/Fixtures]

Writes two safetensors files (floats F32, `num_batches_tracked` I64; metadata records the torch version, this
script's name and the configuration):

  resnet18_tiny.safetensors  ResNet-18 (BasicBlock [2,2,2,2]), width 1/16 -> stage widths 4,8,16,32, CIFAR stem
                             (conv1 3x3 stride 1 pad 1, no max-pool). Views: 2 x [4,3,16,16].
                             Neck 32->32->32, predictor 32->8->32.
  resnet50_tiny.safetensors  ResNet-50 (Bottleneck v1.5 [3,4,6,3], stride on the 3x3), width 1/32 -> base widths
                             2,4,8,16 (stage outputs 8,16,32,64), ImageNet stem (conv1 7x7 stride 2 pad 3, then
                             MaxPool2d(3, 2, 1) after relu). Views: 2 x [6,3,48,48] (batch 6: with 2 samples the
                             neck's BatchNorm1d outputs +-1 whatever its input, and its gradient is pure rounding).
                             Neck 64->32->32, predictor 32->8->32.
  (Widths are this small so both files together stay under the 2.5 MB fixture budget.)

Model (module names exactly torchvision's ResNet without fc, MMSelfSup's NonLinearNeck / LatentPredictHead):
  backbone.conv1, backbone.bn1, backbone.layer{1..4}.{j}.conv{1,2[,3]} / bn{1,2[,3]} / downsample.{0,1}
  neck:            GAP(feature5) -> flatten -> neck.fc0 (no bias) -> neck.bn0 -> ReLU -> neck.fc1 (no bias)
                   -> neck.bn1 -> ReLU -> neck.fc2 (no bias) -> neck.bn2 (BatchNorm1d, affine=False)
  head.predictor:  head.predictor.fc0 (no bias) -> head.predictor.bn0 -> ReLU -> head.predictor.fc1 (bias)
  All BatchNorms: eps 1e-5, momentum 0.1 (PyTorch defaults).
  Init: torchvision's (conv kaiming_normal_ fan_out/relu), Linear PyTorch default; then EVERY BatchNorm is
  re-randomised so no path is trivially zero or identity: weight ~ U(0.5, 1.5), bias ~ N(0, 0.1),
  running_mean ~ N(0, 0.1), running_var ~ U(0.5, 1.5); num_batches_tracked stays 0.

Tensors in each file (all activations NCHW, exactly as PyTorch holds them; `<key>` is a state_dict key, which
starts with `backbone.`, `neck.` or `head.predictor.`):
  init.<key>        every parameter and buffer of the model before anything ran (conv weights OIHW,
                    Linear weights [out, in]).
  input.view1       [N,3,H,W] first view  (torch.randn).
  input.view2       [N,3,H,W] second view (torch.randn).
  eval.feature1..5  model.eval() backbone outputs for view1: feature1 = relu(bn1(conv1(x))) (BEFORE the max-pool),
                    feature2..5 = layer1..layer4 outputs.
  train.feature1..5 the same, but model.train() (batch statistics) on a deep copy of the initial model.
  loss              [1] SimSiam loss of one training step on a fresh deep copy in train mode:
                      z1 = neck(backbone(view1)), z2 = neck(backbone(view2))     (in that order)
                      p1 = predictor(z1), p2 = predictor(z2)                     (in that order)
                      loss = 0.5 * (D(p1, z2.detach()) + D(p2, z1.detach())),
                      D(p, z) = -mean_i(F.normalize(p, dim=1)_i . F.normalize(z, dim=1)_i), eps 1e-12.
  grad.<key>        d loss / d parameter for every trainable parameter (neck.bn2 has none).
  truth.grad.<key>  the same gradients computed in float64 (a deep copy of the initial model in .double()), stored
                    rounded to F32:
                    the oracle the gradients are judged against. Some gradients here are ill-conditioned sums
                    (the BN shifts of 2-channel layers: the sum of thousands of terms of both signs), on which
                    PyTorch's own float32 run is up to 4e-3 (scaled) from the float64 value and any other float32
                    summation order lands as far; the tests allow ours twice PyTorch's float32 distance from this
                    truth, at least 1e-3.
  truth.loss        [1] the float64 loss (F32).
  step.<key>        every parameter AND buffer after one torch.optim.SGD(lr=0.05, momentum=0.9,
                    weight_decay=1e-4) step (fresh optimizer, so momentum buffer = grad + 1e-4 * param).
                    BN running stats were updated TWICE, in the forward order above (view1 then view2 for
                    backbone and neck; z1 then z2 for the predictor), so num_batches_tracked == 2 everywhere.
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

SCRIPT = "scripts/reference/make_engine_fixtures.py"


# ---------------------------------------------------------------------------------------------- models

def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride, 0, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck v1.5: the stride sits on the 3x3 conv2."""
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision.models.ResNet without avgpool/fc; returns (feature1, ..., feature5)."""

    def __init__(self, block, layers, width=1.0, cifar_stem=False):
        super().__init__()
        widths = [int(64 * width), int(128 * width), int(256 * width), int(512 * width)]
        self.inplanes = widths[0]
        self.cifar_stem = cifar_stem
        if cifar_stem:
            self.conv1 = nn.Conv2d(3, self.inplanes, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, self.inplanes, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, widths[0], layers[0], 1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], 2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], 2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], 2)
        self.out_channels = widths[3] * block.expansion
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        mods = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            mods.append(block(self.inplanes, planes))
        return nn.Sequential(*mods)

    def forward(self, x):
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return f1, f2, f3, f4, f5


class Neck(nn.Module):
    """MMSelfSup NonLinearNeck(num_layers=3, with_avg_pool=True, with_last_bn_affine=False), no biases."""

    def __init__(self, cin, hid, cout):
        super().__init__()
        self.fc0 = nn.Linear(cin, hid, bias=False)
        self.bn0 = nn.BatchNorm1d(hid)
        self.fc1 = nn.Linear(hid, hid, bias=False)
        self.bn1 = nn.BatchNorm1d(hid)
        self.fc2 = nn.Linear(hid, cout, bias=False)
        self.bn2 = nn.BatchNorm1d(cout, affine=False)

    def forward(self, f5):
        x = torch.flatten(F.adaptive_avg_pool2d(f5, 1), 1)
        x = F.relu(self.bn0(self.fc0(x)))
        x = F.relu(self.bn1(self.fc1(x)))
        return self.bn2(self.fc2(x))


class Predictor(nn.Module):
    """MMSelfSup NonLinearNeck(num_layers=2, with_avg_pool=False, with_last_bn=False, with_last_bias=True)."""

    def __init__(self, cin, hid, cout):
        super().__init__()
        self.fc0 = nn.Linear(cin, hid, bias=False)
        self.bn0 = nn.BatchNorm1d(hid)
        self.fc1 = nn.Linear(hid, cout, bias=True)

    def forward(self, z):
        return self.fc1(F.relu(self.bn0(self.fc0(z))))


class Head(nn.Module):
    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor


class SimSiam(nn.Module):
    def __init__(self, backbone, neck, predictor):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = Head(predictor)

    def loss(self, v1, v2):
        z1 = self.neck(self.backbone(v1)[-1])
        z2 = self.neck(self.backbone(v2)[-1])
        p1 = self.head.predictor(z1)
        p2 = self.head.predictor(z2)
        return 0.5 * (neg_cos(p1, z2.detach()) + neg_cos(p2, z1.detach()))


def neg_cos(p, z):
    """MMSelfSup LatentPredictHead loss: -mean(normalize(p) . normalize(z)), F.normalize eps 1e-12."""
    p = F.normalize(p, dim=1, eps=1e-12)
    z = F.normalize(z, dim=1, eps=1e-12)
    return -(p * z).sum(dim=1).mean()


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


# ---------------------------------------------------------------------------------------------- fixtures

def snapshot(state, prefix, out):
    for k, v in state.items():
        t = v.detach().clone().contiguous()
        if t.is_floating_point():
            t = t.to(torch.float32)
        else:
            assert k.endswith("num_batches_tracked"), k
            t = t.to(torch.int64)
        out[f"{prefix}.{k}"] = t


def make_fixture(name, block, layers, width, cifar_stem, n, hw, neck_dims, pred_dims, seed, out_dir):
    torch.manual_seed(seed)
    backbone = ResNet(block, layers, width=width, cifar_stem=cifar_stem)
    neck = Neck(backbone.out_channels, *neck_dims)
    predictor = Predictor(*pred_dims)
    model = SimSiam(backbone, neck, predictor)
    randomize_bn(model)
    view1 = torch.randn(n, 3, hw, hw)
    view2 = torch.randn(n, 3, hw, hw)

    out = {}
    snapshot(model.state_dict(), "init", out)
    out["input.view1"] = view1.clone()
    out["input.view2"] = view2.clone()

    model.eval()
    with torch.no_grad():
        for i, f in enumerate(model.backbone(view1), 1):
            out[f"eval.feature{i}"] = f.contiguous().clone()

    train_copy = copy.deepcopy(model).train()
    with torch.no_grad():
        for i, f in enumerate(train_copy.backbone(view1), 1):
            out[f"train.feature{i}"] = f.contiguous().clone()

    step_model = copy.deepcopy(model).train()
    opt = torch.optim.SGD(step_model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    opt.zero_grad(set_to_none=True)
    loss = step_model.loss(view1, view2)
    loss.backward()
    out["loss"] = loss.detach().reshape(1).clone()
    for k, p in step_model.named_parameters():
        assert p.grad is not None, k
        out[f"grad.{k}"] = p.grad.detach().clone().contiguous()
    opt.step()
    snapshot(step_model.state_dict(), "step", out)

    truth_model = copy.deepcopy(model).double().train()
    truth_loss = truth_model.loss(view1.double(), view2.double())
    truth_loss.backward()
    out["truth.loss"] = truth_loss.detach().reshape(1).to(torch.float32)
    for k, p in truth_model.named_parameters():  # rounded to float32 once: 6e-8 relative, far below any tolerance
        out[f"truth.grad.{k}"] = p.grad.detach().to(torch.float32).contiguous()

    meta = {
        "script": SCRIPT,
        "torch_version": torch.__version__,
        "fixture": name,
        "backbone": f"{block.__name__} layers={layers} width={width} cifar_stem={cifar_stem}",
        "input": f"2 views x [{n},3,{hw},{hw}] NCHW",
        "neck": f"{backbone.out_channels}->{neck_dims[0]}->{neck_dims[1]}",
        "predictor": f"{pred_dims[0]}->{pred_dims[1]}->{pred_dims[2]}",
        "optimizer": "SGD(lr=0.05, momentum=0.9, weight_decay=1e-4), one step",
        "seed": str(seed),
    }
    path = os.path.join(out_dir, f"{name}.safetensors")
    save_file(out, path, metadata=meta)
    print(f"{name}: loss={loss.item():.6f} tensors={len(out)} "
          f"params={sum(p.numel() for p in model.parameters())} "
          f"|eval.f5|max={out['eval.feature5'].abs().max().item():.3g} "
          f"|train.f5|max={out['train.feature5'].abs().max().item():.3g}")
    for i in range(1, 6):
        print(f"  feature{i} {list(out[f'eval.feature{i}'].shape)}")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Tests", "ModelsTests", "Fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)  # single-threaded reductions: reproducible bit-for-bit on one machine
    os.makedirs(args.out, exist_ok=True)
    paths = [
        make_fixture("resnet18_tiny", BasicBlock, [2, 2, 2, 2], 1 / 16, True, 4, 16,
                     (32, 32), (32, 8, 32), seed=18, out_dir=args.out),
        make_fixture("resnet50_tiny", Bottleneck, [3, 4, 6, 3], 1 / 32, False, 6, 48,
                     (32, 32), (32, 8, 32), seed=50, out_dir=args.out),
    ]
    total = 0
    for p in paths:
        size = os.path.getsize(p)
        total += size
        print(f"{os.path.relpath(p, root)}: {size / 1e6:.3f} MB")
    print(f"total: {total / 1e6:.3f} MB")
    if total >= 2_500_000:
        print("warning: fixtures together exceed the 2.5 MB budget", file=sys.stderr)


if __name__ == "__main__":
    main()
