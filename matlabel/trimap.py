"""Trimaps from class activation maps (paper Sec. 3.2.2, Eq. 9).

For every class c present in an image, the exported map M^c (at image size) becomes a trimap T^c:

    T^c(i, j) = 1    (foreground)  if M^c(i, j) ≥ ε_fg
                0    (background)  if M^c(i, j) ≤ ε_bg
                0.5  (unknown)     otherwise,

with the paper's ε_fg = 0.75 and ε_bg = 0.2 ("we empirically set ε_fg and ε_bg to 0.75 and 0.2"), which
config.yaml's ``trimap`` section holds (their one owner: every caller passes them).

Normalisation: the maps thresholded here are the ones the export rule writes, i.e. averaged over the
scales {0.5, 1, 1.5, 2} and flips and then divided by each class's own maximum (IRN step/make_cam.py).
For D2CAM, whose M_fg is a sigmoid already in [0, 1], this only rescales a map by its peak (close to 1 for
a confidently detected class), so ε_fg / ε_bg keep the paper's meaning; for the CAM baseline, whose raw
scale is arbitrary, it is what makes one pair of thresholds meaningful at all. Applying the same
normalisation to every method keeps the Table 1 rows comparable.
"""
from __future__ import annotations

import numpy as np

FG, UNKNOWN, BG = 1.0, 0.5, 0.0


def make_trimaps(maps: np.ndarray, eps_fg: float, eps_bg: float) -> np.ndarray:
    """Eq. 9 for each class map.

    Parameters
    ----------
    maps : (k, H, W) float in [0, 1], one map per class present in the image (k may be 0).
    eps_fg, eps_bg : 0 ≤ ε_bg < ε_fg ≤ 1; the boundaries are inclusive (≥ ε_fg is foreground,
        ≤ ε_bg is background).

    Returns
    -------
    (k, H, W) float32 with values in {0, 0.5, 1}.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (k, H, W), got shape {maps.shape}")
    if not 0.0 <= eps_bg < eps_fg <= 1.0:
        raise ValueError(f"need 0 <= eps_bg < eps_fg <= 1, got eps_bg={eps_bg}, eps_fg={eps_fg}")
    finite = np.isfinite(maps)
    if not finite.all():  # a NaN is neither >= eps_fg nor <= eps_bg: it would silently become unknown
        k, y, x = np.argwhere(~finite)[0]
        raise ValueError(f"maps have {int((~finite).sum())} non-finite values (NaN or inf), the first in map {k} at "
                         f"row {y}, column {x}; the exported maps are damaged: rerun their export")
    trimaps = np.full(maps.shape, UNKNOWN, dtype=np.float32)
    trimaps[maps >= eps_fg] = FG
    trimaps[maps <= eps_bg] = BG
    return trimaps


def trimap_fractions(trimaps: np.ndarray) -> dict[str, float]:
    """Share of pixels (over all classes) that are foreground / unknown / background, for logs and reports."""
    n = max(1, trimaps.size)
    return {"fg": float((trimaps == FG).sum() / n), "unknown": float((trimaps == UNKNOWN).sum() / n),
            "bg": float((trimaps == BG).sum() / n)}
