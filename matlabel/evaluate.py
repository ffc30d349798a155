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
    meters = threshold_meters(manifest.num_classes, bg_threshold, sweep)
    for image_id in tqdm(ids, desc="evaluate", mininterval=5):
        cams, classes = read_maps(find_in_shards(shard_dirs, image_id, MAPS_SUFFIX))
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        if gt.shape != cams.shape[1:]:
            raise ValueError(f"{manifest.mask_path(image_id)}: mask {gt.shape} and maps {cams.shape[1:]} "
                             "differ in size")
        add_at_thresholds(meters, cams, classes, gt)
    main = meters[float(bg_threshold)]
    curve = {f"{t:.2f}": round(100 * m.miou(), 2) for t, m in meters.items()}
    best = max(meters, key=lambda t: meters[t].miou())
    return {
        **_scores(main, manifest, len(ids)),
        "bg_threshold": float(bg_threshold),
        "sweep": curve,
        "best_threshold": best,
        "best_miou": round(100 * meters[best].miou(), 2),
    }


def threshold_meters(num_classes: int, bg_threshold: float, sweep) -> dict[float, ConfusionMeter]:
    """One confusion meter per background threshold of ``sweep`` and the configured ``bg_threshold``, ascending."""
    return {t: ConfusionMeter(num_classes) for t in sorted(set(float(t) for t in sweep) | {float(bg_threshold)})}


def add_at_thresholds(meters: dict[float, ConfusionMeter], cams: np.ndarray, classes, gt: np.ndarray) -> None:
    """Add one image's seed at every meter's threshold (``labels_at_thresholds``) against its mask ``gt``."""
    for meter, pred in zip(meters.values(), labels_at_thresholds(cams, classes, list(meters))):
        meter.add(gt, pred)


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
        "iou": {name: (None if np.isnan(v) else round(100 * float(v), 2))
                for name, v in zip(manifest.class_names, iou)},
    }


def map_statistics(maps: np.ndarray, classes, gt: np.ndarray, eps_fg: float, eps_bg: float,
                   ignore_index: int = 255) -> list[dict]:
    """How well one image's maps tell each present class's object from the rest: the diagnostics of a
    trimap's inputs (Eq. 9), for reading why a method's seed is low.

    Parameters
    ----------
    maps : (k, H, W) float in [0, 1], one map per class in ``classes`` (as exported).
    classes : (k,) class indices (1..K-1) the maps belong to.
    gt : (H, W) ground-truth mask, ``ignore_index`` pixels left out.
    eps_fg, eps_bg : Eq. 9's thresholds: ``>= eps_fg`` is the trimap's foreground, ``<= eps_bg`` its background.

    Returns
    -------
    One dict per class that has pixels in ``gt``: ``{"class", "on_object" (mean map on the class's own pixels),
    "elsewhere" (mean on the other labelled pixels; None when the class covers the image), "fg_share",
    "bg_share" (shares of the labelled pixels at or above eps_fg / at or below eps_bg), "fg_on_object"
    (pixels >= eps_fg that lie on the object), "bg_off_object" (pixels <= eps_bg that lie off it),
    "fg_pixels", "bg_pixels"}`` (counts, so precisions can be pooled over images).
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1:] != gt.shape or len(classes) != maps.shape[0]:
        raise ValueError(f"maps {maps.shape}, {len(classes)} classes and mask {gt.shape} do not match")
    valid = gt != ignore_index
    out = []
    for m, c in zip(maps, classes):
        obj = (gt == int(c)) & valid
        if not obj.any():
            continue
        rest = valid & ~obj
        fg, bg = (m >= eps_fg) & valid, (m <= eps_bg) & valid
        out.append({
            "class": int(c),
            "on_object": float(m[obj].mean()),
            "elsewhere": float(m[rest].mean()) if rest.any() else None,
            "fg_share": float(fg.sum() / valid.sum()),
            "bg_share": float(bg.sum() / valid.sum()),
            "fg_on_object": int((fg & obj).sum()),
            "bg_off_object": int((bg & rest).sum()),
            "fg_pixels": int(fg.sum()),
            "bg_pixels": int(bg.sum()),
        })
    return out


def summarise_map_statistics(rows: list[dict]) -> dict:
    """The per-(image, class) rows of :func:`map_statistics` in one line: means over the rows of ``on_object``,
    ``elsewhere``, ``fg_share`` and ``bg_share``; the trimap's precisions pooled over pixels (``fg_precision``:
    share of all eps_fg pixels on their object; ``bg_precision``: share of all eps_bg pixels off it); ``n`` rows."""
    def mean(key):
        vals = [r[key] for r in rows if r[key] is not None]
        return float(np.mean(vals)) if vals else None

    def pooled(num, den):
        d = sum(r[den] for r in rows)
        return float(sum(r[num] for r in rows) / d) if d else None

    return {"n": len(rows), **{k: mean(k) for k in ("on_object", "elsewhere", "fg_share", "bg_share")},
            "fg_precision": pooled("fg_on_object", "fg_pixels"), "bg_precision": pooled("bg_off_object", "bg_pixels")}
