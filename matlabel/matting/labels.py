"""Pseudo-labels from the per-class alpha mattes (paper Sec. 3.2.2)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def alphas_to_labels(alphas: np.ndarray, classes: Sequence[int], fg_threshold: float) -> np.ndarray:
    """Pseudo-label map from per-class alpha mattes (paper Sec. 3.2.2: "use alpha matte alpha as the
    pseudo-label").

    Each class's matte is solved one-vs-rest (its trimap counts the other classes as background), so the
    mattes need not sum to 1; a pixel takes the class whose alpha is largest (the most opaque layer, as the
    original's multi-layer matting takes the argmax over layers), and background where no alpha is strictly
    greater than ``fg_threshold`` (0.5: more foreground than background). Ties go to the first class.

    Parameters
    ----------
    alphas : (C, H, W) float in [0, 1] (finite).
    classes : C label values in 1..254 (e.g. VOC indices [3, 15]); 0 is background, 255 void.
    fg_threshold : float.

    Returns
    -------
    (H, W) uint8 label map; all 0 when C = 0.
    """
    alphas = np.asarray(alphas)
    classes = np.asarray(classes)
    if alphas.ndim != 3:
        raise ValueError(f"alphas must have shape (C, H, W), got {alphas.shape}")
    if classes.ndim != 1 or classes.size != alphas.shape[0]:
        raise ValueError(f"classes must list one label per alpha matte ({alphas.shape[0]}), got {classes.tolist()}")
    if classes.size and (not np.issubdtype(classes.dtype, np.integer) or classes.min() < 1 or classes.max() > 254):
        raise ValueError(f"classes must be integers in 1..254 (0 is background, 255 void), got {classes.tolist()}")
    if not math.isfinite(fg_threshold):
        raise ValueError(f"fg_threshold must be finite, got {fg_threshold}")
    labels = np.zeros(alphas.shape[1:], np.uint8)
    if alphas.shape[0] == 0:
        return labels
    if not np.all(np.isfinite(alphas)):
        raise ValueError("alphas must be finite")
    best = np.argmax(alphas, axis=0)  # first maximum on ties
    top = np.take_along_axis(alphas, best[None], axis=0)[0]
    fg = top > fg_threshold
    labels[fg] = classes.astype(np.uint8)[best[fg]]
    return labels
