#!/usr/bin/env python3
"""The scene VOC SVM's upper bound (issue 19 item 5): the quick config's backbone trained WITH labels.

Trains the quick pretraining's backbone — ResNet-18, CIFAR stem (3×3 conv1, stride 1, no max-pool), width 0.25
(16/32/64/128 channels), 1 input channel — with cross-entropy on Fashion-MNIST items at 32 px, with the pretraining's
geometric augmentation (RandomResizedCrop(32, scale 0.2–1) + horizontal flip), normalised with Fashion-MNIST's
mean/std (0.2860 / 0.3530) as the pretraining config. The backbone tensors replace those of a simsiam-bench
checkpoint given as the template (e.g. the quickstart's random_init.safetensors: same names, PyTorch layouts), so
`simsiam-bench run voc-svm --checkpoint <out>` reads it like a pretrained checkpoint.

  python3 scripts/experiments/supervised_fashion_mnist_backbone.py \
      --template work_dirs/quickstart/random_init.safetensors --out supervised.safetensors --seed 0

Not a test oracle: a measurement script (torch, torchvision-free; 1 thread by default so it shares the machine).
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file, save_file


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class CifarResNet18(nn.Module):
    """torchvision's resnet18 names (conv1, bn1, layer1.0.conv1, …, layerN.0.downsample.0/1) with a CIFAR stem."""

    def __init__(self, width=0.25, in_channels=1, classes=10):
        super().__init__()
        widths = [int(64 * width * 2 ** i) for i in range(4)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(x.mean((2, 3)))


def random_resized_crop(batch, generator, size=32, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """RandomResizedCrop + flip per image of a [n, 1, 28, 28] float batch (bilinear, torch's grid sampling)."""
    n, _, h, w = batch.shape
    area = h * w * torch.empty(n).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(n).uniform_(np.log(ratio[0]), np.log(ratio[1]), generator=generator)
    aspect = torch.exp(log_ratio)
    cw = torch.sqrt(area * aspect).clamp(max=w)
    ch = torch.sqrt(area / aspect).clamp(max=h)
    cx = torch.rand(n, generator=generator) * (w - cw) + cw / 2
    cy = torch.rand(n, generator=generator) * (h - ch) + ch / 2
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cw / w * flip
    theta[:, 0, 2] = (2 * cx / w - 1)
    theta[:, 1, 1] = ch / h
    theta[:, 1, 2] = (2 * cy / h - 1)
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fashion-mnist", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--template", required=True, help="a simsiam-bench checkpoint of the quick config")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=20000, help="training images (the quick pretraining's 20000)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    images = read_idx(f"{args.fashion_mnist}/train-images-idx3-ubyte.gz")[:args.limit]
    labels = read_idx(f"{args.fashion_mnist}/train-labels-idx1-ubyte.gz")[:args.limit]
    test_images = read_idx(f"{args.fashion_mnist}/t10k-images-idx3-ubyte.gz")
    test_labels = read_idx(f"{args.fashion_mnist}/t10k-labels-idx1-ubyte.gz")
    mean, std = 0.2860, 0.3530
    x = torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))

    model = CifarResNet18()
    steps_per_epoch = len(x) // 256
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * steps_per_epoch)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total, correct = 0.0, 0
        for step in range(steps_per_epoch):
            index = order[step * 256:(step + 1) * 256]
            batch = (random_resized_crop(x[index], generator) - mean) / std
            logits = model(batch)
            loss = F.cross_entropy(logits, y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
            correct += (logits.argmax(1) == y[index]).sum().item()
        print(f"epoch {epoch + 1}: loss {total / steps_per_epoch:.4f}, train acc "
              f"{100 * correct / (steps_per_epoch * 256):.2f} %, {time.time() - start:.0f} s", flush=True)

    model.eval()
    with torch.no_grad():
        t = torch.from_numpy(test_images.astype(np.float32) / 255).unsqueeze(1)
        t = (F.interpolate(t, size=32, mode="bilinear", align_corners=False) - mean) / std
        accuracy = sum((model(t[i:i + 1000]).argmax(1) == torch.from_numpy(test_labels[i:i + 1000].astype(np.int64)))
                       .sum().item() for i in range(0, len(t), 1000)) / len(t)
    print(f"test accuracy (Resize 32): {100 * accuracy:.2f} %")

    template = load_file(args.template)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    replaced = 0
    for name, value in state.items():
        key = "backbone." + name
        if key not in template:
            raise SystemExit(f"{args.template} has no tensor {key}: not a quick-config checkpoint")
        if template[key].shape != value.shape:
            raise SystemExit(f"{key}: template shape {template[key].shape}, trained {value.shape}")
        template[key] = value.astype(template[key].dtype)
        replaced += 1
    save_file(template, args.out, metadata={"author": "scripts/experiments/supervised_fashion_mnist_backbone.py",
                                             "note": "supervised upper bound of the quick backbone",
                                             "seed": str(args.seed), "epoch": str(args.epochs)})
    print(f"wrote {args.out}: {replaced} backbone tensors replaced")


if __name__ == "__main__":
    main()
