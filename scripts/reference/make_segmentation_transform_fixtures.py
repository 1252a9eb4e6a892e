#!/usr/bin/env python3
"""Golden fixtures for Sources/Datasets/Segmentation (mmseg 0.x's training and test pipelines), made with OpenCV.

Run:  pip install opencv-python-headless numpy
      python3 scripts/reference/make_segmentation_transform_fixtures.py [--out Tests/DatasetsTests/Fixtures/segmentation]
      (made with opencv-python-headless 5.1.0, numpy 2.4, Python 3.11, on an x86-64 CPU with AVX2)

mmseg and mmcv are not installed (mmcv 1.x has no wheel for this Python/torch); the few functions the pipelines use
are re-implemented below, one small function each, following mmseg 0.x mmseg/datasets/pipelines/transforms.py and
mmcv 1.7 mmcv/image/{geometric,photometric,colorspace}.py, and they call cv2 exactly as mmcv does
(cv2.resize, cv2.cvtColor, cv2.subtract/multiply). The random decisions cannot come from numpy's stream, so every
case fixes them (ratio, crop candidates, flip, photometric values) and the Swift tests pass the same values.

Images are handled in RGB here and in Swift; mmseg's are BGR. Every op used is channel-order agnostic except the
colour conversions (COLOR_RGB2HSV on RGB == COLOR_BGR2HSV on BGR) and Normalize's to_rgb, which is done here by
converting RGB → BGR first and letting imnormalize convert back, as mmseg does.

OpenCV versions and CPUs differ in the last bit in two places (documented in the Swift sources):
  * cvtColor HSV → RGB (uint8): the vector path truncates and (AVX2 builds) fuses 1 − s·h into an FMA; the scalar
    tail of each row (width mod 16 or 32 pixels) rounds. Every image that goes through HSV here has a width that is
    a multiple of 32, so only the vector path runs.
  * resize INTER_LINEAR (uint8): the vertical pass uses the vector kernel's formula for every element.
The script asserts its own numpy model of both against cv2 before writing, so a cv2 that disagrees stops it.

Writes one file, segmentation_transforms.json:
  {"images": {name: {"width", "height", "channels", "pixels": base64 uint8}}, "cases": [{"op", ...}]}
Float parameters are written with repr of the float64 Python uses; tensors as lists of float32 values.
"""
import argparse
import base64
import json
import os

import cv2
import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# mmcv 1.x image ops
# ---------------------------------------------------------------------------------------------------------------


def mmcv_rescale_size(w, h, scale):
    """mmcv.rescale_size((w, h), scale) with a tuple scale; returns (new_w, new_h)."""
    max_long_edge, max_short_edge = max(scale), min(scale)
    factor = min(max_long_edge / max(h, w), max_short_edge / min(h, w))
    return int(w * float(factor) + 0.5), int(h * float(factor) + 0.5)


def mmcv_imrescale(img, scale, interpolation):
    h, w = img.shape[:2]
    new_w, new_h = mmcv_rescale_size(w, h, scale)
    code = {'bilinear': cv2.INTER_LINEAR, 'nearest': cv2.INTER_NEAREST}[interpolation]
    return cv2.resize(img, (new_w, new_h), interpolation=code)


def mmcv_imnormalize(img_bgr, mean, std):
    """mmcv.imnormalize(img, mean, std, to_rgb=True): float32 copy, BGR → RGB, cv2.subtract, cv2.multiply."""
    img = img_bgr.copy().astype(np.float32)
    mean64 = np.float64(np.array(mean, dtype=np.float32).reshape(1, -1))
    stdinv = 1 / np.float64(np.array(std, dtype=np.float32).reshape(1, -1))
    cv2.cvtColor(img, cv2.COLOR_BGR2RGB, img)
    cv2.subtract(img, mean64, img)
    cv2.multiply(img, stdinv, img)
    return img


def mmcv_impad(img, shape, pad_val):
    height = max(shape[0] - img.shape[0], 0)
    width = max(shape[1] - img.shape[1], 0)
    return cv2.copyMakeBorder(img, 0, height, 0, width, cv2.BORDER_CONSTANT, value=pad_val)


# ---------------------------------------------------------------------------------------------------------------
# mmseg 0.x transforms, with the random draws passed in
# ---------------------------------------------------------------------------------------------------------------


def mmseg_target_scale(img_scale, ratio):
    """Resize.random_sample_ratio with a fixed ratio."""
    if ratio is None:
        return img_scale
    return int(img_scale[0] * ratio), int(img_scale[1] * ratio)


def mmseg_resize(img, seg, img_scale, ratio):
    scale = mmseg_target_scale(img_scale, ratio)
    return mmcv_imrescale(img, scale, 'bilinear'), mmcv_imrescale(seg, scale, 'nearest')


def mmseg_crop_accepts(seg_crop, cat_max_ratio, ignore_index=255):
    labels, cnt = np.unique(seg_crop, return_counts=True)
    cnt = cnt[labels != ignore_index]
    return bool(len(cnt) > 1 and np.max(cnt) / np.sum(cnt) < cat_max_ratio)


def mmseg_random_crop(seg, crop_size, cat_max_ratio, candidates):
    """RandomCrop.__call__'s choice of bbox with the draws `candidates` [(y, x), ...]; returns the index used."""
    used = 0
    y, x = candidates[0]
    if cat_max_ratio < 1.:
        for _ in range(10):
            crop = seg[y:y + crop_size[0], x:x + crop_size[1]]
            if mmseg_crop_accepts(crop, cat_max_ratio):
                break
            used = min(used + 1, len(candidates) - 1)
            y, x = candidates[used]
    return used


def crop(img, offset, crop_size):
    y, x = offset
    return img[y:y + crop_size[0], x:x + crop_size[1], ...]


def pm_convert(img, alpha=1, beta=0):
    img = img.astype(np.float32) * alpha + beta
    img = np.clip(img, 0, 255)
    return img.astype(np.uint8)


def pm_saturation(img_rgb, alpha):
    hsv = cv2.cvtColor(img_rgb, cv2.COLOR_RGB2HSV)
    hsv[:, :, 1] = pm_convert(hsv[:, :, 1], alpha=alpha)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def pm_hue(img_rgb, delta):
    hsv = cv2.cvtColor(img_rgb, cv2.COLOR_RGB2HSV)
    hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + delta) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def photometric(img, p):
    """PhotoMetricDistortion.__call__ with its decisions in `p` (None = coin was 0); mode 1 = contrast first."""
    if p['brightness'] is not None:
        img = pm_convert(img, beta=p['brightness'])
    if p['contrastFirst'] and p['contrast'] is not None:
        img = pm_convert(img, alpha=p['contrast'])
    if p['saturation'] is not None:
        img = pm_saturation(img, p['saturation'])
    if p['hue'] is not None:
        img = pm_hue(img, p['hue'])
    if not p['contrastFirst'] and p['contrast'] is not None:
        img = pm_convert(img, alpha=p['contrast'])
    return img


MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def normalize_rgb(img_rgb):
    return mmcv_imnormalize(img_rgb[:, :, ::-1].copy(), MEAN, STD)


# ---------------------------------------------------------------------------------------------------------------
# numpy models of the cv2 kernels, asserted against cv2 (the Swift code follows the same formulas)
# ---------------------------------------------------------------------------------------------------------------


def model_linear(img, dw, dh):
    h, w, c = img.shape

    def taps(src, dst, clamp):
        scale = 1.0 / (dst / src)
        first, second, w0, w1 = [], [], [], []
        for i in range(dst):
            f = np.float32((i + 0.5) * scale - 0.5)
            s = int(np.floor(f))
            f = np.float32(f - np.float32(s))
            if clamp:
                if s < 0:
                    s, f = 0, np.float32(0)
                if s >= src - 1:
                    s, f = src - 1, np.float32(0)
            w0.append(int(np.rint(np.float32(np.float32(1) - f) * np.float32(2048))))
            w1.append(int(np.rint(f * np.float32(2048))))
            first.append(min(max(s, 0), src - 1))
            second.append(min(max(s + 1, 0), src - 1))
        return np.array(first), np.array(second), np.array(w0), np.array(w1)

    xf, xs, a0, a1 = taps(w, dw, True)
    yf, ys, b0, b1 = taps(h, dh, False)
    src = img.astype(np.int64)
    hor = src[:, xf, :] * a0[None, :, None] + src[:, xs, :] * a1[None, :, None]
    r0, r1 = hor[yf], hor[ys]
    v = (((r0 >> 4) * b0[:, None, None]) >> 16) + (((r1 >> 4) * b1[:, None, None]) >> 16)
    return np.clip((v + 2) >> 2, 0, 255).astype(np.uint8)


def model_hsv2rgb(hsv):
    f32 = np.float32
    h = hsv[..., 0].astype(f32) * (f32(6) / f32(180))
    s = hsv[..., 1].astype(f32) * f32(1 / 255.)
    v = hsv[..., 2].astype(f32) * f32(1 / 255.)
    whole = np.trunc(h)
    frac = (h - whole).astype(f32)
    sector = whole.astype(int) % 6
    fma = lambda a, b: (1.0 - a.astype(np.float64) * b.astype(np.float64)).astype(f32)  # exact product, one rounding
    tab = [v, (v * (f32(1) - s)).astype(f32), (v * fma(s, frac)).astype(f32),
           (v * fma(s, (f32(1) - frac).astype(f32))).astype(f32)]
    order = {0: (0, 3, 1), 1: (2, 0, 1), 2: (1, 0, 3), 3: (1, 2, 0), 4: (3, 1, 0), 5: (0, 1, 2)}  # (r, g, b)
    out = np.zeros(hsv.shape, np.uint8)
    for sec, ks in order.items():
        m = sector == sec
        for ch, k in enumerate(ks):
            out[..., ch][m] = np.clip(np.trunc(tab[k][m] * f32(255)), 0, 255).astype(np.uint8)
    return out


# ---------------------------------------------------------------------------------------------------------------


def encode(img):
    img = np.ascontiguousarray(img)
    channels = 1 if img.ndim == 2 else img.shape[2]
    return {'width': int(img.shape[1]), 'height': int(img.shape[0]), 'channels': int(channels),
            'pixels': base64.b64encode(img.astype(np.uint8).tobytes()).decode('ascii')}


def floats(array):
    return [float(x) for x in np.asarray(array, dtype=np.float32).ravel()]


def smooth_image(rng, h, w):
    """A photo-like RGB image: smooth gradients plus noise, so resizes and colour steps see realistic values."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([128 + 100 * np.sin(xx / 5 + k) * np.cos(yy / 7 - k) for k in range(3)], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def label_image(rng, h, w, classes):
    """Blocky class regions with an ignore (255) border between some of them."""
    lab = np.zeros((h, w), np.uint8)
    for _ in range(6):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        lab[y0:y0 + rng.integers(3, h), x0:x0 + rng.integers(3, w)] = rng.integers(1, classes)
    lab[rng.random((h, w)) < 0.03] = 255
    return lab


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default='Tests/DatasetsTests/Fixtures/segmentation')
    args = parser.parse_args()
    rng = np.random.default_rng(20261207)
    images, cases = {}, []

    def add_image(name, img):
        images[name] = encode(img)
        return name

    # 1. Resize arithmetic: mmseg's ratio → scale, mmcv's rescale_size.
    for (w, h, img_scale, ratio) in [(500, 375, (2048, 512), 0.5), (500, 375, (2048, 512), 1.0),
                                     (500, 375, (2048, 512), 1.7342), (375, 500, (2048, 512), 2.0),
                                     (2048, 1024, (2049, 1025), 0.73), (2048, 1024, (2049, 1025), None),
                                     (353, 500, (2048, 512), 0.61803), (96, 64, (128, 48), 1.33)]:
        scale = mmseg_target_scale(img_scale, ratio)
        new_w, new_h = mmcv_rescale_size(w, h, scale)
        cases.append({'op': 'rescale_size', 'width': w, 'height': h, 'scale': list(img_scale), 'ratio': ratio,
                      'target': list(scale), 'expected': [new_w, new_h]})

    # 2. INTER_LINEAR (image) and INTER_NEAREST (label) resizes.
    rgb = add_image('rgb_37x29', smooth_image(rng, 29, 37))
    gray = add_image('gray_23x17', rng.integers(0, 256, (17, 23), dtype=np.uint8))
    even = add_image('rgb_32x24', smooth_image(rng, 24, 32))
    for name, sizes in [(rgb, [(74, 58), (50, 41), (18, 14), (37, 60), (5, 3), (101, 13)]),
                        (gray, [(46, 34), (11, 8), (40, 9)]),
                        (even, [(16, 12), (64, 48), (8, 6)])]:
        arr = decode(images[name])
        for (dw, dh) in sizes:
            expected = cv2.resize(arr, (dw, dh), interpolation=cv2.INTER_LINEAR)
            assert np.array_equal(model_linear(arr.reshape(arr.shape[0], arr.shape[1], -1), dw, dh).reshape(expected.shape), expected), (name, dw, dh)
            cases.append({'op': 'resize_linear', 'input': name, 'width': dw, 'height': dh,
                          'expected': encode(expected)})
    labels = add_image('label_41x31', label_image(rng, 31, 41, 21))
    for (dw, dh) in [(82, 62), (20, 15), (57, 44), (13, 40)]:
        expected = cv2.resize(decode(images[labels]), (dw, dh), interpolation=cv2.INTER_NEAREST)
        cases.append({'op': 'resize_nearest', 'input': labels, 'width': dw, 'height': dh,
                      'expected': encode(expected)})

    # 3. RandomCrop with cat_max_ratio: candidates fixed, mmseg's loop picks one.
    crop_label = np.zeros((40, 48), np.uint8)
    crop_label[:, 30:] = 7
    crop_label[25:, :10] = 12
    crop_label[0:6, :] = 255
    crop_name = add_image('crop_label_48x40', crop_label)
    for candidates in [[(0, 0), (10, 2), (14, 16)], [(14, 16), (0, 0)], [(2, 0)] * 11 + [(10, 16)],
                       [(0, 0), (0, 1), (3, 2), (8, 0), (12, 20)]]:
        used = mmseg_random_crop(crop_label, (24, 24), 0.75, candidates)
        accepts = [mmseg_crop_accepts(crop(crop_label, c, (24, 24)), 0.75) for c in candidates]
        cases.append({'op': 'random_crop', 'input': crop_name, 'crop': [24, 24], 'cat_max_ratio': 0.75,
                      'candidates': [list(c) for c in candidates], 'accepts': accepts, 'used': used})

    # 4. Photometric steps on a 64-pixel-wide image (HSV on the vector path only).
    photo = add_image('rgb_64x12', smooth_image(rng, 12, 64))
    arr = decode(images[photo])
    hsv_ref = cv2.cvtColor(arr, cv2.COLOR_RGB2HSV)
    cases.append({'op': 'rgb_to_hsv', 'input': photo, 'expected': encode(hsv_ref)})
    hsv_any = np.stack([rng.integers(0, 180, (8, 64)), rng.integers(0, 256, (8, 64)),
                        rng.integers(0, 256, (8, 64))], -1).astype(np.uint8)
    hsv_name = add_image('hsv_64x8', hsv_any)
    rgb_back = cv2.cvtColor(hsv_any, cv2.COLOR_HSV2RGB)
    assert np.array_equal(model_hsv2rgb(hsv_any), rgb_back), 'cv2 HSV → RGB differs from the vector-path model'
    cases.append({'op': 'hsv_to_rgb', 'input': hsv_name, 'expected': encode(rgb_back)})
    for beta in [-31.7, 12.25, 0.9999, 32.0]:
        cases.append({'op': 'brightness', 'input': photo, 'value': beta, 'expected': encode(pm_convert(arr, beta=beta))})
    for alpha in [0.5, 0.73, 1.2891, 1.5]:
        cases.append({'op': 'contrast', 'input': photo, 'value': alpha, 'expected': encode(pm_convert(arr, alpha=alpha))})
    for alpha in [0.5, 0.881, 1.37]:
        cases.append({'op': 'saturation', 'input': photo, 'value': alpha, 'expected': encode(pm_saturation(arr, alpha))})
    for delta in [-18, -5, 0, 7, 17]:
        cases.append({'op': 'hue', 'input': photo, 'value': delta, 'expected': encode(pm_hue(arr, delta))})
    for p in [{'brightness': 20.5, 'contrastFirst': True, 'contrast': 1.3, 'saturation': 0.7, 'hue': -9},
              {'brightness': -12.0, 'contrastFirst': False, 'contrast': 0.6, 'saturation': 1.4, 'hue': 15},
              {'brightness': None, 'contrastFirst': False, 'contrast': None, 'saturation': 1.1, 'hue': None}]:
        cases.append({'op': 'photometric', 'input': photo, 'parameters': p, 'expected': encode(photometric(arr, p))})

    # 5. Normalize (mmcv.imnormalize through cv2) and Pad.
    small = add_image('rgb_7x5', smooth_image(rng, 5, 7))
    sarr = decode(images[small])
    normalized = normalize_rgb(sarr)
    cases.append({'op': 'normalize', 'input': small, 'tensor': floats(normalized)})
    padded = mmcv_impad(normalized, (8, 10), 0)
    cases.append({'op': 'normalize_pad', 'input': small, 'height': 8, 'width': 10, 'tensor': floats(padded)})
    lab_small = add_image('label_7x5', label_image(rng, 5, 7, 21))
    cases.append({'op': 'pad_label', 'input': lab_small, 'height': 8, 'width': 10,
                  'expected': encode(mmcv_impad(decode(images[lab_small]), (8, 10), 255))})

    # 6. The whole train pipeline for fixed decisions, and the test pipeline.
    train_img = add_image('train_rgb_50x40', smooth_image(rng, 40, 50))
    train_lab = add_image('train_label_50x40', label_image(rng, 40, 50, 21))
    timg, tlab = decode(images[train_img]), decode(images[train_lab])
    for decisions in [{'ratio': 0.8, 'candidates': [[0, 0], [3, 10], [6, 16]], 'flip': True,
                       'photometric': {'brightness': 10.0, 'contrastFirst': False, 'contrast': 1.25,
                                       'saturation': 0.8, 'hue': 5}},
                      {'ratio': 0.55, 'candidates': [[0, 0]], 'flip': False,
                       'photometric': {'brightness': None, 'contrastFirst': True, 'contrast': None,
                                       'saturation': None, 'hue': -3}}]:
        img_scale, crop_size = (96, 48), (32, 32)
        rimg, rlab = mmseg_resize(timg, tlab, img_scale, decisions['ratio'])
        cands = [tuple(c) for c in decisions['candidates']]
        used = mmseg_random_crop(rlab, crop_size, 0.75, cands)
        cimg, clab = crop(rimg, cands[used], crop_size), crop(rlab, cands[used], crop_size)
        if decisions['flip']:
            cimg, clab = cimg[:, ::-1].copy(), clab[:, ::-1].copy()
        assert cimg.shape[1] % 32 == 0 or decisions['photometric']['saturation'] is None
        pimg = photometric(cimg, decisions['photometric'])
        out = mmcv_impad(normalize_rgb(pimg), crop_size, 0)
        out_lab = mmcv_impad(clab, crop_size, 255)
        cases.append({'op': 'train_pipeline', 'image': train_img, 'label': train_lab, 'scale': list(img_scale),
                      'crop': list(crop_size), 'decisions': decisions, 'resized': [rimg.shape[1], rimg.shape[0]],
                      'used': used, 'tensor': floats(out), 'expected_label': encode(out_lab)})
    test_out = normalize_rgb(mmcv_imrescale(timg, (96, 48), 'bilinear'))
    cases.append({'op': 'test_pipeline', 'image': train_img, 'scale': [96, 48],
                  'shape': list(test_out.shape), 'tensor': floats(test_out)})

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, 'segmentation_transforms.json')
    with open(path, 'w') as f:
        json.dump({'opencv': cv2.__version__, 'numpy': np.__version__, 'images': images, 'cases': cases}, f)
    print(f'wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes')


def decode(entry):
    arr = np.frombuffer(base64.b64decode(entry['pixels']), np.uint8)
    shape = (entry['height'], entry['width']) if entry['channels'] == 1 else (entry['height'], entry['width'], entry['channels'])
    return arr.reshape(shape).copy()


if __name__ == '__main__':
    main()
