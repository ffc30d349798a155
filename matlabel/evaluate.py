"""Seed evaluation: mIoU of the label maps that class activation maps give at background thresholds.

The number in the table is the mIoU at the configured threshold (IRN's fixed ``cam_eval_thres``); the
sweep over other thresholds is reported beside it, since the best threshold on the evaluation split's
ground truth is an optimistic (oracle) choice.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from matlabel.seeds import labels_at_thresholds
from matlabel.datasets.layout import Manifest
from matlabel.formats import MAPS_SUFFIX, read_maps
from matlabel.io import read_label_png
from matlabel.metrics import ConfusionMeter
from matlabel.shards import find_in_shards


def evaluate_cams(manifest: Manifest, ids, shard_dirs, bg_threshold: float, sweep) -> dict:
    """Evaluate exported maps of ``ids`` against the ground-truth masks.

    Returns ``{"miou": %, "bg_threshold": t, "n_images": n, "iou": {class name: %},
    "sweep": {t: %}, "best_threshold": t*, "best_miou": %}`` (mIoU in percent). A mask that is not a palette
    PNG of values 0..K-1 / 255, or not of the maps' size, raises ``ValueError`` naming the file.
    """
    thresholds = sorted(set(float(t) for t in sweep) | {float(bg_threshold)})
    meters = {t: ConfusionMeter(manifest.num_classes) for t in thresholds}
    for image_id in tqdm(ids, desc="evaluate", mininterval=5):
        cams, classes = read_maps(find_in_shards(shard_dirs, image_id, MAPS_SUFFIX))
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        if gt.shape != cams.shape[1:]:
            raise ValueError(f"{manifest.mask_path(image_id)}: mask {gt.shape} and maps {cams.shape[1:]} differ in size")
        for meter, pred in zip(meters.values(), labels_at_thresholds(cams, classes, list(meters))):
            meter.add(gt, pred)
    main = meters[float(bg_threshold)]
    curve = {f"{t:.2f}": round(100 * m.miou(), 2) for t, m in meters.items()}
    best = max(thresholds, key=lambda t: meters[t].miou())
    return {
        **_scores(main, manifest, len(ids)),
        "bg_threshold": float(bg_threshold),
        "sweep": curve,
        "best_threshold": best,
        "best_miou": round(100 * meters[best].miou(), 2),
    }


def evaluate_labels(manifest: Manifest, ids, shard_dirs) -> dict:
    """mIoU of pseudo-label PNGs (``{id}.png`` in the shard directories) of ``ids`` against the masks.

    Returns ``{"miou": %, "n_images": n, "iou": {class name: %}}``. A mask or label PNG that is not a palette
    PNG of values 0..K-1 / 255 raises ``ValueError`` naming the file.
    """
    meter = ConfusionMeter(manifest.num_classes)
    for image_id in tqdm(ids, desc="evaluate", mininterval=5):
        pred = read_label_png(find_in_shards(shard_dirs, image_id, ".png"), manifest.num_classes)
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        if gt.shape != pred.shape:
            raise ValueError(f"{manifest.mask_path(image_id)}: mask {gt.shape} and labels {pred.shape} differ in size")
        meter.add(gt, pred)
    return _scores(meter, manifest, len(ids))


def evaluate_floor(manifest: Manifest, ids) -> dict:
    """mIoU of the trivial answer, every pixel background, on ``ids``: the floor every table row is read against.

    Background's IoU is its share of the (non-ignored) pixels, every foreground class present in the masks
    scores 0, so the floor is about (background share) / (number of classes present); e.g. 3.5 on VOC 2012 train's
    20 classes, more on a dataset with few classes. Same return form as :func:`evaluate_labels`.
    """
    meter = ConfusionMeter(manifest.num_classes)
    for image_id in tqdm(ids, desc="evaluate", mininterval=5):
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        meter.add(gt, np.zeros_like(gt))
    return _scores(meter, manifest, len(ids))


def _scores(meter: ConfusionMeter, manifest: Manifest, n_images: int) -> dict:
    """``{"miou": %, "n_images": n, "iou": {class name: % or None}}`` of an accumulated meter."""
    iou = meter.iou()
    return {
        "miou": round(100 * meter.miou(), 2),
        "n_images": n_images,
        "iou": {name: (None if np.isnan(v) else round(100 * float(v), 2)) for name, v in zip(manifest.class_names, iou)},
    }
