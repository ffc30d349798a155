"""prepare_voc12 on a hand-made 6-image VOCtrainval tar and SBD benchmark.tgz (no internet)."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from matlabel.datasets.layout import VOC_CLASSES, load_manifest, read_split
from matlabel.datasets.voc12 import (
    build_train_aug_list,
    labels_from_xml,
    prepare_voc12,
    sbd_mat_to_label,
)
from matlabel.io import read_label_png, voc_palette

H, W = 6, 8
# id: object class names in its annotation (the first one also fills its masks)
OBJECTS = {
    "2007_000032": ["aeroplane", "aeroplane", "person"],
    "2007_000039": ["tvmonitor"],
    "2008_000001": ["dog", "cat"],
    "2008_000002": ["bus"],
    "2009_000003": ["horse", "person"],
    "2010_000004": ["boat"],
}
VOC_TRAIN, VOC_VAL = ["2007_000032", "2007_000039"], ["2008_000001", "2008_000002"]
SBD_TRAIN, SBD_VAL = ["2007_000039", "2008_000001", "2009_000003"], ["2010_000004", "2008_000002"]
EXPECTED_TRAIN_AUG = ["2007_000032", "2007_000039", "2009_000003", "2010_000004"]
CLS = {name: i for i, name in enumerate(VOC_CLASSES)}


def _voc_mask(image_id):
    mask = np.zeros((H, W), np.uint8)
    mask[1:5, 2:7] = CLS[OBJECTS[image_id][0]]
    mask[0, :] = 255  # VOC's object borders: must survive the copy into SegmentationClassAug
    return mask


def _sbd_mask(image_id):
    mask = np.zeros((H, W), np.uint8)
    mask[2:, :4] = CLS[OBJECTS[image_id][0]]
    return mask


def _png(mask):
    img = Image.fromarray(mask, mode="P")
    img.putpalette(voc_palette().flatten().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpg():
    buf = io.BytesIO()
    Image.new("RGB", (W, H), (120, 30, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def _xml(image_id):
    objects = "".join(
        f"<object><name>{name}</name><difficult>{int(name == 'dog')}</difficult>"
        + ("<part><name>hand</name></part><part><name>head</name></part>" if name == "person" else "")
        + "</object>"
        for name in OBJECTS[image_id])
    return (f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>{W}</width><height>{H}</height><depth>3</depth></size>{objects}</annotation>").encode()


def _mat(tmp_path, mask):
    path = tmp_path / "tmp.mat"
    scipy.io.savemat(path, {"GTcls": {"Segmentation": mask, "Boundaries": np.zeros((20, 1), dtype=object),
                                      "CategoriesPresent": np.unique(mask[mask > 0]).astype(np.uint8)}})
    return path.read_bytes()


def _tar(path, files, mode):
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _lines(ids):
    return "".join(f"{i}\n" for i in ids).encode()


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voc_archives")
    root = "VOCdevkit/VOC2012"
    voc = {f"{root}/ImageSets/Segmentation/train.txt": _lines(VOC_TRAIN),
           f"{root}/ImageSets/Segmentation/val.txt": _lines(VOC_VAL),
           f"{root}/ImageSets/Segmentation/trainval.txt": _lines(VOC_TRAIN + VOC_VAL)}
    for image_id in OBJECTS:
        voc[f"{root}/JPEGImages/{image_id}.jpg"] = _jpg()
        voc[f"{root}/Annotations/{image_id}.xml"] = _xml(image_id)
    for image_id in VOC_TRAIN + VOC_VAL:
        voc[f"{root}/SegmentationClass/{image_id}.png"] = _png(_voc_mask(image_id))
    sbd_root = "benchmark_RELEASE/dataset"
    sbd = {f"{sbd_root}/train.txt": _lines(SBD_TRAIN), f"{sbd_root}/val.txt": _lines(SBD_VAL)}
    for image_id in SBD_TRAIN + SBD_VAL:
        sbd[f"{sbd_root}/cls/{image_id}.mat"] = _mat(tmp, _sbd_mask(image_id))
        sbd[f"{sbd_root}/inst/{image_id}.mat"] = _mat(tmp, _sbd_mask(image_id))
        sbd[f"{sbd_root}/img/{image_id}.jpg"] = _jpg()
    return _tar(tmp / "VOCtrainval_11-May-2012.tar", voc, "w"), _tar(tmp / "benchmark.tgz", sbd, "w:gz")


@pytest.fixture(scope="module")
def prepared(archives, tmp_path_factory):
    out = tmp_path_factory.mktemp("voc_out")
    return out, prepare_voc12(*archives, out)


def test_train_aug_rule():
    assert build_train_aug_list(SBD_TRAIN, SBD_VAL, VOC_TRAIN, VOC_VAL) == EXPECTED_TRAIN_AUG


def test_manifest_and_splits(prepared):
    out, manifest_path = prepared
    assert manifest_path == out / "dataset.json"
    manifest = load_manifest(manifest_path)
    assert manifest.name == "voc12" and manifest.num_classes == 21 and manifest.class_names == VOC_CLASSES
    assert manifest.root == (out / "VOCdevkit" / "VOC2012").resolve()
    assert manifest.mask_dir == "SegmentationClassAug"
    assert manifest.splits == {"train": 2, "val": 2, "train_aug": 4}
    assert read_split(manifest.root, "train_aug") == EXPECTED_TRAIN_AUG
    assert read_split(manifest.root, "val") == VOC_VAL
    assert not (out / "_work").exists()
    assert all(manifest.image_path(i).is_file() for i in OBJECTS)


def test_aug_masks_prefer_voc_and_convert_sbd(prepared):
    manifest = load_manifest(prepared[1])
    aug = sorted(p.stem for p in (manifest.root / "SegmentationClassAug").iterdir())
    assert aug == sorted(EXPECTED_TRAIN_AUG + VOC_VAL)
    for image_id in VOC_TRAIN + VOC_VAL:  # VOC mask wins, 255 borders kept (2007_000039 is also in SBD)
        np.testing.assert_array_equal(read_label_png(manifest.mask_path(image_id)), _voc_mask(image_id))
    for image_id in ("2009_000003", "2010_000004"):  # SBD only: converted from GTcls.Segmentation
        path = manifest.mask_path(image_id)
        assert Image.open(path).mode == "P"
        np.testing.assert_array_equal(read_label_png(path), _sbd_mask(image_id))


def test_cls_labels_follow_irn(prepared):
    manifest = load_manifest(prepared[1])
    labels = manifest.labels()
    assert sorted(labels) == sorted(EXPECTED_TRAIN_AUG + VOC_VAL)  # train ⊂ train_aug
    assert labels["2007_000032"] == [CLS["aeroplane"], CLS["person"]]  # parts (hand, head) are no classes
    assert labels["2008_000001"] == [CLS["cat"], CLS["dog"]]  # difficult objects count
    assert labels["2007_000039"] == [20]
    assert json.loads((manifest.root / "cls_labels.json").read_text())["2010_000004"] == [CLS["boat"]]


def test_rerun_replaces_the_tree(archives, tmp_path):
    prepare_voc12(*archives, tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/stale.txt").write_text("old")
    manifest = prepare_voc12(*archives, tmp_path)
    assert manifest.is_file() and not (tmp_path / "VOCdevkit/VOC2012/stale.txt").exists()


def test_labels_from_xml_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        labels_from_xml(tmp_path / "nope.xml")


def test_bad_sbd_mat_names_the_file(tmp_path):
    bad = tmp_path / "2009_000003.mat"
    bad.write_bytes(b"not a mat file" * 20)
    with pytest.raises(ValueError, match="2009_000003.mat"):
        sbd_mat_to_label(bad)
    scipy.io.savemat(bad, {"GTcls": {"Segmentation": np.full((3, 3), 40, np.uint8)}})
    with pytest.raises(ValueError, match="0..20"):
        sbd_mat_to_label(bad)


def test_the_shared_loader_reads_prepared_voc(prepared):
    from matlabel.datasets.loader import VOCLayoutDataset

    manifest = load_manifest(prepared[1])
    ds = VOCLayoutDataset(manifest, "train_aug", with_mask=True)
    for item in (ds[0], ds[len(ds) - 1]):
        assert item["label"].shape == (20,) and item["mask"].shape == item["image"].shape[:2]
        assert item["classes"] and item["label"].sum() == len(item["classes"])
