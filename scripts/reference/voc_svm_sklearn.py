#!/usr/bin/env python3
"""Independent scikit-learn implementation of the VOC07 SVM protocols (PROTOCOLS §2.3 and §3), written from
MMSelfSup v0.8.0's tools/benchmarks/classification/svm_voc07 scripts (train_svm_kfold_parallel.py, svm_helper.py,
test_svm.py, train_svm_low_shot.py, test_svm_low_shot.py, aggregate_low_shot_svm_stats.py).

It reads the files `simsiam-bench run voc-svm --export-features DIR` writes:
  DIR/classes.txt                      class names, one per line
  DIR/trainval_labels.npy, test_labels.npy   int32 [images, classes], 1 / 0 / -1 (difficult)
  DIR/trainval_<layer>.npy, test_<layer>.npy  float32 [images, dim]
  DIR/low_shot/train_targets_sample{s}_k{k}.npy  (with --low-shot) int32 [trainval images, classes]
and prints one JSON object: {"layers": {layer: {"mAP": .., "ap": [...], "chosen_cost": [...],
"cv": [[mean CV AP per cost] per class]}}, "low_shot": {layer: {k: {"mean", "min", "max", "std", "cost"}}},
"capped_fits": {layer: fits that stopped at max_iter (LinearSVC's ConvergenceWarning)}, "seconds": {...}}.
APs are fractions (not percentages).

  python3 scripts/reference/voc_svm_sklearn.py DIR [--layers feature5] [--jobs 2] [--classes 0,1] [--low-shot]

--max-iter defaults to the reference's 2000. A fit that stops there ends at a point that depends on LinearSVC's
unseeded coordinate order; `simsiam-bench run voc-svm` finishes such fits to the tolerance instead (liblinear's
primal solver from the dual's point). To compare the two, pass a --max-iter large enough that "capped_fits" is 0
for every layer (100000 is, on the scene features we tried): both then report the optimum of every fit.
"""
import argparse
import json
import os
import sys
import time

import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.svm import LinearSVC


def cost_list(text="1.0,10.0,100.0"):
    # svm_helper.parse_cost_list: the given costs + 0.5 ** n for n in 4..19.
    return [float(c) for c in text.split(",")] + [0.5 ** n for n in range(4, 20)]


def normalize_features(features):
    # svm_helper.normalize_features: float64, x / (||x|| + 1e-5).
    features = features.astype(np.float64)
    norms = np.linalg.norm(features, axis=1)
    return features / (norms + 1e-5)[:, np.newaxis]


def calculate_ap(rec, prec):
    # svm_helper.calculate_ap: all-point interpolated AP.
    rec, prec = rec.reshape(rec.size, 1), prec.reshape(prec.size, 1)
    z, o = np.zeros((1, 1)), np.ones((1, 1))
    mrec, mpre = np.vstack((z, rec, o)), np.vstack((z, prec, z))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    indices = np.where(mrec[1:] != mrec[0:-1])[0] + 1
    ap = 0
    for i in indices:
        ap = ap + (mrec[i] - mrec[i - 1]) * mpre[i]
    return float(np.ravel(ap)[0])


def get_precision_recall(targets, preds):
    # svm_helper.get_precision_recall: sort by score descending, cumulative TP/FP.
    targets = np.array(targets > 0, dtype=np.float64)
    ind = np.argsort(preds)[::-1]
    sortcounts = targets[ind]
    tp = sortcounts
    fp = 1.0 - sortcounts
    P = np.cumsum(tp) / (np.cumsum(tp) + np.cumsum(fp))
    R = np.cumsum(tp) / np.sum(targets)
    return P, R, calculate_ap(R, P)


# LinearSVC's stopping tolerance: the reference's 1e-4 unless --tol says otherwise.
TOL = 1e-4


def svm(cost, max_iter):
    return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2",
                     loss="squared_hinge", tol=TOL, dual=True, max_iter=max_iter)


def counting_capped(function, *args):
    """(function(*args), how many LinearSVC fits inside warned that they stopped at max_iter)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = function(*args)
    return result, sum(1 for w in caught if issubclass(w.category, ConvergenceWarning))


def train_class(c, X, targets, costs, max_iter):
    """train_svm_kfold_parallel.py for one class: labels 0 -> -1 (difficult -1 stays -1: a negative);
    per cost, 3-fold cross_val_score (average_precision), then a fit on all trainval."""
    y = targets[:, c].copy()
    y[y == 0] = -1
    cv_means, models = [], []
    for cost in costs:
        clf = svm(cost, max_iter)
        scores = cross_val_score(clf, X, y, cv=3, scoring="average_precision")
        cv_means.append(float(scores.mean()))
        models.append(clf.fit(X, y))
    return cv_means, models


def train_class_counted(c, X, targets, costs, max_iter):
    return counting_capped(train_class, c, X, targets, costs, max_iter)


def test_class(c, model, X_test, test_targets):
    # test_svm.py: difficult (-1) excluded, 0 -> -1, all-point AP on decision_function.
    keep = test_targets[:, c] != -1
    y = test_targets[keep, c].copy()
    y[y == 0] = -1
    scores = model.decision_function(X_test[keep])
    return get_precision_recall(y, scores)[2]


def full_protocol(X, X_test, targets, test_targets, classes, costs, jobs, max_iter):
    counted = Parallel(n_jobs=jobs)(delayed(train_class_counted)(c, X, targets, costs, max_iter) for c in classes)
    results = [result for result, _ in counted]
    aps, chosen, cv = [], [], []
    for c, (cv_means, models) in zip(classes, results):
        best = int(np.argmax(cv_means))  # test_svm.get_chosen_costs: ties -> first
        chosen.append(costs[best])
        cv.append(cv_means)
        aps.append(test_class(c, models[best], X_test, test_targets))
    return {"mAP": float(np.mean(aps)), "ap": aps, "chosen_cost": chosen, "cv": cv}, sum(n for _, n in counted)


def low_shot_class(c, X, sample, costs, max_iter, X_test, test_targets):
    keep = sample[:, c] != -1
    y = sample[keep, c].copy()
    y[y == 0] = -1
    return counting_capped(lambda: [test_class(c, svm(cost, max_iter).fit(X[keep], y), X_test, test_targets)
                                    for cost in costs])


def low_shot_protocol(X, X_test, test_targets, classes, costs, jobs, max_iter, directory, ks, samples):
    summary, capped = {}, 0
    for k in ks:
        maps = []  # [sample][cost]
        for s in range(1, samples + 1):
            sample = np.load(os.path.join(directory, f"train_targets_sample{s}_k{k}.npy"))
            counted = Parallel(n_jobs=jobs)(delayed(low_shot_class)(c, X, sample, costs, max_iter, X_test,
                                                                     test_targets) for c in classes)
            capped += sum(n for _, n in counted)
            maps.append(np.mean(np.array([aps for aps, _ in counted]), axis=0))
        maps = np.array(maps)
        # aggregate_low_shot_svm_stats.py: per cost over samples; cost with the best mean.
        means = maps.mean(axis=0)
        best = int(np.argmax(means))
        summary[str(k)] = {"mean": float(means[best]), "min": float(maps[:, best].min()),
                           "max": float(maps[:, best].max()), "std": float(maps[:, best].std()),
                           "cost": costs[best]}
    return summary, capped


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--layers", default=None, help="comma-separated; default: every trainval_<layer>.npy")
    parser.add_argument("--jobs", type=int, default=2, help="joblib workers over classes (MMSelfSup: n_jobs)")
    parser.add_argument("--classes", default=None, help="comma-separated class indices (a subset, for timing)")
    parser.add_argument("--costs", default=None, help="comma-separated; default: the reference's 19")
    parser.add_argument("--max-iter", type=int, default=2000, help="LinearSVC max_iter (reference: 2000)")
    parser.add_argument("--low-shot", action="store_true")
    parser.add_argument("--ks", default="1,2,4,8,16,32,64,96")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--tol", type=float, default=1e-4, help="LinearSVC tol (reference: 1e-4)")
    args = parser.parse_args()
    global TOL
    TOL = args.tol

    d = args.directory
    names = open(os.path.join(d, "classes.txt")).read().split()
    targets = np.load(os.path.join(d, "trainval_labels.npy")).astype(np.int64)
    test_targets = np.load(os.path.join(d, "test_labels.npy")).astype(np.int64)
    classes = [int(c) for c in args.classes.split(",")] if args.classes else list(range(len(names)))
    costs = [float(c) for c in args.costs.split(",")] if args.costs else cost_list()
    if args.layers:
        layers = args.layers.split(",")
    else:
        layers = sorted(f[len("trainval_"):-4] for f in os.listdir(d)
                        if f.startswith("trainval_") and f.endswith(".npy") and f != "trainval_labels.npy")
    out = {"layers": {}, "low_shot": {}, "capped_fits": {}, "seconds": {}, "classes": [names[c] for c in classes]}
    for layer in layers:
        X = normalize_features(np.load(os.path.join(d, f"trainval_{layer}.npy")))
        X_test = normalize_features(np.load(os.path.join(d, f"test_{layer}.npy")))
        if not args.skip_full:
            start = time.time()
            out["layers"][layer], capped = full_protocol(X, X_test, targets, test_targets, classes, costs,
                                                         args.jobs, args.max_iter)
            out["capped_fits"][layer] = out["capped_fits"].get(layer, 0) + capped
            out["seconds"][f"{layer}/full"] = time.time() - start
        if args.low_shot:
            start = time.time()
            out["low_shot"][layer], capped = low_shot_protocol(
                X, X_test, test_targets, classes, costs, args.jobs, args.max_iter, os.path.join(d, "low_shot"),
                [int(k) for k in args.ks.split(",")], args.samples)
            out["capped_fits"][layer] = out["capped_fits"].get(layer, 0) + capped
            out["seconds"][f"{layer}/low_shot"] = time.time() - start
        print(f"{layer} done", file=sys.stderr)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
