import numpy as np
import pytest
import torch

from matlabel.datasets.layout import labels_from_mask, write_cls_labels
from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset


def test_dataset_items_match_masks(tiny_synthetic):
    ds = VOCLayoutDataset(tiny_synthetic, "train", with_mask=True)
    assert len(ds) == 12
    item = ds[0]
    assert item["image"].shape == (48, 64, 3) and item["image"].dtype == np.uint8
    assert item["label"].shape == (20,)
    present = labels_from_mask(item["mask"], 21)
    assert sorted(np.flatnonzero(item["label"]) + 1) == present == item["classes"]


def test_augment_is_deterministic_and_cropped(tiny_synthetic):
    aug = ClassifierAugment(resize_long=(40, 80), crop=56, hflip=True, seed=3)
    ds = VOCLayoutDataset(tiny_synthetic, "train", transform=aug)
    a, b = ds[5], ds[5]
    assert a["image"].shape == (3, 56, 56)
    assert torch.equal(a["image"], b["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["image"], a["image"])  # another epoch, another draw
    assert a["label"].dtype == torch.float32


def test_image_without_labels_is_reported(tiny_synthetic, tmp_path):
    labels = tiny_synthetic.labels()
    first = tiny_synthetic.split_ids("train")[0]
    backup = dict(labels)
    labels[first] = []
    write_cls_labels(tiny_synthetic.root, labels)
    try:
        with pytest.raises(ValueError, match="no object label"):
            VOCLayoutDataset(tiny_synthetic, "train")
        ds = VOCLayoutDataset(tiny_synthetic, "train", unlabeled="skip")
        assert ds.skipped == [first] and first not in ds.ids and len(ds) == 11
    finally:
        write_cls_labels(tiny_synthetic.root, backup)


def test_missing_image_names_the_file(tiny_synthetic):
    ds = VOCLayoutDataset(tiny_synthetic, "val")
    path = tiny_synthetic.image_path(ds.ids[0])
    moved = path.with_suffix(".bak")
    path.rename(moved)
    try:
        with pytest.raises(FileNotFoundError, match=ds.ids[0]):
            ds[0]
    finally:
        moved.rename(path)
