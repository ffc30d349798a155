"""Table 1 of the demo under each alternative reading of the paper, each rerunning only the stages it changes.

    .venv/bin/python bench/demo_readings.py [--cores 2] [--workdir DIR] [--only NAME ...] [--reuse]

The workflow runs as ``make demo`` runs it, ``snakemake results/table1.csv --configfile config/demo.yaml``, in a
fresh working directory (the checkout's ``results/`` is not touched): first with the defaults, then once per reading
below, each in a copy of the defaults' directory with one more config file (``reading.yaml``), so Snakemake reruns
only the jobs whose params that reading changes and what reads them (docs/rerunning.md). Every row of each run's
``results/table1.csv`` goes to ``bench/results/demo_readings.csv`` (a rerun of a reading replaces its rows), with
the run's wall time and the number of jobs it ran; docs/demo-results.md renders it (``make docs``).

Reference in the same process: the defaults' run from scratch, so each reading's wall time reads against the whole
Table 1 it would otherwise cost.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from classifier_budget import append_csv  # noqa: E402  (bench/ is not a package)
from folder_example import WORKFLOW_FILES, run  # noqa: E402
from real_photos import short_commit, steps_done  # noqa: E402

CONFIGS = ["config/demo.yaml"]
TARGET = "results/table1.csv"
OUT = ROOT / "bench" / "results" / "demo_readings.csv"


def readings(cfg: dict) -> list[tuple[str, str, dict]]:
    """(name, what it reads, the config it lays over the demo's) of each reading; the thresholds from ``cfg``
    (config.yaml), which owns them. The defaults are config.yaml's: the paper's where it says, the references'
    where it is silent (docs/paper-readings.md)."""
    from matlabel.config import method_thresholds

    irn = method_thresholds({**cfg, "method_thresholds": {}}, "recam")  # IRN's, shared by the methods without own
    recam = method_thresholds(cfg, "recam")
    own = ", ".join(f"{k} {v:.2f}" for k, v in recam.items())
    return [
        ("crf_psa_score", "w/ CRF, `crf.preset: psa_score` (default `irn_label`)", {"crf": {"preset": "psa_score"}}),
        ("recam_irn_thresholds", f"ReCAM rows with IRN's thresholds (default ReCAM's own: {own})",
         {"method_thresholds": {"recam": irn}}),
        ("matting_walk_alphas", "w/ IRN, `irn.matting_walk: alphas` (default `maps`)",
         {"irn": {"matting_walk": "alphas"}}),
        ("d2cam_n1_frozen", "`d2cam.train_n1: false`, N1 frozen (default `true`)", {"d2cam": {"train_n1": False}}),
        ("d2cam_from_imagenet", "D2CAM from ImageNet, as the paper (`d2cam.init_from: null`; the demo's: `cam`, its "
         "trained CAM)", {"d2cam": {"init_from": None}}),
        ("border_pad_16", "`export.border_pad: 16`, every method's maps read from the image mirrored by 16 px "
         "(default 0, the plain maps)", {"export": {"border_pad": 16}}),
    ]


READINGS = readings(yaml.safe_load((ROOT / "config.yaml").read_text()))


def table_rows(workdir: Path) -> list[dict]:
    with open(workdir / TARGET) as f:
        return list(csv.DictReader(f))


def measure(workdir: Path, name: str, reading: str, configs: list[str], cores: int, commit: str) -> None:
    wall = run(workdir, [TARGET], configs, cores)
    rows = [{"run": name, "what": reading, "method": r["method"], "seed": r["seed"], "crf": r["crf"],
             "irn": r["irn"], "jobs": steps_done(workdir), "wall_s": round(wall, 1), "commit": commit}
            for r in table_rows(workdir)]
    append_csv(OUT, rows, replace_run=name)
    print(f"{name}: {wall / 60:.1f} min, {rows[0]['jobs']} jobs")
    for r in rows:
        print(f"  {r['method']:<24} {r['seed']:>5} {r['crf']:>5} {r['irn']:>5}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("bench-demo-readings"),
                    help="fresh working directory (removed first); each reading runs in a copy beside it")
    ap.add_argument("--only", action="append", choices=[r[0] for r in READINGS],
                    help="run only these readings")
    ap.add_argument("--reuse", action="store_true", help="keep --workdir from an earlier run of this commit and "
                    "its defaults' rows in the CSV; run only the readings")
    args = ap.parse_args(argv)

    commit = short_commit()
    base = args.workdir.resolve()
    if args.reuse:
        if not (base / TARGET).exists():
            sys.exit(f"--reuse: {base / TARGET} is missing (run without --reuse first)")
    else:
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        for name in WORKFLOW_FILES:
            (base / name).symlink_to(ROOT / name)
        measure(base, "default", "the defaults (config.yaml + config/demo.yaml, as `make demo`)", CONFIGS,
                args.cores, commit)
    for name, reading, overlay in READINGS:
        if args.only and name not in args.only:
            continue
        wd = base.with_name(f"{base.name}-{name}")
        shutil.rmtree(wd, ignore_errors=True)
        shutil.copytree(base, wd, symlinks=True)  # results, resources and Snakemake's records of how each was made
        (wd / "reading.yaml").write_text(yaml.safe_dump(overlay))
        measure(wd, name, reading, [*CONFIGS, "reading.yaml"], args.cores, commit)
        shutil.rmtree(wd)


if __name__ == "__main__":
    main()
