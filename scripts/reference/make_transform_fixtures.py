#!/usr/bin/env python3
"""Golden fixtures for Sources/Datasets/Transforms, produced with Pillow (and torch for the float tensors).

Run:  python3 scripts/reference/make_transform_fixtures.py [--out Tests/DatasetsTests/Fixtures/transforms]
      (pillow >= 7 for the antialiased resize; made with pillow 13.0.0, numpy 2.4, torch 2.13.0+cpu)

torchvision is not installed here (no CPU wheel on this machine), so the torchvision functions the pipelines
use are re-implemented below on top of PIL, one small function each, with the torchvision function they mirror
named in the comment. They are thin: torchvision's PIL path hands almost everything to PIL, which is what the
fixtures really pin down. The random *parameters* cannot match torch's generator, so every case fixes them
(crop box, factors, order, sigma) and the Swift tests call the parameterised ops with the same values.

Writes one file, transforms.json:
  {"inputs":  {name: {"width", "height", "channels", "pixels": base64 of interleaved uint8}},
   "cases":   [{"op", "input", <parameters>, "expected": image like the inputs  (or "tensor": [floats])}]}
Float parameters are rounded to float32 first (PIL's C code and torch take float32), and written with
Python's repr so Swift's Float(...) recovers the same float32.
"""
import argparse
import base64
import json
import math
import os

import numpy as np
import PIL
from PIL import Image, ImageEnhance, ImageFilter


def f32(x):
    return float(np.float32(x))


# ---------------------------------------------------------------------------------------------------------------
# torchvision.transforms.functional(_pil) on PIL images, re-implemented
# ---------------------------------------------------------------------------------------------------------------

def tv_resize(img, size):
    """torchvision.transforms.functional.resize(img, size, BILINEAR) on a PIL image.

    An int size means the short side: functional._compute_resized_output_size computes
    new_long = int(size * long / short) (true division, then truncation); then functional_pil.resize calls
    img.resize((w, h), Image.BILINEAR) (PIL always antialiases). A same-size resize returns the image unchanged."""
    w, h = img.size
    if isinstance(size, int):
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        new_h, new_w = size
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), Image.BILINEAR)


def tv_crop(img, top, left, height, width):
    """torchvision.transforms.functional_pil.crop: img.crop((left, top, left + width, top + height));
    PIL fills the part of the box outside the image with 0."""
    return img.crop((left, top, left + width, top + height))


def tv_center_crop(img, size):
    """torchvision.transforms.functional.center_crop: zero-pad (left/top get the floor half) when the crop is
    larger than the image, then crop at int(round((dim - crop) / 2.0)) (Python's round: half to even)."""
    th, tw = size
    w, h = img.size
    if tw > w or th > h:
        pad_l = (tw - w) // 2 if tw > w else 0
        pad_t = (th - h) // 2 if th > h else 0
        pad_r = (tw - w + 1) // 2 if tw > w else 0
        pad_b = (th - h + 1) // 2 if th > h else 0
        # functional_pil.pad with fill=0, padding_mode='constant' -> ImageOps.expand(img, border, fill=0)
        padded = Image.new(img.mode, (w + pad_l + pad_r, h + pad_t + pad_b), 0)
        padded.paste(img, (pad_l, pad_t))
        img = padded
        w, h = img.size
        if (tw, th) == (w, h):
            return img
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return tv_crop(img, top, left, th, tw)


def tv_hflip(img):
    """torchvision.transforms.functional_pil.hflip."""
    return img.transpose(Image.FLIP_LEFT_RIGHT)


def tv_resized_crop(img, top, left, height, width, size):
    """torchvision.transforms.functional.resized_crop = resize(crop(...), size, BILINEAR)."""
    return tv_resize(tv_crop(img, top, left, height, width), list(size))


def tv_adjust_brightness(img, factor):
    """functional_pil.adjust_brightness: ImageEnhance.Brightness(img).enhance(f) = Image.blend(black, img, f)."""
    return ImageEnhance.Brightness(img).enhance(factor)


def tv_adjust_contrast(img, factor):
    """functional_pil.adjust_contrast: ImageEnhance.Contrast: blend with a constant image whose value is
    int(mean(img.convert('L')) + 0.5)."""
    return ImageEnhance.Contrast(img).enhance(factor)


def tv_adjust_saturation(img, factor):
    """functional_pil.adjust_saturation: ImageEnhance.Color: blend with img.convert('L').convert(img.mode)."""
    return ImageEnhance.Color(img).enhance(factor)


def tv_adjust_hue(img, hue_factor):
    """functional_pil.adjust_hue: HSV round trip through PIL, the H band shifted by uint8(hue_factor * 255)
    with wrap-around. torchvision writes `np_h += np.array(hue_factor * 255).astype(np.uint8)` (uint8
    addition wraps); the cast of a negative float to uint8 is C's truncation toward zero then mod 256 on
    x86-64, written here explicitly so it does not depend on numpy's handling of that cast."""
    if img.mode in {"L", "1", "I", "F"}:
        return img
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    shift = int(hue_factor * 255) % 256  # int() truncates toward zero, like the C cast
    np_h = (np_h.astype(np.int32) + shift).astype(np.uint8)
    h = Image.fromarray(np_h, "L")
    return Image.merge("HSV", (h, s, v)).convert(img.mode)


def tv_color_jitter(img, order, b, c, s, h):
    """transforms.ColorJitter.forward with fixed get_params output: fn_idx = order (torch.randperm(4)),
    0 brightness, 1 contrast, 2 saturation, 3 hue; a None factor skips its op."""
    for fn_id in order:
        if fn_id == 0 and b is not None:
            img = tv_adjust_brightness(img, b)
        elif fn_id == 1 and c is not None:
            img = tv_adjust_contrast(img, c)
        elif fn_id == 2 and s is not None:
            img = tv_adjust_saturation(img, s)
        elif fn_id == 3 and h is not None:
            img = tv_adjust_hue(img, h)
    return img


def tv_rgb_to_grayscale(img):
    """functional_pil.to_grayscale(img, num_output_channels=3): convert('L') stacked three times
    (an L image keeps its one channel: RandomGrayscale asks for as many channels as the input has)."""
    if img.mode == "L":
        return img
    g = np.array(img.convert("L"), dtype=np.uint8)
    return Image.fromarray(np.dstack([g, g, g]), "RGB")


def mmselfsup_gaussian_blur(img, sigma):
    """mmselfsup/datasets/pipelines/transforms.py GaussianBlur (and facebookresearch/simsiam loader.py):
    img.filter(ImageFilter.GaussianBlur(radius=sigma)) with sigma ~ U(0.1, 2.0) drawn outside."""
    return img.filter(ImageFilter.GaussianBlur(radius=sigma))


def tv_to_tensor_normalize(img, mean, std, lighting_alpha=None):
    """transforms.ToTensor (uint8 / 255 in float32), optionally mmselfsup's Lighting (AlexNet PCA noise added per
    channel on the 0-1 tensor), then transforms.Normalize ((x - mean) / std in float32). Returned HWC."""
    import torch
    x = torch.from_numpy(np.array(img, dtype=np.uint8).copy())
    if x.ndim == 2:
        x = x[:, :, None]
    x = x.permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    if lighting_alpha is not None:
        # mmselfsup Lighting.__call__ with alpha = normal_(0, 0.1) replaced by the fixed value.
        eigval = torch.tensor([0.2175, 0.0188, 0.0045])
        eigvec = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
        alpha = torch.tensor(lighting_alpha, dtype=torch.float32)
        rgb = eigvec.clone().mul(alpha.view(1, 3).expand(3, 3)).mul(eigval.view(1, 3).expand(3, 3)).sum(1).squeeze()
        x = x.add(rgb.view(3, 1, 1).expand_as(x))
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    x = x.sub(m).div(s)
    return x.permute(1, 2, 0).contiguous().numpy().reshape(-1).tolist()


# ---------------------------------------------------------------------------------------------------------------
# Inputs: smooth gradients + edges + noise, so every rounding path sees many different values
# ---------------------------------------------------------------------------------------------------------------

def make_rgb(width, height, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * (xx / max(width - 1, 1))
    g = 255 * (yy / max(height - 1, 1))
    b = 128 + 100 * np.sin(xx * 0.7) * np.cos(yy * 0.45)
    img = np.stack([r, g, b], axis=-1)
    # a saturated disc and a dark bar: hard edges and extreme colours
    disc = (xx - width * 0.6) ** 2 + (yy - height * 0.4) ** 2 < (min(width, height) * 0.25) ** 2
    img[disc] = [250, 20, 60]
    img[:, width // 5: width // 5 + 2] = [5, 5, 5]
    img += rng.normal(0, 18, img.shape)
    # a few pure grey pixels (hue/saturation 0 path) and extremes
    img[0, 0] = [0, 0, 0]
    img[0, 1] = [255, 255, 255]
    img[1, 0] = [77, 77, 77]
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def encode(img):
    a = np.array(img, dtype=np.uint8)
    channels = 1 if a.ndim == 2 else a.shape[2]
    return {"width": img.size[0], "height": img.size[1], "channels": channels,
            "pixels": base64.b64encode(a.tobytes()).decode("ascii")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="Tests/DatasetsTests/Fixtures/transforms")
    args = parser.parse_args()

    rgb = make_rgb(37, 29, seed=1)          # small, odd sizes
    wide = make_rgb(97, 61, seed=2)         # for strong downscales (antialias support > 1)
    tiny = make_rgb(4, 3, seed=3)           # box blur radius larger than the image
    gray = rgb.convert("L")
    noise = Image.fromarray(np.random.default_rng(4).integers(0, 256, (24, 24, 3)).astype(np.uint8), "RGB")
    inputs = {"rgb": rgb, "wide": wide, "tiny": tiny, "gray": gray, "noise": noise}
    cases = []

    def add(op, name, out, **params):
        case = {"op": op, "input": name, **params}
        if isinstance(out, list):
            case["tensor"] = out
        else:
            case["expected"] = encode(out)
        cases.append(case)

    # resize: PIL Image.resize(size, BILINEAR), up, down, mixed, strong downscale, 1 pixel; wide -> 80x26 and
    # 80x27 sit on either side of Pillow 13's pass-order boundary (vertical first iff 2(W-w) < H-h)
    for name, (w, h) in [("rgb", (61, 47)), ("rgb", (19, 13)), ("rgb", (50, 11)), ("rgb", (8, 40)),
                         ("wide", (16, 16)), ("wide", (7, 5)), ("wide", (101, 70)), ("rgb", (1, 1)), ("wide", (80, 26)), ("wide", (80, 27)), ("wide", (90, 20)),
                         ("gray", (61, 47)), ("gray", (11, 9)), ("tiny", (9, 2))]:
        add("resize", name, inputs[name].resize((w, h), Image.BILINEAR), width=w, height=h)
    for name, size in [("rgb", 20), ("rgb", 40), ("wide", 24), ("gray", 13)]:
        add("resizeShortSide", name, tv_resize(inputs[name], size), size=size)

    # crop (top/left may be negative or run past the image: PIL pads with 0), center crop, flip
    for name, (x, y, w, h) in [("rgb", (3, 5, 20, 11)), ("rgb", (-4, -2, 10, 9)), ("rgb", (30, 20, 12, 15)),
                               ("gray", (-3, 25, 45, 8))]:
        add("crop", name, tv_crop(inputs[name], y, x, h, w), x=x, y=y, width=w, height=h)
    for name, (w, h) in [("rgb", (20, 20)), ("rgb", (16, 13)), ("rgb", (36, 28)), ("rgb", (40, 33)),
                         ("rgb", (30, 32)), ("gray", (7, 8))]:
        add("centerCrop", name, tv_center_crop(inputs[name], (h, w)), width=w, height=h)
    for name in ["rgb", "gray"]:
        add("flip", name, tv_hflip(inputs[name]))

    # colour ops with fixed factors; > 1 factors exercise PIL's clipped extrapolation branch
    for name in ["rgb", "gray"]:
        for f in [0.6, 0.93, 1.0, 1.37]:
            add("brightness", name, tv_adjust_brightness(inputs[name], f32(f)), factor=f32(f))
            add("contrast", name, tv_adjust_contrast(inputs[name], f32(f)), factor=f32(f))
            add("saturation", name, tv_adjust_saturation(inputs[name], f32(f)), factor=f32(f))
    for f in [-0.1, -0.0371, 0.0, 0.002, 0.05, 0.1, 0.5]:
        add("hue", "rgb", tv_adjust_hue(rgb, f32(f)), factor=f32(f))
    for f in [-0.0371, 0.1]:
        add("hue", "wide", tv_adjust_hue(wide, f32(f)), factor=f32(f))
    for f in [-0.5, -0.25, 0.0, 0.077, 0.33, 0.5]:  # uniform noise: every hue sector, shifted hue 255 included
        add("hue", "noise", tv_adjust_hue(noise, f32(f)), factor=f32(f))
    add("grayscale", "rgb", tv_rgb_to_grayscale(rgb))
    add("grayscale", "gray", tv_rgb_to_grayscale(gray))
    for order, (b, c, s, h) in [([2, 0, 3, 1], (0.71, 1.29, 0.83, -0.063)),
                                ([3, 1, 0, 2], (1.38, 0.62, 1.4, 0.097)),
                                ([0, 1, 2, 3], (1.1, 0.9, 0.6, None))]:
        fs = [f32(b), f32(c), f32(s), None if h is None else f32(h)]
        add("colorJitter", "rgb", tv_color_jitter(rgb, order, *fs), order=order,
            brightness=fs[0], contrast=fs[1], saturation=fs[2], hue=fs[3])

    # PIL GaussianBlur (three extended box blurs per direction)
    for sigma in [0.1, 0.37, 0.73, 1.0, 1.5, 2.0]:
        add("gaussianBlur", "rgb", mmselfsup_gaussian_blur(rgb, f32(sigma)), radius=f32(sigma))
    for sigma in [0.55, 1.9]:
        add("gaussianBlur", "wide", mmselfsup_gaussian_blur(wide, f32(sigma)), radius=f32(sigma))
    add("gaussianBlur", "gray", mmselfsup_gaussian_blur(gray, f32(1.3)), radius=f32(1.3))
    add("gaussianBlur", "tiny", mmselfsup_gaussian_blur(tiny, f32(6.0)), radius=f32(6.0))

    # RandomResizedCrop's deterministic half: F.resized_crop(img, i, j, h, w, size)
    for name, (x, y, w, h), (ow, oh) in [("wide", (10, 7, 60, 45), (32, 32)), ("wide", (0, 0, 97, 61), (24, 24)),
                                         ("rgb", (5, 3, 12, 9), (32, 32))]:
        add("resizedCrop", name, tv_resized_crop(inputs[name], y, x, h, w, (oh, ow)),
            x=x, y=y, width=w, height=h, outputWidth=ow, outputHeight=oh)

    # a whole SimSiam view with fixed parameters (before ToTensor); ToTensor + Normalize (+ Lighting) as floats
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    view = tv_resized_crop(wide, 7, 10, 45, 60, (32, 32))
    view = tv_color_jitter(view, [1, 3, 0, 2], f32(1.21), f32(0.77), f32(1.05), f32(0.031))
    view = tv_rgb_to_grayscale(view)
    view = mmselfsup_gaussian_blur(view, f32(0.9))
    view = tv_hflip(view)
    add("simsiamView", "wide", view,
        x=10, y=7, width=60, height=45, outputWidth=32, outputHeight=32, order=[1, 3, 0, 2],
        brightness=f32(1.21), contrast=f32(0.77), saturation=f32(1.05), hue=f32(0.031), radius=f32(0.9))
    add("toTensor", "tiny", tv_to_tensor_normalize(tiny, mean, std))
    add("toTensorLighting", "tiny", tv_to_tensor_normalize(tiny, mean, std, [f32(0.13), f32(-0.21), f32(0.05)]),
        alpha=[f32(0.13), f32(-0.21), f32(0.05)])

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "transforms.json")
    with open(path, "w") as f:
        json.dump({"generator": "scripts/reference/make_transform_fixtures.py",
                   "pillow": PIL.__version__,
                   "inputs": {k: encode(v) for k, v in inputs.items()}, "cases": cases}, f)
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
