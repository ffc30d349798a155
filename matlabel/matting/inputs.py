"""The inputs of the matting: an image and its trimaps checked and normalised, and the KNN feature space of the image's
pixels (colour and position) that both solvers' neighbour graphs are built in."""
from __future__ import annotations

import numpy as np

from matlabel.trimap import BG, FG, UNKNOWN  # trimap values of paper Eq. 9


def as_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 1] -> (H, W, 3) float64 in [0, 1]; ValueError otherwise."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must have shape (H, W, 3) with H, W > 0, got {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {image.dtype}")
    image = image.astype(np.float64)
    finite = np.isfinite(image)
    if not finite.all():
        y, x = np.argwhere(~finite.all(axis=2))[0]
        raise ValueError(f"image has {int((~finite).sum())} non-finite values (NaN or inf), the first at row {y}, "
                         f"column {x}; a float image must be finite and in [0, 1]")
    if image.min() < 0.0 or image.max() > 1.0:
        raise ValueError(f"float image values must be in [0, 1], got [{image.min():g}, {image.max():g}]")
    return image


def as_trimaps(trimaps: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """(H, W) or (C, H, W) trimaps -> ((C, H, W) float64, was_2d); ValueError on shape or values."""
    trimaps = np.asarray(trimaps)
    single = trimaps.ndim == 2
    if single:
        trimaps = trimaps[None]
    if trimaps.ndim != 3 or trimaps.shape[1:] != tuple(hw):
        raise ValueError(f"trimaps must have shape (H, W) or (C, H, W) with (H, W) = {tuple(hw)}, "
                         f"got {trimaps.shape}")
    if not (np.issubdtype(trimaps.dtype, np.floating) or np.issubdtype(trimaps.dtype, np.integer)
            or trimaps.dtype == bool):
        raise ValueError(f"trimaps must be numeric, got dtype {trimaps.dtype}")
    trimaps = trimaps.astype(np.float64)
    if not np.isfinite(trimaps).all():
        raise ValueError(f"trimaps have {int((~np.isfinite(trimaps)).sum())} non-finite values (NaN or inf); trimap "
                         "values must be 1 (foreground), 0 (background) or 0.5 (unknown) as in paper Eq. 9")
    valid = (trimaps == FG) | (trimaps == BG) | (trimaps == UNKNOWN)
    if not valid.all():
        bad = trimaps[~valid]
        raise ValueError(f"trimap values must be 1 (foreground), 0 (background) or 0.5 (unknown) as in paper "
                         f"Eq. 9; found {bad.size} other values, e.g. {bad[:3].tolist()}")
    return trimaps, single


def knn_features(image: np.ndarray, distance_weight: float) -> np.ndarray:
    """(N, 5) float32 KNN features [r, g, b, w*x, w*y], x, y in [0, 1]: exactly pymatting's ``knn_laplacian``
    (so both find the same neighbours); the original scales x, y by the image diagonal instead."""
    h, w = image.shape[:2]
    r, g, b = image.reshape(-1, 3).T
    x = np.tile(np.linspace(0, 1, w), h)
    y = np.repeat(np.linspace(0, 1, h), w)
    return np.stack([r, g, b, distance_weight * x, distance_weight * y], axis=1,
                    out=np.zeros((h * w, 5), dtype=np.float32))
