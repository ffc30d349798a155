"""prepare_coco14 on hand-made 3-image COCO zips with 2 categories and a crowd region (no internet)."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from matlabel.datasets.coco14 import annotation_mask, coco_category_map, prepare_coco14
from matlabel.datasets.layout import load_manifest, read_split
from matlabel.io import read_label_png

H, W = 16, 20
PERSON, DOG = 1, 2  # contiguous indices of COCO ids 1 and 18
TRAIN_9, TRAIN_25, VAL_42 = "COCO_train2014_000000000009", "COCO_train2014_000000000025", "COCO_val2014_000000000042"
# COCO's 80 category ids (1..90 with gaps), as in ReCAM's category_map
COCO_IDS = [*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70, *range(72, 83),
            *range(84, 91)]


def _rect(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _image(image_id, split):
    return {"id": image_id, "file_name": f"COCO_{split}2014_{image_id:012d}.jpg", "height": H, "width": W}


CATEGORIES = [{"id": 18, "name": "dog", "supercategory": "animal"},  # deliberately not in id order
              {"id": 1, "name": "person", "supercategory": "person"}]
CROWD_DOG = {"id": 4, "image_id": 9, "category_id": 18, "iscrowd": 1,  # columns 12..19, uncompressed RLE
             "segmentation": {"size": [H, W], "counts": [12 * H, 8 * H]}}
TRAIN = {
    "images": [_image(25, "train"), _image(9, "train")],
    "annotations": [
        {"id": 1, "image_id": 25, "category_id": 18, "iscrowd": 0, "segmentation": _rect(2, 2, 12, 10)},
        {"id": 2, "image_id": 9, "category_id": 1, "iscrowd": 0, "segmentation": _rect(1, 1, 8, 8)},
        {"id": 3, "image_id": 25, "category_id": 1, "iscrowd": 0, "segmentation": _rect(8, 6, 16, 14)},
        CROWD_DOG,
    ],
    "categories": CATEGORIES,
}
VAL = {"images": [_image(42, "val")], "annotations": [], "categories": CATEGORIES}


def _jpg():
    buf = io.BytesIO()
    Image.new("RGB", (W, H), (10, 200, 90)).save(buf, format="JPEG")
    return buf.getvalue()


def _zip(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coco_zips")
    train = _zip(tmp / "train2014.zip", {f"train2014/{im['file_name']}": _jpg() for im in TRAIN["images"]})
    val = _zip(tmp / "val2014.zip", {f"val2014/{im['file_name']}": _jpg() for im in VAL["images"]})
    ann = _zip(tmp / "annotations_trainval2014.zip", {
        "annotations/instances_train2014.json": json.dumps(TRAIN),
        "annotations/instances_val2014.json": json.dumps(VAL),
        "annotations/captions_train2014.json": "{}",
    })
    return train, val, ann


@pytest.fixture(scope="module")
def prepared(zips, tmp_path_factory):
    out = tmp_path_factory.mktemp("coco_out")
    return out, prepare_coco14(*zips, out)


def test_category_map_matches_recam():
    category_map = coco_category_map([{"id": i} for i in reversed(COCO_IDS)])
    assert len(category_map) == 80 and sorted(category_map.values()) == list(range(1, 81))
    picks = (category_map[1], category_map[13], category_map[27], category_map[46], category_map[90])
    assert picks == (1, 12, 25, 41, 80)


def test_manifest_splits_and_images(prepared):
    out, manifest_path = prepared
    manifest = load_manifest(manifest_path)
    assert manifest_path == out / "dataset.json" and manifest.root == (out / "COCO2014").resolve()
    assert manifest.name == "coco14" and manifest.class_names == ("background", "person", "dog")
    assert manifest.num_classes == 3 and manifest.mask_dir == "SegmentationClass"
    assert manifest.splits == {"train": 2, "val": 1}
    assert read_split(manifest.root, "train") == [TRAIN_9, TRAIN_25]  # sorted by image id
    assert read_split(manifest.root, "val") == [VAL_42]
    assert sorted(p.name for p in (manifest.root / "JPEGImages").iterdir()) == [
        f"{TRAIN_9}.jpg", f"{TRAIN_25}.jpg", f"{VAL_42}.jpg"]
    assert not (out / "_work").exists()


def test_masks_paint_non_crowd_in_annotation_order(prepared):
    manifest = load_manifest(prepared[1])
    m25 = read_label_png(manifest.mask_path(TRAIN_25))
    assert m25.shape == (H, W) and set(np.unique(m25)) == {0, PERSON, DOG}
    assert m25[4, 4] == DOG and m25[12, 14] == PERSON and m25[0, 0] == 0
    assert m25[8, 10] == PERSON  # overlap: the later annotation (person) overwrites the dog
    m9 = read_label_png(manifest.mask_path(TRAIN_9))
    assert m9[4, 4] == PERSON
    assert annotation_mask(CROWD_DOG, H, W)[5, 15] == 1 and m9[5, 15] == 0  # crowd region stays background
    assert not read_label_png(manifest.mask_path(VAL_42)).any()


def test_labels_include_crowd_and_keep_unannotated_images(prepared):
    labels = load_manifest(prepared[1]).labels()
    assert labels == {TRAIN_9: [PERSON, DOG], TRAIN_25: [PERSON, DOG], VAL_42: []}


def test_limit_keeps_the_first_images_only(zips, tmp_path):
    manifest = load_manifest(prepare_coco14(*zips, tmp_path, limit=1))
    assert manifest.splits == {"train": 1, "val": 1}
    assert sorted(p.stem for p in (manifest.root / "JPEGImages").iterdir()) == [TRAIN_9, VAL_42]
    assert sorted(manifest.labels()) == [TRAIN_9, VAL_42]


def test_worker_processes_give_the_same_masks(zips, prepared, tmp_path):
    manifest = load_manifest(prepare_coco14(*zips, tmp_path, workers=2))
    reference = load_manifest(prepared[1])
    for stem in (TRAIN_9, TRAIN_25, VAL_42):
        np.testing.assert_array_equal(read_label_png(manifest.mask_path(stem)),
                                      read_label_png(reference.mask_path(stem)))


def test_the_shared_loader_reads_prepared_coco(prepared):
    from matlabel.datasets.loader import VOCLayoutDataset

    manifest = load_manifest(prepared[1])
    ds = VOCLayoutDataset(manifest, "train", with_mask=True)
    item = ds[0]
    assert item["label"].shape == (manifest.num_classes - 1,) and item["mask"].shape == item["image"].shape[:2]
    assert sorted(np.flatnonzero(item["label"]) + 1) == item["classes"]
    with pytest.raises(ValueError, match="no object label"):
        VOCLayoutDataset(manifest, "val")  # the unannotated val image stops classifier-style loading ...
    assert len(VOCLayoutDataset(manifest, "val", unlabeled="skip")) == 0  # ... unless skipped, as training does
