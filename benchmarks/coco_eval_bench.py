#!/usr/bin/env python3
"""The pycocotools side of COCOEvalBench, and the synthetic val2017-sized set both sides evaluate.

  python3 coco_eval_bench.py --make DIR [--images 5000] [--seed 0]   writes DIR/gt.json, DIR/dt.json
  python3 coco_eval_bench.py --eval DIR [--iou-type bbox]            times COCO(), loadRes, evaluate, accumulate,
                                                                     summarize; prints one json line

The set: 5,000 images (640×480 … 640×640), 80 categories with COCO's ids, ~7.3 ground-truth boxes per image
(≈ 36.5k; log-uniform sizes so all three area ranges are populated; 1 % crowds; area = 0.5–0.9 of the box as for
masks) and exactly 100 box detections per image: jittered copies of the ground truth (90 % its category) plus
random false positives, scores uniform (a third rounded to 2 decimals, so ties occur).
"""
import argparse
import contextlib
import io
import json
import os
import time

import numpy as np

COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
            60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


def make(directory, images, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    image_list, annotations, detections = [], [], []
    ann_id = 1
    for index in range(images):
        image_id = 100000 + 7 * index
        w, h = 640, int(rng.integers(480, 641))
        image_list.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": w, "height": h})
        count = int(rng.poisson(7.3))
        sizes = np.exp(rng.uniform(np.log(4), np.log(400), count))
        truths = []
        for size in sizes:
            bw = float(min(size * rng.uniform(0.6, 1.4), w - 1))
            bh = float(min(size * rng.uniform(0.6, 1.4), h - 1))
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            category = int(rng.choice(COCO_IDS[:40] if rng.uniform() < 0.7 else COCO_IDS))
            box = [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)]
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": category, "bbox": box,
                                "area": round(bw * bh * float(rng.uniform(0.5, 0.9)), 2),
                                "iscrowd": int(rng.uniform() < 0.01), "segmentation": []})
            truths.append((category, box))
            ann_id += 1
        for d in range(100):
            if truths and d < 60:
                category, (x, y, bw, bh) = truths[d % len(truths)]
                if rng.uniform() < 0.1:
                    category = int(rng.choice(COCO_IDS))
                s = float(rng.uniform(0.02, 0.3))
                box = [x + rng.normal(0, s * bw), y + rng.normal(0, s * bh), bw * rng.uniform(1 - s, 1 + s),
                       bh * rng.uniform(1 - s, 1 + s)]
            else:
                category = int(rng.choice(COCO_IDS))
                bw, bh = float(rng.uniform(2, w / 2)), float(rng.uniform(2, h / 2))
                box = [rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh]
            score = float(rng.uniform())
            if d % 3 == 0:
                score = round(score, 2)
            detections.append({"image_id": image_id, "category_id": category,
                               "bbox": [round(float(v), 2) for v in box], "score": score})
    categories = [{"id": i, "name": f"class{i}", "supercategory": "thing"} for i in COCO_IDS]
    with open(os.path.join(directory, "gt.json"), "w") as f:
        json.dump({"images": image_list, "categories": categories, "annotations": annotations}, f)
    with open(os.path.join(directory, "dt.json"), "w") as f:
        json.dump(detections, f)
    print(json.dumps({"images": images, "annotations": len(annotations), "detections": len(detections)}))


def evaluate(directory, iou_type):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    times = {}
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        gt = COCO(os.path.join(directory, "gt.json"))
        dt = gt.loadRes(os.path.join(directory, "dt.json"))
        times["load"] = time.perf_counter() - start
        evaluator = COCOeval(gt, dt, iou_type)
        start = time.perf_counter()
        evaluator.evaluate()
        times["evaluate"] = time.perf_counter() - start
        start = time.perf_counter()
        evaluator.accumulate()
        evaluator.summarize()
        times["accumulate"] = time.perf_counter() - start
    print(json.dumps({"seconds": times, "stats": [float(v) for v in evaluator.stats]}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--make")
    parser.add_argument("--eval")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iou-type", default="bbox")
    args = parser.parse_args()
    if args.make:
        make(args.make, args.images, args.seed)
    if args.eval:
        evaluate(args.eval, args.iou_type)


if __name__ == "__main__":
    main()
