#!/usr/bin/env python3
"""Checkpoint fixtures for the Swift .pth reader (Tests/CheckpointsTests/Fixtures/pth), written by torch.save.

Run:  pip install torch==2.13.0+cpu safetensors
      python3 scripts/reference/make_checkpoint_fixtures.py [--out Tests/CheckpointsTests/Fixtures/pth]
      python3 scripts/reference/make_checkpoint_fixtures.py --features-only   (features.safetensors alone)
      python3 scripts/reference/make_checkpoint_fixtures.py --verify DIR

One tiny model -- ResNet-50 (Bottleneck [3,4,6,3]) at width 1/32 (stage outputs 8, 16, 32, 64; conv1 has 2
channels), a torchvision classifier fc 64->10, MMSelfSup's SimSiam neck 64->32->32 and predictor 32->8->32 (as in
make_engine_fixtures.py's resnet50_tiny), the
official SimSiam projector/predictor with the same weights -- is saved in each layout users bring:

  torchvision.pth            OrderedDict state_dict of torchvision's resnet50 (conv1.*, bn1.*, layer1..4.*, fc.*)
  mmselfsup0_train.pth       MMSelfSup 0.x training checkpoint {'meta': {...}, 'state_dict': {encoder.0.* (the
                             backbone), encoder.1.* (the neck), backbone.*, neck.*, head.predictor.*},
                             'optimizer': {'state': {0: {'momentum_buffer'}, 1: ...}, 'param_groups': [...]}};
                             encoder.0/backbone are the same tensors, so torch stores them once
  mmselfsup_zoo_backbone.pth MMSelfSup model-zoo backbone-only file {'state_dict': {conv1.weight, ...},
                             'author': 'MMSelfSup'}
  mmselfsup1.pth             MMSelfSup 1.x (mmengine) checkpoint {'meta': {...}, 'state_dict': {backbone.*, neck.*,
                             head.predictor.*}, 'optimizer': {...}, 'param_schedulers': [...]} (without mmengine's
                             'message_hub', whose HistoryBuffer objects no safe loader accepts)
  simsiam_official.pth.tar   facebookresearch/simsiam main_simsiam.py checkpoint {'epoch', 'arch', 'state_dict':
                             {module.encoder.* (torchvision resnet50 with fc.0..fc.7 as the projector),
                             module.predictor.0/1/3.*}, 'optimizer'}
  dtypes.pth                 a transposed view, a sliced view with a storage offset (sharing its base's storage),
                             float16, bfloat16, float64, int32 and int64 tensors, a 0-d and an empty tensor, an
                             nn.Parameter, and scalars of every kind (int, big int, float, bool, None, str, list,
                             tuple, int dict keys)
  dtypes_protocol5.pth       the same object saved with pickle_protocol=5 (FRAME, MEMOIZE, STACK_GLOBAL, ...)
  legacy.pth                 torch.save(..., _use_new_zipfile_serialization=False): must be reported unsupported
  hostile_system.pth         a pickle whose object reduces to os.system('touch <marker>'): must be refused
  hostile_eval.pth           the same with builtins.eval
  features.safetensors       PyTorch's features for the weights in torchvision.pth: "input" [2, 3, 64, 64] (seed 7,
                             standard normal) and "eval.feature1".."eval.feature5", model.eval() outputs of the
                             backbone loaded from torchvision.pth (feature1 = relu(bn1(conv1(x))) before the
                             max-pool, feature2..5 = layer1..layer4), all NCHW Float32. --features-only rewrites
                             just this file from the torchvision.pth already in --out.
  expected.safetensors       the expected values: every distinct tensor once as Float32 (Int64 for integer
                             tensors), under a canonical name; its metadata maps, per fixture,
                             "tensors/<file>" -> JSON {flattened name: canonical name} and
                             "values/<file>" -> JSON {flattened name: text}. Flattened names are dotted paths from
                             the top-level object ("state_dict.conv1.weight", "optimizer.state.0.momentum_buffer");
                             texts are str() of ints, bools and None, repr() of floats, and strings as they are.

Everything is deterministic (fixed seed); the zip bytes still differ between runs (a random serialization id).

--verify DIR loads every DIR/*.pth with torch.load(f, weights_only=True) and compares it exactly with the
DIR/<stem>.safetensors next to it: the state dict (the file itself, or its 'state_dict' when it has 'meta') against
the tensors, 'meta' against the safetensors metadata. The Swift test `PyTorchCheckpointWriterTests` writes such
pairs into $SIMSIAM_PTH_VERIFY_DIR when that variable is set.
"""
import argparse
import collections
import json
import os
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_engine_fixtures import Bottleneck, Neck, Predictor, ResNet, randomize_bn  # noqa: E402

SCRIPT = "scripts/reference/make_checkpoint_fixtures.py"
HOSTILE_MARKER = "/tmp/simsiam-bench-hostile-pickle-ran"


class Hostile:
    """Pickles as a call of `function(argument)`; torch.save only records it, nothing runs here."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return (self.function, (self.argument,))


def build_model(seed):
    torch.manual_seed(seed)
    backbone = ResNet(Bottleneck, [3, 4, 6, 3], width=1 / 32)
    fc = nn.Linear(backbone.out_channels, 10)
    neck = Neck(64, 32, 32)
    predictor = Predictor(32, 8, 32)
    for module in (backbone, neck, predictor):
        randomize_bn(module)
    with torch.no_grad():  # distinct counters, so a swapped I64 tensor is caught
        for i, m in enumerate(list(backbone.modules()) + list(neck.modules()) + list(predictor.modules())):
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.num_batches_tracked.fill_(1000 + i)
    return backbone, fc, neck, predictor


def prefixed(prefix, state):
    return collections.OrderedDict((prefix + k, v) for k, v in state.items())


def optimizer_state(params, lr):
    """An SGD state_dict with momentum buffers for the first two parameters only (keeps the files small)."""
    return {"state": {i: {"momentum_buffer": p} for i, p in enumerate(params[:2])},
            "param_groups": [{"lr": lr, "momentum": 0.9, "dampening": 0, "weight_decay": 1e-4, "nesterov": False,
                              "maximize": False, "foreach": None, "differentiable": False, "fused": None,
                              "params": list(range(len(params)))}]}


def make_objects(seed):
    """The fixture objects and the canonical tensor for each tensor object (by id)."""
    backbone, fc, neck, predictor = build_model(seed)
    bb = backbone.state_dict()
    nk = neck.state_dict()
    pr = predictor.state_dict()
    canonical = {}  # id(tensor) -> (name, expected value)

    def register(prefix, state):
        for k, v in state.items():
            canonical[id(v)] = (prefix + k, v)

    register("backbone.", bb)
    fcs = fc.state_dict()
    register("fc.", fcs)
    register("neck.", nk)
    register("head.predictor.", pr)
    torch.manual_seed(seed + 1)
    momentum = [torch.randn(2, 3, 7, 7), torch.randn(2)]
    register("momentum.", {"0": momentum[0], "1": momentum[1]})

    objects, rules = {}, {}
    rules["torchvision.pth"] = [["fc.", "fc."], ["", "backbone."]]
    objects["torchvision.pth"] = collections.OrderedDict(list(bb.items()) + list(prefixed("fc.", fcs).items()))

    mm0 = collections.OrderedDict()
    for prefix, state in [("encoder.0.", bb), ("encoder.1.", nk), ("backbone.", bb), ("neck.", nk),
                          ("head.predictor.", pr)]:
        mm0.update(prefixed(prefix, state))
    momentum_rules = [["optimizer.state.0.momentum_buffer", "momentum.0"],
                      ["optimizer.state.1.momentum_buffer", "momentum.1"]]
    rules["mmselfsup0_train.pth"] = [["state_dict.encoder.0.", "backbone."], ["state_dict.encoder.1.", "neck."],
                                     ["state_dict.backbone.", "backbone."], ["state_dict.neck.", "neck."],
                                     ["state_dict.head.predictor.", "head.predictor."]] + momentum_rules
    objects["mmselfsup0_train.pth"] = {
        "meta": {"env_info": "sys.platform: linux\nPython: 3.8", "seed": 0, "exp_name": "simsiam_resnet50.py",
                 "mmselfsup_version": "0.11.0", "config": "model = dict(type='SimSiam')\n", "epoch": 200,
                 "iter": 100200, "mmcv_version": "1.7.1", "time": "Tue Mar  7 10:00:00 2023",
                 "hook_msgs": {"last_ckpt": "work_dirs/epoch_200.pth"}},
        "state_dict": mm0,
        "optimizer": optimizer_state(momentum, 0.05),
    }

    rules["mmselfsup_zoo_backbone.pth"] = [["state_dict.", "backbone."]]
    objects["mmselfsup_zoo_backbone.pth"] = {"state_dict": collections.OrderedDict(bb), "author": "MMSelfSup"}

    mm1 = collections.OrderedDict()
    for prefix, state in [("backbone.", bb), ("neck.", nk), ("head.predictor.", pr)]:
        mm1.update(prefixed(prefix, state))
    rules["mmselfsup1.pth"] = [["state_dict.", ""]] + momentum_rules
    objects["mmselfsup1.pth"] = {
        "meta": {"cfg": "model = dict(type='SimSiam')\n", "seed": 1234, "experiment_name": "simsiam_20230101",
                 "time": "20230101_000000", "mmengine_version": "0.7.3", "dataset_meta": None, "epoch": 100,
                 "iter": 50000},
        "state_dict": mm1,
        "optimizer": {"state": {0: {"momentum_buffer": momentum[0]}}, "param_groups": [
            {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "initial_lr": 0.05, "params": [0, 1, 2]}]},
        "param_schedulers": [{"T_max": 100, "eta_min": 0.0, "base_values": [0.05], "last_step": 100,
                              "by_epoch": True, "_get_value_called_within_step": False}],
    }

    # Official SimSiam: encoder = torchvision resnet50(num_classes=dim) whose fc becomes the projector
    # Sequential(Linear, BN, ReLU, Linear, BN, ReLU, fc (with bias), BN(affine=False)); predictor
    # Sequential(Linear(no bias), BN, ReLU, Linear).
    torch.manual_seed(seed + 2)
    fc6_bias = torch.randn(32) * 0.1
    canonical[id(fc6_bias)] = ("projector.fc6_bias", fc6_bias)
    projector = collections.OrderedDict()
    for ours, theirs in [("fc0", "0"), ("bn0", "1"), ("fc1", "3"), ("bn1", "4"), ("fc2", "6"), ("bn2", "7")]:
        for k, v in nk.items():
            if k.startswith(ours + "."):
                projector[theirs + k[len(ours):]] = v
        if ours == "fc2":
            projector["6.bias"] = fc6_bias
    official_predictor = collections.OrderedDict()
    for ours, theirs in [("fc0", "0"), ("bn0", "1"), ("fc1", "3")]:
        for k, v in pr.items():
            if k.startswith(ours + "."):
                official_predictor[theirs + k[len(ours):]] = v
    official = collections.OrderedDict(list(prefixed("module.encoder.", bb).items())
                                       + list(prefixed("module.encoder.fc.", projector).items())
                                       + list(prefixed("module.predictor.", official_predictor).items()))
    rules["simsiam_official.pth.tar"] = (
        [["state_dict.module.encoder.fc.6.bias", "projector.fc6_bias"]]
        + [[f"state_dict.module.encoder.fc.{theirs}.", f"neck.{ours}."]
           for ours, theirs in [("fc0", "0"), ("bn0", "1"), ("fc1", "3"), ("bn1", "4"), ("fc2", "6"), ("bn2", "7")]]
        + [[f"state_dict.module.predictor.{theirs}.", f"head.predictor.{ours}."]
           for ours, theirs in [("fc0", "0"), ("bn0", "1"), ("fc1", "3")]]
        + [["state_dict.module.encoder.", "backbone."]] + momentum_rules)
    objects["simsiam_official.pth.tar"] = {"epoch": 100, "arch": "resnet50", "state_dict": official,
                                           "optimizer": optimizer_state(momentum, 0.1)}

    torch.manual_seed(seed + 3)
    base = torch.randn(4, 6)
    grid = torch.randn(3, 5)
    dtypes = collections.OrderedDict()
    dtypes["transposed"] = grid.t()                          # strides (1, 5)
    dtypes["sliced"] = base[1:, ::2]                         # storage offset 6, strides (6, 2)
    dtypes["base"] = base                                    # shares the sliced view's storage
    dtypes["half"] = (torch.randn(2, 3) * 100).half()
    dtypes["half_special"] = torch.tensor([6e-8, -0.0, 65504, float("inf"), 1e-5], dtype=torch.float16)
    dtypes["bfloat16"] = torch.randn(5).bfloat16()
    dtypes["double"] = torch.randn(2, 2, dtype=torch.float64)
    dtypes["int32"] = torch.tensor([[1, -2], [3, 2**24]], dtype=torch.int32)
    dtypes["int64"] = torch.tensor(-123456)
    dtypes["scalar"] = torch.tensor(3.5)
    dtypes["empty"] = torch.zeros(0, 4)
    dtypes["parameter"] = nn.Parameter(torch.randn(3))
    for k, v in dtypes.items():
        expected = v.detach().contiguous()
        expected = expected.to(torch.int64) if not expected.is_floating_point() else expected.to(torch.float32)
        canonical[id(v)] = ("dtypes." + k, expected)
    objects["dtypes.pth"] = {
        "tensors": dtypes,
        "epoch": 3, "lr": 0.05, "eps": 1e-05, "large": 1e16, "big": 2**70, "negative_big": -(2**64), "neg": -7,
        "int64_max": 2**63 - 1, "flag": True, "off": False, "nothing": None, "name": "ε ≈ 1e-5",
        "list": [1, "a", 2.5, [torch.ones(1)]], "tuple": (4, 5), "int_keys": {0: "zero", 10: {"x": 1}},
        "empty_dict": {},
    }
    rules["dtypes.pth"] = [["tensors.", "dtypes."], ["list.3.0", "dtypes.ones"]]
    ones = objects["dtypes.pth"]["list"][3][0]
    canonical[id(ones)] = ("dtypes.ones", ones)
    return objects, canonical, rules


def flatten(obj, canonical, prefix, tensors, values):
    """Dotted names exactly as the Swift PyTorchCheckpoint flattens the loaded object."""
    def join(key):
        return f"{prefix}.{key}" if prefix else str(key)

    if isinstance(obj, dict):
        for k, v in obj.items():
            key = k if isinstance(k, str) else (repr(k) if isinstance(k, float) else str(k))
            flatten(v, canonical, join(key), tensors, values)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, canonical, join(i), tensors, values)
    elif isinstance(obj, torch.Tensor):
        tensors[prefix] = canonical[id(obj)][0]
    elif isinstance(obj, float):
        values[prefix] = repr(obj)
    else:
        values[prefix] = str(obj)


def write_fixtures(out, seed):
    os.makedirs(out, exist_ok=True)
    objects, canonical, rules = make_objects(seed)
    metadata = {"script": SCRIPT, "torch_version": torch.__version__, "seed": str(seed)}
    for name, obj in objects.items():
        protocol = 2
        torch.save(obj, os.path.join(out, name), pickle_protocol=protocol)
        tensors, values = {}, {}
        flatten(obj, canonical, "", tensors, values)
        for key, canonical_name in tensors.items():  # the rules reproduce the identity-based names
            assert apply_rules(rules[name], key) == canonical_name, (name, key, canonical_name)
        metadata["tensors/" + name] = json.dumps(rules[name])
        metadata["values/" + name] = json.dumps(values, sort_keys=True, ensure_ascii=False)
        # Self-check: the weights-only loader (what the Swift reader imitates) reads it back identically.
        loaded = torch.load(os.path.join(out, name), weights_only=True)
        check_tensors, check_values = {}, {}
        flatten_loaded(loaded, "", check_tensors, check_values)
        assert set(check_tensors) == set(tensors) and check_values == values, name
        for key, t in check_tensors.items():
            expected = canonical_value(canonical, tensors[key])
            assert torch.equal(t.contiguous().to(expected.dtype), expected), (name, key)

    torch.save(objects["dtypes.pth"], os.path.join(out, "dtypes_protocol5.pth"), pickle_protocol=5)
    for kind in ("tensors/", "values/"):
        metadata[kind + "dtypes_protocol5.pth"] = metadata[kind + "dtypes.pth"]

    torch.save({"conv1.weight": torch.ones(2, 3)}, os.path.join(out, "legacy.pth"),
               _use_new_zipfile_serialization=False)
    torch.save({"state_dict": {"w": torch.ones(1)}, "x": Hostile(os.system, f"touch {HOSTILE_MARKER}")},
               os.path.join(out, "hostile_system.pth"))
    torch.save({"x": Hostile(eval, f"open('{HOSTILE_MARKER}', 'w')")}, os.path.join(out, "hostile_eval.pth"))

    expected = {}
    for name, value in canonical.values():
        expected[name] = value.detach().contiguous().clone()
    save_file(expected, os.path.join(out, "expected.safetensors"), metadata=metadata)
    write_features(out, seed)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"wrote {len(os.listdir(out))} files, {total} bytes, to {out}")


def write_features(out, seed):
    """features.safetensors: the eval-mode features of the backbone loaded back from out/torchvision.pth."""
    state = torch.load(os.path.join(out, "torchvision.pth"), weights_only=True)
    backbone = build_model(seed)[0]  # the architecture; every value is then replaced by the file's
    backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=True)
    backbone.eval()
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 64, 64, generator=generator)
    tensors = {"input": x}
    with torch.no_grad():
        for i, feature in enumerate(backbone(x), start=1):
            tensors[f"eval.feature{i}"] = feature.contiguous().clone()
    save_file(tensors, os.path.join(out, "features.safetensors"),
              metadata={"script": SCRIPT, "torch_version": torch.__version__, "source": "torchvision.pth"})
    print("features.safetensors: " + ", ".join(f"{k} {list(v.shape)}" for k, v in tensors.items()))


def apply_rules(rules, name):
    """The canonical name of a flattened tensor name: the first rule whose pattern starts the name wins."""
    for pattern, replacement in rules:
        if name.startswith(pattern):
            return replacement + name[len(pattern):]
    raise KeyError(name)


def canonical_value(canonical, name):
    for n, v in canonical.values():
        if n == name:
            return v
    raise KeyError(name)


def flatten_loaded(obj, prefix, tensors, values):
    def join(key):
        return f"{prefix}.{key}" if prefix else str(key)

    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten_loaded(v, join(k), tensors, values)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten_loaded(v, join(i), tensors, values)
    elif isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
    elif isinstance(obj, float):
        values[prefix] = repr(obj)
    else:
        values[prefix] = str(obj)


def verify(directory):
    """torch.load(weights_only=True) every .pth written by the Swift tests; compare with its .safetensors twin."""
    checked = 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".pth"):
            continue
        path = os.path.join(directory, name)
        loaded = torch.load(path, weights_only=True)
        twin = os.path.join(directory, name[:-len(".pth")] + ".safetensors")
        from safetensors import safe_open
        with safe_open(twin, "pt") as f:
            metadata = f.metadata() or {}
        source = load_file(twin)
        if metadata:
            # mmcv's two layouts: {'meta': {...}, 'state_dict': ...} or {'state_dict': ..., key: value, ...}.
            assert "state_dict" in loaded, (name, list(loaded))
            beside = {key: value for key, value in loaded.items() if key != "state_dict"}
            found = beside["meta"] if set(beside) == {"meta"} else beside
            assert found == metadata, (name, found, metadata)
            state = loaded["state_dict"]
        else:
            state = loaded
        assert isinstance(state, collections.OrderedDict), (name, type(state))
        assert set(state) == set(source), (name, sorted(set(state) ^ set(source)))
        for key, tensor in state.items():
            assert tensor.dtype == source[key].dtype and torch.equal(tensor, source[key]), (name, key)
        print(f"ok  {name}: {len(state)} tensors, {len(metadata)} metadata entries, weights_only=True")
        checked += 1
    assert checked > 0, f"no .pth files in {directory}"
    print(f"verified {checked} files written by the Swift writer")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "CheckpointsTests",
                                                  "Fixtures", "pth"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verify", metavar="DIR", help="check .pth files written by the Swift tests instead")
    ap.add_argument("--features-only", action="store_true",
                    help="only rewrite features.safetensors from the torchvision.pth in --out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.verify:
        verify(args.verify)
    elif args.features_only:
        write_features(os.path.normpath(args.out), args.seed)
    else:
        write_fixtures(os.path.normpath(args.out), args.seed)


if __name__ == "__main__":
    main()
