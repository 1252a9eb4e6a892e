#!/usr/bin/env python3
"""Golden fixtures for the two bilinear pass orders (`resize_rule: pillow9 | pillow13`, Image+Resize.swift).

Pillow's `Image.resize(size, BILINEAR)` is two 8-bit passes with rounding in between, so the order of the passes
shows (±1 on some pixels). Pillow <= 12 always runs the horizontal pass first (libImaging/Resample.c,
`ImagingResampleInner`, read at tags 9.5.0 and 12.3.0); Pillow 13 runs the vertical one first when
2 * (W - w) < (H - h). The published SimSiam / MMSelfSup numbers were made with Pillow <= 9.

Run once per Pillow version; each run writes resize_rule_pillow<major>.json for the Pillow it imports:
    python3 scripts/reference/make_resize_rule_fixtures.py          # Pillow 13.0.0 (this machine's)
    python3 -m venv --system-site-packages /tmp/pil9 && /tmp/pil9/bin/pip install --no-deps pillow==9.5.0
    /tmp/pil9/bin/python scripts/reference/make_resize_rule_fixtures.py   # Pillow 9.5.0 (numpy from the system)

The layout is transforms.json's ({"inputs", "cases"}, see make_transform_fixtures.py), with ops
  "resize"          Image.resize((width, height), BILINEAR)
  "evaluationSquash" torchvision Resize(size) (short side, int(size * long / short)) then Resize((crop, crop)):
                    the VOC07 SVM features' preprocessing (PROTOCOLS §2.2)
  "evaluationCrop"  Resize(size) then CenterCrop(crop) (the linear / kNN test transform)
Portrait cases (2 * (W - w) < H - h) are where the versions differ; landscape ones agree.
"""
import argparse
import base64
import json
import os

import numpy as np
import PIL
from PIL import Image


def make_rgb(width, height, seed):
    """Noise over smooth ramps: every pass rounds differently somewhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([255 * xx / max(width - 1, 1), 255 * yy / max(height - 1, 1),
                    128 + 100 * np.sin(xx * 0.31) * np.cos(yy * 0.17)], axis=-1)
    img += rng.normal(0, 30, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def encode(img):
    a = np.array(img, dtype=np.uint8)
    channels = 1 if a.ndim == 2 else a.shape[2]
    return {"width": img.size[0], "height": img.size[1], "channels": channels,
            "pixels": base64.b64encode(a.tobytes()).decode("ascii")}


def tv_resize_short(img, size):
    """torchvision.transforms.functional.resize(img, size) with an int size (see make_transform_fixtures.py)."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short == size:
        return img
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    return img.resize((new_w, new_h), Image.BILINEAR)


def tv_center_crop(img, size):
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="Tests/DatasetsTests/Fixtures/transforms")
    args = parser.parse_args()
    major = int(PIL.__version__.split(".")[0])

    portrait = make_rgb(61, 200, seed=11)     # tall: most resizes to a square take the vertical-first branch
    landscape = make_rgb(150, 70, seed=12)
    tall_gray = make_rgb(40, 131, seed=13).convert("L")
    inputs = {"portrait": portrait, "landscape": landscape, "tallGray": tall_gray}
    cases = []

    def add(op, name, out, **params):
        cases.append({"op": op, "input": name, **params, "expected": encode(out)})

    for name, (w, h) in [("portrait", (40, 90)), ("portrait", (50, 50)), ("portrait", (30, 100)),
                         ("portrait", (45, 160)), ("portrait", (90, 300)), ("landscape", (64, 40)),
                         ("landscape", (100, 65)), ("tallGray", (28, 28)), ("tallGray", (33, 60))]:
        add("resize", name, inputs[name].resize((w, h), Image.BILINEAR), width=w, height=h)
    for name, (size, crop) in [("portrait", (56, 48)), ("portrait", (40, 40)), ("landscape", (48, 40)),
                               ("tallGray", (32, 28))]:
        scaled = tv_resize_short(inputs[name], size)
        squashed = scaled if scaled.size == (crop, crop) else scaled.resize((crop, crop), Image.BILINEAR)
        add("evaluationSquash", name, squashed, size=size, width=crop)
        add("evaluationCrop", name, tv_center_crop(scaled, crop), size=size, width=crop)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"resize_rule_pillow{major}.json")
    with open(path, "w") as f:
        json.dump({"pillow": PIL.__version__, "inputs": {k: encode(v) for k, v in inputs.items()}, "cases": cases},
                  f, separators=(",", ":"))
    print(f"wrote {path} ({len(cases)} cases, Pillow {PIL.__version__})")


if __name__ == "__main__":
    main()
