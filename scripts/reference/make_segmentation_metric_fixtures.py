#!/usr/bin/env python3
"""Golden values for semantic segmentation evaluation (Tests/EvaluationTests/Fixtures/segmentation/):

metrics.json   MMSegmentation 0.x's mIoU metric (mmseg/core/evaluation/metrics.py: intersect_and_union,
               total_intersect_and_union, total_area_to_metrics; the dataset's evaluate() takes np.nanmean)
               re-implemented below with the same torch calls (boolean mask, torch.histc with bins = classes,
               min 0, max classes - 1, float64 totals), on fixed random label / prediction maps: several image
               sizes, ignored pixels (255), labels that are neither a class nor 255, a class absent from both maps
               (NaN, skipped by nanmean), a class only in the predictions (IoU 0), an image that is empty after the
               ignore mask, int32 predictions outside the classes, and reduce_zero_label.
inference.json EncoderDecoder.slide_inference / whole_inference (mmseg/models/segmentors/encoder_decoder.py,
               0.x) with rescale=True, re-implemented in torch, around a small analytic "model" whose logits depend
               on the whole crop (a 1x1 convolution plus a term in the crop's channel means), so that crop placement
               and averaging both matter; F.interpolate(mode='bilinear') back to the original size. Where the
               image is not rescaled, the model's logits per crop are stored too (cropLogits), so the test can
               feed torch's own crop logits and compare the averaged result to the bit.

The tests need no Python. NaN is written as null.

  python3 scripts/reference/make_segmentation_metric_fixtures.py Tests/EvaluationTests/Fixtures/segmentation
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)


# ---- the metric (mmseg 0.x metrics.py, same torch operations) ----

def intersect_and_union(pred_label, label, num_classes, ignore_index, reduce_zero_label=False):
    pred_label = torch.from_numpy(pred_label)
    label = torch.from_numpy(label.copy())  # uint8, as mmcv.imread(flag='unchanged') gives
    if reduce_zero_label:
        label[label == 0] = 255
        label = label - 1
        label[label == 254] = 255
    mask = label != ignore_index
    pred_label = pred_label[mask]
    label = label[mask]
    intersect = pred_label[pred_label == label]
    area_intersect = torch.histc(intersect.float(), bins=num_classes, min=0, max=num_classes - 1)
    area_pred_label = torch.histc(pred_label.float(), bins=num_classes, min=0, max=num_classes - 1)
    area_label = torch.histc(label.float(), bins=num_classes, min=0, max=num_classes - 1)
    area_union = area_pred_label + area_label - area_intersect
    return area_intersect, area_union, area_pred_label, area_label


def eval_miou(preds, labels, num_classes, ignore_index, reduce_zero_label=False):
    totals = [torch.zeros((num_classes,), dtype=torch.float64) for _ in range(4)]
    per_image = []
    for pred, label in zip(preds, labels):
        areas = intersect_and_union(pred, label, num_classes, ignore_index, reduce_zero_label)
        per_image.append(areas)
        for total, area in zip(totals, areas):
            total += area
    inter, union, pred_area, label_area = totals
    all_acc = inter.sum() / label_area.sum()
    iou = (inter / union).numpy()
    acc = (inter / label_area).numpy()
    with np.errstate(all="ignore"):
        miou = float(np.nanmean(iou)) if not np.all(np.isnan(iou)) else float("nan")
        macc = float(np.nanmean(acc)) if not np.all(np.isnan(acc)) else float("nan")
    return totals, per_image, {"IoU": iou, "Acc": acc, "aAcc": float(all_acc), "mIoU": miou, "mAcc": macc}


def nan_to_none(values):
    if isinstance(values, float):
        return None if np.isnan(values) else values
    return [None if np.isnan(v) else float(v) for v in values]


def counts(area):
    values = area.numpy()
    assert np.all(values == np.round(values))
    return [int(v) for v in values]


def metric_case(name, num_classes, ignore_index, images, reduce_zero_label=False, prediction_type="uint8"):
    preds = [p for p, _ in images]
    labels = [l for _, l in images]
    totals, per_image, metrics = eval_miou(preds, labels, num_classes, ignore_index, reduce_zero_label)
    return {
        "name": name, "classCount": num_classes, "ignoreIndex": ignore_index,
        "reduceZeroLabel": reduce_zero_label, "predictionType": prediction_type,
        "images": [{"height": int(l.shape[0]), "width": int(l.shape[1]),
                    "label": l.reshape(-1).tolist(), "prediction": p.reshape(-1).tolist(),
                    "areaIntersect": counts(a[0]), "areaUnion": counts(a[1]),
                    "areaPredLabel": counts(a[2]), "areaLabel": counts(a[3])}
                   for (p, l), a in zip(images, per_image)],
        "areaIntersect": counts(totals[0]), "areaUnion": counts(totals[1]),
        "areaPredLabel": counts(totals[2]), "areaLabel": counts(totals[3]),
        "IoU": nan_to_none(metrics["IoU"].tolist()), "Acc": nan_to_none(metrics["Acc"].tolist()),
        "aAcc": nan_to_none(metrics["aAcc"]), "mIoU": nan_to_none(metrics["mIoU"]),
        "mAcc": nan_to_none(metrics["mAcc"]),
    }


rng = np.random.default_rng(15)


def random_label(h, w, classes, ignore_fraction=0.1, strays=()):
    """Labels drawn from `classes`, about `ignore_fraction` set to 255, plus a few stray non-class values."""
    label = rng.choice(np.array(classes, dtype=np.uint8), size=(h, w))
    label[rng.random((h, w)) < ignore_fraction] = 255
    for value in strays:
        label[rng.integers(0, h), rng.integers(0, w)] = value
    return label


def noisy_prediction(label, classes, keep=0.6):
    """The label where it is a class and a coin says so, else a random class of `classes`."""
    pred = rng.choice(np.array(classes, dtype=np.uint8), size=label.shape)
    keep_mask = (rng.random(label.shape) < keep) & np.isin(label, classes)
    pred[keep_mask] = label[keep_mask]
    return pred


# 7 classes: 3 is absent from labels and predictions (NaN → skipped), 5 appears only in predictions (IoU 0,
# Acc NaN), 6 only in labels (IoU 0, Acc 0); labels 7 and 200 are neither classes nor the ignore index.
label_classes = [0, 1, 2, 4, 6]
pred_classes = [0, 1, 2, 4, 5]
images = []
for h, w in [(7, 9), (12, 5), (10, 10), (3, 17)]:
    label = random_label(h, w, label_classes, strays=(7, 200))
    images.append((noisy_prediction(label, pred_classes), label))
images.insert(2, (np.array([[1, 2, 5]], dtype=np.uint8), np.array([[255, 255, 255]], dtype=np.uint8)))  # empty
cases = [metric_case("mixed", 7, 255, images)]

# Int32 predictions with values outside the classes (-1, 7, 300): histc drops them from area_pred_label.
images32 = []
for h, w in [(6, 8), (9, 4)]:
    label = random_label(h, w, [0, 1, 2, 3], ignore_fraction=0.15)
    pred = noisy_prediction(label, [0, 1, 2, 3]).astype(np.int32)
    for value in (-1, 4, 300):
        pred[rng.integers(0, h), rng.integers(0, w)] = value
    images32.append((pred, label))
cases.append(metric_case("int32_out_of_range", 4, 255, images32, prediction_type="int32"))

# reduce_zero_label: stored 0 is "other" (→ 255, ignored), stored k is class k − 1.
images_rzl = []
for h, w in [(8, 8), (5, 11)]:
    label = random_label(h, w, [0, 1, 2, 3, 4, 5], ignore_fraction=0.1)
    images_rzl.append((noisy_prediction(label, [0, 1, 2, 3, 4]), label))
cases.append(metric_case("reduce_zero_label", 5, 255, images_rzl, reduce_zero_label=True))

# A different ignore index (0), with 255 then an ordinary out-of-range value.
images_ignore0 = []
for h, w in [(6, 7)]:
    label = random_label(h, w, [0, 1, 2], ignore_fraction=0.1)
    images_ignore0.append((noisy_prediction(label, [0, 1, 2]), label))
cases.append(metric_case("ignore_index_0", 3, 0, images_ignore0))

# VOC-sized (21 classes) and Cityscapes-sized (19 classes) sets: np.nanmean sums 8 or more values with numpy's
# pairwise summation, which the Swift side reproduces to the bit. Class 20 / 18 is never labelled nor predicted.
for name, num_classes in [("voc21", 21), ("cityscapes19", 19)]:
    present = list(range(num_classes - 1))
    images_big = []
    for h, w in [(24, 32), (17, 29), (30, 11)]:
        label = random_label(h, w, present, ignore_fraction=0.05)
        images_big.append((noisy_prediction(label, present, keep=0.5), label))
    cases.append(metric_case(name, num_classes, 255, images_big))

# Every label ignored: every area 0, so every score is NaN.
cases.append(metric_case("all_ignored", 3, 255, [(np.array([[0, 1], [2, 1]], dtype=np.uint8),
                                                  np.full((2, 2), 255, dtype=np.uint8))]))


# ---- inference (mmseg 0.x EncoderDecoder, test mode) ----

def make_model(classes, generator):
    weight = torch.randn(classes, 3, generator=generator)
    bias = torch.randn(classes, generator=generator)
    context = torch.randn(classes, 3, generator=generator)

    def encode_decode(crop):  # crop NCHW [1, 3, h, w] → logits [1, C, h, w] at the crop's size
        pixelwise = torch.einsum("ck,nkhw->nchw", weight, crop) + bias[None, :, None, None]
        means = crop.mean(dim=(2, 3))  # [1, 3]
        return pixelwise + (means @ context.T)[:, :, None, None]

    return encode_decode, {"weight": weight.reshape(-1).tolist(), "bias": bias.tolist(),
                           "context": context.reshape(-1).tolist()}


def slide_inference(img, encode_decode, num_classes, crop, stride, ori_shape, align_corners):
    h_stride, w_stride = stride
    h_crop, w_crop = crop
    batch_size, _, h_img, w_img = img.size()
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    preds = img.new_zeros((batch_size, num_classes, h_img, w_img))
    count_mat = img.new_zeros((batch_size, 1, h_img, w_img))
    windows, crop_logits = [], []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1 = h_idx * h_stride
            x1 = w_idx * w_stride
            y2 = min(y1 + h_crop, h_img)
            x2 = min(x1 + w_crop, w_img)
            y1 = max(y2 - h_crop, 0)
            x1 = max(x2 - w_crop, 0)
            windows.append([y1, y2, x1, x2])
            crop_seg_logit = encode_decode(img[:, :, y1:y2, x1:x2])
            crop_logits.append(crop_seg_logit)
            preds += F.pad(crop_seg_logit, (int(x1), int(preds.shape[3] - x2), int(y1), int(preds.shape[2] - y2)))
            count_mat[:, :, y1:y2, x1:x2] += 1
    assert (count_mat == 0).sum() == 0
    preds = preds / count_mat
    if tuple(preds.shape[2:]) != tuple(ori_shape):
        preds = F.interpolate(preds, size=ori_shape, mode="bilinear", align_corners=align_corners)
    return preds, windows, crop_logits


def whole_inference(img, encode_decode, ori_shape, align_corners):
    seg_logit = encode_decode(img)
    if tuple(seg_logit.shape[2:]) != tuple(ori_shape):
        seg_logit = F.interpolate(seg_logit, size=ori_shape, mode="bilinear", align_corners=align_corners)
    return seg_logit


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().reshape(-1).tolist()


generator = torch.Generator().manual_seed(15)
inference_cases = []
for name, (h, w), mode, ori, align in [
    ("slide_same_size", (11, 14), ("slide", (6, 5), (4, 3)), (11, 14), False),
    ("slide_rescaled", (11, 14), ("slide", (6, 5), (4, 3)), (15, 19), True),
    ("slide_crop_larger_than_image", (4, 5), ("slide", (6, 7), (4, 3)), (7, 6), False),
    ("whole_rescaled", (10, 8), ("whole",), (17, 9), False),
    ("whole_rescaled_align_corners", (10, 8), ("whole",), (13, 21), True),
]:
    classes = 4
    encode_decode, weights = make_model(classes, generator)
    image = torch.randn(1, 3, h, w, generator=generator)
    case = {"name": name, "height": h, "width": w, "classCount": classes, "originalHeight": ori[0],
            "originalWidth": ori[1], "alignCorners": align, "image": nhwc(image), **weights}
    with torch.no_grad():
        if mode[0] == "slide":
            logits, windows, crop_logits = slide_inference(image, encode_decode, classes, mode[1], mode[2], ori,
                                                           align)
            case.update({"crop": list(mode[1]), "stride": list(mode[2]), "windows": windows})
            if ori == (h, w):  # no resize: the sums and the division are float32 operations torch and we share
                case["cropLogits"] = [nhwc(crop) for crop in crop_logits]
        else:
            logits = whole_inference(image, encode_decode, ori, align)
        probabilities = F.softmax(logits, dim=1)  # EncoderDecoder.inference, then simple_test's argmax
    case["logits"] = nhwc(logits)
    case["labels"] = probabilities.argmax(dim=1).reshape(-1).tolist()
    inference_cases.append(case)

# The Cityscapes windows (1024 × 2048, crop 769, stride 513): only the window list.
_, cityscapes_windows, _ = slide_inference(torch.zeros(1, 1, 1024, 2048), lambda crop: crop[:, :1] * 0, 1,
                                        (769, 769), (513, 513), (1024, 2048), False)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"torch_version": torch.__version__, "script": "scripts/reference/make_segmentation_metric_fixtures.py",
               "cases": cases}, f)
    f.write("\n")
with open(os.path.join(out, "inference.json"), "w") as f:
    json.dump({"torch_version": torch.__version__, "script": "scripts/reference/make_segmentation_metric_fixtures.py",
               "cases": inference_cases, "cityscapesWindows": cityscapes_windows}, f)
    f.write("\n")
