#!/usr/bin/env python3
"""Golden fixtures for Sources/Datasets/Detection (mmdet 2.x's VOC detection data and pipelines), made with OpenCV.

Run:  pip install opencv-python-headless numpy
      python3 scripts/reference/make_detection_pipeline_fixtures.py [--out Tests/DatasetsTests/Fixtures/detection]

mmdet and mmcv are not installed (mmcv 1.x has no wheel for this Python/torch); the functions the pipelines use are
re-implemented below, one small function each, following mmdet 2.x mmdet/datasets/xml_style.py (get_ann_info),
mmdet/datasets/pipelines/transforms.py (Resize with keep_ratio and multiscale_mode='value', RandomFlip.bbox_flip,
Normalize, Pad with size_divisor), detectron2 detectron2/data/datasets/pascal_voc.py (load_voc_instances) and mmcv
1.7 mmcv/image/{geometric,photometric}.py (rescale_size, imrescale, imnormalize, impad_to_multiple). They call cv2
exactly as mmcv does (cv2.resize INTER_LINEAR, cv2.subtract / cv2.multiply, cv2.copyMakeBorder). The random
decisions (scale index, flip) cannot come from numpy's stream, so every case fixes them and the Swift tests pass the
same values.

Images are RGB here and in Swift; mmdet's are BGR. Resize and flip do not care about channel order; Normalize's
to_rgb is reproduced by converting RGB → BGR first and letting imnormalize convert back, as mmdet does.

Writes one file, detection_pipeline.json:
  {"images": {name: {"width", "height", "channels", "pixels": base64 uint8}}, "cases": [{"op", ...}]}
Floats are float32 values written as the float64 repr Python prints for them (exact); SHA-256s are of the bytes.
"""
import argparse
import base64
import hashlib
import json
import os

import cv2
import numpy as np

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]

# ---------------------------------------------------------------------------------------------------------------
# mmcv 1.x image ops
# ---------------------------------------------------------------------------------------------------------------


def mmcv_rescale_size(w, h, scale):
    """mmcv.rescale_size((w, h), scale) with a tuple scale; returns (new_w, new_h)."""
    max_long_edge, max_short_edge = max(scale), min(scale)
    factor = min(max_long_edge / max(h, w), max_short_edge / min(h, w))
    return int(w * float(factor) + 0.5), int(h * float(factor) + 0.5)


def mmcv_imnormalize(img_bgr, mean, std):
    """mmcv.imnormalize(img, mean, std, to_rgb=True): float32 copy, BGR → RGB, cv2.subtract, cv2.multiply."""
    img = img_bgr.copy().astype(np.float32)
    mean64 = np.float64(np.array(mean, dtype=np.float32).reshape(1, -1))
    stdinv = 1 / np.float64(np.array(std, dtype=np.float32).reshape(1, -1))
    cv2.cvtColor(img, cv2.COLOR_BGR2RGB, img)
    cv2.subtract(img, mean64, img)
    cv2.multiply(img, stdinv, img)
    return img


def mmcv_impad_to_multiple(img, divisor, pad_val=0):
    pad_h = int(np.ceil(img.shape[0] / divisor)) * divisor
    pad_w = int(np.ceil(img.shape[1] / divisor)) * divisor
    return cv2.copyMakeBorder(img, 0, pad_h - img.shape[0], 0, pad_w - img.shape[1], cv2.BORDER_CONSTANT,
                              value=pad_val)


# ---------------------------------------------------------------------------------------------------------------
# mmdet 2.x / detectron2 annotation reading and transforms, random draws passed in
# ---------------------------------------------------------------------------------------------------------------


def mmdet_xml_box(texts):
    """XMLDataset.get_ann_info: int(float(text)) per coordinate, `np.array(bboxes, ndmin=2) - 1`, float32."""
    return (np.array([[int(float(t)) for t in texts]], ndmin=2) - 1).astype(np.float32)[0]


def detectron2_xml_box(texts):
    """load_voc_instances: float(text), xmin -= 1, ymin -= 1; float32 as Boxes stores it."""
    bbox = [float(t) for t in texts]
    bbox[0] -= 1.0
    bbox[1] -= 1.0
    return np.array(bbox, dtype=np.float32)


def mmdet_resize(img, bboxes, img_scale):
    """Resize(keep_ratio=True) with the chosen img_scale: _resize_img then _resize_bboxes (bbox_clip_border=True)."""
    h, w = img.shape[:2]
    new_w, new_h = mmcv_rescale_size(w, h, img_scale)
    resized = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    w_scale, h_scale = new_w / w, new_h / h
    scale_factor = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
    boxes = bboxes * scale_factor
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, resized.shape[1])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, resized.shape[0])
    return resized, boxes, (w_scale, h_scale), scale_factor


def mmdet_bbox_flip(bboxes, img_shape):
    """RandomFlip.bbox_flip(bboxes, img_shape, 'horizontal')."""
    w = img_shape[1]
    flipped = bboxes.copy()
    flipped[..., 0::4] = w - bboxes[..., 2::4]
    flipped[..., 2::4] = w - bboxes[..., 0::4]
    return flipped


def mmdet_pipeline(img_rgb, bboxes, max_size, short_side, flip, divisor):
    """Resize → RandomFlip → Normalize → Pad(size_divisor) with fixed decisions; returns everything a test checks
    (the unpadded normalised image is the top-left size[0] × size[1] of `padded`)."""
    resized, boxes, scale, scale_factor = mmdet_resize(img_rgb, bboxes, (max_size, short_side))
    if flip:
        resized = np.ascontiguousarray(np.flip(resized, axis=1))
        boxes = mmdet_bbox_flip(boxes, resized.shape)
    normalized = mmcv_imnormalize(cv2.cvtColor(resized, cv2.COLOR_RGB2BGR), MEAN, STD)
    padded = mmcv_impad_to_multiple(normalized, divisor)
    return dict(size=[resized.shape[0], resized.shape[1]], scale_factor=scale_factor[:2].tolist(),
                boxes=boxes.reshape(-1).tolist(),
                padded_shape=list(padded.shape), padded=padded.reshape(-1).tolist())


# ---------------------------------------------------------------------------------------------------------------


def encode(img):
    channels = 1 if img.ndim == 2 else img.shape[2]
    return {'width': int(img.shape[1]), 'height': int(img.shape[0]), 'channels': int(channels),
            'pixels': base64.b64encode(np.ascontiguousarray(img).tobytes()).decode('ascii')}


def smooth_image(rng, h, w):
    """Gradients plus noise, so that bilinear resizing has something to interpolate."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(h + w - 2, 1)], -1)
    return np.clip(base + rng.integers(-40, 41, size=(h, w, 3)), 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default='Tests/DatasetsTests/Fixtures/detection')
    args = parser.parse_args()
    rng = np.random.default_rng(20261216)
    images, cases = {}, []

    # Sizes and scale factors at the full protocol's scales (VOC image sizes, extreme ratios, tiny images).
    short_sides = list(range(480, 801, 32))
    for w, h in [(500, 375), (375, 500), (500, 333), (353, 500), (500, 500), (1000, 150), (2000, 1800), (20, 31)]:
        for s in short_sides:
            new_w, new_h = mmcv_rescale_size(w, h, (1333, s))
            factor = np.array([new_w / w, new_h / h], dtype=np.float32)
            cases.append({'op': 'rescale', 'width': w, 'height': h, 'scale': [1333, s], 'expected': [new_w, new_h],
                          'scale_factor': factor.tolist()})

    # XML coordinates through both conventions.
    for texts in [['1', '1', '500', '375'], ['48', '240', '195', '371'], ['273.6', '12.999', '300.2', '13'],
                  ['0', '-2.5', '7', '7'], ['5', '5', '5', '9']]:
        cases.append({'op': 'xml_box', 'texts': texts, 'mmdet': mmdet_xml_box(texts).tolist(),
                      'detectron2': detectron2_xml_box(texts).tolist()})

    # Whole pipelines on small images: (name, h, w, max_size, short, flip, divisor, boxes).
    pipeline_cases = [
        ('a', 30, 40, 64, 24, False, 16, [[0, 0, 39, 29], [3, 4, 20, 17], [-5, 10, 50, 25], [7, 7, 7, 12]]),
        ('a', 30, 40, 64, 40, True, 16, [[0, 0, 39, 29], [3, 4, 20, 17], [-5, 10, 50, 25], [7, 7, 7, 12]]),
        ('b', 37, 23, 48, 32, True, 32, [[1.5, 2.25, 20, 30], [10, 0, 22, 36]]),
        ('c', 20, 61, 64, 40, False, 8, [[0, 0, 60, 19]]),  # the long side caps the scale
        ('c', 20, 61, 64, 24, True, 16, []),  # no targets
    ]
    for name, h, w, max_size, short, flip, divisor, boxes in pipeline_cases:
        if name not in images:
            images[name] = smooth_image(rng, h, w)
        bboxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
        result = mmdet_pipeline(images[name], bboxes, max_size, short, flip, divisor)
        cases.append({'op': 'pipeline', 'input': name, 'max_size': max_size, 'short_side': short, 'flip': flip,
                      'divisor': divisor, 'input_boxes': bboxes.reshape(-1).tolist(), **result})

    # Full-scale resizes (pixels compared by SHA-256 of the uint8 bytes) with boxes.
    images['d'] = smooth_image(rng, 90, 120)
    images['e'] = smooth_image(rng, 125, 47)
    for name, short, flip in [('d', 480, False), ('d', 800, True), ('e', 608, True)]:
        img = images[name]
        bboxes = np.array([[0, 0, img.shape[1] - 1, img.shape[0] - 1], [10, 20, 30.5, 41], [-3, -3, 200, 7]],
                          dtype=np.float32)
        resized, out_boxes, scale, scale_factor = mmdet_resize(img, bboxes, (1333, short))
        if flip:
            resized = np.ascontiguousarray(np.flip(resized, axis=1))
            out_boxes = mmdet_bbox_flip(out_boxes, resized.shape)
        cases.append({'op': 'full_scale', 'input': name, 'max_size': 1333, 'short_side': short, 'flip': flip,
                      'input_boxes': bboxes.reshape(-1).tolist(), 'size': [resized.shape[0], resized.shape[1]],
                      'scale_factor': scale_factor[:2].tolist(), 'boxes': out_boxes.reshape(-1).tolist(),
                      'resized_sha256': hashlib.sha256(resized.tobytes()).hexdigest()})

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, 'detection_pipeline.json')
    with open(path, 'w') as f:
        json.dump({'opencv': cv2.__version__, 'numpy': np.__version__,
                   'images': {k: encode(v) for k, v in images.items()}, 'cases': cases}, f)
    print(f'wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes')


if __name__ == '__main__':
    main()
