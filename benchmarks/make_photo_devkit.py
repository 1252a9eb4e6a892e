#!/usr/bin/env python3
"""A VOC2007-layout classification devkit of real photos, for timing `run voc-svm`'s extraction (issue 19 item 3).

Every image is a random crop (30–100 % of the area, aspect 3/4–4/3) of one of the photos prepare_photos.sh puts in
benchmarks/.photos, resized so its long side is 500 px as VOC07's are, and saved as a quality-90 JPEG. Labels are
random (20 VOC classes, ≈ 8 % positive, ≈ 2 % difficult), so the SVM scores mean nothing: the devkit times the
pipeline (JPEG decode, Resize 256, CenterCrop 224, ResNet-50, pooling, cache writes), not the features.
Layout: VOC2007/{JPEGImages/<id>.jpg, ImageSets/Main/{trainval,test}.txt, ImageSets/Main/<class>_<split>.txt}.

usage: python3 benchmarks/make_photo_devkit.py OUT [--trainval 500] [--test 500] [--seed 0]
"""
import argparse
import pathlib
import random

from PIL import Image

CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
           "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--trainval", type=int, default=500)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photos", default=str(pathlib.Path(__file__).parent / ".photos"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    photos = [Image.open(p).convert("RGB") for p in sorted(pathlib.Path(args.photos).glob("*.jpg"))]
    if not photos:
        raise SystemExit(f"no photos in {args.photos}: run benchmarks/prepare_photos.sh first")
    root = pathlib.Path(args.out) / "VOC2007"
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    splits = {"trainval": range(args.trainval), "test": range(args.trainval, args.trainval + args.test)}
    for split, numbers in splits.items():
        ids = [f"{n:06d}" for n in numbers]
        for image_id in ids:
            photo = rng.choice(photos)
            area = photo.width * photo.height * rng.uniform(0.3, 1.0)
            aspect = rng.uniform(3 / 4, 4 / 3)
            w = min(photo.width, round((area * aspect) ** 0.5))
            h = min(photo.height, round((area / aspect) ** 0.5))
            x, y = rng.randint(0, photo.width - w), rng.randint(0, photo.height - h)
            crop = photo.crop((x, y, x + w, y + h))
            scale = 500 / max(w, h)
            crop.resize((round(w * scale), round(h * scale)), Image.BILINEAR).save(
                root / "JPEGImages" / f"{image_id}.jpg", quality=90)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
        for name in CLASSES:
            lines = []
            for image_id in ids:
                r = rng.random()
                label = 1 if r < 0.08 else (0 if r < 0.10 else -1)
                lines.append(f"{image_id} {label:2d}\n")
            (root / "ImageSets" / "Main" / f"{name}_{split}.txt").write_text("".join(lines))
    print(f"{root}: {args.trainval} trainval + {args.test} test images")


if __name__ == "__main__":
    main()
