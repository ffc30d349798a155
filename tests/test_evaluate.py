import numpy as np
import pytest

from matlabel.evaluate import evaluate_cams
from matlabel.io import read_label_png
from matlabel.shards import shard_ids


def export_from_masks(manifest, ids, shard_dir, corrupt=None):
    shard_dir.mkdir(parents=True)
    for image_id in ids:
        gt = read_label_png(manifest.mask_path(image_id))
        classes = manifest.labels()[image_id]
        cams = np.stack([(gt == c).astype(np.float16) for c in classes])
        if corrupt is not None:
            cams = corrupt(cams)
        np.savez_compressed(shard_dir / f"{image_id}.npz", cams=cams, classes=np.asarray(classes, np.int16))


def test_maps_equal_to_the_masks_score_100(tiny_synthetic, tmp_path):
    ids = tiny_synthetic.split_ids("train")
    dirs = [tmp_path / f"shard{k}" for k in range(2)]
    for k, d in enumerate(dirs):
        export_from_masks(tiny_synthetic, shard_ids(ids, k, 2), d)
    r = evaluate_cams(tiny_synthetic, ids, dirs, 0.15, [0.1, 0.15, 0.5])
    assert r["miou"] == 100.0 and r["n_images"] == len(ids)
    assert r["iou"]["bicycle"] is None  # class absent from the data: skipped, not zero
    assert set(r["sweep"]) == {"0.10", "0.15", "0.50"}


def test_empty_maps_give_background_only(tiny_synthetic, tmp_path):
    ids = tiny_synthetic.split_ids("train")
    export_from_masks(tiny_synthetic, ids, tmp_path / "shard0", corrupt=lambda c: c * 0)
    r = evaluate_cams(tiny_synthetic, ids, [tmp_path / "shard0"], 0.15, [0.15])
    present = [v for k, v in r["iou"].items() if v is not None and k != "background"]
    assert present and all(v == 0.0 for v in present)


def test_missing_image_names_the_split_problem(tiny_synthetic, tmp_path):
    (tmp_path / "shard0").mkdir()
    with pytest.raises(FileNotFoundError, match="subset of the exported split"):
        evaluate_cams(tiny_synthetic, tiny_synthetic.split_ids("train"), [tmp_path / "shard0"], 0.15, [0.15])


def test_shards_partition_the_ids():
    ids = [f"im{i}" for i in range(10)]
    parts = [shard_ids(ids, k, 3) for k in range(3)]
    assert sorted(sum(parts, [])) == sorted(ids)
    with pytest.raises(ValueError):
        shard_ids(ids, 3, 3)


def write_label_shard(manifest, ids, shard_dir, corrupt=None):
    from matlabel.io import write_label_png

    shard_dir.mkdir(parents=True)
    for image_id in ids:
        gt = read_label_png(manifest.mask_path(image_id))
        write_label_png(shard_dir / f"{image_id}.png", gt if corrupt is None else corrupt(gt))


def test_label_pngs_equal_to_the_masks_score_100_and_background_only_scores_less(tiny_synthetic, tmp_path):
    from matlabel.evaluate import evaluate_labels

    ids = tiny_synthetic.split_ids("train")
    dirs = [tmp_path / f"shard{k}" for k in range(2)]
    for k, d in enumerate(dirs):
        write_label_shard(tiny_synthetic, shard_ids(ids, k, 2), d, corrupt=lambda g: np.where(g == 255, 0, g))
    r = evaluate_labels(tiny_synthetic, ids, dirs)
    assert r["miou"] == 100.0 and r["n_images"] == len(ids) and r["iou"]["bicycle"] is None
    write_label_shard(tiny_synthetic, ids, tmp_path / "bg", corrupt=lambda g: np.zeros_like(g))
    r = evaluate_labels(tiny_synthetic, ids, [tmp_path / "bg"])
    assert r["iou"]["background"] > 0 and all(v == 0.0 for k, v in r["iou"].items()
                                              if v is not None and k != "background")


def test_label_png_of_another_size_is_an_error(tiny_synthetic, tmp_path):
    from matlabel.evaluate import evaluate_labels

    ids = tiny_synthetic.split_ids("train")[:1]
    write_label_shard(tiny_synthetic, ids, tmp_path / "s", corrupt=lambda g: g[:-1])
    with pytest.raises(ValueError, match="differ in size"):
        evaluate_labels(tiny_synthetic, ids, [tmp_path / "s"])


def test_floor_is_background_share_over_classes_present(tmp_path):
    """Hand case: 2 images of 2x2, K=3. Image a: [[0,1],[1,255]]; image b: [[0,0],[2,2]].
    All-background prediction: background TP=3, FP=2 (class 1) + 2 (class 2), ignored pixel dropped ->
    IoU_bg = 3/7, IoU_1 = IoU_2 = 0 -> mIoU = (3/7)/3 = 14.29 %."""
    from matlabel.datasets.layout import Manifest
    from matlabel.evaluate import evaluate_floor
    from matlabel.io import write_label_png

    masks = {"a": [[0, 1], [1, 255]], "b": [[0, 0], [2, 2]]}
    for image_id, m in masks.items():
        write_label_png(tmp_path / "SegmentationClass" / f"{image_id}.png", np.asarray(m, np.uint8))
    manifest = Manifest("hand", tmp_path, 3, ("background", "x", "y"))
    r = evaluate_floor(manifest, ["a", "b"])
    assert r["miou"] == round(100 * 3 / 7 / 3, 2) and r["n_images"] == 2
    assert r["iou"] == {"background": round(100 * 3 / 7, 2), "x": 0.0, "y": 0.0}


def test_map_statistics_by_hand():
    from matlabel.evaluate import map_statistics, summarise_map_statistics

    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 255]], dtype=np.uint8)
    # class 1's map: on its 3 object pixels 1.0, 0.8, 0.5; elsewhere 0.9 (one pixel), 0.1 x 3; the ignored pixel is out
    m = np.array([[[0.9, 0.1, 1.0, 0.8],
                   [0.1, 0.1, 0.5, 1.0]]], dtype=np.float32)
    (row,) = map_statistics(m, [1], gt, eps_fg=0.75, eps_bg=0.2)
    assert row["class"] == 1
    assert row["on_object"] == pytest.approx((1.0 + 0.8 + 0.5) / 3)
    assert row["elsewhere"] == pytest.approx((0.9 + 0.1 * 3) / 4)
    assert (row["fg_pixels"], row["fg_on_object"]) == (3, 2)  # 0.9 (off), 1.0, 0.8 (on); the ignored 1.0 is out
    assert (row["bg_pixels"], row["bg_off_object"]) == (3, 3)
    assert row["fg_share"] == pytest.approx(3 / 7) and row["bg_share"] == pytest.approx(3 / 7)
    # a class without pixels in the mask gives no row
    assert map_statistics(np.zeros((1, 2, 4), np.float32), [2], gt, 0.75, 0.2) == []
    s = summarise_map_statistics([row, {**row, "on_object": 0.0, "elsewhere": None, "fg_on_object": 0}])
    assert s["n"] == 2 and s["on_object"] == pytest.approx(row["on_object"] / 2)
    assert s["elsewhere"] == pytest.approx(row["elsewhere"])  # None rows are left out of the mean
    assert s["fg_precision"] == pytest.approx(2 / 6) and s["bg_precision"] == pytest.approx(1.0)
