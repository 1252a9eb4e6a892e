#!/usr/bin/env python3
"""Golden files for the COCO evaluator and the COCO mask operations, from pycocotools (pip, 2.0.11).

Writes (fixed seed, deterministic):
  Tests/EvaluationTests/Fixtures/coco/gt.json          ground truth: images (some empty), categories (one without
                                                        GT), polygons (multi-part), compressed and uncompressed RLE,
                                                        crowd RLE, all three area ranges
  Tests/EvaluationTests/Fixtures/coco/dt_bbox.json     box results (ties in score, >100 on one image, unknown and
                                                        GT-less categories, images without detections)
  Tests/EvaluationTests/Fixtures/coco/dt_segm.json     mask results (compressed RLE, no bbox: loadRes's mask branch)
  Tests/EvaluationTests/Fixtures/coco/dt_both.json     box + mask results (Mask R-CNN's output): the box branch
  Tests/EvaluationTests/Fixtures/coco/expected.json    COCOeval stats (12 numbers) for bbox/segm on both result
                                                        files, the thresholds, and evalImgs of a few images
  Tests/DatasetsTests/Fixtures/coco_masks/masks.json   rleFrPoly / merge / area / toBbox / encode / iou / bbIou
                                                        cases with pycocotools' answers

Usage: python3 scripts/reference/make_coco_eval_fixtures.py
"""
import json
import os

import numpy as np
import pycocotools
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EVAL_DIR = os.path.join(ROOT, "Tests/EvaluationTests/Fixtures/coco")
MASK_DIR = os.path.join(ROOT, "Tests/DatasetsTests/Fixtures/coco_masks")


def random_polygon(rng, cx, cy, radius, points):
    """A star-shaped polygon around (cx, cy): sorted angles, radii jittered, coordinates rounded to 2 decimals."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = radius * rng.uniform(0.5, 1.0, points)
    xy = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return [round(float(v), 2) for v in xy.reshape(-1)]


def rle_json(rle):
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def make_ground_truth(rng):
    categories = [{"id": i, "name": f"class{i}", "supercategory": "thing"} for i in (1, 2, 3, 5, 8, 13)]
    images, annotations = [], []
    ann_id = 1
    for image_index in range(48):
        image_id = 1000 - 7 * image_index if image_index % 5 else 3 * image_index + 1  # ids not in file order
        h, w = int(rng.integers(48, 260)), int(rng.integers(48, 260))
        images.append({"id": image_id, "file_name": f"{image_id:06d}.jpg", "height": h, "width": w})
        if image_index % 9 == 4:
            continue  # an image without annotations
        for _ in range(int(rng.integers(1, 9))):
            category = int(rng.choice([1, 2, 3, 5, 8]))
            scale = float(rng.choice([4, 10, 24, 40, 70, 110]))  # spans small / medium / large
            radius = min(scale * rng.uniform(0.7, 1.3), 0.6 * min(h, w))
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)  # may stick out of the image
            kind = rng.uniform()
            crowd = 0
            if kind < 0.12:  # crowd: a compressed RLE of a union of blobs
                parts = [random_polygon(rng, cx + rng.uniform(-radius, radius), cy + rng.uniform(-radius, radius),
                                        radius * 0.6, int(rng.integers(5, 12))) for _ in range(3)]
                rle = maskUtils.merge(maskUtils.frPyObjects(parts, h, w))
                segmentation, crowd = rle_json(rle), 1
            elif kind < 0.2:  # uncompressed RLE (counts list), not a crowd
                poly = random_polygon(rng, cx, cy, radius, int(rng.integers(4, 14)))
                mask = maskUtils.decode(maskUtils.frPyObjects([poly], h, w)[0])
                runs, current, count = [], 0, 0
                for value in mask.reshape(-1, order="F"):
                    if value != current:
                        runs.append(count)
                        count, current = 0, value
                    count += 1
                runs.append(count)
                segmentation = {"size": [h, w], "counts": [int(r) for r in runs]}
                rle = maskUtils.frPyObjects(segmentation, h, w)
            else:  # polygons, sometimes two parts
                parts = [random_polygon(rng, cx, cy, radius, int(rng.integers(3, 16)))]
                if rng.uniform() < 0.25:
                    parts.append(random_polygon(rng, cx + radius, cy, radius * 0.5, int(rng.integers(3, 8))))
                segmentation = parts
                rle = maskUtils.merge(maskUtils.frPyObjects(parts, h, w))
            pixels = float(maskUtils.area(rle))
            if pixels == 0:
                continue
            box = [float(v) for v in maskUtils.toBbox(rle)]
            # COCO areas are floats near the pixel count; some sit exactly on a range boundary.
            area = round(pixels * float(rng.uniform(0.9, 1.1)), 2) if rng.uniform() < 0.7 else pixels
            if rng.uniform() < 0.05:
                area = float(rng.choice([1024.0, 9216.0]))
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": category, "bbox": box,
                                "area": area, "iscrowd": crowd, "segmentation": segmentation})
            ann_id += 1
    return {"images": images, "categories": categories, "annotations": annotations}


def jitter_box(rng, box, amount):
    x, y, w, h = box
    return [round(float(x + rng.normal(0, amount * w)), 2), round(float(y + rng.normal(0, amount * h)), 2),
            round(float(max(1.0, w * rng.uniform(1 - amount, 1 + amount))), 2),
            round(float(max(1.0, h * rng.uniform(1 - amount, 1 + amount))), 2)]


def shifted_mask(rng, coco, ann, h, w):
    """The ground truth's mask moved by a few pixels (and sometimes grown by one): a near miss or a near hit."""
    mask = maskUtils.decode(coco.annToRLE(ann))
    dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
    moved = np.zeros_like(mask)
    moved[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        mask[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    if rng.uniform() < 0.3:
        moved[1:, :] |= moved[:-1, :]
        moved[:, 1:] |= moved[:, :-1]
    return maskUtils.encode(np.asfortranarray(moved))


def make_detections(rng, gt, gt_path):
    coco = COCO(gt_path)
    by_image = {}
    for ann in gt["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    boxes, masks = [], []
    for index, image in enumerate(gt["images"]):
        if index % 11 == 7:
            continue  # an image without detections
        h, w = image["height"], image["width"]
        entries = []
        for ann in by_image.get(image["id"], []):
            for _ in range(int(rng.integers(0, 4))):
                category = ann["category_id"] if rng.uniform() < 0.9 else int(rng.choice([1, 2, 3]))
                entries.append((category, jitter_box(rng, ann["bbox"], float(rng.uniform(0.01, 0.2))), ann))
        for _ in range(int(rng.integers(0, 4)) + (130 if index == 3 else 0)):  # false positives; >100 on one image
            bw, bh = float(rng.uniform(2, w / 2)), float(rng.uniform(2, h / 2))
            entries.append((int(rng.choice([1, 2, 3, 5, 8, 13, 99])),
                            [round(float(rng.uniform(0, w - bw)), 2), round(float(rng.uniform(0, h - bh)), 2),
                             round(bw, 2), round(bh, 2)], None))
        for category, box, source in entries:
            score = round(float(rng.uniform()), 2) if rng.uniform() < 0.6 else float(rng.uniform())  # ties
            boxes.append({"image_id": image["id"], "category_id": category, "bbox": box, "score": score})
            x, y, bw, bh = box
            rle = shifted_mask(rng, coco, source, h, w) if source is not None else None
            if rle is None or maskUtils.area(rle) == 0:
                poly = random_polygon(rng, x + bw / 2, y + bh / 2, max(bw, bh) / 2, int(rng.integers(5, 14)))
                rle = maskUtils.frPyObjects([poly], h, w)[0]
            if maskUtils.area(rle) == 0:
                rle = maskUtils.frPyObjects([[x, y, x, y + bh, x + bw, y + bh, x + bw, y]], h, w)[0]
            masks.append({"image_id": image["id"], "category_id": category, "segmentation": rle_json(rle),
                          "score": score})
    return boxes, masks


def evaluate(gt_path, dt_path, iou_type, debug_images):
    coco_gt = COCO(gt_path)
    coco_dt = coco_gt.loadRes(dt_path)
    evaluator = COCOeval(coco_gt, coco_dt, iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    debug = []
    for e in evaluator.evalImgs:
        if e is not None and e["image_id"] in debug_images and e["aRng"] == [0, 1e10]:
            debug.append({"image_id": int(e["image_id"]), "category_id": int(e["category_id"]),
                          "dtMatches_iou50": [int(v) for v in e["dtMatches"][0]],
                          "dtIgnore_iou50": [int(v) for v in e["dtIgnore"][0]],
                          "gtIds": [int(v) for v in e["gtIds"]], "dtScores": [float(v) for v in e["dtScores"]]})
    return {"stats": [float(v) for v in evaluator.stats], "evalImgs_area_all": debug}


def mask_cases(rng):
    """Polygon rasterisation and RLE operations, with pycocotools' answers."""
    polygons = []
    for i in range(400):
        h, w = int(rng.integers(1, 70)), int(rng.integers(1, 70))
        points = int(rng.integers(3, 12))
        style = i % 4
        if style == 0:  # random points anywhere, possibly outside the image (self-intersecting)
            xy = [round(float(v), 3) for v in rng.uniform(-10, max(h, w) + 10, 2 * points)]
        elif style == 1:  # star-shaped
            xy = random_polygon(rng, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.3, max(h, w)), points)
        elif style == 2:  # integer and half-integer vertices, with a repeated vertex
            xy = [float(v) / 2 for v in rng.integers(-4, 2 * max(h, w) + 4, 2 * points)]
            xy[2:2] = xy[0:2]
        else:  # tiny
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            xy = [round(float(v), 3) for v in np.array([cx, cy] * points) + rng.uniform(-1.5, 1.5, 2 * points)]
        parts = [xy]
        if i % 7 == 0:
            parts.append(random_polygon(rng, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, 20), 5))
        singles = maskUtils.frPyObjects(parts, h, w)
        merged = maskUtils.merge(singles)
        polygons.append({"height": h, "width": w, "polygons": parts,
                         "rles": [s["counts"].decode("ascii") for s in singles],
                         "merged": merged["counts"].decode("ascii"), "area": int(maskUtils.area(merged)),
                         "bbox": [float(v) for v in maskUtils.toBbox(merged)]})
    masks = []
    for i in range(40):
        h, w = int(rng.integers(1, 24)), int(rng.integers(1, 24))
        mask = (rng.uniform(size=(h, w)) < [0.1, 0.5, 0.9, 0.0, 1.0][i % 5]).astype(np.uint8)
        rle = maskUtils.encode(np.asfortranarray(mask))
        masks.append({"height": h, "width": w, "rows": ["".join(str(v) for v in row) for row in mask],
                      "rle": rle["counts"].decode("ascii"), "area": int(maskUtils.area(rle)),
                      "bbox": [float(v) for v in maskUtils.toBbox(rle)]})
    sets = []
    for i in range(30):
        h, w = int(rng.integers(8, 60)), int(rng.integers(8, 60))
        def blob():
            return maskUtils.frPyObjects([random_polygon(rng, rng.uniform(0, w), rng.uniform(0, h),
                                                         rng.uniform(2, 25), 7)], h, w)[0]
        dts, gts = [blob() for _ in range(int(rng.integers(1, 5)))], [blob() for _ in range(int(rng.integers(1, 5)))]
        crowd = [int(rng.uniform() < 0.4) for _ in gts]
        iou = maskUtils.iou(dts, gts, crowd)
        sets.append({"height": h, "width": w, "detections": [d["counts"].decode("ascii") for d in dts],
                     "truths": [g["counts"].decode("ascii") for g in gts], "crowd": crowd,
                     "iou": [[float(v) for v in row] for row in np.asarray(iou)],
                     "union": maskUtils.merge(dts + gts)["counts"].decode("ascii"),
                     "intersection": maskUtils.merge(dts + gts, intersect=1)["counts"].decode("ascii")})
    boxes = []
    for i in range(30):
        dts = [[round(float(v), 2) for v in (rng.uniform(0, 50), rng.uniform(0, 50), rng.uniform(0.5, 30),
                                               rng.uniform(0.5, 30))] for _ in range(int(rng.integers(1, 6)))]
        gts = [[round(float(v), 2) for v in (rng.uniform(0, 50), rng.uniform(0, 50), rng.uniform(0.5, 30),
                                               rng.uniform(0.5, 30))] for _ in range(int(rng.integers(1, 6)))]
        crowd = [int(rng.uniform() < 0.4) for _ in gts]
        boxes.append({"detections": dts, "truths": gts, "crowd": crowd,
                      "iou": [[float(v) for v in row] for row in np.asarray(maskUtils.iou(dts, gts, crowd))]})
    return {"pycocotools": pycocotools.__version__ if hasattr(pycocotools, "__version__") else "2.0.11",
            "polygons": polygons, "masks": masks, "iou_sets": sets, "boxes": boxes}


def main():
    rng = np.random.default_rng(20261207)
    os.makedirs(EVAL_DIR, exist_ok=True)
    os.makedirs(MASK_DIR, exist_ok=True)
    gt = make_ground_truth(rng)
    paths = {name: os.path.join(EVAL_DIR, name) for name in ("gt.json", "dt_bbox.json", "dt_segm.json")}
    with open(paths["gt.json"], "w") as f:
        json.dump(gt, f, separators=(",", ":"))
    boxes, masks = make_detections(rng, gt, paths["gt.json"])
    # Box and mask together, as Mask R-CNN writes them: loadRes takes the box branch (area = w · h), segm uses
    # the given masks. The first 400 detections only, to keep the fixture small.
    both = [dict(mask, bbox=box["bbox"]) for box, mask in zip(boxes[:400], masks[:400])]
    paths["dt_both.json"] = os.path.join(EVAL_DIR, "dt_both.json")
    for name, content in (("dt_bbox.json", boxes), ("dt_segm.json", masks), ("dt_both.json", both)):
        with open(paths[name], "w") as f:
            json.dump(content, f, separators=(",", ":"))
    debug_images = [gt["images"][i]["id"] for i in (1, 3, 6)]
    from pycocotools.cocoeval import Params
    params = Params("bbox")
    expected = {
        "script": "scripts/reference/make_coco_eval_fixtures.py",
        "iouThrs": [float(v) for v in params.iouThrs], "recThrs": [float(v) for v in params.recThrs],
        "bbox_on_dt_bbox": evaluate(paths["gt.json"], paths["dt_bbox.json"], "bbox", debug_images),
        "segm_on_dt_segm": evaluate(paths["gt.json"], paths["dt_segm.json"], "segm", debug_images),
        "segm_on_dt_bbox": evaluate(paths["gt.json"], paths["dt_bbox.json"], "segm", debug_images),
        "bbox_on_dt_segm": evaluate(paths["gt.json"], paths["dt_segm.json"], "bbox", debug_images),
        "segm_on_dt_both": evaluate(paths["gt.json"], paths["dt_both.json"], "segm", debug_images),
    }
    with open(os.path.join(EVAL_DIR, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    with open(os.path.join(MASK_DIR, "masks.json"), "w") as f:
        json.dump(mask_cases(rng), f, separators=(",", ":"))
    for directory in (EVAL_DIR, MASK_DIR):
        for name in sorted(os.listdir(directory)):
            print(f"{os.path.join(directory, name)}: {os.path.getsize(os.path.join(directory, name))} bytes")


if __name__ == "__main__":
    main()
