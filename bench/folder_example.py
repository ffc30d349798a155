"""Wall time of Table 1 with config/folder-example.yaml on a folder of a few hundred ~500x375 photos, on CPU.

    .venv/bin/python bench/folder_example.py [--n-train 200] [--n-val 50] [--cores 2] [--workdir DIR]

No photo collection can be downloaded here, so the folder is the synthetic dataset drawn at VOC's 500 x 375 and
written the way a user's folder is (``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/{train,val}.txt``;
no ``cls_labels``: image-level labels come from the masks; ``classes: voc``). The workflow runs as a user runs it,
``snakemake results/table1.csv --configfile config/folder-example.yaml root.yaml`` (``root.yaml`` names the folder
and ``classes: voc``), in a fresh working directory (the checkout's ``results/`` is not touched), and the script
prints the wall time, Table 1 and the per-rule runtimes of that run. Reference in the same process: the wall time
of the folder check and copy alone (rule ``prepare_folder``), so the ratio says how much of the run is the pipeline
itself.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKFLOW_FILES = ["Snakefile", "config.yaml", "config", "rules", "scripts", "schemas", "envs", "report", "matlabel"]


def make_photos(root: Path, n_train: int, n_val: int) -> Path:
    """The synthetic dataset at 500 x 375 in a user's VOC-layout folder (labels from the masks)."""
    from matlabel.datasets.synthetic import SyntheticConfig, generate

    generate(root, SyntheticConfig(n_train=n_train, n_val=n_val))
    (root / "cls_labels.json").unlink()  # a user's folder has none: the folder dataset reads the masks
    (root / "ImageSets" / "Segmentation" / "train_aug.txt").unlink()
    return root


def run(workdir: Path, targets: list[str], configfiles: list[str], cores: int) -> float:
    cmd = [sys.executable, "-m", "snakemake", *targets, "--cores", str(cores), "--configfile", *configfiles]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAKEMAKE_PROFILE", "SLURM_"))}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}) in {workdir}:\n{proc.stderr[-4000:]}")
    return wall


def main(argv=None) -> None:
    from matlabel.runtimes import benchmark_summary
    from matlabel.tables import to_markdown

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--n-val", type=int, default=50)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("bench-folder-example"),
                    help="fresh working directory (removed first)")
    args = ap.parse_args(argv)

    wd = args.workdir.resolve()
    shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        (wd / name).symlink_to(ROOT / name)
    photos = make_photos(wd / "photos", args.n_train, args.n_val)
    (wd / "root.yaml").write_text(yaml.safe_dump({"data": {"folder": {"root": str(photos), "classes": "voc"}}}))
    configs = ["config/folder-example.yaml", "root.yaml"]

    check = run(wd, ["resources/folder/dataset.json"], configs, args.cores)
    total = run(wd, ["results/table1.csv"], configs, args.cores)  # Table 1 only (runtimes.csv would add DeepLab)
    n = args.n_train + args.n_val
    print(f"folder of {n} images of 500x375 ({args.n_train} train, {args.n_val} val), {args.cores} cores")
    print(f"prepare_folder (check + copy at max_side): {check:.0f} s")
    print(f"Table 1 after it: {total:.0f} s = {total / 60:.1f} min ({total / check:.0f}x the check)")
    print((wd / "results" / "table1.md").read_text())
    print(to_markdown(benchmark_summary(wd / "benchmarks" / "folder")))


if __name__ == "__main__":
    main()
