#!/usr/bin/env python3
"""PyTorch CPU side of simsiam-bench's speed comparison (self-contained: no torchvision).

Cases (images/s = batch / mean step time; warm-up and timed iterations as in shared/reference/torch_cpu_bench.py):
  a  ResNet-50, 224x224, batch 32, eval forward under torch.no_grad()          warm-up 1, timed 3
  b  ResNet-50, 224x224, batch 32, train forward + cross-entropy + backward +
     SGD(lr 0.1, momentum 0.9) step                                            warm-up 1, timed 3
  c  SimSiam step: ResNet-18 CIFAR stem (3x3/1, no max-pool), 32x32, batch 128, two views, projector
     512->2048->2048->2048 (3 Linear+BN, last BN affine=False), predictor 2048->512->2048, symmetric negative
     cosine loss, SGD(lr 0.05, momentum 0.9, wd 5e-4) step                     warm-up 2, timed 4
     (images/s counts each image once; views/s = 2 x images/s)
  d  the embedded default (configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml): the same SimSiam step on
     ResNet-18 CIFAR stem at width 0.25 (channels 16/16/32/64/128), 1 input channel, 32x32, batch 256, two views,
     projector 128->512->512->512, predictor 512->128->512, SGD(lr 0.06, momentum 0.9, wd 5e-4)  warm-up 2, timed 6
  e  case a's network extracting the VOC07 SVM protocol's five layers: the stem output (after ReLU, before the
     max-pool) and layer1-4, each through MMSelfSup's specified AvgPool2d (10/10/4, 16/8, 13/5, 8/3, 6/1) to
     12/6/4/3/2 grids, flattened (NCHW), under torch.no_grad()                         warm-up 1, timed 3
  f  one FCN-D8 training iteration: ResNet-50 D8 (strides 1,2,1,1, dilations 1,1,2,4, contract_dilation), decode
     FCNHead 512 (2 convs + concat) and auxiliary FCNHead 256, 21 classes, 512x512 crop, batch 2, mmseg's loss
     (aux 0.4), SGD(lr 0.01, momentum 0.9, wd 5e-4) step (models in torch_fcn.py)          warm-up 1, timed 2
  g  the FCN scene miniature's iteration: ResNet-18 CIFAR stem w0.25 1ch, strides 1,2,2,2, heads 128 / 64,
     11 classes, 64x64 crops, batch 8 (configs/benchmarks/mmsegmentation/scenes/fcn_quick-d8_scenes.yaml)
                                                                                            warm-up 3, timed 20
  h  one Faster R-CNN R50-C4 training iteration (mmdet 2.x faster_rcnn_r50_c4, 21 classes): 600x800 image padded to
     608x800, 3 GT boxes, RPN 256 anchors, proposals 12000 -> NMS 0.7 -> 2000, 512 ROIs, RoIAlign 14x14 -> res5 ->
     extra BN -> fc, four losses, backward, SGD(lr 0.02, momentum 0.9, wd 1e-4) (models in torch_faster_rcnn.py)
                                                                                            warm-up 1, timed 2
  i  Faster R-CNN R50-C4 detection on one 600x800 image: trunk, RPN proposals (6000 -> NMS 0.7 -> 1000), ROI head on
     the 1000 proposals, softmax, score > 0.05, per-class NMS 0.5, 100 kept                 warm-up 1, timed 3
     (h, i: RoIAlign and NMS are torch code, not torchvision's kernels; roi_align_s = RoIAlign's share per step)

Peak RSS is resource.getrusage(RUSAGE_SELF).ru_maxrss, which only grows; so when more than one case is asked for,
each case runs in its own child process (this script with --only) and its peak is its own. `rss_before_mb` is the
peak after `import torch`, before the case built anything.

usage: python3 benchmarks/torch_bench.py [--threads N] [--channels-last 0|1] [--only a|b|c|d|e|f|g|h|i] [--iters N] [--json]
(without --only: cases a-d; the FCN and Faster R-CNN cases only on request)
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_faster_rcnn
from torch_faster_rcnn import make_detection_step
from torch_fcn import make_fcn_step

CASES = {
    "a": ("ResNet-50 224 b=32 forward (eval, no_grad)", 32, 1, 3),
    "b": ("ResNet-50 224 b=32 forward+backward+SGD (train)", 32, 1, 3),
    "c": ("SimSiam R18-CIFAR 32x32 b=128 step (2 views)", 128, 2, 4),
    "d": ("SimSiam R18-CIFAR w0.25 1ch 32x32 b=256 (quick)", 256, 2, 6),
    "e": ("ResNet-50 224 b=32 five-layer extraction (eval, no_grad)", 32, 1, 3),
    "f": ("FCN-D8 R50 512x512 b=2 training iteration", 2, 1, 2),
    "g": ("FCN miniature R18 w0.25 64x64 b=8 iteration", 8, 3, 20),
    "h": ("Faster R-CNN R50-C4 600x800 training iteration", 1, 1, 2),
    "i": ("Faster R-CNN R50-C4 600x800 detection", 1, 1, 3),
}
DEFAULT_CASES = ("a", "b", "c", "d")


# ---------------------------------------------------------------------------------------------- models

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # v1.5: stride on the 3x3
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = None
        if stride != 1 or cin != 4 * planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, 4 * planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """torchvision layout; `cifar_stem` = 3x3 stride-1 conv1 and no max-pool. Returns pooled features (or logits)."""

    def __init__(self, block, layers, cifar_stem, num_classes=None, width=1.0, in_channels=3):
        super().__init__()
        w = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.conv1 = (nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False) if cifar_stem
                      else nn.Conv2d(in_channels, w[0], 7, 2, 3, bias=False))
        self.bn1 = nn.BatchNorm2d(w[0])
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(3, 2, 1)
        cin = w[0]
        for i, (planes, n) in enumerate(zip(w, layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_channels = cin
        self.fc = nn.Linear(cin, num_classes) if num_classes else nn.Identity()

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SimSiam(nn.Module):
    def __init__(self, dim=2048, pred_dim=512, width=1.0, in_channels=3):
        super().__init__()
        self.backbone = ResNet(BasicBlock, [2, 2, 2, 2], cifar_stem=True, width=width, in_channels=in_channels)
        c = self.backbone.out_channels
        self.neck = nn.Sequential(
            nn.Linear(c, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False))
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim))

    def loss(self, x1, x2):
        z1 = self.neck(self.backbone(x1))
        z2 = self.neck(self.backbone(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return -0.5 * (F.cosine_similarity(p1, z2.detach(), dim=-1).mean()
                       + F.cosine_similarity(p2, z1.detach(), dim=-1).mean())


# ---------------------------------------------------------------------------------------------- timing

def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def timeit(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def run_case(case, channels_last, iters):
    name, batch, warmup, default_iters = CASES[case]
    iters = iters or default_iters
    rss_before = peak_rss_mb()
    torch.manual_seed(0)

    def prep(m, *xs):
        if channels_last:
            return (m.to(memory_format=torch.channels_last),
                    *[x.contiguous(memory_format=torch.channels_last) for x in xs])
        return (m, *xs)

    if case in ("a", "b"):
        model, x = prep(ResNet(Bottleneck, [3, 4, 6, 3], cifar_stem=False, num_classes=1000),
                        torch.randn(batch, 3, 224, 224))
        if case == "a":
            model.eval()

            def step():
                with torch.no_grad():
                    model(x)
        else:
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            y = torch.randint(0, 1000, (batch,))

            def step():
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    elif case == "e":
        model, x = prep(ResNet(Bottleneck, [3, 4, 6, 3], cifar_stem=False, num_classes=1000),
                        torch.randn(batch, 3, 224, 224))
        model.eval()
        pools = [nn.AvgPool2d(10, 10, 4), nn.AvgPool2d(16, 8), nn.AvgPool2d(13, 5), nn.AvgPool2d(8, 3),
                 nn.AvgPool2d(6, 1)]

        def step():
            with torch.no_grad():
                h = F.relu(model.bn1(model.conv1(x)))
                stages = [h]
                h = model.maxpool(h)
                for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
                    h = layer(h)
                    stages.append(h)
                # .contiguous() after the pool: channels_last pooled maps flattened in NCHW order need the copy
                [torch.flatten(pool(s).contiguous(), 1) for pool, s in zip(pools, stages)]
    elif case in ("f", "g"):
        step, trainable = make_fcn_step(case, channels_last)
    elif case in ("h", "i"):
        detection_step, trainable, check = make_detection_step(case, channels_last)
        roi_align_s = []

        def step():  # RoIAlign's own time per step (forward + backward), to quote a ratio without it
            before = torch_faster_rcnn.ROI_ALIGN_SECONDS[0]
            detection_step()
            roi_align_s.append(torch_faster_rcnn.ROI_ALIGN_SECONDS[0] - before)
    else:
        if case == "c":
            model, x1, x2 = prep(SimSiam().train(), torch.randn(batch, 3, 32, 32), torch.randn(batch, 3, 32, 32))
            lr = 0.05
        else:
            model, x1, x2 = prep(SimSiam(dim=512, pred_dim=128, width=0.25, in_channels=1).train(),
                                 torch.randn(batch, 1, 32, 32), torch.randn(batch, 1, 32, 32))
            lr = 0.06
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)

        def step():
            loss = model.loss(x1, x2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    ts = timeit(step, warmup, iters)
    mean = sum(ts) / len(ts)
    result = {"case": case, "name": name, "batch": batch, "warmup": warmup, "iters": iters,
              "step_s": [round(t, 4) for t in ts], "mean_s": round(mean, 4),
              "images_per_s": round(batch / mean, 2),
              "rss_before_mb": round(rss_before, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
    if case in ("c", "d"):
        result["views_per_s"] = round(2 * batch / mean, 2)
    if case in ("f", "g", "h", "i"):
        result["trainable_parameters"] = trainable
    if case in ("h", "i"):
        result["roi_align_s"] = [round(t, 4) for t in roi_align_s[-iters:]]
        result["ops"] = "roi_align, nms: torch code in torch_faster_rcnn.py (" + check + ")"
    return result


def run_in_child(case, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
           "--channels-last", str(args.channels_last), "--only", case, "--json"]
    if args.iters:
        cmd += ["--iters", str(args.iters)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["cases"][0]


def main():
    ap = argparse.ArgumentParser(description="PyTorch CPU timings for simsiam-bench.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", type=int, choices=[0, 1], default=1)
    ap.add_argument("--only", choices=sorted(CASES), help="run one case (default: all)")
    ap.add_argument("--iters", type=int, default=0, help="timed iterations (default: the reference's)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "n/a"
    header = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_capability": cap,
              "channels_last": bool(args.channels_last)}

    if args.only:
        results = [run_case(args.only, args.channels_last, args.iters)]
    else:
        results = [run_in_child(c, args) for c in DEFAULT_CASES]

    print(f"torch {header['torch']}  threads {header['threads']}  cpu_capability {cap}  "
          f"channels_last {header['channels_last']}")
    print(f"{'case':<4} {'benchmark':<50} {'mean s':>8} {'images/s':>9} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['case']:<4} {r['name']:<50} {r['mean_s']:>8.3f} {r['images_per_s']:>9.1f} "
              f"{r['peak_rss_mb']:>12.0f}")
    if args.json:
        print(json.dumps({**header, "cases": results}))


if __name__ == "__main__":
    main()
