"""Seed labels from normalised class maps: IRN's background plane, then argmax (IRN step/eval_cam.py).

numpy only, so the jobs that turn saved maps into labels (evaluation, matting, IRN's confident regions)
start without importing torch (tests/test_imports.py).
"""
from __future__ import annotations

import numpy as np


def cams_to_labels(cams: np.ndarray, classes, bg_threshold: float) -> np.ndarray:
    """Seed label map from normalised maps: background = constant plane at ``bg_threshold``, then argmax.

    cams : (k, H, W) in [0, 1]; classes : the k class indices. Returns (H, W) uint8 (0 = background).
    """
    return labels_at_thresholds(cams, classes, [bg_threshold])[0]


def labels_at_thresholds(cams: np.ndarray, classes, thresholds) -> list[np.ndarray]:
    """``cams_to_labels`` for several background thresholds, with the argmax computed once.

    A pixel takes the class of its largest map when that map exceeds the threshold, else background
    (a tie goes to the background plane, as argmax over [background, maps...] picks the first maximum).
    """
    h, w = cams.shape[-2:]
    if len(classes) == 0:
        return [np.zeros((h, w), dtype=np.uint8) for _ in thresholds]
    fg = np.asarray(classes, dtype=np.uint8)[cams.argmax(0)]
    peak = cams.max(0)
    return [np.where(peak > t, fg, 0).astype(np.uint8) for t in thresholds]
