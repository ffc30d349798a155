"""The per-image array files that pass between rules, each writer beside its reader.

Exported maps (rule export_cams, ``<shard>/<id>.npz``): ``cams`` (k, H, W) float16 in [0, 1], one map per class
present in the image, and ``classes`` (k,) int16, the foreground class indices (1..K-1) of those maps.

Alpha mattes (the matting rows' seed, ``<shard>/<id>_alpha.npz``): ``alphas`` (k, H, W) uint8, alpha × 255 rounded
(1/510 at most from the solver's alpha), and ``classes`` (k,) int16 as above.

Both are written with ``np.savez_compressed``; readers get float32 arrays and int64 classes. Model checkpoints
have their owner in ``matlabel.checkpoints``.
"""
from __future__ import annotations

import os

import numpy as np

MAPS_SUFFIX = ".npz"
ALPHAS_SUFFIX = "_alpha.npz"


def write_maps(path: str | os.PathLike, cams: np.ndarray, classes) -> None:
    np.savez_compressed(path, cams=np.asarray(cams).astype(np.float16), classes=np.asarray(classes, dtype=np.int16))


def read_maps(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(cams (k, H, W) float32, classes (k,) int64) of an exported maps file; ValueError naming the file when a map
    holds NaN or inf (every labeler would read it silently: a NaN is neither above nor below a threshold)."""
    with np.load(path) as z:
        cams, classes = z["cams"].astype(np.float32), z["classes"].astype(np.int64)
    if not np.isfinite(cams).all():
        raise ValueError(f"{path}: maps have {int((~np.isfinite(cams)).sum())} non-finite values (NaN or inf); the "
                         "export is damaged: delete this shard directory and rerun its export")
    return cams, classes


def write_alphas(path: str | os.PathLike, alphas: np.ndarray, classes) -> None:
    np.savez_compressed(path, classes=np.asarray(classes, dtype=np.int16),
                        alphas=np.round(np.asarray(alphas) * 255).astype(np.uint8))


def read_alphas(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(alphas (k, H, W) float32 in [0, 1], classes (k,) int64) of an alpha-matte file."""
    with np.load(path) as z:
        return z["alphas"].astype(np.float32) / 255.0, z["classes"].astype(np.int64)
