#!/usr/bin/env python3
"""Golden files for `checkpoint convert --to detectron2` (Tests/CheckpointsTests/Fixtures/detectron2/).

The reference is MMSelfSup's tools/benchmarks/detectron2/convert-pretrain-to-detectron2.py (the same rules as
facebookresearch/moco's detection/convert-pretrain-to-detectron2.py), re-implemented below: it reads a backbone
checkpoint's ['state_dict'], renames each key (no "layer" in it → "stem." prefix; layer1..4 → res2..5;
bn1/2/3 → conv1/2/3.norm; downsample.0 → shortcut; downsample.1 → shortcut.norm), keeps each value as
`tensor.numpy()` and pickles {'model': …, '__author__': 'MMSelfSup', 'matching_heuristics': True}.

Write the golden listing of the reference conversion of the committed MMSelfSup model-zoo backbone fixture
(Tests/CheckpointsTests/Fixtures/pth/mmselfsup_zoo_backbone.pth: ResNet-50 at width 1/32):

  python3 scripts/reference/make_detectron2_fixtures.py listing

  → listing.json: the top-level keys and values, and per array its name, dtype, shape and the SHA-256 of its
    bytes (C order, little-endian), in name order.

Check a pickle OUR code wrote (detectron2 reads it with pickle.load(f, encoding='latin1')) against the reference
conversion, exactly (same names, dtypes, shapes, bytes; ndarray values; nothing else in the file), and with
--accept copy it into the fixtures as the golden bytes the Swift test compares its output with:

  SIMSIAM_D2_VERIFY_DIR=/tmp/d2 swift test --filter Detectron2ConverterTests
  python3 scripts/reference/make_detectron2_fixtures.py verify /tmp/d2/mmselfsup_zoo_backbone.pkl [--accept]
"""
import hashlib
import json
import os
import pickle
import shutil
import sys

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
INPUT = os.path.join(ROOT, "Tests/CheckpointsTests/Fixtures/pth/mmselfsup_zoo_backbone.pth")
OUT = os.path.join(ROOT, "Tests/CheckpointsTests/Fixtures/detectron2")


def detectron2_name(key):
    if "layer" not in key:
        key = "stem." + key
    for t in [1, 2, 3, 4]:
        key = key.replace("layer{}".format(t), "res{}".format(t + 1))
    for t in [1, 2, 3]:
        key = key.replace("bn{}".format(t), "conv{}.norm".format(t))
    key = key.replace("downsample.0", "shortcut")
    return key.replace("downsample.1", "shortcut.norm")


def reference_conversion(path):
    state_dict = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    model = {detectron2_name(k): v.numpy() for k, v in state_dict.items()}
    return {"model": model, "__author__": "MMSelfSup", "matching_heuristics": True}


def listing(converted):
    arrays = []
    for name in sorted(converted["model"]):
        array = converted["model"][name]
        arrays.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                       "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()})
    return {"script": "scripts/reference/make_detectron2_fixtures.py", "torch_version": torch.__version__,
            "numpy_version": np.__version__, "input": "Tests/CheckpointsTests/Fixtures/pth/mmselfsup_zoo_backbone.pth",
            "__author__": converted["__author__"], "matching_heuristics": converted["matching_heuristics"],
            "model": arrays}


def verify(path, accept):
    reference = reference_conversion(INPUT)
    with open(path, "rb") as f:
        ours = pickle.load(f, encoding="latin1")  # as detectron2's DetectionCheckpointer._load_file
    assert isinstance(ours, dict) and set(ours) == {"model", "__author__", "matching_heuristics"}, set(ours)
    assert ours["__author__"] == reference["__author__"], ours["__author__"]
    assert ours["matching_heuristics"] is True
    assert set(ours["model"]) == set(reference["model"]), set(ours["model"]) ^ set(reference["model"])
    for name, expected in reference["model"].items():
        array = ours["model"][name]
        assert type(array) is np.ndarray, (name, type(array))
        assert array.dtype == expected.dtype and array.shape == expected.shape, (name, array.dtype, array.shape)
        assert array.flags["C_CONTIGUOUS"] and array.flags["WRITEABLE"], name
        assert array.tobytes() == expected.tobytes(), name
    print("OK: {} arrays identical to the reference conversion".format(len(reference["model"])))
    if accept:
        shutil.copyfile(path, os.path.join(OUT, "mmselfsup_zoo_backbone.pkl"))
        print("copied to", os.path.join(OUT, "mmselfsup_zoo_backbone.pkl"))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "listing"
    if command == "listing":
        os.makedirs(OUT, exist_ok=True)
        document = listing(reference_conversion(INPUT))
        arrays = document.pop("model")
        with open(os.path.join(OUT, "listing.json"), "w") as f:  # one array a line
            f.write(json.dumps(document)[:-1] + ', "model": [\n')
            f.write(",\n".join(json.dumps(array) for array in arrays) + "\n]}\n")
    elif command == "verify":
        verify(sys.argv[2], "--accept" in sys.argv[3:])
    else:
        sys.exit(__doc__)
