"""One dataset class for every source in VOC layout (synthetic, VOC 2012 + SBD, COCO 2014), IRN's
classification augmentation, and the images-with-label-maps base of IRN's and DeepLab's training data.

``VOCLayoutDataset(manifest, split)[i]`` → ``{"id", "image" (H, W, 3) uint8, "label" (K-1,) float32
multi-hot over foreground classes, "classes" (list of present class indices), "mask" (H, W) uint8 if
with_mask}``. Image-level labels come from ``cls_labels.json`` (``manifest.labels_path``, written from masks
or annotations when the dataset was prepared).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from matlabel.datasets.layout import Manifest
from matlabel.io import read_image, read_label_png
from matlabel.shards import index_shards


class VOCLayoutDataset(torch.utils.data.Dataset):
    """Images, image-level labels and (optionally) masks of one split.

    Raises at construction, naming the file, when a listed image has no entry in ``cls_labels.json``.
    An image whose entry is empty (no foreground class: ~1% of COCO, none of VOC's train_aug) gives
    the classifier nothing to learn: ``unlabeled="error"`` raises, ``"skip"`` drops it and records its
    id in ``self.skipped`` for the caller to report.
    """

    def __init__(self, manifest: Manifest, split: str, ids: list[str] | None = None, with_mask: bool = False,
                 mask_dir: str | None = None, transform=None, unlabeled: str = "error"):
        self.manifest = manifest
        self.ids = list(ids) if ids is not None else manifest.split_ids(split)
        self.with_mask = with_mask
        self.mask_dir = mask_dir
        self.transform = transform
        self.epoch = 0
        labels = manifest.labels()
        labels_file = manifest.labels_path
        missing = [i for i in self.ids if i not in labels]
        if missing:
            raise ValueError(f"{labels_file}: no image-level labels for {len(missing)} image(s) of split '{split}', "
                             f"e.g. {missing[:3]}; re-run the dataset preparation rule")
        empty = [i for i in self.ids if not labels[i]]
        self.skipped = empty if unlabeled == "skip" else []
        if unlabeled == "skip":
            self.ids = [i for i in self.ids if labels[i]]
        if empty and unlabeled != "skip":
            raise ValueError(f"{labels_file}: {len(empty)} image(s) of split '{split}' have no object label, e.g. "
                             f"{empty[:3]}; remove them from ImageSets/Segmentation/{split}.txt")
        self.classes = {i: labels[i] for i in self.ids}

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        """Make the augmentation of epoch ``epoch`` (random draws are keyed by (epoch, index))."""
        self.epoch = epoch

    def multi_hot(self, classes) -> np.ndarray:
        y = np.zeros(self.manifest.num_classes - 1, dtype=np.float32)
        y[np.asarray(classes, dtype=np.int64) - 1] = 1.0
        return y

    def __getitem__(self, i: int) -> dict:
        image_id = self.ids[i]
        path = self.manifest.image_path(image_id)
        if not path.exists():
            raise FileNotFoundError(f"{path}: listed in a split but missing; re-extract the dataset or fix the list")
        item = {"id": image_id, "image": read_image(path), "classes": self.classes[image_id],
                "label": self.multi_hot(self.classes[image_id]), "index": i}
        if self.with_mask:
            item["mask"] = read_label_png(self.manifest.mask_path(image_id, self.mask_dir))
        if self.transform is not None:
            item = self.transform(item, np.random.default_rng([self.transform.seed, self.epoch, i]))
        return item


class ClassifierAugment:
    """IRN's classification augmentation (jiwoon-ahn/irn voc12/dataloader.py VOC12ClassificationDataset).

    Random resize of the long side to an integer in ``resize_long`` (bicubic), horizontal flip, ImageNet
    normalisation, random crop of ``crop``×``crop`` padded with zeros (= the mean colour after
    normalisation). Draws come from the generator passed in, keyed by (seed, epoch, index), so the
    augmentation does not depend on the number of DataLoader workers.
    """

    def __init__(self, resize_long=(320, 640), crop: int = 512, hflip: bool = True, seed: int = 0):
        self.resize_long, self.crop, self.hflip, self.seed = tuple(resize_long), int(crop), hflip, seed

    def __call__(self, item: dict, rng: np.random.Generator) -> dict:
        from matlabel.cam import normalize

        img = item["image"]
        h, w = img.shape[:2]
        target = int(rng.integers(self.resize_long[0], self.resize_long[1] + 1))
        scale = target / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = np.array(Image.fromarray(img).resize(size, Image.BICUBIC))
        if self.hflip and rng.random() < 0.5:
            img = img[:, ::-1].copy()
        x = normalize(img)
        out = torch.zeros((3, self.crop, self.crop))
        ch, cw = min(self.crop, x.shape[1]), min(self.crop, x.shape[2])
        # IRN's random_crop: a random window of the image and a random place for it inside the crop
        sy, sx = int(rng.integers(0, x.shape[1] - ch + 1)), int(rng.integers(0, x.shape[2] - cw + 1))
        dy, dx = int(rng.integers(0, self.crop - ch + 1)), int(rng.integers(0, self.crop - cw + 1))
        out[:, dy:dy + ch, dx:dx + cw] = x[:, sy:sy + ch, sx:sx + cw]
        return {"id": item["id"], "image": out, "label": torch.from_numpy(item["label"]), "index": item["index"]}


class LabelledImages(torch.utils.data.Dataset):
    """Images of ``split`` (or ``ids``), each with a label map (0 background, 1..K-1 classes, 255 ignore): the
    training data of IRN (``matlabel.irn.IRNDataset``) and DeepLab (``matlabel.deeplab.SegDataset``), which turn
    ``read(i)`` into an augmented item with ``rng(i)``.

    label_dirs : directories holding ``{id}.png`` label maps (palette PNGs), e.g. the shard directories of a label
        rule; every image must have one (a missing one raises here, naming examples). ``None``: the manifest's
        ground-truth masks.
    seed : the draws of item i in epoch e come from ``default_rng([seed, e, i])``, so an item does not depend on the
        worker, the batch order or earlier items; ``set_epoch`` selects e.
    what : what the labels are, for the message of a missing one.
    """

    def __init__(self, manifest: Manifest, split: str, label_dirs: Sequence[str | os.PathLike] | None = None,
                 seed: int = 0, ids: Sequence[str] | None = None, what: str = "label PNG"):
        self.manifest = manifest
        self.ids = list(ids) if ids is not None else manifest.split_ids(split)
        self.seed = seed
        self.epoch = 0
        if label_dirs is None:
            self.label_paths = {i: manifest.mask_path(i) for i in self.ids}
        else:
            # one listing per directory instead of a lookup per item
            self.label_paths = index_shards(label_dirs, self.ids, ".png", f"{what} of split '{split}'")

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of epoch ``epoch``."""
        self.epoch = epoch

    def read(self, i: int) -> tuple[str, np.ndarray, np.ndarray]:
        """(id, (H, W, 3) uint8 image, (H, W) uint8 label) of item ``i``; raises naming the label file when the two
        differ in size."""
        image_id = self.ids[i]
        image = read_image(self.manifest.image_path(image_id))
        path = self.label_paths[image_id]
        label = read_label_png(path)
        if label.shape != image.shape[:2]:
            raise ValueError(f"{path}: label {label.shape} and image {image.shape[:2]} differ in size")
        return image_id, image, label

    def rng(self, i: int) -> np.random.Generator:
        """The generator of item ``i``'s draws in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, i])
