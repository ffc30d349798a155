"""bench/real_photos.py's run facts (the job count from Snakemake's log, the job seconds per rule) and
bench/d2_landscape.py's CSV."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import real_photos  # noqa: E402


def test_steps_done_reads_the_last_runs_log(tmp_path):
    logs = tmp_path / ".snakemake" / "log"
    logs.mkdir(parents=True)
    (logs / "2026-12-07T010000.000000.snakemake.log").write_text("9 of 9 steps (100%) done\n")
    (logs / "2026-12-07T020000.000000.snakemake.log").write_text("1 of 4 steps (25%) done\n4 of 4 steps (100%) done\n")
    assert real_photos.steps_done(tmp_path) == 4
    (logs / "2026-12-07T030000.000000.snakemake.log").write_text("1 of 4 steps (25%) done\n")  # stopped
    assert real_photos.steps_done(tmp_path) is None
    assert real_photos.steps_done(tmp_path / "none") is None


def test_job_seconds_sum_each_rules_benchmarks(tmp_path):
    bench = tmp_path / "benchmarks" / real_photos.DATASET
    (bench / "train_irn").mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\n"
    (bench / "train_irn" / "cam.tsv").write_text(header + "100.5\t0:01:40\t1\n")
    (bench / "train_irn" / "recam.tsv").write_text(header + "50.25\t0:00:50\t1\n")
    (bench / "prepare_folder.tsv").write_text(header + "2.0\t0:00:02\t1\n")
    assert real_photos.job_seconds(tmp_path) == {"train_irn": 150.8, "prepare_folder": 2.0}


def test_d2_landscape_rows_replace_only_their_fill(tmp_path):
    import csv

    import d2_landscape
    out = tmp_path / "sub" / "landscape.csv"
    d2_landscape.write_rows(out, "zero", [("all ones", 1.5, 4), ("grad on object", 0.25, 3)])
    d2_landscape.write_rows(out, "mean", [("all ones", 2.0, 4)])
    d2_landscape.write_rows(out, "zero", [("all ones", 1.25, 5)])
    with open(out, newline="") as f:
        rows = [(r["fill"], r["quantity"], float(r["value"]), int(r["n"])) for r in csv.DictReader(f)]
    assert rows == [("mean", "all ones", 2.0, 4), ("zero", "all ones", 1.25, 5)]


def test_deeplab_budget_loss_per_output_counts_the_msc_outputs():
    import deeplab_budget
    history = [{"iteration": 1, "lr": 0.1, "x1": 2.0, "x0.5": 3.0, "x0.75": 1.0, "max": 2.0, "total": 8.0},
               {"iteration": 2, "lr": 0.1, "x1": 1.5, "max": 1.5, "total": 3.0}]  # msc_scales: [] (x1 and max)
    assert deeplab_budget.per_output(history) == [2.0, 1.5]


def test_deeplab_iou_reads_each_rows_eval(tmp_path):
    for row, iou in (("d2cam", {"background": 47.5, "bus": 22.1}), ("matlabel", {"background": 51.0, "bus": 8.1})):
        ev = tmp_path / "rows" / row / "deeplab" / "eval.json"
        ev.parent.mkdir(parents=True)
        ev.write_text(json.dumps({"miou": 0.0, "iou": iou}))
    (tmp_path / "rows" / "cam" / "irn").mkdir(parents=True)  # a row without DeepLab: no rows
    assert real_photos.deeplab_iou(tmp_path) == [
        {"row": "d2cam", "class": "background", "iou": 47.5}, {"row": "d2cam", "class": "bus", "iou": 22.1},
        {"row": "matlabel", "class": "background", "iou": 51.0}, {"row": "matlabel", "class": "bus", "iou": 8.1}]
