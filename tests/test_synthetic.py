"""Tests of the synthetic VOC-layout dataset (matlabel.datasets.synthetic), at tiny image sizes."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from matlabel.datasets.layout import IGNORE_INDEX, VOC_CLASSES, labels_from_mask, read_split
from matlabel.datasets.synthetic import (
    FAMILIES,
    SyntheticConfig,
    class_style,
    context_family,
    draw_object,
    generate,
    make_example,
    plan_scene,
    image_rng,
)
from matlabel.io import read_label_png

TINY = dict(width=64, height=48, border_px=2, thin_px=2, edge_blur=0.8)
SMALL = dict(width=160, height=120, border_px=3, thin_px=3, edge_blur=1.0)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    cfg = SyntheticConfig(n_train=8, n_val=4, **TINY)
    sizes = generate(root, cfg, progress=False)
    return root, cfg, sizes


def _examples(cfg, n, seed=None):
    return [make_example(cfg, cfg.seed if seed is None else seed, i) for i in range(n)]


def test_layout_and_formats(tiny_root):
    root, cfg, sizes = tiny_root
    assert sizes == {"train": 8, "val": 4, "train_aug": 8}
    train, val = read_split(root, "train"), read_split(root, "val")
    assert train == [f"syn_train_{i:06d}" for i in range(8)]
    assert val == [f"syn_val_{i:06d}" for i in range(4)]
    assert read_split(root, "train_aug") == train
    labels = json.loads((root / "cls_labels.json").read_text())
    assert sorted(labels) == sorted(train + val)
    for ident in train + val:
        with Image.open(root / "JPEGImages" / f"{ident}.jpg") as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (64, 48)
        with Image.open(root / "SegmentationClass" / f"{ident}.png") as png:
            assert png.format == "PNG" and png.mode == "P" and png.size == (64, 48)


def test_labels_equal_mask_classes_and_values(tiny_root):
    root, cfg, _ = tiny_root
    labels = json.loads((root / "cls_labels.json").read_text())
    allowed = {0, IGNORE_INDEX, *cfg.classes}
    for ident, lab in labels.items():
        mask = read_label_png(root / "SegmentationClass" / f"{ident}.png")
        assert set(np.unique(mask).tolist()) <= allowed
        assert lab, f"{ident} has no label"
        assert lab == labels_from_mask(mask, len(VOC_CLASSES))


def test_generate_is_deterministic(tmp_path):
    cfg = SyntheticConfig(n_train=3, n_val=2, **TINY)
    generate(tmp_path / "a", cfg, progress=False)
    generate(tmp_path / "b", cfg, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 2 * 5 + 3 + 1
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_different_seed_differs_and_val_differs_from_train(tmp_path):
    cfg = SyntheticConfig(n_train=3, n_val=3, **TINY)
    other = SyntheticConfig(n_train=3, n_val=3, seed=7, val_seed=8, **TINY)
    generate(tmp_path / "a", cfg, progress=False)
    generate(tmp_path / "b", other, progress=False)
    for i in range(3):
        a = (tmp_path / "a" / "SegmentationClass" / f"syn_train_{i:06d}.png").read_bytes()
        b = (tmp_path / "b" / "SegmentationClass" / f"syn_train_{i:06d}.png").read_bytes()
        v = (tmp_path / "a" / "SegmentationClass" / f"syn_val_{i:06d}.png").read_bytes()
        assert a != b and a != v
    assert (tmp_path / "a" / "cls_labels.json").read_bytes() != (tmp_path / "b" / "cls_labels.json").read_bytes()


def test_image_does_not_depend_on_call_order():
    cfg = SyntheticConfig(**TINY)
    first = make_example(cfg, 0, 5)
    _examples(cfg, 5)
    again = make_example(cfg, 0, 5)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.mask, again.mask)


def test_regenerating_smaller_removes_stale_files(tmp_path):
    generate(tmp_path, SyntheticConfig(n_train=4, n_val=2, **TINY), progress=False)
    generate(tmp_path, SyntheticConfig(n_train=2, n_val=1, **TINY), progress=False)
    assert sorted(p.stem for p in (tmp_path / "JPEGImages").iterdir()) == [
        "syn_train_000000", "syn_train_000001", "syn_val_000000"]
    assert len(list((tmp_path / "SegmentationClass").iterdir())) == 3


def test_void_band_exists_and_can_be_switched_off():
    with_band = _examples(SyntheticConfig(**SMALL), 6)
    assert all((e.mask == IGNORE_INDEX).any() for e in with_band)
    for e in with_band:  # the band hugs objects (slivers of objects can vanish into it entirely)
        fg = ((e.mask > 0) & (e.mask != IGNORE_INDEX)).astype(np.uint8)
        near = cv2.dilate(fg, np.ones((2 * 3 + 1,) * 2, np.uint8)).astype(bool)
        assert near[e.mask == IGNORE_INDEX].mean() > 0.98
        assert (e.mask == IGNORE_INDEX).mean() < 0.2
    without = _examples(SyntheticConfig(**{**SMALL, "border_px": 0}), 6)
    assert not any((e.mask == IGNORE_INDEX).any() for e in without)


def test_many_classes_appear():
    seen = set()
    for e in _examples(SyntheticConfig(**TINY), 20):
        seen.update(e.labels)
    assert len(seen) >= 5


def test_touching_objects_of_two_classes():
    cfg = SyntheticConfig(min_objects=2, max_objects=3, p_touch=1.0, **SMALL)
    found = 0
    for e in _examples(cfg, 10):
        assert any(o.touches >= 0 and o.cls != e.plan.objects[o.touches].cls for o in e.plan.objects[1:])
        fg = e.labels
        for i, a in enumerate(fg):
            grown = cv2.dilate((e.mask == a).astype(np.uint8), np.ones((cfg.border_px + 3,) * 2, np.uint8))
            if any((grown.astype(bool) & (e.mask == b)).any() for b in fg[i + 1:]):
                found += 1
                break
    assert found >= 5


def _opened_away(cfg, n=10):
    """Foreground pixels removed by a 5x5 opening, summed over ``n`` images."""
    kernel = np.ones((5, 5), np.uint8)
    removed = 0
    for e in _examples(cfg, n):
        fg = ((e.mask > 0) & (e.mask != IGNORE_INDEX)).astype(np.uint8)
        removed += int((fg.astype(bool) & ~cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel).astype(bool)).sum())
    return removed


def test_thin_structures_survive_in_the_mask():
    with_thin = _opened_away(SyntheticConfig(p_thin=1.0, **SMALL))
    without = _opened_away(SyntheticConfig(p_thin=0.0, **SMALL))
    assert with_thin > 0 and with_thin > 3 * max(without, 1)


def test_context_knob_picks_class_background():
    cfg = SyntheticConfig(p_context=1.0, **TINY)
    for i in range(40):
        plan = plan_scene(image_rng(cfg.seed, i), cfg)
        assert plan.background == context_family(cfg, plan.objects[0].cls)
    for e in _examples(cfg, 5):
        assert e.plan.background == context_family(cfg, e.plan.objects[0].cls)
    free = SyntheticConfig(p_context=0.0, **TINY)
    families = {plan_scene(image_rng(0, i), free).background for i in range(40)}
    assert len(families) >= 5 and families <= set(FAMILIES)
    assert len({context_family(cfg, c) for c in cfg.classes}) == len(cfg.classes)


def test_parts_are_class_specific():
    cfg = SyntheticConfig()
    styles = [class_style(cfg, c) for c in cfg.classes]
    assert len({(kind, round(tilt, 3)) for _, _, kind, tilt in styles}) == len(cfg.classes)
    brights = np.stack([s[0] for s in styles])
    dist = np.linalg.norm(brights[:, None] - brights[None], axis=-1)
    assert dist[~np.eye(len(styles), dtype=bool)].min() > 0.3


def test_soft_edges_follow_edge_blur():
    canvas = np.full((120, 160, 3), 0.5, np.float32)
    plan = plan_scene(image_rng(0, 0), SyntheticConfig(**SMALL))
    obj = plan.objects[0]
    _, _, soft, _ = draw_object(image_rng(0, 0, 9), SyntheticConfig(**SMALL), obj, canvas)
    _, _, hard, _ = draw_object(image_rng(0, 0, 9), SyntheticConfig(**{**SMALL, "edge_blur": 0.0}), obj, canvas)
    assert ((soft > 0.05) & (soft < 0.95)).sum() > 50
    assert set(np.unique(hard).tolist()) <= {0.0, 1.0}


def test_camouflage_pulls_body_colour_to_background():
    def gap(p):
        cfg = SyntheticConfig(p_camouflage=p, p_thin=0.0, min_objects=1, max_objects=1, **SMALL)
        out = []
        for e in _examples(cfg, 12):
            img = e.image.astype(np.float32)
            out.append(np.abs(img[e.mask == e.labels[0]].mean(0) - img[e.mask == 0].mean(0)).sum())
        return float(np.mean(out))

    assert gap(1.0) < 0.7 * gap(0.0)


def test_tiny_images_with_default_pixel_sizes():
    cfg = SyntheticConfig(width=64, height=48)
    for e in _examples(cfg, 5):
        assert e.image.shape == (48, 64, 3) and e.image.dtype == np.uint8
        assert e.mask.shape == (48, 64) and e.labels


def test_config_validation():
    assert SyntheticConfig.from_mapping({"classes": [1, 2, 3], "n_train": 5}).classes == (1, 2, 3)
    with pytest.raises(ValueError, match="unknown synthetic dataset keys"):
        SyntheticConfig.from_mapping({"n_trian": 5})
    with pytest.raises(ValueError, match="val_seed"):
        SyntheticConfig(seed=3, val_seed=3)
    with pytest.raises(ValueError, match="p_touch"):
        SyntheticConfig(p_touch=1.5)
    with pytest.raises(ValueError, match="classes"):
        SyntheticConfig(classes=(1, 21))
    with pytest.raises(ValueError, match="min_objects"):
        SyntheticConfig(min_objects=3, max_objects=2)


@pytest.mark.parametrize("text, message", [
    ("\n\n", r"val.txt: split list is empty"),
    ("a\nb\n\na extra field\n", r"val.txt: id 'a' listed twice \(lines 1 and 4\)"),
])
def test_read_split_refuses_empty_and_repeated_lists(tmp_path, text, message):
    # every dataset reads its splits here: an empty evaluation list scored NaN and a repeated id counted twice
    path = tmp_path / "ImageSets" / "Segmentation" / "val.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_split(tmp_path, "val")
    path.write_text("a\n\nb  0\n")
    assert read_split(tmp_path, "val") == ["a", "b"]


def test_cls_labels_out_of_range_names_file_and_image(tmp_path):
    from matlabel.datasets.layout import load_manifest, write_cls_labels, write_manifest
    write_cls_labels(tmp_path, {"a": [1, 2], "b": [37]})
    write_manifest(tmp_path / "dataset.json", "tiny", tmp_path, ["background", "cat", "dog"], "SegmentationClass", {})
    with pytest.raises(ValueError, match=r"cls_labels.json: image 'b' has class\(es\) \[37\], outside 1..2"):
        load_manifest(tmp_path / "dataset.json").labels()
    write_cls_labels(tmp_path, {"a": [1, 2], "b": []})
    assert load_manifest(tmp_path / "dataset.json").labels() == {"a": [1, 2], "b": []}
