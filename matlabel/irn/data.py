"""IRN's training data: images, confident-region labels and their relation labels
(jiwoon-ahn/irn voc12/dataloader.py ``VOC12AffinityDataset`` / ``VOC12SegmentationDataset``).

Augmentation (IRN step/train_irn.py: ``rescale=(0.5, 1.5)``, ``hor_flip=True``, ``crop_size=512``,
``crop_method="random"``): image and label rescaled by one factor drawn uniformly from (0.5, 1.5) (bicubic /
nearest, misc/imutils.py ``random_scale``), ImageNet normalisation, horizontal flip with probability ½,
a random crop×crop window padded with 0 (image, the mean colour) and 255 (label) (``random_crop``); the
label is then downsampled ×0.25 with nearest neighbour (``pil_rescale(label, 0.25, 0)``) to the network's
stride-4 output and turned into relation labels.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from matlabel.cam import normalize
from matlabel.datasets.layout import Manifest
from matlabel.datasets.loader import LabelledImages
from matlabel.irn.relations import IGNORE_INDEX, PathIndex, relation_labels


class AffinityAugment:
    """IRN's affinity-training augmentation; draws come from the generator passed in.

    Parameters
    ----------
    rescale : range of the random scale factor (IRN: (0.5, 1.5)).
    crop : side of the square crop, a multiple of 4 (IRN: 512).
    hflip : random horizontal flip (IRN: True).
    seed : first key of the per-item generator ``(seed, epoch, index)``.
    """

    def __init__(self, rescale=(0.5, 1.5), crop: int = 512, hflip: bool = True, seed: int = 0):
        if crop % 4:
            raise ValueError(f"crop must be a multiple of 4 (the labels are taken at stride 4), got {crop}")
        self.rescale, self.crop, self.hflip, self.seed = tuple(rescale), int(crop), bool(hflip), int(seed)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, np.ndarray]:
        """(H, W, 3) uint8 image, (H, W) uint8 label → ((3, crop, crop) float32 normalised, (crop, crop) uint8)."""
        h, w = label.shape
        s = self.rescale[0] + rng.random() * (self.rescale[1] - self.rescale[0])
        size = (int(np.round(h * s)), int(np.round(w * s)))  # IRN pil_rescale rounding
        if size != (h, w):
            image = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BICUBIC))
            label = np.asarray(Image.fromarray(label).resize(size[::-1], Image.NEAREST))
        if self.hflip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        x = normalize(np.array(image))  # a writable copy (PIL-backed arrays are read-only)
        c = self.crop
        out_x = torch.zeros((3, c, c))
        out_y = np.full((c, c), IGNORE_INDEX, dtype=np.uint8)
        hh, ww = label.shape
        ch, cw = min(c, hh), min(c, ww)
        # IRN get_random_crop_box: a random window of the image, or a random place for it inside the crop
        sy, sx = int(rng.integers(0, hh - ch + 1)), int(rng.integers(0, ww - cw + 1))
        dy, dx = int(rng.integers(0, c - ch + 1)), int(rng.integers(0, c - cw + 1))
        out_x[:, dy:dy + ch, dx:dx + cw] = x[:, sy:sy + ch, sx:sx + cw]
        out_y[dy:dy + ch, dx:dx + cw] = label[sy:sy + ch, sx:sx + cw]
        return out_x, out_y


def downsample_label(label: np.ndarray, factor: int = 4) -> np.ndarray:
    """(H, W) uint8 → (round(H/f), round(W/f)) by PIL nearest (IRN ``pil_rescale(label, 0.25, 0)``).

    PIL's nearest takes the pixel under each output cell's centre: row 4i + 2 for a factor of 4.
    """
    h, w = label.shape
    size = (int(np.round(w / factor)), int(np.round(h / factor)))
    return np.array(Image.fromarray(np.ascontiguousarray(label)).resize(size, Image.NEAREST))


class IRNDataset(LabelledImages):
    """Training items of IRN: augmented image and relation labels from a method's confident regions.

    Parameters
    ----------
    manifest, split : the images (``manifest.image_path``) of ``manifest.split_ids(split)``.
    label_dirs : directories holding ``{id}.png`` label maps (0 = background, 1 … N classes, 255 =
        unsure), one per shard; every id of the split must be in exactly one of them (``LabelledImages``).
    augment : ``AffinityAugment`` (its crop fixes the label size crop/4).
    radius : pair radius (IRN: 10); must equal the model's.

    Items: ``{"id", "index", "image": (3, crop, crop) float32, "bg_pos", "fg_pos", "neg": (D, n_src) bool}``
    with the pairs of ``PathIndex(radius)`` on the (crop/4, crop/4) label map. Draws are keyed by
    (augment.seed, epoch, index), so an item does not depend on the workers or on the order of access.
    """

    def __init__(self, manifest: Manifest, split: str, label_dirs, augment: AffinityAugment, radius: int = 10):
        self.augment = augment
        self.path_index = PathIndex(radius)
        self.path_index.source_window(augment.crop // 4, augment.crop // 4)  # fail now if the crop is too small
        super().__init__(manifest, split, label_dirs, augment.seed)

    def __getitem__(self, i: int) -> dict:
        image_id, image, label = self.read(i)
        x, y = self.augment(image, label, self.rng(i))
        bg_pos, fg_pos, neg = relation_labels(downsample_label(y), self.path_index)
        return {"id": image_id, "index": i, "image": x, "bg_pos": bg_pos, "fg_pos": fg_pos, "neg": neg}
