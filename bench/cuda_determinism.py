"""What is and is not bit-deterministic on CUDA: the same training run twice, and the same model's maps twice.

    python bench/cuda_determinism.py [--out cuda_determinism.json]
    python bench/cuda_determinism.py --device cpu --arch resnet18 --images 8     (a smoke run of the script itself)

Needs a CUDA device (run it with the device tool: bench/device_voc_scale.sh shows how). Not a test: the CI
machines have no GPU. On a small synthetic VOC-layout dataset (32 train images, 256 x 192) it trains, twice each
with the workflow's own ``matlabel.train.train`` (bf16 autocast and config.yaml's ``speed:`` flags, as the rules
run on CUDA; ``--speed-flags`` sets others):

- the CAM baseline and D2CAM (ResNet-50 from scratch, 2 epochs of batch 8 = 8 SGD steps), with cuDNN's autotuner
  off (the rules' setting);
- DeepLab-v2 (ResNet-101 from scratch with BatchNorm trained, MSC, 8 iterations of 10 crops of 161 px), the same
  two ways;
- the same under ``torch.use_deterministic_algorithms(True)`` (CUBLAS_WORKSPACE_CONFIG=:4096:8): either it runs and
  the two runs are compared, or the error names the first op without a deterministic CUDA kernel.

and exports the multi-scale maps (4 scales x flip, fp32 and bf16) of one model twice. Printed and written as JSON:
per case, bit-identical or the largest absolute weight / map difference.

``--cases speed`` (beside or instead of the default ``determinism,maps``) compares the paths of the speed flags
(config ``speed:``, matlabel.train.Speed) on the same trainings (CAM, D2CAM, DeepLab-v2): the loop before the flags
(channels_last only), every flag on (compiled forward + loss, fused SGD, channels_last) and, as the yardstick of
training noise, every flag off (the same kernels in another memory layout: a change of float rounding only). A flag
path is within training noise when its weights are no further from the loop before the flags than the yardstick's
times ``NOISE_FACTOR`` and its last loss agrees to ``LOSS_RTOL``; each flag alone is run too, to name the culprit.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # must precede CUDA's initialisation

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matlabel.cam import multiscale_cams  # noqa: E402
from matlabel.config import paper_config  # noqa: E402
from matlabel.datasets.layout import VOC_CLASSES, load_manifest, write_manifest  # noqa: E402
from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset  # noqa: E402
from matlabel.datasets.synthetic import SyntheticConfig, generate  # noqa: E402
from matlabel.io import read_image  # noqa: E402
from matlabel.models import build  # noqa: E402
from matlabel.train import SPEED_FLAGS, Speed, TrainConfig, train  # noqa: E402

BACKBONE = dict(arch="resnet50", weights="none", output_stride=16, freeze_bn=False, train_from="stem")
ARGS = argparse.Namespace(device="cuda")
BEFORE = Speed(channels_last=True)  # the loop on CUDA before the speed flags
SPEED_PATHS = {"before (channels_last)": BEFORE, "off (noise yardstick)": Speed(), "on": Speed(True, True, True),
               **{f"{f} only": Speed(**{f: True}) for f in ("compile", "fused_optimizer")}}
NOISE_FACTOR, LOSS_RTOL = 10.0, 0.02


def compare_states(a: dict, b: dict) -> dict:
    floats = [k for k in a if a[k].is_floating_point()]
    if any(not torch.isfinite(a[k]).all() for k in floats):
        return {"error": "weights not finite after training (diverged); nothing to compare"}
    diffs = {k: (a[k].double() - b[k].double()).abs().max().item() for k in floats}
    worst = max(diffs, key=diffs.get)
    return {"bit_identical": all(torch.equal(a[k], b[k]) for k in a), "max_abs_diff": diffs[worst],
            "worst_tensor": worst, "tensors_differing": sum(v > 0 for v in diffs.values()), "tensors": len(diffs)}


def trained_twice(train_once, deterministic: bool) -> dict:
    """Run ``train_once(run) -> checkpoint path`` for runs 0 and 1 (autotuner off, deterministic algorithms as
    asked) and compare the two trained state dicts, or name the op that has no deterministic CUDA kernel."""
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(deterministic)
    try:
        states = [torch.load(train_once(run), weights_only=False)["model"] for run in range(2)]
    except RuntimeError as err:  # an op without a deterministic CUDA kernel
        return {"error": str(err).splitlines()[0][:300]}
    finally:
        torch.use_deterministic_algorithms(False)
    return compare_states(*states)


def classifier_once(method: str, manifest, out: Path, speed: Speed | None = None) -> Path:
    """The CAM baseline or D2CAM trained with the workflow's loop (2 epochs of batch 8); ``speed``: the flags,
    default the rules' (auto)."""
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.01, head_lr_mult=10, momentum=0.9,
                      weight_decay=1e-4, poly_power=0.9, seed=0)
    model, loss_fn = build(method, 20, BACKBONE, seed=0, loss=paper_config()[method].get("loss"))
    data = VOCLayoutDataset(manifest, "train", transform=ClassifierAugment((160, 256), 160, True, seed=0))
    train(model, data, cfg, torch.device(ARGS.device), out, loss_fn, speed=speed)
    return out


def deeplab_once(manifest, out: Path, arch: str, speed: Speed | None = None) -> Path:
    """DeepLab-v2 MSC trained with the workflow's loop (8 iterations of 10 crops of 161 px), BN trained."""
    from matlabel import deeplab as dl
    from matlabel.deeplab.data import SegDataset

    cfg = dataclasses.replace(dl.SegConfig.from_mapping(paper_config()["deeplab"]["train"]), iterations=8,
                              batch_size=10, accumulate=1, crop=161, checkpoint_every=1000)
    # BN trained here: a from-scratch ResNet-101 with frozen (identity) BN overflows to NaN in a few steps;
    # the recipe's frozen BN needs ImageNet weights, which the GPU machines here cannot download
    model = dl.DeepLabV2(21, arch=arch, weights="none", freeze_bn=False, seed=0)
    data = SegDataset(manifest, "train", None, crop=cfg.crop, seed=0)
    dl.train_deeplab(model, data, cfg, torch.device(ARGS.device), out, speed=speed)
    return out


def classifier_twice(method: str, manifest, tmp: Path, deterministic: bool) -> dict:
    return trained_twice(lambda run: classifier_once(method, manifest, tmp / f"{method}-{deterministic}-{run}.pt",
                                                     ARGS.speed), deterministic)


def deeplab_twice(manifest, tmp: Path, deterministic: bool, arch: str) -> dict:
    return trained_twice(lambda run: deeplab_once(manifest, tmp / f"deeplab-{deterministic}-{run}.pt", arch,
                                                  ARGS.speed), deterministic)


def speed_paths(train_once) -> dict:
    """``train_once(name, speed) -> checkpoint`` for every path of SPEED_PATHS (autotuner off); each path's weights
    and last loss against the loop before the flags, and whether it is within training noise (module docstring)."""
    torch.backends.cudnn.benchmark = False
    ckpts = {}
    for name, speed in SPEED_PATHS.items():
        try:
            ckpts[name] = torch.load(train_once(name.split()[0], speed), weights_only=False)
        except Exception as err:  # e.g. a compile error: say so for this path
            ckpts[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
    ref = ckpts["before (channels_last)"]
    if "error" in ref:
        return {"error": f"the loop before the flags failed: {ref['error']}"}
    out = {"flags": {name: {f: getattr(s, f) for f in SPEED_FLAGS} for name, s in SPEED_PATHS.items()}}
    for name, ckpt in ckpts.items():
        if name == "before (channels_last)":
            continue
        if "error" in ckpt:
            out[name] = ckpt
            continue
        entry = compare_states(ref["model"], ckpt["model"])
        a, b = ref["history"][-1]["total"], ckpt["history"][-1]["total"]
        entry["last_loss"], entry["last_loss_before"] = b, a
        entry["last_loss_rel_diff"] = abs(a - b) / max(abs(a), 1e-12)
        out[name] = entry
    noise = out.get("off (noise yardstick)", {}).get("max_abs_diff")
    for name, entry in out.items():
        if name in ("flags", "off (noise yardstick)") or "max_abs_diff" not in entry or noise is None:
            continue
        entry["over_noise"] = entry["max_abs_diff"] / noise if noise > 0 else None
        entry["within_noise"] = (entry["max_abs_diff"] <= NOISE_FACTOR * noise and
                                 entry["last_loss_rel_diff"] <= LOSS_RTOL)
    return out


def maps_twice(manifest, amp: bool) -> dict:
    model, _ = build("cam", 20, BACKBONE, seed=3)
    model.eval().to(ARGS.device)
    labels = manifest.labels()
    ids = [i for i in manifest.split_ids("train") if labels[i]][:6]

    def maps():
        return [multiscale_cams(model, read_image(manifest.image_path(i)), labels[i], (1.0, 0.5, 1.5, 2.0), True,
                                ARGS.device, amp=amp) for i in ids]

    a, b = maps(), maps()
    return {"bit_identical": all(np.array_equal(x, y) for x, y in zip(a, b)),
            "max_abs_diff": float(max(np.abs(x - y).max() for x, y in zip(a, b))), "images": len(ids)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="cuda_determinism.json")
    p.add_argument("--device", default="cuda")
    p.add_argument("--arch", default=BACKBONE["arch"])
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--deeplab-arch", default="resnet101")
    p.add_argument("--cases", default="determinism,maps",
                   help="comma-separated: determinism (each training twice), maps (one model's maps twice), speed "
                        "(the speed flags' paths against the loop before them)")
    p.add_argument("--speed-flags", default="rules",
                   help="the determinism case's flags: rules (config.yaml's speed:, as the rules run it), auto (every "
                        "flag auto: all on for CUDA), off, on, or flag names joined by + (channels_last: the loop "
                        "before the flags)")
    args = p.parse_args(argv)
    rules = yaml.safe_load((ROOT / "config.yaml").read_text()).get("speed")
    ARGS.speed = Speed.parse(args.speed_flags, torch.device(args.device), rules)
    cases = set(args.cases.split(","))
    if not cases <= {"determinism", "maps", "speed"}:
        sys.exit(f"--cases: unknown {sorted(cases - {'determinism', 'maps', 'speed'})}")
    ARGS.device = args.device
    BACKBONE["arch"] = args.arch
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("cuda_determinism.py needs a CUDA device (or --device cpu for a smoke run)")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    results = {"device": name, "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
               "arch": args.arch, "train_images": args.images,
               "speed_flags": {f: getattr(ARGS.speed, f) for f in SPEED_FLAGS}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        splits = generate(tmp / "VOC2012", SyntheticConfig(n_train=args.images, n_val=4, width=256, height=192),
                          progress=False)
        write_manifest(tmp / "dataset.json", "synthetic", tmp / "VOC2012", VOC_CLASSES, "SegmentationClass", splits)
        manifest = load_manifest(tmp / "dataset.json")
        for method in ("cam", "d2cam") if "determinism" in cases else ():
            for deterministic in (False, True):
                key = f"train {method}, deterministic algorithms {'on' if deterministic else 'off'}"
                results[key] = classifier_twice(method, manifest, tmp, deterministic)
                print(f"{key:50s} {json.dumps(results[key])}", flush=True)
        for deterministic in (False, True) if "determinism" in cases else ():
            key = f"train DeepLab-v2 MSC, deterministic algorithms {'on' if deterministic else 'off'}"
            results[key] = deeplab_twice(manifest, tmp, deterministic, args.deeplab_arch)
            print(f"{key:50s} {json.dumps(results[key])}", flush=True)
        for amp in ((False, True) if args.device == "cuda" else (False,)) if "maps" in cases else ():
            key = f"maps of one model, {'bf16' if amp else 'fp32'}"
            results[key] = maps_twice(manifest, amp)
            print(f"{key:50s} {json.dumps(results[key])}", flush=True)
        if "speed" in cases:
            for method in ("cam", "d2cam"):
                key = f"speed flags, train {method}"
                results[key] = speed_paths(lambda name, speed: classifier_once(
                    method, manifest, tmp / f"{method}-speed-{name}.pt", speed))
                print(f"{key:50s} {json.dumps(results[key])}", flush=True)
            key = "speed flags, train DeepLab-v2 MSC"
            results[key] = speed_paths(lambda name, speed: deeplab_once(
                manifest, tmp / f"deeplab-speed-{name}.pt", args.deeplab_arch, speed))
            print(f"{key:50s} {json.dumps(results[key])}", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
