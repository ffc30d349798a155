"""Why a map method does (not) localise on real photos: train it at several budgets and readings, score its maps.

    .venv/bin/python bench/classifier_budget.py WORKDIR --method d2cam --steps 170 500 [--set d2cam.lr=0.01 ...]
                                                [--from cam|imagenet] [--images 248] [--name NAME]

WORKDIR is a working directory of ``bench/real_photos.py`` whose CAM is trained (``results/folder/maps/cam/
model.pt``): its prepared folder (``resources/folder/dataset.json``) and its config (config.yaml, ``--preset`` as
it ran, ``root.yaml``) are reused, so every run here differs from the workflow's only in what ``--set`` and
``--steps`` change. For each budget (optimiser steps, rounded to whole epochs as the rules train) the method is
trained with the library's ``train`` (the rules' code path: ``matlabel.models.build``, ``load_init``,
``TrainConfig``), its maps exported as the rule does (``multiscale_cams``, the config's scales, flip and
border_pad) on the first ``--images`` images of the evaluated split, and scored:

- ``miou`` at the method's configured background threshold and ``best_miou`` / ``best_t`` over the sweep
  (an oracle, reported beside it, never used to pick it);
- the map statistics of ``bench/real_photos.py`` (mean on the object / elsewhere, Eq. 9's shares and precisions);
- ``border_response`` on object-free images (the maps where there is nothing to find);
- the last epoch's loss terms; the whole per-epoch history goes to ``<name>_history.csv``.

Rows are appended to ``bench/results/classifier_budget_<name>.csv`` (one per run; ``--set`` values and the
wall time of training and export in each), so runs from several calls form one table.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_photos import merged_config, short_commit, write_csv  # noqa: E402  (bench/ is not a package)

from matlabel.cam import border_response, multiscale_cams  # noqa: E402
from matlabel.checkpoints import read_checkpoint  # noqa: E402
from matlabel.datasets.layout import load_manifest  # noqa: E402
from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset  # noqa: E402
from matlabel.evaluate import (add_at_thresholds, map_statistics, summarise_map_statistics,  # noqa: E402
                               threshold_meters)
from matlabel.io import read_image, read_label_png  # noqa: E402
from matlabel.methods import config_section  # noqa: E402
from matlabel.models import build, load_init, trunk_for_training  # noqa: E402
from matlabel.config import method_thresholds  # noqa: E402
from matlabel.train import TrainConfig, train  # noqa: E402

DATASET = "folder"


def set_key(cfg: dict, assignment: str) -> None:
    """``a.b.c=value`` (value read as YAML) into the nested config."""
    key, _, value = assignment.partition("=")
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def score(model, manifest, ids, cfg, method: str, device) -> dict:
    """Export ``ids`` as the export rule does and score them (seed at the configured threshold, sweep, stats)."""
    ex = cfg["export"]
    section = config_section(method)
    t_seed = method_thresholds(cfg, section)["seed"]
    meters = threshold_meters(manifest.num_classes, t_seed, cfg["evaluate"]["bg_threshold_sweep"])
    labels = manifest.labels()
    rows = []
    model.eval()
    for image_id in ids:
        classes = labels[image_id]
        cams = multiscale_cams(model, read_image(manifest.image_path(image_id)), classes, ex["scales"], ex["flip"],
                               device, border_pad=ex["border_pad"])
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        add_at_thresholds(meters, cams, classes, gt)
        rows += map_statistics(cams, classes, gt, cfg["trimap"]["eps_fg"], cfg["trimap"]["eps_bg"])
    best = max(meters, key=lambda t: meters[t].miou())
    stats = summarise_map_statistics(rows)
    out = {"miou": round(100 * meters[t_seed].miou(), 2), "t": t_seed, "best_miou": round(100 * meters[best].miou(), 2),
           "best_t": best, **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}}
    blank = border_response(model, (160, 160), device)
    out["blank_max"] = max(v["raw_interior"] for v in blank.values())
    return out


def run_one(workdir: Path, cfg: dict, method: str, steps: int, start: str, images: int, device, hist_rows: list,
            label: str) -> dict:
    manifest = load_manifest(workdir / "resources" / DATASET / "dataset.json")
    section = config_section(method)
    p = dict(cfg[section])
    aug = cfg["augment"]
    dataset = VOCLayoutDataset(manifest, cfg["splits"]["train_classifier"],
                               transform=ClassifierAugment(aug["resize_long"], aug["crop"], aug["hflip"],
                                                           seed=cfg["seed"]), unlabeled="skip")
    per_epoch = math.ceil(len(dataset) / p["batch_size"])
    epochs = max(1, round(steps / per_epoch))
    loss = p.pop("loss", None)
    p.pop("init_from", None)
    backbone = trunk_for_training(cfg["backbone"], p.pop("train_n1", None))
    model, loss_fn = build(method, manifest.num_classes - 1, backbone, seed=cfg["seed"], loss=loss)
    if start == "cam":
        load_init(model, read_checkpoint(workdir / "results" / DATASET / "maps" / "cam" / "model.pt"))
    p["epochs"] = epochs
    tc = TrainConfig(**p, seed=cfg["seed"], num_workers=1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        history = train(model, dataset, tc, device, Path(tmp) / "model.pt", loss_fn=loss_fn,
                        speed={"compile": False, "fused_optimizer": False, "channels_last": False})
    t_train = time.perf_counter() - t0
    for h in history:
        hist_rows.append({"run": label, **h})
    ids = manifest.split_ids(cfg["splits"]["eval_seed"])[:images]
    t0 = time.perf_counter()
    res = score(model, manifest, ids, cfg, method, device)
    t_export = time.perf_counter() - t0
    last = {f"loss_{k}": round(float(v), 4) for k, v in history[-1].items() if k not in ("epoch", "lr")}
    return {"run": label, "method": method, "from": start, "steps": epochs * per_epoch, "epochs": epochs,
            **res, **last, "train_s": round(t_train, 1), "export_s": round(t_export, 1), "images": len(ids)}


def append_csv(path: Path, rows: list[dict], replace_run: str | None = None) -> None:
    """``rows`` after those already in ``path``, under the union of their columns (``real_photos.write_csv``);
    with ``replace_run``, the old rows of that ``run`` are dropped first (a rerun replaces its rows)."""
    old = list(csv.DictReader(path.open())) if path.exists() else []
    write_csv(path, [r for r in old if replace_run is None or r.get("run") != replace_run] + rows)


def record_measurement(name: str, run: str, fields: dict) -> None:
    """One measurement of a ``--save`` bench as the row ``run`` of ``bench/results/<name>.csv`` (replacing an earlier
    row of that run), with the checkout's commit and the date."""
    append_csv(ROOT / "bench" / "results" / f"{name}.csv",
               [{"run": run, **fields, "commit": short_commit(), "date": datetime.date.today().isoformat()}],
               replace_run=run)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path, help="a bench/real_photos.py working directory with a trained CAM")
    ap.add_argument("--method", default="d2cam", help="d2cam | recam | cam | a Table 4 variant")
    ap.add_argument("--steps", type=int, nargs="+", default=[170], help="optimiser-step budgets (whole epochs)")
    ap.add_argument("--from", dest="start", choices=("cam", "imagenet"), default="cam",
                    help="start from the workdir's trained CAM or from ImageNet")
    ap.add_argument("--preset", action="append", default=None,
                    help="the preset(s) the workdir ran with (default config/folder-example.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (YAML value)")
    ap.add_argument("--split", default=None, help="experiment: D2CAM's N1/N2 split stage (default: the code's)")
    ap.add_argument("--fill", choices=("zero", "mean"), default="zero", help="experiment: masked-out cells of F in "
                    "Eq. 3-4, 0 (the paper's F ⊗ M) or F's per-channel mean (bench/d2_landscape.py --fill)")
    ap.add_argument("--images", type=int, default=248, help="images of the evaluated split to export and score")
    ap.add_argument("--name", default="photos")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.fill == "mean":
        import functools

        import matlabel.d2cam as d2
        from d2_landscape import mean_filled_logits

        original = d2.D2CAMNet.decoupled_logits
        d2.D2CAMNet.decoupled_logits = lambda self, *a: mean_filled_logits(functools.partial(original, self), *a)
        args.set.append("_fill=mean")
    if args.split:
        import matlabel.d2cam as d2
        from matlabel.backbone import STAGES
        d2.SPLIT = args.split
        d2.N2_STAGES = STAGES[STAGES.index(args.split) + 1:]
        d2.D2CAMNet.map_stride = {"layer2": 8, "layer3": 16}[args.split]
        args.set.append(f"_split={args.split}")
    cfg = merged_config(args.workdir, [*(args.preset or ["config/folder-example.yaml"]), "root.yaml"])
    for s in args.set:
        set_key(cfg, s)
    device = torch.device("cpu")
    out = ROOT / "bench" / "results" / f"classifier_budget_{args.name}.csv"
    for steps in args.steps:
        hist: list[dict] = []
        label = f"{args.method}/{args.start}/{steps}" + ("" if not args.set else "/" + ",".join(args.set))
        row = run_one(args.workdir, cfg, args.method, steps, args.start, args.images, device, hist, label)
        row["set"] = " ".join(args.set)
        print(json.dumps(row), flush=True)
        append_csv(out, [row])
        append_csv(out.with_name(out.stem + "_history.csv"), hist)


if __name__ == "__main__":
    main()
