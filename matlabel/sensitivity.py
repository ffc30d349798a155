"""Checks beyond the paper's tables, on the maps a method already exported: the ε grid and Table 5.

The ε grid. The paper's claim that ε_fg and ε_bg are insensitive (Sec. 3.2.2), checked.

The paper says D2CAM's clear foreground–background division makes the choice of ε_fg / ε_bg (Eq. 9) "robust and
insensitive" and shows no number. Here a grid of (ε_fg, ε_bg) is run on the maps a method already exported: each
cell makes Mat-Label's seed (trimap Eq. 9 + KNN matting, the labels rule's own code) for the evaluated split and
scores it against the masks. The claim is about the difference between maps: D2CAM's surface against CAM's.
Every cell shares the rest of the labels rule's settings (config ``matting``); an image whose matting fails takes
its threshold seed, as in the labels rule, and is counted; a cell in which every image with a class failed stops.

Table 5 (new, beyond the paper). The paper argues for KNN matting; each cell here solves the same trimaps with
another matting Laplacian (closed-form, random walk, learning-based: ``matting.LAPLACIANS``) by the same
hard-constrained batched solver, and reads labels by either rule (per-class alphas with a foreground threshold,
or the background as a layer of its own: ``labels.LABEL_RULES``).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from matlabel.datasets.layout import Manifest
from matlabel.formats import MAPS_SUFFIX, read_maps
from matlabel.io import read_image, read_label_png
from matlabel.labels import MattingConfig, matting_seed, require_matting_results
from matlabel.metrics import ConfusionMeter
from matlabel.shards import find_in_shards


def seed_cell(manifest: Manifest, ids: Sequence[str], cams_dirs, cfg: MattingConfig, bg_threshold: float,
              crf_params=None, progress=None) -> dict:
    """Mat-Label's seed on ``ids`` from the maps in ``cams_dirs`` with the matting settings ``cfg`` (ε, Laplacian,
    label rule), scored against the masks; with ``crf_params`` also the seed refined by DenseCRF (label unary, as
    the CRF rule does on a matting row's seed).

    Returns ``{"eps_fg", "eps_bg", "method", "label_rule", "miou", "miou_crf" (None without CRF), "n_images",
    "mean_unknown_share", "failures", "seconds_per_image"}`` (mIoU in %, seconds of the matting alone);
    ``failures`` counts the images whose matting failed and took the threshold seed at ``bg_threshold``; when that
    is every image with a class, RuntimeError (``labels.require_matting_results``), as is a ``device`` torch cannot
    use (before the first image)."""
    from matlabel.crf import refine

    cfg.check_device()
    seed_meter, crf_meter = ConfusionMeter(manifest.num_classes), ConfusionMeter(manifest.num_classes)
    labels_of = manifest.labels()
    unknown, failures, seconds, n_matted = [], {}, 0.0, 0
    for image_id in (progress(ids) if progress else ids):
        cams, classes = read_maps(find_in_shards(list(cams_dirs), image_id, MAPS_SUFFIX))
        image = read_image(manifest.image_path(image_id))
        n_matted += len(classes) > 0
        start = time.perf_counter()
        labels, _, info, error = matting_seed(image, cams, classes, cfg, bg_threshold)  # as the labels rule
        seconds += time.perf_counter() - start
        if error:
            failures[image_id] = error
        else:
            unknown.append(info["unknown"])
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        seed_meter.add(gt, labels)
        if crf_params is not None:
            crf_meter.add(gt, refine(image, labels, [0, *labels_of[image_id]], crf_params))
    require_matting_results(failures, n_matted, f"{cfg.method} matting cell (eps_fg {cfg.eps_fg}, eps_bg "
                                                f"{cfg.eps_bg}, label rule {cfg.label_rule})")
    return {"eps_fg": cfg.eps_fg, "eps_bg": cfg.eps_bg, "method": cfg.method, "label_rule": cfg.label_rule,
            "miou": round(100 * seed_meter.miou(), 2),
            "miou_crf": round(100 * crf_meter.miou(), 2) if crf_params is not None else None, "n_images": len(ids),
            "mean_unknown_share": round(float(np.mean(unknown)), 4) if unknown else None, "failures": len(failures),
            "seconds_per_image": round(seconds / max(1, len(ids)), 4)}


def eps_cell(manifest: Manifest, ids: Sequence[str], cams_dirs, cfg: MattingConfig, bg_threshold: float,
             progress=None) -> dict:
    """One cell of the ε grid: ``seed_cell`` without CRF at ``cfg.eps_fg`` / ``cfg.eps_bg``."""
    return seed_cell(manifest, ids, cams_dirs, cfg, bg_threshold, progress=progress)


def grid_table(cells: Mapping[str, Sequence[dict]]):
    """One row per (method, ε_fg, ε_bg) cell, the methods in the order of ``cells``: method, eps_fg, eps_bg, miou,
    mean_unknown_share, failures; plus per method the spread of the grid (max − min mIoU), the number the claim
    is about."""
    import pandas as pd

    rows = [{"method": method, **{k: c[k] for k in ("eps_fg", "eps_bg", "miou", "mean_unknown_share", "failures")}}
            for method, method_cells in cells.items() for c in method_cells]
    order = {method: i for i, method in enumerate(cells)}  # the methods in the order given (the config's)
    df = pd.DataFrame(rows)
    df = df.sort_values(["method", "eps_fg", "eps_bg"], key=lambda col: col.map(order) if col.name == "method" else col,
                        kind="stable").reset_index(drop=True)
    spread = df.groupby("method", sort=False)["miou"].agg(lambda s: round(float(s.max() - s.min()), 2))
    df["grid_spread"] = df["method"].map(spread)
    return df
