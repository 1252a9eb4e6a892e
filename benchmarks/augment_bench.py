#!/usr/bin/env python3
"""PyTorch/torchvision side of AugmentBench: decode + two SimSiam views at 224 on the same photos.

torchvision has no CPU wheel on these machines, so the pipeline is written out with the PIL calls torchvision's
PIL backend makes (torchvision.transforms.functional_pil), in MMSelfSup's order (PROTOCOLS §1.1):
  Image.open().convert('RGB')                      (torchvision.datasets.folder.pil_loader)
  RandomResizedCrop(224, (0.2, 1))                 get_params (10 attempts + fallback), img.crop().resize(BILINEAR)
  ColorJitter(0.4, 0.4, 0.4, 0.1), p = 0.8         ImageEnhance.Brightness/Contrast/Color in random order, hue via HSV
  RandomGrayscale(0.2)                             img.convert('L').convert('RGB')
  GaussianBlur(sigma U(0.1, 2.0)), p = 0.5         img.filter(ImageFilter.GaussianBlur(radius=sigma))
  RandomHorizontalFlip                             img.transpose(FLIP_LEFT_RIGHT)
  ToTensor + Normalize                             torch.from_numpy(np.asarray(img)).permute(2,0,1).float()/255, (x-m)/s
Workers are processes (torch DataLoader's num_workers model), each decoding its share of the samples.
usage: python3 augment_bench.py --images DIR [--workers N] [--samples N] [--json]
"""
import argparse, io, json, math, os, random, time, multiprocessing as mp
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
import torch

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def rrc_params(w, h, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * random.uniform(*scale)
        aspect = math.exp(random.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return random.randint(0, w - cw), random.randint(0, h - ch), cw, ch
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def adjust_hue(img, factor):
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    with np.errstate(over="ignore"):
        np_h += np.uint8(int(factor * 255) % 256)
    return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert("RGB")


def view(img):
    x, y, cw, ch = rrc_params(*img.size)
    img = img.crop((x, y, x + cw, y + ch)).resize((224, 224), Image.BILINEAR)
    if random.random() < 0.8:
        ops = [lambda im: ImageEnhance.Brightness(im).enhance(random.uniform(0.6, 1.4)),
               lambda im: ImageEnhance.Contrast(im).enhance(random.uniform(0.6, 1.4)),
               lambda im: ImageEnhance.Color(im).enhance(random.uniform(0.6, 1.4)),
               lambda im: adjust_hue(im, random.uniform(-0.1, 0.1))]
        for i in torch.randperm(4).tolist():
            img = ops[i](img)
    if random.random() < 0.2:
        img = img.convert("L").convert("RGB")
    if random.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))
    if random.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    t = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    return (t - MEAN) / STD


def work(args):
    blobs, indices, seed = args
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    for i in indices:
        img = Image.open(io.BytesIO(blobs[i % len(blobs)])).convert("RGB")
        v1, v2 = view(img), view(img)
    return len(indices)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    files = sorted(f for f in os.listdir(a.images) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    blobs = [open(os.path.join(a.images, f), "rb").read() for f in files]
    shares = [list(range(w, a.samples, a.workers)) for w in range(a.workers)]
    with mp.get_context("fork").Pool(a.workers) as pool:
        pool.map(work, [(blobs, list(range(w, 2 * a.workers, a.workers)), 100 + w) for w in range(a.workers)])  # warm-up
        t0 = time.perf_counter()
        done = sum(pool.map(work, [(blobs, s, w) for w, s in enumerate(shares)]))
        dt = time.perf_counter() - t0
    result = {"images_per_s": done / dt, "samples": done, "seconds": dt, "workers": a.workers, "files": len(files)}
    print(f"PIL/torch pipeline: {done} images (2 views each) in {dt:.2f} s = {done / dt:.1f} images/s, "
          f"{a.workers} workers, {len(files)} photos")
    if a.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
