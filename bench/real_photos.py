"""Table 1 (and with --table2, Table 2) on a folder of real photos, on CPU, with what it takes to read why.

    .venv/bin/python bench/real_photos.py ROOT [--preset config/folder-example.yaml ...] [--table2] [--cores 2]
                                              [--name NAME] [--stats-images 120] [--workdir DIR] [--resume]

ROOT is a VOC-layout folder (``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/{train,val}.txt``,
``classes.txt`` or ``--classes voc``; docs/folder-dataset.md). The workflow runs as a user runs it,
``snakemake results/table1.csv --configfile <preset> <root overlay>``, in a fresh working directory (the checkout's
``results/`` is not touched), and ``bench/results/real_photos_<name>/`` receives:

- ``table1.md`` / ``table1.csv`` (``table2.*`` with --table2): the run's tables, as the workflow wrote them;
- ``sweeps.csv``: each map method's seed mIoU at every background threshold of its sweep (the configured one marked;
  the sweep is an oracle reported beside the configured threshold, never a way to pick it);
- ``map_stats.csv``: per map method, over the first ``--stats-images`` images of the evaluated split and each class
  present in an image: the map's mean on its own object and elsewhere, the shares at or above eps_fg / at or below
  eps_bg (Eq. 9's foreground / background), and the share of those pixels that lie on / off the object
  (``matlabel.evaluate.map_statistics``);
- ``deeplab_iou.csv`` (with --table2): each row's DeepLab, its IoU per class on the evaluated split;
- ``curves.csv`` / ``curves.png``: every trained model's loss terms per epoch (or iteration) from its ``model.pt``;
- ``summary.json``: wall time, cores, CPU, commit, preset, and the files above in one place.

Reference in the same process: the folder check alone (rule ``prepare_folder``), so the wall-time ratio says how
much of the run is the pipeline itself.
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from folder_example import WORKFLOW_FILES, run  # noqa: E402  (bench/ is not a package)

DATASET = "folder"


def merged_config(workdir: Path, configfiles: list[str]) -> dict:
    """config.yaml with the config files layered on top, as Snakemake's ``--configfile`` does."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    for name in configfiles:
        update_config(cfg, yaml.safe_load((workdir / name).read_text()) or {})
    return cfg


def sweeps(results: Path) -> list[dict]:
    rows = []
    for ev in sorted((results / "maps").glob("*/eval.json")):
        data = json.loads(ev.read_text())
        for t, miou in data["sweep"].items():
            rows.append({"method": ev.parent.name, "bg_threshold": float(t), "miou": miou,
                         "configured": float(t) == float(data["bg_threshold"])})
    return rows


def deeplab_iou(results: Path) -> list[dict]:
    """Each Table 2 row's DeepLab on the evaluated split: its IoU per class (``rows/<row>/deeplab/eval.json``), so a
    row's mIoU can be read (e.g. a network that predicts objects everywhere: a low background IoU)."""
    rows = []
    for ev in sorted((results / "rows").glob("*/deeplab/eval.json")):
        data = json.loads(ev.read_text())
        rows += [{"row": ev.parent.parent.name, "class": c, "iou": iou} for c, iou in data["iou"].items()]
    return rows


def map_stats(results: Path, manifest_path: Path, split: str, n_images: int, eps_fg: float,
              eps_bg: float) -> list[dict]:
    from matlabel.datasets.layout import load_manifest
    from matlabel.evaluate import map_statistics, summarise_map_statistics
    from matlabel.formats import MAPS_SUFFIX, read_maps
    from matlabel.io import read_label_png
    from matlabel.shards import find_in_shards

    manifest = load_manifest(manifest_path)
    ids = manifest.split_ids(split)[:n_images]
    out = []
    for method_dir in sorted(p for p in (results / "maps").iterdir() if list(p.glob("shard*"))):
        shards = sorted(method_dir.glob("shard*"))
        rows = []
        for image_id in ids:
            maps, classes = read_maps(find_in_shards(shards, image_id, MAPS_SUFFIX))
            gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
            rows += map_statistics(maps, classes, gt, eps_fg, eps_bg)
        out.append({"method": method_dir.name, "images": len(ids), **summarise_map_statistics(rows)})
    return out


def curves(results: Path) -> list[dict]:
    from matlabel.checkpoints import read_checkpoint

    rows = []
    for model in sorted(results.rglob("model.pt")):
        name = str(model.parent.relative_to(results))
        for entry in read_checkpoint(model)["history"]:
            progress = "epoch" if "epoch" in entry else "iteration"
            for term, value in entry.items():
                if term not in (progress, "lr"):
                    rows.append({"model": name, progress: entry[progress], "step_unit": progress, "term": term,
                                 "value": value})
    return rows


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(len(models), 1, figsize=(7, 2.6 * max(1, len(models))), squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        mine = [r for r in rows if r["model"] == model]
        unit = mine[0]["step_unit"]
        for term in sorted({r["term"] for r in mine}):
            pts = [(r[unit], r["value"]) for r in mine if r["term"] == term]
            ax.plot(*zip(*pts), marker=".", label=term)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel(unit)
        ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def steps_done(workdir: Path) -> int | None:
    """The job count of the last Snakemake run in ``workdir`` (its log's "N of N steps (100%) done")."""
    import re

    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    found = re.findall(r"(\d+) of \1 steps \(100%\) done", logs[-1].read_text()) if logs else []
    return int(found[-1]) if found else None


def job_seconds(workdir: Path) -> dict:
    """Per rule, the wall seconds of its jobs (Snakemake's ``benchmarks/`` files, column ``s``), and their sum: against
    the run's wall time, how many jobs ran side by side on average."""
    per_rule: dict[str, float] = {}
    for tsv in sorted((workdir / "benchmarks" / DATASET).rglob("*.tsv")):
        rel = tsv.relative_to(workdir / "benchmarks" / DATASET)
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        with open(tsv) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        per_rule[rule] = per_rule.get(rule, 0.0) + sum(float(r["s"]) for r in rows)
    return {rule: round(s, 1) for rule, s in sorted(per_rule.items(), key=lambda kv: -kv[1])}


def write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def short_commit() -> str:
    """The checkout's commit (``git rev-parse --short HEAD``), recorded beside a measurement."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


def machine() -> dict:
    import os

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores_visible": os.cpu_count(), "python": platform.python_version()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="a VOC-layout folder of photos with masks")
    ap.add_argument("--preset", action="append", default=None,
                    help="config file layered on config.yaml (repeatable; default config/folder-example.yaml)")
    ap.add_argument("--classes", default=None, help="data.folder.classes (e.g. voc); default: the preset's")
    ap.add_argument("--table2", action="store_true", help="also Table 2: DeepLab on the preset's eval_seg split")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--stats-images", type=int, default=120, help="images of the evaluated split for map_stats")
    ap.add_argument("--name", default=None,
                    help="results under bench/results/real_photos_<name> (default: ROOT's name)")
    ap.add_argument("--workdir", type=Path, default=Path("bench-real-photos"), help="fresh working directory "
                    "(removed first, unless --resume)")
    ap.add_argument("--resume", action="store_true", help="keep --workdir: an interrupted run goes on where it "
                    "stopped (Snakemake reruns what is missing; the wall time is then that of the rest only)")
    args = ap.parse_args(argv)

    root = args.root.resolve()
    if not (root / "JPEGImages").is_dir():
        sys.exit(f"{root}: no JPEGImages/ (a VOC-layout folder is needed; docs/folder-dataset.md)")
    out = ROOT / "bench" / "results" / f"real_photos_{args.name or root.name}"
    out.mkdir(parents=True, exist_ok=True)
    wd = args.workdir.resolve()
    if not args.resume:
        shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        if not (wd / name).is_symlink():
            (wd / name).symlink_to(ROOT / name)
    overlay = {"data": {"folder": {"root": str(root)}}}
    if args.classes:
        overlay["data"]["folder"]["classes"] = args.classes
    (wd / "root.yaml").write_text(yaml.safe_dump(overlay))
    presets = args.preset or ["config/folder-example.yaml"]
    configs = [*presets, "root.yaml"]
    cfg = merged_config(wd, configs)

    check = run(wd, [f"resources/{DATASET}/dataset.json"], configs, args.cores)
    targets = ["results/table1.csv"] + (["results/table2.csv"] if args.table2 else [])
    start = time.perf_counter()
    total = run(wd, targets, configs, args.cores)
    results = wd / "results" / DATASET

    for t in targets:
        for suffix in (".csv", ".md"):
            shutil.copy2(wd / t.replace(".csv", suffix), out / Path(t).name.replace(".csv", suffix))
    write_csv(out / "sweeps.csv", sweeps(results))
    if args.table2:
        write_csv(out / "deeplab_iou.csv", deeplab_iou(results))
    stats = map_stats(results, wd / "resources" / DATASET / "dataset.json", cfg["splits"]["eval_seed"],
                      args.stats_images, cfg["trimap"]["eps_fg"], cfg["trimap"]["eps_bg"])
    write_csv(out / "map_stats.csv", stats)
    curve_rows = curves(results)
    write_csv(out / "curves.csv", curve_rows)
    plot_curves(curve_rows, out / "curves.png")
    seconds = job_seconds(wd)  # every job of the working directory (with --resume, the earlier runs' too)
    busy = sum(seconds.values())
    commit = short_commit()
    summary = {"root_name": root.name, "presets": presets, "resumed": args.resume, "targets": targets,
               "cores": args.cores,
               "check_s": round(check, 1), "wall_s": round(total, 1), "wall_min": round(total / 60, 1),
               "jobs": steps_done(wd),
               "finished": time.strftime("%Y-%m-%d %H:%M"), "commit": commit, **machine(),
               "job_s": round(busy, 1), "jobs_side_by_side": round(busy / total, 2) if total else None,
               "job_s_by_rule": seconds, "map_stats": stats}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{' + '.join(targets)} on {root.name} in {total / 60:.1f} min on {args.cores} cores "
          f"({total / check:.0f}x the folder check); files in {out.relative_to(ROOT)}/")
    print((out / "table1.md").read_text())
    for s in stats:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()})


if __name__ == "__main__":
    main()
