#!/usr/bin/env python3
"""Golden values for the SVM protocol's exact pieces (Tests/EvaluationTests/Fixtures/svm/golden.json):
scikit-learn's average_precision_score (ties included), the reference's calculate_ap (no ties: NumPy's argsort
order among equal scores is unspecified), and StratifiedKFold(3, shuffle=False) fold assignments.

Also small .npy files written by NumPy itself (format 1.0 and 2.0, each supported dtype, a Fortran-order array)
for the NPY reader's tests.

  python3 scripts/reference/make_svm_fixtures.py Tests/EvaluationTests/Fixtures/svm
"""
import json
import os
import sys

import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, os.path.dirname(__file__))
from voc_svm_sklearn import get_precision_recall  # noqa: E402

rng = np.random.default_rng(6)
ap_cases = []
for n, levels in [(12, 4), (40, 6), (200, None), (57, 3), (9, 2)]:
    if levels is None:
        scores = rng.normal(size=n)
    else:
        scores = rng.integers(0, levels, size=n).astype(np.float64) / 2  # many ties
    labels = rng.random(n) < 0.3
    labels[rng.integers(0, n)] = True
    ap_cases.append({"scores": scores.tolist(), "positive": labels.tolist(),
                     "sklearn_ap": float(average_precision_score(labels.astype(int), scores))})

voc_cases = []
for n in [5, 30, 300]:
    scores = rng.normal(size=n)  # distinct
    labels = rng.random(n) < 0.25
    labels[0] = True
    voc_cases.append({"scores": scores.tolist(), "positive": labels.tolist(),
                      "voc_ap": get_precision_recall(np.where(labels, 1, -1), scores)[2]})

fold_cases = []
for labels in [
    rng.choice([-1, 1], size=50, p=[0.8, 0.2]),
    np.array([1, 1, 1, -1, -1, -1, -1, 1, -1, -1, 1]),
    np.array([-1] * 7 + [1] * 4),
    rng.choice([0, 1, 2], size=31),
    rng.choice([-1, 1], size=5011, p=[0.94, 0.06]),
]:
    folds = np.empty(len(labels), dtype=int)
    for fold, (_, test) in enumerate(StratifiedKFold(3, shuffle=False).split(np.zeros(len(labels)), labels)):
        folds[test] = fold
    fold_cases.append({"labels": labels.tolist(), "folds": folds.tolist()})

out = sys.argv[1]
with open(os.path.join(out, "golden.json"), "w") as f:
    json.dump({"average_precision": ap_cases, "voc_ap": voc_cases, "stratified_kfold": fold_cases}, f)
    f.write("\n")

np.save(os.path.join(out, "f4_2x3.npy"), np.arange(6, dtype=np.float32).reshape(2, 3) / 4 - 0.5)
np.save(os.path.join(out, "f8_3.npy"), np.array([1.5, -2.25, 1e-300]))
np.save(os.path.join(out, "i4_2x2.npy"), np.array([[1, -1], [0, 2147483647]], dtype=np.int32))
np.save(os.path.join(out, "i8_scalar.npy"), np.array(-7, dtype=np.int64))
np.save(os.path.join(out, "fortran_2x3.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.save(os.path.join(out, "u1_2.npy"), np.array([1, 2], dtype=np.uint8))
with open(os.path.join(out, "f4_v2_2x2.npy"), "wb") as f:
    np.lib.format.write_array(f, np.array([[1, 2], [3, 4]], dtype=np.float32), version=(2, 0))
