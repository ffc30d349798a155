"""Confusion-matrix mIoU, as in the VOC devkit and IRN's eval (step/eval_cam.py).

IoU_c = TP_c / (TP_c + FP_c + FN_c) over pixels whose ground truth is not ``ignore_index`` (255).
mIoU is the mean over classes with a defined IoU (``nanmean``: a class absent from both ground truth and
prediction is skipped, as ``np.nanmean`` in IRN's eval). Works for VOC (21 classes) and COCO (81).
"""
from __future__ import annotations

import numpy as np

from matlabel.datasets.layout import IGNORE_INDEX


def confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(num_classes, num_classes) int64 matrix, rows = ground truth, columns = prediction.

    ``gt`` and ``pred`` are integer label maps of equal shape. Ground-truth pixels equal to ``ignore_index``
    are dropped; any other value outside 0..num_classes-1 (in either map) raises ``ValueError``.
    """
    gt = np.asarray(gt).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if gt.shape != pred.shape:
        raise ValueError(f"shape mismatch: gt {gt.shape} vs pred {pred.shape}")
    keep = gt != ignore_index
    gt, pred = gt[keep], pred[keep]
    for name, arr in (("ground truth", gt), ("prediction", pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} has labels outside 0..{num_classes - 1} (and {ignore_index} = ignore)")
    return np.bincount(gt * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU per class from a confusion matrix; NaN where the class has no GT and no predicted pixel."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / np.where(denom > 0, denom, 1), np.nan)


def miou(conf: np.ndarray) -> float:
    """Mean IoU (nanmean over classes), in [0, 1]."""
    return float(np.nanmean(iou_per_class(conf)))


class ConfusionMeter:
    """Accumulates a confusion matrix over images: ``meter.add(gt, pred)``, then ``meter.miou()``."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        self.matrix += confusion(gt, pred, self.num_classes, self.ignore_index)

    def miou(self) -> float:
        return miou(self.matrix)

    def iou(self) -> np.ndarray:
        return iou_per_class(self.matrix)
