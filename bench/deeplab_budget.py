"""Does DeepLab-v2 learn from a row's pseudo-labels within a CPU budget? Train it as the rule does, with readings.

    .venv/bin/python bench/deeplab_budget.py WORKDIR --row matlabel --steps 150 [--set deeplab.train.msc_scales=[]]
                                             [--name NAME]

WORKDIR is a working directory of ``bench/real_photos.py`` (or of the demo, e.g. ``bench/demo_readings.py``'s, with
``--preset config/demo.yaml``) whose row ``--row`` has its labels at ``deeplab.labels_stage``
(``results/<dataset>/rows/<row>/<stage>/shard*``; ``--row gt``: the ground-truth masks of the same images): its
prepared dataset and its config (config.yaml, the preset it ran with, ``root.yaml`` where there is one) are reused,
so a run here differs from the workflow's
``train_deeplab`` only in ``--steps`` (the iterations, poly decay over them) and what ``--set`` changes. The model, the
dataset and the loop are the rule's (``DeepLabV2``, ``SegDataset``, ``train_deeplab``); the trained model is scored as
``evaluate_deeplab`` scores it (the config's test scales, flip and DenseCRF) on the ``splits.eval_seg`` images.

The question it answers is the training's, not the masks': the loss per MSC output (the loss sum over the outputs
divided by their number; chance is ln K) averaged over the first and the last 10 iterations says whether the network
fits its labels in the budget at all. The val mIoU is reported beside it.

One row per run is appended (a rerun of the same run replaces its rows) to ``bench/results/deeplab_budget_<name>.csv``;
every iteration's loss to ``deeplab_budget_<name>_history.csv``.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from classifier_budget import append_csv, set_key  # noqa: E402  (bench/ is not a package)
from real_photos import merged_config  # noqa: E402

from matlabel.datasets.layout import load_manifest  # noqa: E402
from matlabel.deeplab import DeepLabV2, SegConfig, train_deeplab  # noqa: E402
from matlabel.deeplab.data import SegDataset  # noqa: E402
from matlabel.deeplab.infer import DEEPLAB_CRF, evaluate_segmentation  # noqa: E402


GROUND_TRUTH = "gt"


def per_output(history: list[dict]) -> list[float]:
    """Each iteration's loss per MSC output: the total over the outputs (x1, the extra scales, max) / their number."""
    return [h["total"] / sum(1 for k in h if k.startswith("x") or k == "max") for h in history]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--row", default="matlabel", help=f"the Table 2 row whose labels it trains on; {GROUND_TRUTH!r}: "
                    "the ground-truth masks of the same images")
    ap.add_argument("--steps", type=int, default=150, help="iterations (the poly decay runs over them)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (YAML value)")
    ap.add_argument("--preset", action="append", default=None, help="as the workdir ran (default: "
                    "config/folder-example.yaml, as bench/real_photos.py; the demo's: config/demo.yaml)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="photos")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root_overlay = ["root.yaml"] if (args.workdir / "root.yaml").exists() else []  # a real-photo folder's root
    cfg = merged_config(args.workdir, [*(args.preset or ["config/folder-example.yaml"]), *root_overlay])
    for assignment in args.set:
        set_key(cfg, assignment)
    dl = cfg["deeplab"]
    dataset_name = cfg["dataset"]
    manifest = load_manifest(args.workdir / "resources" / dataset_name / "dataset.json")
    seg = SegConfig.from_mapping({**dl["train"], "iterations": args.steps, "checkpoint_every": args.steps + 1,
                                  "seed": cfg.get("seed", 0)})
    model = DeepLabV2(manifest.num_classes, seed=seg.seed, **dl["model"])
    if args.row == GROUND_TRUTH:  # the masks themselves: how far the budget takes DeepLab with perfect labels
        stage, shards = "masks", None
    else:
        stage = dl["labels_stage"]
        shards = sorted((args.workdir / "results" / dataset_name / "rows" / args.row / stage).glob("shard*"))
    dataset = SegDataset(manifest, cfg["splits"]["export"], shards, crop=seg.crop, scales=seg.scales, hflip=seg.hflip,
                         seed=seg.seed, pad_rgb=model.mean_rgb)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        history = train_deeplab(model, dataset, seg, torch.device("cpu"), Path(tmp) / "model.pt")
    train_s = time.perf_counter() - start
    test = dl["test"]
    ids = manifest.split_ids(cfg["splits"]["eval_seg"])
    start = time.perf_counter()
    scores = evaluate_segmentation(model, manifest, ids, "cpu", scales=test["scales"], flip=test["flip"],
                                   crf_params=DEEPLAB_CRF if test["crf"] else None, workers=args.threads)
    eval_s = time.perf_counter() - start
    losses = per_output(history)
    run = "/".join([args.row, stage, str(args.steps), *args.set])
    row = {"run": run, "row": args.row, "labels": stage, "steps": args.steps, "set": ",".join(args.set),
           "batch": seg.batch_size * seg.accumulate, "msc_scales": " ".join(f"{s:g}" for s in seg.msc_scales),
           "outputs": len(seg.msc_scales) + 2, "chance": round(math.log(manifest.num_classes), 3),
           "loss_first10": round(float(np.mean(losses[:10])), 3), "loss_last10": round(float(np.mean(losses[-10:])), 3),
           "val_miou": scores["miou"], "val_images": len(ids), "train_s": round(train_s, 1), "eval_s": round(eval_s, 1),
           "s_per_step": round(train_s / args.steps, 2)}
    out = ROOT / "bench" / "results" / f"deeplab_budget_{args.name}.csv"
    append_csv(out, [row], replace_run=run)
    append_csv(out.with_name(out.stem + "_history.csv"),
               [{"run": run, "iteration": h["iteration"], "loss_per_output": round(v, 4)}
                for h, v in zip(history, losses)], replace_run=run)
    print(row)


if __name__ == "__main__":
    main()
