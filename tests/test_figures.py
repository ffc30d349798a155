"""Figures 2 and 5: RGB helpers, the panel grid, loading rows from shard files, and the rule script."""
import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from matlabel import runlog
from matlabel.figures import (
    FIG2_COLUMNS,
    FIG5_COLUMNS,
    colorize,
    default_figure_ids,
    figure2,
    figure5,
    heatmap_overlay,
    load_pipeline_row,
    load_segmentation_row,
    trimap_rgb,
    union_map,
)
from matlabel.io import read_label_png, voc_palette, write_label_png
from matlabel.trimap import make_trimaps

ROOT = Path(__file__).resolve().parents[1]
H, W = 48, 64  # the tiny_synthetic image size


def _png(path):
    """Open ``path`` as a verified PNG and return its (width, height)."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def _grid_shape(fig):
    return fig.axes[0].get_subplotspec().get_gridspec().get_geometry()


# ------------------------------------------------------------------------------------------------ helpers

def test_colorize_maps_labels_through_the_voc_palette():
    label = np.array([[0, 1, 15], [20, 255, 255]], dtype=np.uint8)
    rgb = colorize(label)
    pal = voc_palette()
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], pal[0])  # background black
    np.testing.assert_array_equal(rgb[0, 1], [128, 0, 0])  # aeroplane, VOC's dark red
    np.testing.assert_array_equal(rgb[0, 2], pal[15])  # person
    np.testing.assert_array_equal(rgb[1, 0], pal[20])
    np.testing.assert_array_equal(rgb[1, 1], [255, 255, 255])  # ignore -> white by default
    np.testing.assert_array_equal(colorize(label, ignore_white=False)[1, 2], [224, 224, 192])
    with pytest.raises(ValueError):
        colorize(np.zeros((2, 2, 3), dtype=np.uint8))


def test_trimap_rgb_is_black_grey_white():
    trimap = np.array([[0.0, 0.5], [1.0, 0.5]], dtype=np.float32)
    rgb = trimap_rgb(trimap)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], [[0, 128], [255, 128]])
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    with pytest.raises(ValueError):
        trimap_rgb(np.array([[0.3]]))


def test_heatmap_overlay_blends_jet_onto_the_image():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    heat = np.array([[0.0, 1.0], [0.5, 2.0]], dtype=np.float32)  # 2.0 is clipped to 1
    out = heatmap_overlay(image, heat)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 0, 2] > out[0, 0, 0]  # 0 -> blue
    assert out[0, 1, 0] > out[0, 1, 2]  # 1 -> red
    np.testing.assert_array_equal(out[1, 1], out[0, 1])
    np.testing.assert_array_equal(heatmap_overlay(image, heat, weight=0.0), image)
    with pytest.raises(ValueError):
        heatmap_overlay(image, np.zeros((3, 2)))


def test_union_map_is_the_per_pixel_max_over_classes():
    maps = np.array([[[0.1, 0.9]], [[0.5, 0.2]]], dtype=np.float32)  # (2, 1, 2)
    np.testing.assert_array_equal(union_map(maps), np.array([[0.5, 0.9]], dtype=np.float32))
    trimaps = np.array([[[0.0, 0.5, 1.0]], [[0.5, 0.0, 0.0]]], dtype=np.float32)
    np.testing.assert_array_equal(union_map(trimaps), [[0.5, 0.5, 1.0]])  # unknown beats background
    assert union_map(np.zeros((0, 3, 4))).shape == (3, 4)
    assert not union_map(np.zeros((0, 3, 4))).any()


def test_default_figure_ids_skips_images_without_classes():
    manifest = SimpleNamespace(split_ids=lambda split: ["a", "b", "c", "d", "e", "f"],
                               labels=lambda: {"a": [1], "b": [], "c": [2, 3], "d": [4], "f": [5]})
    assert default_figure_ids(manifest, "val") == ["a", "c", "d", "f"]
    assert default_figure_ids(manifest, "val", n=2) == ["a", "c"]


def test_figure_ids_blames_the_config_key_for_an_id_outside_the_split():
    from matlabel.figures import figure_ids
    manifest = SimpleNamespace(split_ids=lambda split: ["a", "b", "c"], labels=lambda: {"a": [], "b": [1]},
                               root=Path("VOC"))
    assert figure_ids(manifest, [], "val") == ["b"]
    assert figure_ids(manifest, ["c", "a"], "val") == ["c", "a"]
    with pytest.raises(ValueError, match=r"config figures.fig5_ids: \['zz'\] not in split 'val'.*val.txt"):
        figure_ids(manifest, ["a", "zz"], "val", "figures.fig5_ids")
    with pytest.raises(ValueError, match=r"set figures.ids in config"):
        figure_ids(SimpleNamespace(split_ids=lambda s: ["a"], labels=lambda: {}), [], "val")


# ------------------------------------------------------------------------------------------------ figures

def _rows():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    maps = rng.random((2, H, W)).astype(np.float32)
    gt = np.zeros((H, W), dtype=np.uint8)
    gt[10:20, 10:30], gt[30:40, 5:15], gt[0, :] = 8, 15, 255
    multi = {"image": image, "cam": maps, "d2cam": maps[::-1], "trimap": make_trimaps(maps, 0.75, 0.2),
             "alpha": maps, "pseudo_label": gt, "gt": gt, "label": "two classes"}
    empty = {"image": image, "cam": np.zeros((0, H, W)), "d2cam": np.zeros((0, H, W)),
             "trimap": np.zeros((0, H, W)), "alpha": None, "pseudo_label": np.zeros((H, W), np.uint8),
             "gt": np.zeros((H, W), np.uint8), "label": "no class"}
    return multi, empty


def test_figure2_writes_one_row_per_image_with_seven_panels(tmp_path):
    multi, empty = _rows()
    out = tmp_path / "fig" / "figure2.png"
    fig = figure2([multi, empty], out)
    assert _grid_shape(fig) == (2, 7) and len(fig.axes) == 14
    assert [ax.get_title() for ax in fig.axes[:7]] == [t for _, t in FIG2_COLUMNS]
    assert [ax.get_title() for ax in fig.axes[7:]] == [""] * 7
    assert [fig.axes[0].get_ylabel(), fig.axes[7].get_ylabel()] == ["two classes", "no class"]
    w, h = _png(out)
    assert 1500 <= w <= 1800 and 300 <= h <= 600, (w, h)  # 7 × 1.6 in at 150 dpi, 2 rows of 4:3 panels
    assert sorted(p.name for p in out.parent.iterdir()) == ["figure2.png"]  # no temp file left behind
    # the trimap panel of the multi-class row is the per-pixel max over classes, in black/grey/white
    trimap_ax = fig.axes[[k for k, _ in FIG2_COLUMNS].index("trimap")]
    shown = np.asarray(trimap_ax.images[0].get_array())
    np.testing.assert_array_equal(shown, trimap_rgb(make_trimaps(multi["d2cam"], 0.75, 0.2).max(axis=0)))
    # the ground-truth panel goes through the palette, ignore white
    np.testing.assert_array_equal(np.asarray(fig.axes[6].images[0].get_array()), colorize(multi["gt"]))


def test_figure2_renders_an_image_without_classes(tmp_path):
    _, empty = _rows()
    fig = figure2([empty], tmp_path / "empty.png")
    assert _grid_shape(fig) == (1, 7)
    keys = [k for k, _ in FIG2_COLUMNS]
    trimap = np.asarray(fig.axes[keys.index("trimap")].images[0].get_array())
    assert trimap.shape == (H, W, 3) and not trimap.any()  # all background
    assert not fig.axes[keys.index("alpha")].images  # matting failed: an "n/a" panel
    w, h = _png(tmp_path / "empty.png")
    assert 1500 <= w <= 1800 and 150 <= h <= 350, (w, h)


def test_figure5_has_image_gt_and_ours(tmp_path):
    multi, _ = _rows()
    row = {"image": multi["image"], "gt": multi["gt"], "prediction": np.where(multi["gt"] == 255, 0, multi["gt"])}
    fig = figure5([row, row, row], tmp_path / "figure5.png")
    assert _grid_shape(fig) == (3, 3)
    assert [ax.get_title() for ax in fig.axes[:3]] == [t for _, t in FIG5_COLUMNS]
    w, h = _png(tmp_path / "figure5.png")
    assert 600 <= w <= 800 and 450 <= h <= 800, (w, h)


def test_figures_need_rows(tmp_path):
    with pytest.raises(ValueError):
        figure2([], tmp_path / "x.png")


# ------------------------------------------------------------------------------------------------ files

@pytest.fixture
def shards(tmp_path, tiny_synthetic):
    """Fake cam / d2cam / matlabel seed shards (2 shards) for the four val images, from the masks:
    image 0 has its matting failed (no alpha file), image 2 has no class in its maps."""
    ids = tiny_synthetic.split_ids("val")[:4]
    labels = tiny_synthetic.labels()
    dirs = {m: [tmp_path / m / f"shard{k}" for k in range(2)] for m in ("cam", "d2cam", "matlabel", "seg")}
    for shard_dirs in dirs.values():
        for d in shard_dirs:
            d.mkdir(parents=True)
    for n, image_id in enumerate(ids):
        k = n % 2
        gt = read_label_png(tiny_synthetic.mask_path(image_id))
        classes = np.array(labels[image_id] if n != 2 else [], dtype=np.int16)
        maps = np.stack([(gt == c) * 0.9 + 0.05 for c in classes]) if len(classes) else np.zeros((0, *gt.shape))
        np.savez_compressed(dirs["cam"][k] / f"{image_id}.npz", cams=(maps * 0.5).astype(np.float16), classes=classes)
        np.savez_compressed(dirs["d2cam"][k] / f"{image_id}.npz", cams=maps.astype(np.float16), classes=classes)
        if n > 0:
            np.savez_compressed(dirs["matlabel"][k] / f"{image_id}_alpha.npz", classes=classes,
                                alphas=np.round(maps * 255).astype(np.uint8))
        write_label_png(dirs["matlabel"][k] / f"{image_id}.png", np.where(gt == 255, 0, gt))
        write_label_png(dirs["seg"][k] / f"{image_id}.png", np.where(gt == 255, 0, gt))
    return ids, dirs


def test_load_pipeline_row_reads_the_shards(tiny_synthetic, shards):
    ids, dirs = shards
    row = load_pipeline_row(tiny_synthetic, ids[1], dirs["cam"], dirs["d2cam"], dirs["matlabel"], 0.75, 0.2)
    gt = read_label_png(tiny_synthetic.mask_path(ids[1]))
    k = len(tiny_synthetic.labels()[ids[1]])
    assert row["image"].shape == (H, W, 3)
    assert row["cam"].shape == row["d2cam"].shape == row["trimap"].shape == row["alpha"].shape == (k, H, W)
    np.testing.assert_array_equal(row["trimap"], make_trimaps(row["d2cam"], 0.75, 0.2))
    assert set(np.unique(row["trimap"])) <= {0.0, 0.5, 1.0} and (row["trimap"] == 1.0).any()
    assert row["alpha"].max() == pytest.approx(0.95, abs=1 / 255)  # uint8 alpha back to [0, 1]
    np.testing.assert_array_equal(row["gt"], gt)
    np.testing.assert_array_equal(row["pseudo_label"], np.where(gt == 255, 0, gt))
    assert ids[1] in row["label"]
    assert load_pipeline_row(tiny_synthetic, ids[0], dirs["cam"], dirs["d2cam"], dirs["matlabel"],
                             0.75, 0.2)["alpha"] is None
    with pytest.raises(FileNotFoundError):
        load_pipeline_row(tiny_synthetic, "missing", dirs["cam"], dirs["d2cam"], dirs["matlabel"], 0.75, 0.2)
    seg = load_segmentation_row(tiny_synthetic, ids[1], dirs["seg"])
    np.testing.assert_array_equal(seg["prediction"], np.where(gt == 255, 0, gt))


def _script():
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "scripts" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _smk(tiny_synthetic, dirs, out, ids, rule="figure2"):
    """A stand-in for the injected ``snakemake`` object of rule figure2 or figure5."""
    inputs = {"manifest": str(tiny_synthetic.root.parent / "dataset.json")}
    if rule == "figure2":
        inputs.update(cam=dirs["cam"], d2cam=dirs["d2cam"], matlabel=dirs["matlabel"])
        params = {"ids": ids, "split": "val", "eps_fg": 0.75, "eps_bg": 0.2}
    else:
        inputs["predictions"] = str(dirs["seg"][0])  # evaluate_deeplab's one directory of <id>.png
        params = {"ids": ids, "split": "val"}
    return SimpleNamespace(input=SimpleNamespace(**inputs), output=[str(out / f"{rule}.png")], log=[], rule=rule,
                           threads=1, wildcards=SimpleNamespace(), params=SimpleNamespace(**params))


def test_script_writes_figure2_and_figure5(tmp_path, tiny_synthetic, shards, monkeypatch):
    ids, dirs = shards
    monkeypatch.setattr(runlog, "start", lambda smk: logging.getLogger("test_figures"))  # keep global logging
    script = _script()
    script.main(_smk(tiny_synthetic, dirs, tmp_path / "a", ids[:3]))
    assert 300 <= _png(tmp_path / "a" / "figure2.png")[1] <= 800  # 3 rows
    script.main(_smk(tiny_synthetic, dirs, tmp_path / "b", ids[1:2]))
    h2 = _png(tmp_path / "b" / "figure2.png")[1]
    assert h2 < _png(tmp_path / "a" / "figure2.png")[1]  # one row
    script.main(_smk(tiny_synthetic, dirs, tmp_path / "b", [ids[0], ids[2]], rule="figure5"))  # both in shard0
    w5, h5 = _png(tmp_path / "b" / "figure5.png")
    assert w5 < 800 and h5 > h2  # 3 columns, 2 rows
    with pytest.raises(FileNotFoundError, match=ids[1]):  # not among the predictions
        script.main(_smk(tiny_synthetic, dirs, tmp_path / "c", [ids[1]], rule="figure5"))


def test_script_defaults_to_the_first_ids_with_classes(tmp_path, tiny_synthetic, shards, monkeypatch):
    ids, dirs = shards
    assert len(tiny_synthetic.split_ids("val")) == 4 and default_figure_ids(tiny_synthetic, "val") == ids
    monkeypatch.setattr(runlog, "start", lambda smk: logging.getLogger("test_figures"))
    script = _script()
    script.main(_smk(tiny_synthetic, dirs, tmp_path / "all", []))  # params ids empty: val's first 4 with a class
    script.main(_smk(tiny_synthetic, dirs, tmp_path / "one", ids[:1]))
    h4, h1 = _png(tmp_path / "all" / "figure2.png")[1], _png(tmp_path / "one" / "figure2.png")[1]
    assert 3 * h1 < h4 < 5 * h1, (h1, h4)
