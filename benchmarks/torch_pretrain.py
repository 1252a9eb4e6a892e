#!/usr/bin/env python3
"""PyTorch side of issue 19 item 2: the embedded default's SimSiam pretraining end to end, timed with its data.

The recipe of configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml, written for PyTorch 2.13 on CPU without
torchvision (its compiled ops do not load on these machines), in the design of shared/spec/QUICK_DEFAULT.md:
- data: the first `--limit` (20,000) Fashion-MNIST training images from Debian's dataset-fashion-mnist package,
  read from the idx files into one uint8 tensor; every epoch a fresh permutation, batch 256, drop_last;
- views, made batch-wise on tensors in the training process (QUICK_DEFAULT's design; our `pretrain` makes them per
  image with Pillow's semantics in two loader threads that overlap the step):
  RandomResizedCrop(32, scale 0.2–1, ratio 3/4–4/3) with torchvision's parameter draw (10 attempts, then the
  centre crop) applied through affine_grid + grid_sample (bilinear, align_corners False; no antialiasing — the crops
  are upsampled, 28 px items to 32 px), horizontal flip p 0.5, ColorJitter(brightness 0.4, contrast 0.4) with
  p 0.8 in a random order per image (contrast blends with the image's mean), then Normalize(0.2860, 0.3530);
- model: ResNet-18 CIFAR stem (3×3/1, no max-pool) at width 0.25 with 1 input channel, torchvision's init and
  zero_init_residual; projector 128→512→512→512 (last BN without affine), predictor 512→128→512; the symmetric
  negative cosine with stop-gradient (torch_bench.py's SimSiam, case d);
- SGD lr 0.06 × batch / 256, momentum 0.9, weight decay 5e-4, cosine per epoch over `--epochs` (3),
  the predictor at the fixed base lr (fix_pred_lr), and the same 10-minute wall-clock cap;
- the kNN monitor at the end as ours: global-pooled features of the first 10,000 training images (bank) and the
  first 2,000 test images (queries), resized to 32 (bilinear), normalised, L2-normalised rows, the k = 20 most
  cosine-similar bank rows vote with weight exp(sim / 0.07); top-1 accuracy. Also before training (random init).

The timed loop includes the data: permutation, gathering, view making, the step. The script reports the wall time
of the loop, the seconds spent making views and in the step, images/s (each image once; two views each), and kNN@20.

usage: python3 benchmarks/torch_pretrain.py [--threads 2] [--seed 0] [--epochs 3] [--limit 20000]
                                            [--max-minutes 10] [--channels-last 1] [--json FILE]
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import BasicBlock, SimSiam  # noqa: E402  (the case-d model)

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    """An idx file (gzip): images [n, rows, cols] uint8 or labels [n] uint8."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def torchvision_init(model):
    """torchvision's ResNet init: convs Kaiming-normal (fan_out, ReLU), BN 1/0, zero_init_residual."""
    for m in model.backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.backbone.modules():
        if isinstance(m, BasicBlock):
            nn.init.zeros_(m.bn2.weight)


# ---------------------------------------------------------------------------------------------- views

def crop_boxes(n, height, width, generator, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision RandomResizedCrop.get_params for n images: [n, 4] (top, left, h, w) in pixels."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    boxes = []
    for _ in range(n):
        for _ in range(10):
            target = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
            aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator).item())
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = torch.randint(0, height - h + 1, (1,), generator=generator).item()
                left = torch.randint(0, width - w + 1, (1,), generator=generator).item()
                boxes.append((top, left, h, w))
                break
        else:  # the centre crop at the clamped ratio
            in_ratio = width / height
            if in_ratio < ratio[0]:
                w, h = width, int(round(width / ratio[0]))
            elif in_ratio > ratio[1]:
                h, w = height, int(round(height * ratio[1]))
            else:
                w, h = width, height
            boxes.append(((height - h) // 2, (width - w) // 2, h, w))
    return torch.tensor(boxes, dtype=torch.float32)


def make_views(images, generator, size=32):
    """images [n, 1, 28, 28] float in 0…1 → one augmented view [n, 1, size, size], normalised."""
    n, _, height, width = images.shape
    boxes = crop_boxes(n, height, width, generator)
    top, left, h, w = boxes.unbind(1)
    # The crop box in normalised coordinates (align_corners False: pixel edges at ±1).
    cx = (left + w / 2) / width * 2 - 1
    cy = (top + h / 2) / height * 2 - 1
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w / width
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = cy
    flip = torch.rand(n, generator=generator) < 0.5
    theta[flip, 0, 0] *= -1
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # ColorJitter(0.4, 0.4) with p 0.8: factors in [0.6, 1.4], the two ops in a random order per image.
    jitter = torch.rand(n, generator=generator) < 0.8
    brightness = torch.empty(n).uniform_(0.6, 1.4, generator=generator)
    contrast = torch.empty(n).uniform_(0.6, 1.4, generator=generator)
    brightness_first = torch.rand(n, generator=generator) < 0.5
    b = torch.where(jitter, brightness, torch.ones(n)).view(n, 1, 1, 1)
    c = torch.where(jitter, contrast, torch.ones(n)).view(n, 1, 1, 1)

    def adjust_brightness(t):
        return (t * b).clamp(0, 1)

    def adjust_contrast(t):
        mean = t.mean(dim=(1, 2, 3), keepdim=True)
        return (c * t + (1 - c) * mean).clamp(0, 1)

    first = adjust_contrast(adjust_brightness(x))
    second = adjust_brightness(adjust_contrast(x))
    x = torch.where(brightness_first.view(n, 1, 1, 1), first, second)
    return (x - MEAN) / STD


# ---------------------------------------------------------------------------------------------- kNN monitor

def pooled_features(backbone, images, channels_last):
    """GAP(layer4) of images [n, 1, 28, 28] (0…1) resized to 32 and normalised, in batches of 256: [n, c]."""
    backbone.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, images.shape[0], 256):
            x = F.interpolate(images[start:start + 256], size=(32, 32), mode="bilinear", align_corners=False)
            x = (x - MEAN) / STD
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            rows.append(backbone(x))
    backbone.train()
    return torch.cat(rows)


def knn_top1(bank, bank_labels, queries, query_labels, k=20, temperature=0.07, classes=10):
    """MMSelfSup's weighted kNN: cosine similarity, the k nearest vote exp(sim / T) for their class."""
    bank = F.normalize(bank, dim=1)
    queries = F.normalize(queries, dim=1)
    sims, index = (queries @ bank.T).topk(k, dim=1)
    votes = torch.zeros(queries.shape[0], classes)
    votes.scatter_add_(1, bank_labels[index], (sims / temperature).exp())
    return (votes.argmax(1) == query_labels).float().mean().item()


def knn_accuracy(model, train, train_labels, test, test_labels, channels_last):
    bank = pooled_features(model.backbone, train[:10000], channels_last)
    queries = pooled_features(model.backbone, test[:2000], channels_last)
    return knn_top1(bank, train_labels[:10000], queries, test_labels[:2000])


# ---------------------------------------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.06)
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--channels-last", type=int, default=1)
    parser.add_argument("--data", default=FASHION_MNIST)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    def load(kind):
        images = read_idx(os.path.join(args.data, f"{kind}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(args.data, f"{kind}-labels-idx1-ubyte.gz"))
        return (torch.from_numpy(images.copy()).unsqueeze(1).float() / 255,
                torch.from_numpy(labels.astype(np.int64)))

    train, train_labels = load("train")
    test, test_labels = load("t10k")
    pool = train[:args.limit]

    model = SimSiam(dim=512, pred_dim=128, width=0.25, in_channels=1)
    torchvision_init(model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    base_lr = args.lr * args.batch / 256
    optimizer = torch.optim.SGD([
        {"params": list(model.backbone.parameters()) + list(model.neck.parameters()), "fix_lr": False},
        {"params": model.predictor.parameters(), "fix_lr": True},
    ], lr=base_lr, momentum=0.9, weight_decay=5e-4)

    knn_random = knn_accuracy(model, train, train_labels, test, test_labels, args.channels_last)
    print(f"random init kNN@20 {100 * knn_random:.2f}", flush=True)

    per_epoch = args.limit // args.batch
    view_seconds = step_seconds = 0.0
    images_done = 0
    loss_value = float("nan")
    stopped = False
    start = time.perf_counter()
    for epoch in range(args.epochs):
        lr = base_lr * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs))
        for group in optimizer.param_groups:
            group["lr"] = base_lr if group["fix_lr"] else lr
        order = torch.randperm(args.limit, generator=generator)
        for it in range(per_epoch):
            t0 = time.perf_counter()
            batch = pool[order[it * args.batch:(it + 1) * args.batch]]
            x1, x2 = make_views(batch, generator), make_views(batch, generator)
            if args.channels_last:
                x1 = x1.contiguous(memory_format=torch.channels_last)
                x2 = x2.contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            loss = model.loss(x1, x2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = loss.item()
            t2 = time.perf_counter()
            view_seconds += t1 - t0
            step_seconds += t2 - t1
            images_done += args.batch
            if (it + 1) % 20 == 0:
                elapsed = t2 - start
                print(f"epoch {epoch + 1} iter {it + 1}/{per_epoch} loss {loss_value:.4f} "
                      f"{images_done / elapsed:.1f} img/s", flush=True)
            if args.max_minutes > 0 and t2 - start > args.max_minutes * 60:
                stopped = True
                break
        if stopped:
            break
    wall = time.perf_counter() - start
    knn_final = knn_accuracy(model, train, train_labels, test, test_labels, args.channels_last)
    result = {
        "seed": args.seed, "threads": args.threads, "torch": torch.__version__,
        "images": images_done, "wall_s": round(wall, 2), "images_per_s": round(images_done / wall, 2),
        "views_s": round(view_seconds, 2), "step_s": round(step_seconds, 2),
        "final_loss": round(loss_value, 4), "stopped_by_time": stopped,
        "knn20_random": round(100 * knn_random, 2), "knn20": round(100 * knn_final, 2),
    }
    print(json.dumps(result), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
