#!/usr/bin/env python3
"""PyTorch reference features for the Swift feature extractor (Tests/EvaluationTests/Fixtures/features).

Run:  pip install torch==2.13.0+cpu safetensors pillow numpy
      python3 scripts/reference/make_feature_fixtures.py [--out Tests/EvaluationTests/Fixtures/features]

The whole MMSelfSup feature path, from image files to pooled, flattened features (PROTOCOLS section 2.2):

  images/*.png     three small deterministic images: a 45x34 and a 30x41 RGB image and a 37x37 grayscale one
                   (MMSelfSup opens every image with PIL and .convert('RGB'), so grey is replicated).
  resnet50_w32.safetensors
                   ResNet-50 (Bottleneck v1.5), width 1/32 (stage outputs 8, 16, 32, 64; conv1 2 channels), ImageNet
                   stem; torchvision state_dict key names (conv1.weight, bn1.running_mean, layer1.0.downsample.0.weight,
                   ..., num_batches_tracked as I64), no fc.
  resnet18_w32_cifar.safetensors
                   ResNet-18 (BasicBlock), width 1/32 (2, 4, 8, 16 channels), CIFAR stem (conv1 3x3/1, no max-pool).
  expected.safetensors
                   "<case>.feature1".."<case>.feature5", "<case>.avgpool": [3, dim] float32, rows in image order
                   (images sorted by name), for two cases:
                     svm224:  resnet50_w32, PIL Resize(256) on the short side (torchvision's size rule, bilinear),
                              then Resize((224, 224)), ToTensor, Normalize(ImageNet mean/std); model.eval();
                              feature1..5 pooled with nn.AvgPool2d(k, s, p) (count_include_pad=True) of
                              MMSelfSup's MultiPooling 'specified': (10,10,4) (16,8,0) (13,5,0) (8,3,0) (6,1,0),
                              then .view(n, -1) (NCHW flatten); avgpool = adaptive_avg_pool2d(feature5, 1).
                     cifar32: resnet18_w32_cifar, Resize(32) then Resize((32, 32)); every stage pooled with
                              F.adaptive_avg_pool2d to 12/6/4/3/2 (simsiam-bench's rule for inputs that are not 224).
                   Metadata: torch version, script, and the image order.

Weights: torchvision's init, then every BatchNorm gets weight ~ U(0.5, 1.5) and bias ~ N(0, 0.1) and its running
statistics are calibrated on random inputs (train mode, cumulative average), so eval-mode activations keep a sane
scale through 16 blocks. Everything is seeded; the images and expected values are bit-identical between runs.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_engine_fixtures import BasicBlock, Bottleneck, ResNet  # noqa: E402  (torchvision's architecture)

SCRIPT = "scripts/reference/make_feature_fixtures.py"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
SPECIFIED = [(10, 10, 4), (16, 8, 0), (13, 5, 0), (8, 3, 0), (6, 1, 0)]  # MMSelfSup MultiPooling POOL_PARAMS
GRIDS = [12, 6, 4, 3, 2]  # POOL_SIZES


def make_images(directory):
    """Smooth gradients plus seeded noise, so resizing has real work to do."""
    rng = np.random.default_rng(11)
    specs = [("a_rgb_45x34.png", 45, 34, "RGB"), ("b_rgb_30x41.png", 30, 41, "RGB"), ("c_gray_37x37.png", 37, 37, "L")]
    os.makedirs(directory, exist_ok=True)
    names = []
    for name, w, h, mode in specs:
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        channels = 3 if mode == "RGB" else 1
        planes = []
        for c in range(channels):
            base = 128 + 90 * np.sin(x / (3.0 + c) + y / (5.0 + 2 * c) + c)
            planes.append(base + rng.normal(0, 25, size=(h, w)))
        pixels = np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels if channels == 3 else pixels[:, :, 0], mode)
        image.save(os.path.join(directory, name), optimize=True)
        names.append(name)
    return names


def resize_short_side(image, size):
    """torchvision Resize(int) on a PIL image: short side -> size, long side int(size * long / short)."""
    w, h = image.size
    short, long = min(w, h), max(w, h)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    return image if (new_w, new_h) == (w, h) else image.resize((new_w, new_h), Image.BILINEAR)


def preprocess(path, resize, size):
    image = Image.open(path).convert("RGB")
    image = resize_short_side(image, resize)
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)  # ToTensor
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return x.sub(mean).div(std)  # Normalize


def make_model(block, layers, width, cifar_stem, seed):
    torch.manual_seed(seed)
    model = ResNet(block, layers, width=width, cifar_stem=cifar_stem)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.momentum = None  # cumulative average over the calibration batches
                m.reset_running_stats()
        model.train()
        side = 32 if cifar_stem else 64
        for _ in range(4):
            model(torch.randn(8, 3, side, side))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    return model.eval()


def pooled(features, rule):
    out = {}
    for i, f in enumerate(features):
        if rule == "specified":
            k, s, p = SPECIFIED[i]
            g = nn.AvgPool2d(k, s, p)(f)  # count_include_pad=True, ceil_mode=False (PyTorch defaults)
        else:
            g = F.adaptive_avg_pool2d(f, GRIDS[i])
        assert g.shape[-1] == GRIDS[i], (i, g.shape)
        out[f"feature{i + 1}"] = g.reshape(g.shape[0], -1)
    out["avgpool"] = F.adaptive_avg_pool2d(features[4], 1).flatten(1)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="Tests/EvaluationTests/Fixtures/features")
    args = parser.parse_args()
    torch.set_num_threads(1)
    image_dir = os.path.join(args.out, "images")
    names = make_images(image_dir)
    paths = [os.path.join(image_dir, n) for n in names]

    cases = [
        ("svm224", "resnet50_w32.safetensors", Bottleneck, [3, 4, 6, 3], False, 256, 224, "specified", 1),
        ("cifar32", "resnet18_w32_cifar.safetensors", BasicBlock, [2, 2, 2, 2], True, 32, 32, "adaptive", 2),
    ]
    expected = {}
    for case, file, block, layers, cifar, resize, size, rule, seed in cases:
        model = make_model(block, layers, 1 / 32, cifar, seed)
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(args.out, file),
                  metadata={"script": SCRIPT, "torch_version": torch.__version__,
                            "architecture": f"{block.__name__} {layers} width 1/32 cifar_stem={cifar}"})
        x = torch.stack([preprocess(p, resize, size) for p in paths])
        with torch.no_grad():
            for name, value in pooled(model(x), rule).items():
                expected[f"{case}.{name}"] = value.contiguous()
        print(case, {k: tuple(v.shape) for k, v in expected.items() if k.startswith(case)})
    save_file(expected, os.path.join(args.out, "expected.safetensors"),
              metadata={"script": SCRIPT, "torch_version": torch.__version__, "images": json.dumps(names)})
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {args.out} ({total} bytes)")


if __name__ == "__main__":
    main()
