"""Training data of the segmentation network: images with pseudo-label (or ground-truth) maps, and DeepLab's
augmentation (kazuto1011/deeplab-pytorch libs/datasets/base.py ``_BaseDataset._augmentation``).

``SegDataset(manifest, split, label_dirs)[i]`` → ``{"id", "index", "image" (3, crop, crop) float32 RGB in 0..255
(the model normalises), "label" (crop, crop) int64 with 255 = ignore}``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from matlabel.datasets.layout import IGNORE_INDEX, Manifest
from matlabel.datasets.loader import LabelledImages
from matlabel.deeplab.model import CAFFE_MEAN_RGB

cv2.setNumThreads(0)  # as libs/datasets/base.py: no OpenCV thread pool inside DataLoader workers


def augment(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, crop: int, scales: Sequence[float],
            hflip: bool, pad_rgb: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """DeepLab's training augmentation (libs/datasets/base.py ``_augmentation``, ``base_size`` None).

    1. rescale by a factor drawn from ``scales`` to (int(h*s), int(w*s)): image bilinear (cv2 INTER_LINEAR on
       floats), label PIL NEAREST;
    2. pad bottom/right to at least ``crop`` x ``crop``: image with ``pad_rgb`` (the mean pixel, zero after
       normalisation), label with 255;
    3. random ``crop`` x ``crop`` window (offsets uniform over the valid range, inclusive);
    4. horizontal flip with probability 0.5 if ``hflip``.

    The draws come from ``rng`` in this order: scale, top, left, flip. Returns ((crop, crop, 3) float32 RGB,
    (crop, crop) int64).
    """
    h, w = label.shape
    s = float(scales[int(rng.integers(len(scales)))])
    nh, nw = int(h * s), int(w * s)
    img = image.astype(np.float32)
    if (nh, nw) != (h, w):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        label = np.asarray(Image.fromarray(label).resize((nw, nh), resample=Image.NEAREST))
    lab = label.astype(np.int64)
    ph, pw = max(crop - nh, 0), max(crop - nw, 0)
    if ph or pw:
        img = np.concatenate([img, np.broadcast_to(np.asarray(pad_rgb, np.float32), (nh, pw, 3))], axis=1)
        img = np.concatenate([img, np.broadcast_to(np.asarray(pad_rgb, np.float32), (ph, nw + pw, 3))], axis=0)
        lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
    hh, ww = lab.shape
    top = int(rng.integers(0, hh - crop + 1))
    left = int(rng.integers(0, ww - crop + 1))
    img = img[top:top + crop, left:left + crop]
    lab = lab[top:top + crop, left:left + crop]
    if hflip and rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


class SegDataset(LabelledImages):
    """Images of ``split`` with their label maps (``LabelledImages``), augmented for DeepLab training.

    Parameters
    ----------
    manifest, split : the dataset and the split whose images are used (e.g. ``train_aug``).
    label_dirs : directories holding the pseudo-labels ``{id}.png`` (palette PNGs, 255 = ignore), e.g. the shard
        directories of a label rule; ``None`` trains on the manifest's ground-truth masks (the fully supervised
        upper bound). Every image of the split must have a label: a missing one raises here, naming examples.
    crop, scales, hflip : augmentation (``SegConfig`` crop/scales/hflip; configs/voc12.yaml 321,
        [0.5, 0.75, 1, 1.25, 1.5], flip).
    seed : the draws of image i in epoch e come from ``default_rng([seed, e, i])``, so they do not depend on the
        worker, the batch order or earlier items; ``set_epoch`` selects e.
    pad_rgb : padding colour, the model's ``mean_rgb`` (default the reference's Caffe mean pixel).
    ids : use these image ids instead of the split list.
    """

    def __init__(self, manifest: Manifest, split: str, label_dirs: Sequence[str | os.PathLike] | None = None,
                 crop: int = 321, scales: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5), hflip: bool = True,
                 seed: int = 0, pad_rgb: Sequence[float] = CAFFE_MEAN_RGB, ids: Sequence[str] | None = None):
        if crop < 1:
            raise ValueError(f"crop must be >= 1, got {crop}")
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be a non-empty list of factors > 0, got {scales}")
        super().__init__(manifest, split, label_dirs, seed, ids, what="pseudo-label PNG")
        self.crop, self.hflip = crop, bool(hflip)
        self.pad_rgb = tuple(float(v) for v in pad_rgb)

    def __getitem__(self, i: int) -> dict:
        image_id, image, label = self.read(i)
        bad = (label >= self.manifest.num_classes) & (label != IGNORE_INDEX)
        if bad.any():
            raise ValueError(f"{self.label_paths[image_id]}: label values {np.unique(label[bad]).tolist()} outside "
                             f"0..{self.manifest.num_classes - 1} and {IGNORE_INDEX}")
        img, lab = augment(image, label, self.rng(i), self.crop, self.scales, self.hflip, self.pad_rgb)
        return {"id": image_id, "index": i, "image": torch.from_numpy(img.transpose(2, 0, 1).copy()),
                "label": torch.from_numpy(lab)}
