#!/usr/bin/env python3
"""Golden fixtures for Sources/Datasets/Detection/InstanceSegmentation (mmdet 2.x CocoDataset for Mask R-CNN).

Run:  pip install opencv-python-headless numpy pycocotools
      python3 scripts/reference/make_coco_instance_fixtures.py [--out Tests/DatasetsTests/Fixtures/coco_instances]

Writes a tiny COCO folder and what mmdet 2.x makes of it:
  images/*.png                     five small RGB images (lossless, so the decoded sizes are exact)
  annotations/instances_tiny.json  categories 3, 7, 12, 20 (ascending, non-contiguous); images listed out of id
                                   order; a one-part and a three-part polygon, a compressed and an uncompressed RLE
                                   target, a crowd (uncompressed RLE), a sub-pixel-wide box, a zero-area annotation,
                                   a box wholly outside the image, a polygon reaching outside the image, an image
                                   whose only annotation is a crowd, an image without annotations and a 31-px image
  expected.json                    {"category_ids", "class_names", "train", "evaluation_image_ids", "cases",
                                   "protocol_nearest", "results"} (floats are float32 values written as Python's
                                   float64 repr; masks by SHA-256 of their row-major bytes and their area)

mmdet and mmcv are not installed (mmcv 1.x has no wheel for this Python); what the dataset and the pipeline do is
re-implemented below, one small function each, following mmdet 2.x mmdet/datasets/coco.py (load_annotations,
_filter_imgs with filter_empty_gt=True, _parse_ann_info, xyxy2xywh, _segm2json), mmdet/datasets/pipelines/loading.py
(LoadAnnotations._poly2mask), mmdet/core/mask/structures.py (BitmapMasks.rescale / flip / pad) and mmcv 1.7
mmcv/image/geometric.py (rescale_size, imrescale → imresize → cv2.resize INTER_NEAREST for masks, INTER_LINEAR
for images; imflip). Masks come from pycocotools itself (frPyObjects, merge, decode, encode). Random decisions
(scale index, flip) are fixed per case; the Swift tests pass the same values.
"""
import argparse
import base64
import hashlib
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_utils

# ---------------------------------------------------------------------------------------------------------------
# mmdet 2.x CocoDataset
# ---------------------------------------------------------------------------------------------------------------


def mmdet_filter_imgs(data_infos, anns, cat_ids, min_size=32):
    """CocoDataset._filter_imgs with filter_empty_gt=True: keep images with an annotation of a class category whose
    json size has min side >= min_size; returns the kept indices."""
    ids_with_ann = set(a['image_id'] for a in anns)
    ids_in_cat = set(a['image_id'] for a in anns if a['category_id'] in cat_ids)  # coco.cat_img_map
    ids_in_cat &= ids_with_ann
    valid = []
    for i, info in enumerate(data_infos):
        if info['id'] not in ids_in_cat:
            continue
        if min(info['width'], info['height']) >= min_size:
            valid.append(i)
    return valid


def mmdet_parse_ann_info(img_info, ann_info, cat_ids):
    """CocoDataset._parse_ann_info."""
    cat2label = {cat_id: i for i, cat_id in enumerate(cat_ids)}
    gt_bboxes, gt_labels, gt_bboxes_ignore, gt_masks_ann, ann_ids = [], [], [], [], []
    for ann in ann_info:
        if ann.get('ignore', False):
            continue
        x1, y1, w, h = ann['bbox']
        inter_w = max(0, min(x1 + w, img_info['width']) - max(x1, 0))
        inter_h = max(0, min(y1 + h, img_info['height']) - max(y1, 0))
        if inter_w * inter_h == 0:
            continue
        if ann['area'] <= 0 or w < 1 or h < 1:
            continue
        if ann['category_id'] not in cat_ids:
            continue
        bbox = [x1, y1, x1 + w, y1 + h]
        if ann.get('iscrowd', False):
            gt_bboxes_ignore.append(bbox)
        else:
            gt_bboxes.append(bbox)
            gt_labels.append(cat2label[ann['category_id']])
            gt_masks_ann.append(ann.get('segmentation', None))
            ann_ids.append(ann['id'])
    bboxes = np.array(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    ignore = np.array(gt_bboxes_ignore, dtype=np.float32).reshape(-1, 4)
    return dict(bboxes=bboxes, labels=gt_labels, bboxes_ignore=ignore, masks=gt_masks_ann, ann_ids=ann_ids)


def mmdet_poly2mask(mask_ann, img_h, img_w):
    """LoadAnnotations._poly2mask."""
    if isinstance(mask_ann, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(mask_ann, img_h, img_w))
    elif isinstance(mask_ann['counts'], list):
        rle = mask_utils.frPyObjects(mask_ann, img_h, img_w)
    else:
        rle = mask_ann
    return mask_utils.decode(rle)


def mmcv_rescale_size(w, h, scale):
    max_long_edge, max_short_edge = max(scale), min(scale)
    factor = min(max_long_edge / max(h, w), max_short_edge / min(h, w))
    return int(w * float(factor) + 0.5), int(h * float(factor) + 0.5)


def mmdet_resize_flip(img, bboxes, masks, img_scale, flip):
    """Resize(keep_ratio=True) (image INTER_LINEAR, boxes · float32 scale and clipped, BitmapMasks.rescale with
    'nearest') then RandomFlip (bbox_flip, BitmapMasks.flip = masks[:, :, ::-1])."""
    h, w = img.shape[:2]
    new_w, new_h = mmcv_rescale_size(w, h, img_scale)
    resized = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    scale_factor = np.array([new_w / w, new_h / h] * 2, dtype=np.float32)
    boxes = bboxes * scale_factor
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, new_w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, new_h)
    out_masks = []
    for m in masks:
        mw, mh = mmcv_rescale_size(m.shape[1], m.shape[0], img_scale)  # imrescale of the mask itself
        out_masks.append(cv2.resize(m, (mw, mh), interpolation=cv2.INTER_NEAREST))
    if flip:
        resized = np.flip(resized, axis=1)
        flipped = boxes.copy()
        flipped[:, 0] = new_w - boxes[:, 2]
        flipped[:, 2] = new_w - boxes[:, 0]
        boxes = flipped
        out_masks = [np.ascontiguousarray(m[:, ::-1]) for m in out_masks]
    return (new_h, new_w), boxes, out_masks


def mmdet_pad_masks(masks, shape, divisor):
    """Pad(size_divisor) → BitmapMasks.pad(pad_shape): zeros bottom/right to the image's own padded size."""
    pad_h = int(np.ceil(shape[0] / divisor)) * divisor
    pad_w = int(np.ceil(shape[1] / divisor)) * divisor
    out = []
    for m in masks:
        p = np.zeros((pad_h, pad_w), dtype=np.uint8)
        p[:m.shape[0], :m.shape[1]] = m
        out.append(p)
    return (pad_h, pad_w), out


def xyxy2xywh(bbox):
    b = bbox.tolist()
    return [b[0], b[1], b[2] - b[0], b[3] - b[1]]


def mmdet_segm2json(img_ids, results, cat_ids):
    """_segm2json for results [(det per class [n, 5] float32, segms per class [rle])] per image."""
    bbox_json, segm_json = [], []
    for img_id, (det, seg) in zip(img_ids, results):
        for label in range(len(det)):
            bboxes = det[label]
            for i in range(bboxes.shape[0]):
                bbox_json.append({'image_id': img_id, 'bbox': xyxy2xywh(bboxes[i]), 'score': float(bboxes[i][4]),
                                  'category_id': cat_ids[label]})
            for i in range(bboxes.shape[0]):
                rle = dict(seg[label][i])
                rle['counts'] = rle['counts'].decode()
                segm_json.append({'image_id': img_id, 'bbox': xyxy2xywh(bboxes[i]), 'score': float(bboxes[i][4]),
                                  'category_id': cat_ids[label], 'segmentation': rle})
    return bbox_json, segm_json


# ---------------------------------------------------------------------------------------------------------------
# The tiny COCO folder
# ---------------------------------------------------------------------------------------------------------------


def blob_mask(rng, h, w):
    """A random blob-like binary mask (thresholded smoothed noise), Fortran-ordered for pycocotools."""
    noise = rng.random((h, w)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return np.asfortranarray((smooth > np.quantile(smooth, 0.7)).astype(np.uint8))


def uncompressed_rle(mask):
    """{'size', 'counts': [runs]} of a binary mask (column-major runs starting with 0s)."""
    flat = mask.flatten(order='F')
    runs, current, run = [], 0, 0
    for v in flat:
        if v != current:
            runs.append(run)
            run, current = 0, v
        run += 1
    runs.append(run)
    return {'size': [int(mask.shape[0]), int(mask.shape[1])], 'counts': [int(r) for r in runs]}


def build_folder(out, rng):
    categories = [{'id': 3, 'name': 'cat', 'supercategory': 'animal'},
                  {'id': 7, 'name': 'dog', 'supercategory': 'animal'},
                  {'id': 12, 'name': 'bird', 'supercategory': 'animal'},
                  {'id': 20, 'name': 'fish', 'supercategory': 'animal'}]
    # (id, file, width, height), listed out of id order.
    specs = [(5, 'a.png', 61, 47), (2, 'b.png', 40, 52), (9, 'c.png', 33, 70), (4, 'd.png', 50, 40),
             (7, 'e.png', 31, 45)]
    images = [{'id': i, 'file_name': f, 'width': w, 'height': h} for i, f, w, h in specs]
    os.makedirs(os.path.join(out, 'images'), exist_ok=True)
    os.makedirs(os.path.join(out, 'annotations'), exist_ok=True)
    for _, f, w, h in specs:
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        cv2.imwrite(os.path.join(out, 'images', f), img)

    blob_a = blob_mask(rng, 47, 61)
    rle_a = mask_utils.encode(blob_a)
    blob_b = blob_mask(rng, 52, 40)
    crowd_a = blob_mask(rng, 47, 61)
    crowd_c = blob_mask(rng, 70, 33)
    anns = [
        # image 5 (61 × 47)
        dict(id=11, image_id=5, category_id=7, iscrowd=0, bbox=[10.5, 6.25, 30.0, 20.5], area=400.0,
             segmentation=[[10.5, 6.25, 40.5, 8.0, 35.2, 26.75, 12.0, 20.0]]),
        dict(id=12, image_id=5, category_id=3, iscrowd=0, bbox=[2.0, 30.0, 55.7, 15.0], area=300.0,
             segmentation=[[2.0, 30.0, 12.0, 30.0, 12.0, 44.5, 2.0, 44.5],
                           [20.3, 31.1, 35.8, 33.3, 28.4, 44.9],
                           [40.0, 35.0, 57.7, 35.0, 57.7, 45.0, 40.0, 45.0]]),
        dict(id=13, image_id=5, category_id=12, iscrowd=0, bbox=[0.0, 0.0, 61.0, 47.0],
             area=float(mask_utils.area(rle_a)),
             segmentation={'size': rle_a['size'], 'counts': rle_a['counts'].decode()}),
        dict(id=14, image_id=5, category_id=3, iscrowd=1, bbox=[1.0, 1.0, 59.0, 45.0], area=500.0,
             segmentation=uncompressed_rle(crowd_a)),
        dict(id=15, image_id=5, category_id=7, iscrowd=0, bbox=[5.0, 5.0, 0.5, 10.0], area=5.0,
             segmentation=[[5.0, 5.0, 5.5, 5.0, 5.5, 15.0]]),
        dict(id=16, image_id=5, category_id=7, iscrowd=0, bbox=[5.0, 5.0, 10.0, 10.0], area=0.0,
             segmentation=[[5.0, 5.0, 15.0, 5.0, 15.0, 15.0]]),
        dict(id=17, image_id=5, category_id=7, iscrowd=0, bbox=[70.0, 5.0, 10.0, 10.0], area=100.0,
             segmentation=[[70.0, 5.0, 80.0, 5.0, 80.0, 15.0]]),
        # image 2 (40 × 52)
        dict(id=21, image_id=2, category_id=7, iscrowd=0, bbox=[0.0, 0.0, 40.0, 52.0],
             area=float(blob_b.sum()), segmentation=uncompressed_rle(blob_b)),
        dict(id=22, image_id=2, category_id=12, iscrowd=0, bbox=[30.0, 40.0, 15.0, 20.0], area=150.0,
             segmentation=[[30.0, 40.0, 45.0, 41.0, 44.0, 60.0, 31.5, 58.0]]),
        dict(id=23, image_id=2, category_id=3, iscrowd=0, bbox=[0.49, 0.51, 39.02, 2.98], area=80.0,
             segmentation=[[0.49, 0.51, 39.51, 0.51, 39.51, 3.49, 0.49, 3.49]]),
        # image 9 (33 × 70): a crowd only
        dict(id=31, image_id=9, category_id=20, iscrowd=1, bbox=[0.0, 0.0, 33.0, 70.0],
             area=float(crowd_c.sum()), segmentation=uncompressed_rle(crowd_c)),
        # image 4: no annotation; image 7 (31 × 45): under 32 px
        dict(id=41, image_id=7, category_id=3, iscrowd=0, bbox=[3.0, 3.0, 10.0, 10.0], area=100.0,
             segmentation=[[3.0, 3.0, 13.0, 3.0, 13.0, 13.0]]),
    ]
    coco = {'images': images, 'categories': categories, 'annotations': anns}
    with open(os.path.join(out, 'annotations', 'instances_tiny.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def mask_digest(m):
    return {'sha256': hashlib.sha256(np.ascontiguousarray(m, dtype=np.uint8).tobytes()).hexdigest(),
            'area': int(m.sum())}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default='Tests/DatasetsTests/Fixtures/coco_instances')
    args = parser.parse_args()
    rng = np.random.default_rng(20240617)
    coco = build_folder(args.out, rng)

    # load_annotations: cat_ids = get_cat_ids(cat_names=CLASSES) in the json's order (ascending here).
    cat_ids = [c['id'] for c in coco['categories']]
    infos = coco['images']
    anns_of = {i['id']: [a for a in coco['annotations'] if a['image_id'] == i['id']] for i in infos}
    kept = mmdet_filter_imgs(infos, coco['annotations'], cat_ids)

    def record(info):
        parsed = mmdet_parse_ann_info(info, anns_of[info['id']], cat_ids)
        masks = [mmdet_poly2mask(m, info['height'], info['width']) for m in parsed['masks']]
        return parsed, masks

    train = []
    for i in kept:
        info = infos[i]
        parsed, masks = record(info)
        train.append({'image_id': info['id'], 'boxes': parsed['bboxes'].reshape(-1).tolist(),
                      'labels': parsed['labels'], 'annotation_ids': parsed['ann_ids'],
                      'crowd_boxes': parsed['bboxes_ignore'].reshape(-1).tolist(),
                      'masks': [mask_digest(m) for m in masks]})

    # Resize (nearest for masks) + flip + pad, at scales that shrink and enlarge, both flips.
    scales = [(100, 24), (100, 40), (100, 64)]
    cases = []
    for i in kept:
        info = infos[i]
        parsed, masks = record(info)
        img = cv2.imread(os.path.join(args.out, 'images', info['file_name']), cv2.IMREAD_COLOR)
        for scale_index, scale in enumerate(scales):
            for flip in (False, True):
                size, boxes, out_masks = mmdet_resize_flip(img, parsed['bboxes'], masks, scale, flip)
                pad_shape, padded = mmdet_pad_masks(out_masks, size, 32)
                cases.append({'image_id': info['id'], 'max_size': scale[0], 'short_sides': [s for _, s in scales],
                              'scale_index': scale_index, 'flip': flip, 'size': list(size),
                              'boxes': boxes.reshape(-1).tolist(),
                              'masks': [mask_digest(m) for m in out_masks],
                              'pad_shape': list(pad_shape), 'padded_masks': [mask_digest(m) for m in padded]})

    # cv2 INTER_NEAREST at the protocol's sizes (typical COCO image sizes × img_scale (1333, 640…800)): the resized
    # pattern (7x + 13y) mod 251, by SHA-256 (an off-by-one source index changes the value).
    protocol_nearest = []
    for w, h in ((640, 480), (640, 427), (500, 375), (333, 500), (612, 612), (427, 640), (640, 360)):
        pattern = ((7 * np.arange(w)[None, :] + 13 * np.arange(h)[:, None]) % 251).astype(np.uint8)
        for short in range(640, 801, 32):
            new_w, new_h = mmcv_rescale_size(w, h, (1333, short))
            out = cv2.resize(pattern, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
            protocol_nearest.append({'width': w, 'height': h, 'short_side': short, 'size': [new_h, new_w],
                                     'sha256': hashlib.sha256(out.tobytes()).hexdigest()})

    # Results json: fixed detections for images 5 and 2 through _segm2json.
    results_input, results = [], []
    for img_id, n in ((5, 4), (2, 3)):
        info = next(i for i in infos if i['id'] == img_id)
        h, w = info['height'], info['width']
        x1 = rng.uniform(-2, w * 0.6, n).astype(np.float32)
        y1 = rng.uniform(-2, h * 0.6, n).astype(np.float32)
        bw = rng.uniform(1, w * 0.5, n).astype(np.float32)
        bh = rng.uniform(1, h * 0.5, n).astype(np.float32)
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1).astype(np.float32)
        scores = rng.uniform(0.05, 1, n).astype(np.float32)
        labels = rng.integers(0, len(cat_ids), n)
        masks = [blob_mask(rng, h, w) for _ in range(n)]
        det = [np.concatenate([boxes[labels == c], scores[labels == c, None]], axis=1).astype(np.float32)
               for c in range(len(cat_ids))]
        seg = [[mask_utils.encode(masks[k]) for k in np.nonzero(labels == c)[0]] for c in range(len(cat_ids))]
        results.append((det, seg))
        results_input.append({'image_id': img_id, 'height': h, 'width': w, 'boxes': boxes.reshape(-1).tolist(),
                              'scores': scores.tolist(), 'labels': labels.tolist(),
                              'masks': [base64.b64encode(np.ascontiguousarray(m).tobytes()).decode('ascii')
                                        for m in masks]})
    bbox_json, segm_json = mmdet_segm2json([5, 2], results, cat_ids)

    expected = {'opencv': cv2.__version__, 'numpy': np.__version__, 'category_ids': cat_ids,
                'class_names': [c['name'] for c in coco['categories']],
                'train': train, 'evaluation_image_ids': [i['id'] for i in infos], 'cases': cases,
                'protocol_nearest': protocol_nearest,
                'results': {'input': results_input, 'bbox': bbox_json, 'segm': segm_json}}
    with open(os.path.join(args.out, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)
        f.write('\n')
    print(f"wrote {args.out}: {len(train)} training images, {len(cases)} cases, {len(bbox_json)} results")


if __name__ == '__main__':
    main()
