"""The per-image gallery (matlabel/gallery.py, rule gallery): per-image mIoU, the worst-first ranking, the pages and
what a missing row, stage, alpha or class gives, and the rule in the demo's plan."""
import copy
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from helpers import ROOT
from matlabel.config import ConfigError, check_config
from matlabel.datasets.layout import IGNORE_INDEX
from matlabel.formats import write_alphas, write_maps
from matlabel.gallery import (
    NOT_USED,
    SCORES_CSV,
    RowFiles,
    gallery_page,
    image_miou,
    load_entry,
    make_gallery,
    page_name,
    rank_worst_first,
    score_images,
)
from matlabel.io import read_label_png, write_json, write_label_png


# ------------------------------------------------------------------------------------------- scores and ranking

def test_image_miou_is_the_mean_iou_over_the_classes_of_mask_and_labels():
    gt = np.array([[0, 0, 1, 1], [IGNORE_INDEX, 0, 0, 0]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 0]], dtype=np.uint8)
    # background: 4 right of 5 (one taken by class 1): 4/5; class 1: 2 of 3 marked: 2/3; class 2 only on ignore: absent
    assert image_miou(gt, pred, 3) == pytest.approx(100 * (4 / 5 + 2 / 3) / 2)
    assert image_miou(gt, gt.clip(0, 2), 3) == 100.0
    assert math.isnan(image_miou(np.full((2, 2), IGNORE_INDEX, np.uint8), np.zeros((2, 2), np.uint8), 3))


def test_ranking_is_worst_first_by_the_mean_over_rows():
    scores = {"cam": {"x": 50.0, "y": 10.0, "z": 30.0}, "matlabel": {"x": 10.0, "y": 70.0, "z": math.nan}}
    # x: (50 + 10) / 2 = 30; y: 40; z: 30 (its NaN left out); w: no score at all, last; x and z tie: id order
    ranked = rank_worst_first(scores, ["w", "x", "y", "z"])
    assert [i for i, _ in ranked] == ["x", "z", "y", "w"]
    assert [s for _, s in ranked[:3]] == [30.0, 30.0, 40.0] and math.isnan(ranked[3][1])
    # by Mat-Label's row alone: x 10, y 70, then the two without a score in id order
    assert [i for i, _ in rank_worst_first(scores, ["w", "x", "y", "z"], ["matlabel"])] == ["x", "y", "w", "z"]
    # a row the scores do not have counts as no score
    assert [i for i, _ in rank_worst_first(scores, ["x", "y"], ["recam"])] == ["x", "y"]


def test_page_names_sort_worst_first():
    names = [page_name(rank, 12, "img") for rank in (1, 2, 10, 12)]
    assert names == ["01_img.png", "02_img.png", "10_img.png", "12_img.png"] == sorted(names)
    assert page_name(3, 5, "a_b_c") == "3_a_b_c.png"


# ------------------------------------------------------------------------------------------- on workflow files

@pytest.fixture
def rows_on_disk(tiny_synthetic, tmp_path):
    """Shards of two rows on the tiny dataset: "cam" (threshold: seed and crf) and "matlabel" (matting: seed only,
    with alphas). Labels are the masks (ignore -> background), except: image A all background in both rows, image B
    in Mat-Label's only; image C's matting failed (no alpha, its failure in shard.json); image D has no map (k = 0)."""
    m = tiny_synthetic
    labels = m.labels()
    ids = [i for i in m.split_ids("train") if labels[i]]
    a, b, c, d = ids[:4]
    rng = np.random.default_rng(0)
    dirs = {key: tmp_path / key for key in ("maps", "cam_seed", "cam_crf", "ml_seed")}
    for path in dirs.values():
        path.mkdir()
    for image_id in m.split_ids("train"):
        gt = read_label_png(m.mask_path(image_id), m.num_classes)
        good = np.where(gt == IGNORE_INDEX, 0, gt).astype(np.uint8)
        classes = [] if image_id == d else labels[image_id]
        maps = rng.random((len(classes), *gt.shape)).astype(np.float32)
        write_maps(dirs["maps"] / f"{image_id}.npz", maps, classes)
        for key in ("cam_seed", "cam_crf", "ml_seed"):
            spoiled = image_id == a or (image_id == b and key == "ml_seed")
            write_label_png(dirs[key] / f"{image_id}.png", np.zeros_like(good) if spoiled else good)
        if image_id != c:
            write_alphas(dirs["ml_seed"] / f"{image_id}_alpha.npz", maps, classes)
    write_json(dirs["ml_seed"] / "shard.json", {"failures": {c: "MattingFailure: not converged"}})
    rows = [RowFiles("cam", "threshold", [str(dirs["maps"])], {"seed": [str(dirs["cam_seed"])],
                                                                "crf": [str(dirs["cam_crf"])]}),
            RowFiles("matlabel", "matting", [str(dirs["maps"])], {"seed": [str(dirs["ml_seed"])]})]
    return m, rows, (a, b, c, d)


def test_gallery_draws_the_worst_images_first_and_scores_every_image(rows_on_disk, tmp_path):
    m, rows, (a, b, _, _) = rows_on_disk
    ids = m.split_ids("train")
    out = tmp_path / "gallery"
    table = make_gallery(m, ids, rows, ["seed", "crf"], "seed", 3, out, eps_fg=0.75, eps_bg=0.2)
    # A is all background in both rows, B in one: they are the two worst; every other image is perfect (100), and
    # the third page is the first of those in id order
    perfect = sorted(set(ids) - {a, b})
    assert sorted(p.name for p in out.glob("*.png")) == [f"1_{a}.png", f"2_{b}.png", f"3_{perfect[0]}.png"]
    saved = pd.read_csv(out / SCORES_CSV)
    assert list(saved["image"]) == [a, b, *perfect] == list(table["image"]) and list(saved["rank"]) == list(
        range(1, len(ids) + 1))
    assert saved["score"].iloc[0] < 50 < saved["score"].iloc[1] < 100 and (saved["score"].iloc[2:] == 100).all()
    assert saved.loc[1, "cam"] == 100 and saved.loc[1, "matlabel"] < 100  # B: spoiled in Mat-Label's row only
    with Image.open(out / f"1_{a}.png") as page:
        # 3 + 2 columns of 1.5 in at 100 dpi; a palette PNG (256 colours)
        assert page.format == "PNG" and page.mode == "P" and page.size[0] == 750


def test_page_has_the_panels_of_every_row_and_says_why_one_is_empty(rows_on_disk, tmp_path):
    m, rows, (_, _, c, d) = rows_on_disk
    missing_row = RowFiles("recam", "threshold")  # a row none of whose files exist
    stages = ["seed", "crf"]
    entry = load_entry(m, c, [*rows, missing_row], stages, 0.75, 0.2)
    cam, matlabel, recam = entry["rows"]
    assert cam["notes"] == {"trimap": NOT_USED, "alpha": NOT_USED} and set(cam["miou"]) == {"seed", "crf"}
    assert matlabel["trimap"].shape == matlabel["maps"].shape and set(np.unique(matlabel["trimap"])) <= {0, 0.5, 1}
    assert matlabel["alpha"] is None and matlabel["notes"]["alpha"].startswith("matting failed")
    assert matlabel["crf"] is None and matlabel["notes"]["crf"] == "labels missing"
    assert recam["maps"] is None and recam["notes"]["maps"] == "maps missing" and recam["miou"] == {}
    fig = gallery_page(entry, stages, tmp_path / "page.png", heading="#1", dpi=100, panel_in=1.5)
    # first line: image, ground truth, a text box; then 3 rows x (maps, trimap, alpha, seed, w/ CRF)
    assert len(fig.axes) == 3 + 3 * 5
    assert [ax.get_title() for ax in fig.axes[:2]] == ["image", "ground truth"]
    row_titles = [ax.get_title() for ax in fig.axes[3:8]]
    assert row_titles[:3] == ["maps (max over classes)", "trimap (Eq. 9)", "matting alpha"]
    assert re.fullmatch(r"Seed: \d+\.\d", row_titles[3]) and re.fullmatch(r"w/ CRF: \d+\.\d", row_titles[4])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count(NOT_USED) == 4 and "labels missing" in texts and "maps missing" in texts
    assert any(t.startswith("matting failed") for t in texts)
    legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert legend[0] == "background" and set(entry["classes"]) <= set(legend)
    width, height = fig.get_size_inches() * 100
    with Image.open(tmp_path / "page.png") as page:
        assert page.size == (round(width), round(height)) == (750, round(100 * ((1.5 * 48 / 64 + 0.32) * 4 + 0.1)))
    # an image without a class (k = 0 maps): empty trimap and alpha, still drawn
    empty = load_entry(m, d, rows, stages, 0.75, 0.2)["rows"][1]
    assert empty["maps"].shape[0] == 0 and empty["alpha"].shape[0] == 0 and empty["trimap"].shape[0] == 0
    gallery_page(load_entry(m, d, rows, stages, 0.75, 0.2), stages, tmp_path / "empty.png")


def test_a_row_without_the_ranking_stage_is_not_scored(rows_on_disk):
    m, rows, (a, _, _, _) = rows_on_disk
    scores = score_images(m, m.split_ids("train")[:6], rows, "crf")
    assert scores["matlabel"] == {} and len(scores["cam"]) == 6
    assert scores["cam"][a] < 50  # A is all background in the CAM row's CRF labels too


# ------------------------------------------------------------------------------------------- config and workflow

def test_rank_by_must_name_rows_of_table1():
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    ok = copy.deepcopy(cfg)
    ok["gallery"]["rank_by"] = ["matlabel"]
    check_config(ok)
    cfg["table1"]["methods"] = ["cam", "matlabel"]
    cfg["gallery"]["rank_by"] = ["matlabel", "recam"]
    with pytest.raises(ConfigError, match=r"gallery.rank_by: \['recam'\]"):
        check_config(cfg)


def test_make_demo_builds_the_gallery_for_the_report(demo_plan):
    """The Makefile's demo targets plan the gallery (once, for the configured dataset), and the run summary waits
    for it; the rule's output is a report item of category Gallery."""
    counts = Counter(job["rule"] for job in demo_plan)
    assert counts["gallery"] == 1 and counts["configured_dataset_gallery"] == 1
    (summary,) = [job for job in demo_plan if job["rule"] == "run_summary"]
    assert "results/synthetic/gallery" in summary["input"]
    (gallery,) = [job for job in demo_plan if job["rule"] == "gallery"]
    assert gallery["report"] == {"category": "Gallery", "caption": "report/gallery.rst"}
    assert (ROOT / "report" / "gallery.rst").is_file()
