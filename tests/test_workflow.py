"""The workflow as a user runs it: lint, dry-runs of the paper's VOC config, and the demo end to end (tiny)."""
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from helpers import ROOT, TINY, job_counts, snakemake, workdir, write_overlay


def test_lint_is_clean(tmp_path):
    proc = snakemake(workdir(tmp_path), "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_requirements_and_conda_env_pin_the_same_packages():
    req = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
           if l.strip() and not l.startswith("#")]
    env = yaml.safe_load((ROOT / "envs" / "matlabel.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(req) == sorted(pip)


def test_voc_dry_run_plans_the_downloads(tmp_path):
    wd = workdir(tmp_path)
    out = snakemake(wd, "-n", "results/table1.csv", "--cores", "16", "--resources", "gpu=1").stdout
    counts = job_counts(out)
    assert counts["download_archive"] == 2 and counts["prepare_voc12"] == 1
    # Table 1 of this version: CAM, ReCAM and D2CAM maps (the Mat-Label rows reuse them), each trained once and
    # exported in 16 shards; 5 rows x 16 seed shards, each also through DenseCRF
    assert counts["export_cams"] == 48 and counts["train_classifier"] == 3
    assert counts["threshold_labels"] == 48 and counts["matting_labels"] == 32 and counts["crf_labels"] == 80
    assert counts["train_irn"] == 5 and counts["ir_labels"] == 80 and counts["random_walk"] == 80  # one IRN per row


def fake_voc_tree(wd: Path) -> None:
    """A tiny prepared VOC 2012 tree (VOC layout + manifest) in the place prepare_voc12 writes it."""
    from matlabel.datasets.layout import VOC_CLASSES, write_cls_labels, write_manifest, write_split
    from matlabel.io import write_label_png

    root = wd / "resources" / "voc12" / "VOCdevkit" / "VOC2012"
    ids = [f"2007_00000{i}" for i in range(4)]
    rng = np.random.default_rng(0)
    for i, image_id in enumerate(ids):
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
        mask = np.zeros((40, 50), np.uint8)
        mask[10:30, 10:30] = i + 1
        write_label_png(root / "SegmentationClassAug" / f"{image_id}.png", mask)
    for split, members in {"train": ids[:2], "train_aug": ids[:3], "val": ids[3:]}.items():
        write_split(root, split, members)
    write_cls_labels(root, {image_id: [i + 1] for i, image_id in enumerate(ids)})
    write_manifest(wd / "resources" / "voc12" / "dataset.json", "voc12", root, VOC_CLASSES, "SegmentationClassAug",
                   {"train": 2, "train_aug": 3, "val": 1})


def test_voc_dry_run_against_a_prepared_tree(tmp_path):
    wd = workdir(tmp_path)
    fake_voc_tree(wd)
    out = snakemake(wd, "-n", "results/table1.csv", "--cores", "16", "--resources", "gpu=1").stdout
    counts = job_counts(out)
    assert "download_archive" not in counts and "prepare_voc12" not in counts
    assert counts["train_classifier"] == 3 and counts["export_cams"] == 48 and counts["evaluate_cams"] == 3
    assert counts["evaluate_labels"] == 12  # 2 matting seeds + 5 CRF + 5 IRN stages
    for method in ("cam", "recam", "d2cam"):
        assert f"results/voc12/maps/{method}/model.pt" in out
    # one vocabulary per path segment: a threshold row's seed cell is its maps' evaluation (with the sweep), its
    # other cells the labels' (and one rule only can make each file: test_each_planned_file_has_one_rule_that_makes_it)
    seeds = [job for job in out.split("\nrule ")[1:] if job.startswith("evaluate_cams:")]
    assert sorted(re.search(r"output: (\S+)", job)[1] for job in seeds) == [
        f"results/voc12/maps/{m}/eval.json" for m in ("cam", "d2cam", "recam")]
    assert "results/voc12/rows/cam/crf/eval.json" in out and "results/voc12/rows/cam/seed/eval.json" not in out
    # the ImageNet weights are staged like data, by a local rule, and are an input of the trainings
    assert counts["imagenet_weights"] == 1 and "resources/weights/resnet50-0676ba61.pth" in out
    train = out.split("rule train_classifier:")[1].split("output:")[0]
    assert "resources/weights/resnet50-0676ba61.pth" in train



def test_each_planned_file_has_one_rule_that_makes_it(demo_plan):
    """No two rules could make one file of the demo's plan, so no ruleorder (or file order) decides which one does."""
    assert len(demo_plan) > 40
    shared = {tuple(job["output"]): job["producers"] for job in demo_plan if len(job["producers"]) != 1}
    assert not shared, shared

@pytest.mark.slow
def test_offline_download_stops_at_once_with_the_fix(tmp_path):
    wd = workdir(tmp_path)
    overlay = write_overlay(wd, {"data": {"url_overrides": {
        "voc2012_trainval": "http://127.0.0.1:9/VOCtrainval_11-May-2012.tar",
        "sbd": "http://127.0.0.1:9/benchmark.tgz"}}})
    proc = snakemake(wd, "resources/voc12/dataset.json", "--cores", "1", "--keep-going", "--configfile", overlay,
                     check=False, timeout=300)
    assert proc.returncode != 0
    log = (wd / "logs" / "download" / "VOCtrainval_11-May-2012.tar.log").read_text()
    assert "127.0.0.1:9" in log and "make demo" in log
    assert "resources/downloads/VOCtrainval_11-May-2012.tar" in log  # where to put a manual download
    assert not (wd / "resources" / "downloads" / "VOCtrainval_11-May-2012.tar").exists()
    terminal = proc.stdout + proc.stderr  # the message reaches the terminal, not only the log
    assert "[download_archive] DownloadError" in terminal and "make demo" in terminal


def test_bad_config_fails_before_any_job(tmp_path):
    wd = workdir(tmp_path)
    overlay = write_overlay(wd, {"cam": {"epochs": -1}})
    proc = snakemake(wd, "-n", "--configfile", overlay, check=False)
    assert proc.returncode != 0 and "epochs" in proc.stdout + proc.stderr


DEMO_TARGETS = ["results/table1.csv", "results/table2.csv", "results/table3.csv", "results/figures/fig2.png",
                "results/figures/fig5.png", "results/gallery", "results/runtimes.csv"]


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    """The tiny demo's targets run once (matlabel/ copied: a test edits it); each test works on a copy (tiny_copy)."""
    wd = workdir(tmp_path_factory.mktemp("tiny_demo"), copy=("matlabel",))
    overlay = write_overlay(wd, TINY)
    snakemake(wd, *DEMO_TARGETS, "--cores", "2", "--configfile", "config/demo.yaml", overlay)
    return wd


def tiny_copy(tiny_demo: Path, dest: Path) -> Path:
    """A copy of the finished tiny demo (file times and Snakemake's records kept: nothing to do there either)."""
    shutil.copytree(tiny_demo, dest, symlinks=True)
    return dest


@pytest.mark.slow
def test_demo_end_to_end_tiny(tiny_demo, tmp_path):
    wd = tiny_copy(tiny_demo, tmp_path / "demo")
    overlay = str(wd / "test-overlay.yaml")
    targets = DEMO_TARGETS
    table2 = pd.read_csv(wd / "results" / "table2.csv", dtype=str).set_index("method")
    assert 0.0 <= float(table2.loc["Mat-Label", "val"]) <= 100.0 and table2.loc["Mat-Label", "val_paper"] == "73.0"
    assert 0.0 < float(table2.loc["All background (floor)", "val"]) < 100.0
    assert (table2.loc["Mat-Label", "test"].startswith("not run")
            and table2.loc["Mat-Label I+S", "val"].startswith("not run"))
    assert (wd / "results" / "figures" / "fig5.png").stat().st_size > 10_000
    runtimes = pd.read_csv(wd / "results" / "runtimes.csv").set_index("rule")
    assert {"train_classifier", "matting_labels", "train_deeplab", "evaluate_deeplab"} <= set(runtimes.index)
    assert (runtimes["wall_s_total"] > 0).all() and runtimes.loc["export_cams", "jobs"] == 6  # 3 methods x 2 shards
    assert yaml.safe_load(
        (wd / "results" / "synthetic" / "config.yaml").read_text())["deeplab"]["train"]["iterations"] == 4
    # the report: every table and figure with its caption, the runtimes and the config
    snakemake(wd, *targets, "--configfile", "config/demo.yaml", overlay, "--report", "report.html")
    html = (wd / "report.html").read_text(errors="replace")
    for name in ("table1.csv", "table2.csv", "table3.csv", "fig2.png", "fig5.png", "runtimes.csv", "config.yaml"):
        assert name in html, name
    assert "Figure 5 of the paper" in html and "Runtimes of this run per rule" in html
    # the gallery: its 24 pages (gallery.images; the tiny split has 24 images), each caption naming its image
    pages = sorted(p.name for p in (wd / "results" / "gallery").glob("*.png"))
    assert len(pages) == 24 and pages[0].startswith("01_") and (wd / "results" / "gallery" / "scores.csv").exists()
    assert "Gallery, image" in html and pages[0][3:-4] in html
    # editing the figures' code reruns the figures and the gallery (and the run summary after them), nothing else
    with open(wd / "matlabel" / "figures.py", "a") as f:
        f.write("\nEDITED = True\n")
    plan = job_counts(snakemake(wd, *targets, "--configfile", "config/demo.yaml", overlay, "-n").stdout)
    assert plan == {"figure2": 1, "figure5": 1, "configured_dataset_figure": 2, "gallery": 1,
                    "configured_dataset_gallery": 1, "run_summary": 1, "configured_dataset_summary": 1, "total": 8}
    snakemake(wd, *targets, "--cores", "2", "--configfile", "config/demo.yaml", overlay)
    # I+S: with saliency maps (here made from the ground truth, a test fixture) the Table 2 cell is measured,
    # and only the I+S row's jobs run
    sal = wd / "saliency"
    sal.mkdir()
    masks = wd / "resources" / "synthetic" / "VOC2012" / "SegmentationClass"
    for mask in masks.glob("*.png"):
        m = np.array(Image.open(mask))
        Image.fromarray(np.where((m > 0) & (m < 255), 255, 0).astype(np.uint8)).save(sal / mask.name)
    with_sal = write_overlay(wd, {**TINY, "saliency": {"dir": str(sal), "threshold": 0.5}})
    plan = job_counts(snakemake(wd, "results/table2.csv", "--configfile", "config/demo.yaml", with_sal, "-n").stdout)
    assert plan == {"saliency_labels": 2, "train_deeplab": 1, "evaluate_deeplab": 1, "table2": 1,
                    "configured_dataset_table": 1, "total": 6}
    snakemake(wd, "results/table2.csv", "--cores", "2", "--configfile", "config/demo.yaml", with_sal)
    table2 = pd.read_csv(wd / "results" / "table2.csv", dtype=str).set_index("method")
    assert 0.0 <= float(table2.loc["Mat-Label I+S", "val"]) <= 100.0
    table3 = pd.read_csv(wd / "results" / "table3.csv", dtype=str)
    assert all(v.startswith("not run: needs MS COCO") for v in table3["val"])
    assert (wd / "results" / "figures" / "fig2.png").stat().st_size > 10_000
    table = pd.read_csv(wd / "results" / "table1.csv", dtype=str).set_index("method")
    assert list(table.index) == ["All background (floor)", "CAM", "ReCAM", "D2CAM only", "Mat-Label w/ ReCAM",
                                 "Mat-Label"]
    for row in table.index:  # every cell measured
        assert all(0.0 <= float(table.loc[row, stage]) <= 100.0 for stage in ("seed", "crf", "irn"))
    assert table.loc["CAM", "seed_paper"] == "48.0" and table.loc["Mat-Label", "crf_paper"] == "65.8"
    shard = wd / "results" / "synthetic" / "rows" / "matlabel" / "seed" / "shard0"
    assert any(shard.glob("*.png")) and any(shard.glob("*_alpha.npz")) and (shard / "shard.json").exists()
    assert (wd / "results" / "synthetic" / "table1.md").exists()
    maps = wd / "results" / "synthetic" / "maps" / "cam"
    assert sorted(p.name for p in maps.glob("shard*")) == ["shard0", "shard1"]
    assert (wd / "logs" / "synthetic" / "train_classifier" / "cam.log").stat().st_size > 0
    # a second run has nothing to do
    again = snakemake(wd, "results/table1.csv", "--cores", "2", "--configfile", "config/demo.yaml", overlay, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    # dataset files are in the DAG through the content stamps: a touched file reruns nothing, a replaced mask reruns
    # the evaluations that read it, a replaced training image retrains, and putting the old bytes back undoes it
    voc = wd / "resources" / "synthetic" / "VOC2012"
    val_id = (voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[0]
    train_id = (voc / "ImageSets" / "Segmentation" / "train_aug.txt").read_text().split()[0]
    snakemake(wd, *targets, "--cores", "2", "--configfile", "config/demo.yaml", with_sal)  # the run summary
    all_targets = (*targets, "--configfile", "config/demo.yaml", with_sal, "-n")
    os.utime(voc / "JPEGImages" / f"{train_id}.jpg")
    assert "Nothing to be done" in snakemake(wd, *all_targets).stdout
    for path, expect, never in [
        (voc / "SegmentationClass" / f"{val_id}.png", {"evaluate_deeplab", "evaluate_floor", "figure5", "table2"},
         {"train_deeplab", "train_classifier", "evaluate_labels", "dataset_content"}),
        (voc / "JPEGImages" / f"{train_id}.jpg", {"train_classifier", "export_cams", "matting_labels", "train_deeplab"},
         {"evaluate_floor", "dataset_content"}),
    ]:
        original = path.read_bytes()
        path.write_bytes(original + b"\0")
        plan = snakemake(wd, *all_targets)
        assert "dataset files changed since the last run" in plan.stderr
        counts = job_counts(plan.stdout)
        assert expect <= set(counts) and not never & set(counts), (path.name, counts)
        path.write_bytes(original)
        assert "Nothing to be done" in snakemake(wd, *all_targets).stdout, path.name
    # comments and docstrings are not code: editing them reruns nothing (matlabel/codehash.py)
    matting = wd / "matlabel" / "matting" / "__init__.py"
    source = matting.read_text()
    matting.write_text(source.replace('"""', '"""An edited docstring. ', 1) + "\n# an edited comment\n")
    assert "Nothing to be done" in snakemake(wd, *all_targets).stdout
    # editing a library module's code reruns exactly the rules whose scripts import it (here, the evaluations)
    with open(wd / "matlabel" / "evaluate.py", "a") as f:
        f.write("\nEDITED = True\n")
    edited = snakemake(wd, "results/table1.csv", "--cores", "2", "--configfile", "config/demo.yaml", overlay, "-n")
    assert job_counts(edited.stdout) == {"evaluate_cams": 3, "evaluate_labels": 12, "evaluate_floor": 1,
                                         "table1": 1, "configured_dataset_table": 1, "total": 18}


@pytest.mark.slow
def test_table4_ablation_tiny(tiny_demo, tmp_path):
    """Table 4 on the tiny demo (after Table 1): one model per variant; the CAM and full-variant rows are Table 1's
    CAM and "D2CAM only" models, whose maps and seed evaluations Table 4 reuses."""
    wd = tiny_copy(tiny_demo, tmp_path / "demo")
    overlay = str(wd / "test-overlay.yaml")
    run = snakemake(wd, "results/table4.csv", "--cores", "2", "--configfile", "config/demo.yaml", overlay)
    table = pd.read_csv(wd / "results" / "table4.csv", dtype=str).set_index("variant")
    assert list(table.index) == ["CAM", "L_d2", "L_d2 + L_area", "L_d2 + L_ma", "L_d2 + L_ma + L_oe"]
    assert all(0.0 <= float(v) <= 100.0 for v in table["miou"])
    assert table.loc["L_d2 + L_ma + L_oe", "miou_paper"] == "58.0"
    # one training per ablation variant; the full variant is D2CAM itself, the first row CAM
    trained = sorted(re.findall(r"output: results/synthetic/maps/(\w+)/model\.pt", run.stderr))
    assert trained == ["d2cam_d2", "d2cam_d2_area", "d2cam_d2_ma"], run.stderr[-3000:]
    table1 = pd.read_csv(wd / "results" / "table1.csv", dtype=str).set_index("method")
    assert table.loc["L_d2 + L_ma + L_oe", "miou"] == table1.loc["D2CAM only", "seed"]
    assert table.loc["CAM", "miou"] == table1.loc["CAM", "seed"]
    models = ["cam", "d2cam", *trained]
    with_d2cam = write_overlay(wd, {**TINY, "table1": {"methods": ["cam", "d2cam"], "stages": ["seed"]}})
    plan = snakemake(wd, "results/table1.csv", "--configfile", "config/demo.yaml", with_d2cam, "-n").stdout
    # nothing retrained or re-evaluated: Table 1 (its floor row was measured with the demo)
    assert job_counts(plan) == {"table1": 1, "configured_dataset_table": 1, "total": 2}
    # the border reading is an export setting: changing it re-exports every method's maps, and retrains nothing
    padded = write_overlay(wd, {**TINY, "export": {"border_pad": 16}})
    plan = job_counts(snakemake(wd, "results/table4.csv", "--configfile", "config/demo.yaml", padded, "-n").stdout)
    assert plan["export_cams"] == 2 * len(models) and "train_classifier" not in plan, plan


def load_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_voc_dry_run_of_table2_trains_deeplab_per_row_and_exports_the_test_set(tmp_path):
    wd = workdir(tmp_path)
    fake_voc_tree(wd)
    (wd / "resources/voc12/VOCdevkit/VOC2012/ImageSets/Segmentation/test.txt").write_text("2007_000003\n")
    plain = job_counts(snakemake(wd, "-n", "results/table2.csv", "--cores", "16").stdout)
    assert "export_voc_test" not in plain  # the test images are not part of the VOC download
    overlay = write_overlay(wd, {"deeplab": {**load_config()["deeplab"], "voc_test": True}})
    out = snakemake(wd, "-n", "results/table2.csv", "--cores", "16", "--resources", "gpu=1", "--configfile",
                    overlay).stdout
    counts = job_counts(out)
    # D2CAM only, Mat-Label w/ ReCAM, Mat-Label (I+S needs saliency maps): one DeepLab each, on their IRN labels
    assert counts["train_deeplab"] == 3 and counts["evaluate_deeplab"] == 3 and counts["export_voc_test"] == 3
    assert "results/voc12/rows/matlabel/deeplab/voc12_test.tar" in out
    assert counts["imagenet_weights"] == 2 and "resources/weights/resnet101-63fe2227.pth" in out  # + ResNet-50


def test_eps_sensitivity_plans_one_cell_per_method_and_eps_pair(tmp_path):
    """The ε grid (paper Sec. 3.2.2's claim) reuses the exported maps: only the cells, the table and figure are new."""
    out = snakemake(workdir(tmp_path), "-n", "results/figures/eps_sensitivity.png", "--cores", "16",
                    "--resources", "gpu=1").stdout
    counts = job_counts(out)
    assert counts["eps_cell"] == 32 and counts["eps_sensitivity"] == 1  # 2 methods x 4 eps_fg x 4 eps_bg
    assert counts["train_classifier"] == 2 and "matting_labels" not in counts and "train_irn" not in counts
    assert "results/voc12/eps_sensitivity/d2cam/fg0.75_bg0.2.json" in out
    assert "results/voc12/eps_sensitivity/cam/fg0.5_bg0.35.json" in out


def test_table5_plans_one_cell_per_matting_method_and_label_rule(tmp_path):
    out = snakemake(workdir(tmp_path), "-n", "results/table5.csv", "--cores", "16", "--resources", "gpu=1").stdout
    counts = job_counts(out)
    assert counts["table5_cell"] == 8 and counts["table5"] == 1 and "matting_labels" not in counts
    assert "results/voc12/table5/learning_based_bg_layer.json" in out and "results/voc12/maps/d2cam/shard0" in out


def test_gpu_matting_makes_the_matting_rule_ask_for_a_gpu(tmp_path):
    wd = workdir(tmp_path)
    fake_voc_tree(wd)
    overlay = write_overlay(wd, {"matting": {"device": "cuda"}})
    out = snakemake(wd, "-n", "results/voc12/rows/matlabel/seed/shard0", "--cores", "16", "--resources", "gpu=1",
                    "--configfile", overlay).stdout
    job = out.split("rule matting_labels:")[1].split("\n\n")[0]
    assert "gpu=1" in job
    plain = snakemake(wd, "-n", "results/voc12/rows/matlabel/seed/shard0", "--cores", "16", "--resources",
                      "gpu=1").stdout
    assert "gpu=0" in plain.split("rule matting_labels:")[1].split("\n\n")[0]
