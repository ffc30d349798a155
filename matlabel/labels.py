"""Pseudo-label producers: the Table 1 rows, each = (which method's maps, how they become labels).

Two labelers turn an image's exported maps into a label map:

- ``threshold``: the CAM-style seed, a constant background plane at ``bg_threshold`` then argmax
  (IRN step/eval_cam.py); rows "CAM" and "D2CAM only".
- ``matting``: Mat-Label (paper Sec. 3.2.2): trimap per class (Eq. 9), KNN matting of all classes of the
  image on one Laplacian, each pixel the class of the largest alpha (rows "Mat-Label", "Mat-Label w/ ReCAM").

Later stages ("crf", "irn") refine a row's seed labels; the row names are the keys of
``matlabel.tables.TABLE1_ROWS``.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matlabel.formats import ALPHAS_SUFFIX, MAPS_SUFFIX, read_alphas, read_maps
from matlabel.io import read_json
from matlabel.seeds import cams_to_labels
from matlabel.trimap import BG, FG, UNKNOWN, make_trimaps, trimap_fractions

# Table 1 row -> (method whose exported maps it uses, labeler)
SOURCES = {
    "cam": ("cam", "threshold"),
    "recam": ("recam", "threshold"),
    "d2cam": ("d2cam", "threshold"),
    "matlabel_recam": ("recam", "matting"),
    "matlabel": ("d2cam", "matting"),
    # beyond the paper: Mat-Label's trimap + matting on the CAM baseline's maps (which of the two, D2CAM's maps or
    # the matting, a Mat-Label gain comes from; on real photos at a CPU budget it is the best row: docs/real-photos.md)
    "matlabel_cam": ("cam", "matting"),
}


LABEL_RULES = ("threshold", "bg_layer")

# Modules only the matting rows run: the threshold rows' code hashes leave them out (matlabel/codehash.py; leaving
# out the package matlabel.matting leaves out all its modules).
MATTING_MODULES = ("matlabel.matting", "matlabel.trimap")


def rows_for(methods, labeler: str | None = None) -> list[str]:
    """The rows whose maps come from one of ``methods`` (the methods this code base can train)."""
    return [r for r, (m, lab) in SOURCES.items() if m in methods and (labeler is None or lab == labeler)]


@dataclass(frozen=True)
class MattingConfig:
    """Config ``trimap`` + ``matting`` (paper Sec. 3.2.2; their values, the paper's, are config.yaml's:
    ``from_config`` of the workflow's config, or of ``matlabel.config.paper_config()`` outside it)."""

    eps_fg: float  # Eq. 9's thresholds
    eps_bg: float
    fg_threshold: float  # alpha above which a pixel can be foreground (alpha is a fraction of fg)
    solver: dict  # keyword arguments of matting.knn_matting
    method: str  # the matting Laplacian (matting.LAPLACIANS; Table 5); the paper's is KNN
    label_rule: str  # threshold: per-class alphas and fg_threshold (the paper's reading); bg_layer: background
    # solved as a layer of its own, each pixel the layer of largest alpha (Table 5)

    def __post_init__(self):
        if self.label_rule not in LABEL_RULES:
            raise ValueError(f"matting label_rule must be one of {LABEL_RULES}, got {self.label_rule!r}")

    @classmethod
    def from_config(cls, trimap: dict, matting: dict) -> MattingConfig:
        """From config sections ``trimap`` and ``matting``."""
        matting = dict(matting)
        given = {k: matting.pop(k) for k in ("fg_threshold", "method", "label_rule")}
        return cls(eps_fg=trimap["eps_fg"], eps_bg=trimap["eps_bg"], solver=matting, **given)

    def check_device(self) -> None:
        """Refuses, before the first image, a ``device`` torch cannot use (``matting.torch_solver.check_device``): a
        RuntimeError naming config ``matting.device`` and the fix, instead of every image failing alike."""
        if str(self.solver.get("device", "cpu")) != "cpu":
            from matlabel.matting.torch_solver import check_device

            check_device(self.solver["device"])


def background_trimap(trimaps: np.ndarray) -> np.ndarray:
    """The trimap of the background as a layer of its own: known background (1) where every class's trimap says
    background, known not-background (0) where any class is sure foreground, unknown (0.5) elsewhere."""
    trimaps = np.asarray(trimaps)
    sure_bg = (trimaps == BG).all(axis=0)
    sure_fg = (trimaps == FG).any(axis=0)
    return np.where(sure_bg, FG, np.where(sure_fg, BG, UNKNOWN)).astype(np.float32)


def threshold_labels(cams: np.ndarray, classes, bg_threshold: float) -> np.ndarray:
    """(H, W) uint8 seed labels of the ``threshold`` labeler (see ``cam.cams_to_labels``)."""
    return cams_to_labels(cams, classes, bg_threshold)


def matting_labels(image: np.ndarray, cams: np.ndarray, classes, cfg: MattingConfig):
    """Mat-Label's pseudo-labels of one image.

    image : (H, W, 3) uint8; cams : (k, H, W) normalised maps of the k present ``classes``.
    Returns (labels (H, W) uint8, alphas (k, H, W) float32 in [0, 1], info dict with the trimap shares
    "fg", "unknown", "bg", "degenerate": the classes whose trimap has no foreground or no background
    pixel (their alphas are still defined, see ``matting.knn_matting``), and "cg_iterations": the solver's
    largest step count over the image's layers).

    Raises ``matting.MattingFailure`` when this image's matting gives no usable alpha: the solver stops at its
    iteration cap (an unconverged alpha is no pseudo-label), the alphas or residuals are not finite, or the
    Laplacian built for the image has non-finite entries; the caller may fall back (``matting_seed``). Maps or an
    image with NaN / inf raise ValueError, as does a bad setting: those are no failure of the matting.
    """
    from matlabel.matting import (  # numba compiles on first import
        LAPLACIAN_SOLVER,
        MattingFailure,
        NotConvergedWarning,
        alphas_to_labels,
        knn_matting,
        matting_laplacian,
    )

    trimaps = make_trimaps(cams, cfg.eps_fg, cfg.eps_bg)
    layers = np.concatenate([background_trimap(trimaps)[None], trimaps]) if cfg.label_rule == "bg_layer" else trimaps
    solver = {**LAPLACIAN_SOLVER[cfg.method], **cfg.solver}  # the Laplacian's tolerance (a config's own prevails)
    if cfg.method != "knn":  # a given Laplacian: knn_matting leaves n_neighbors / distance_weights unused
        solver["laplacian"] = matting_laplacian(image, cfg.method, is_known=(layers != UNKNOWN).all(axis=0))
        if not np.isfinite(solver["laplacian"].data).all():  # built from this image: its failure, not an input's
            raise MattingFailure(f"the {cfg.method} Laplacian of this image has non-finite entries (NaN or inf)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConvergedWarning)
        try:
            solved, solve_info = knn_matting(image, layers, return_info=True, **solver)
        except NotConvergedWarning as err:
            raise MattingFailure(str(err)) from err
    if cfg.label_rule == "bg_layer":  # each pixel takes the layer (background or a class) of largest alpha
        alphas = solved[1:]
        labels = np.asarray([0, *classes], dtype=np.uint8)[np.argmax(solved, axis=0)]
    else:
        alphas = solved
        labels = alphas_to_labels(alphas, classes, cfg.fg_threshold)
    complete = (trimaps == FG).any(axis=(1, 2)) & (trimaps == BG).any(axis=(1, 2))
    info = {**trimap_fractions(trimaps), "degenerate": [int(c) for c, ok in zip(classes, complete) if not ok],
            "cg_iterations": int(np.max(solve_info["iterations"], initial=0))}
    return labels, alphas.astype(np.float32), info


def matting_seed(image: np.ndarray, cams: np.ndarray, classes, cfg: MattingConfig, bg_threshold: float):
    """A matting row's seed of one image: ``matting_labels``, or, when the matting of this image fails
    (``matting.MattingFailure``: the solver does not converge, non-finite alphas), the image's threshold seed at
    ``bg_threshold`` so that one image never stops a shard. Any other error (a device torch cannot use, a missing
    module, a bad setting, NaN in the maps) propagates: it is no failure of one image, and falling back on it would
    silently turn a Mat-Label row into a threshold row.

    Returns (labels, alphas, info, error): alphas and info are None and error says why ("Type: message") when the
    threshold seed stands in; error is None otherwise."""
    from matlabel.matting import MattingFailure

    try:
        labels, alphas, info = matting_labels(image, cams, classes, cfg)
    except MattingFailure as err:  # recorded per image by the caller (require_matting_results)
        return threshold_labels(cams, classes, bg_threshold), None, None, f"{type(err).__name__}: {err}"
    return labels, alphas, info, None


def require_matting_results(failures: Mapping[str, str], n_matted: int, where: str) -> None:
    """Stops a job in which the matting failed on every image it had to solve (``n_matted``: the images with at
    least one class; ``failures``: {image id: error} of ``matting_seed``): each of them took its threshold seed, so
    the job's result would be a threshold row under Mat-Label's name. RuntimeError naming ``where`` (the shard or
    cell) and the first errors; a job with some images solved returns (its failures are counted in the tables)."""
    if n_matted and len(failures) >= n_matted:
        first = "; ".join(f"{image_id}: {error}" for image_id, error in list(failures.items())[:3])
        raise RuntimeError(f"{where}: the matting failed on all {n_matted} image(s) with a class, so every one would "
                           f"take its threshold seed; first errors: {first}. Fix the cause (a solve that does not "
                           "converge: raise matting.max_iter or rtol; see the log) and rerun.")


def count_fallbacks(seed_dirs) -> tuple[int, int]:
    """(images whose matting fell back to the threshold seed, images labelled) over the ``shard.json`` of a matting
    row's seed shards (``failures`` and ``n_images``, written by the labels rule)."""
    failed = labelled = 0
    for d in seed_dirs:
        summary = read_json(Path(d) / "shard.json")
        failed += len(summary["failures"])
        labelled += summary["n_images"]
    return failed, labelled


def confident_labels(image: np.ndarray, maps: np.ndarray, classes, fg_threshold: float, bg_threshold: float,
                     crf_params=None) -> np.ndarray:
    """Confident-region labels that IRN learns inter-pixel relations from (IRN step/cam_to_ir_label.py).

    A pixel is foreground (the class of its largest map) where that map exceeds ``fg_threshold``, background
    where every map is below ``bg_threshold``, and 255 (ignored) in between; as IRN, each of the two label
    maps is first cleaned by a label DenseCRF (``crf_params``; IRN's crf_inference_label: bilateral sxy 50,
    srgb 5) unless ``crf_params`` is None. ``maps`` are CAM-like maps (threshold rows, IRN: 0.30 / 0.05) or
    matting alphas (matting rows); (k, H, W) in [0, 1] for the k ``classes``. Returns (H, W) uint8.
    """
    from matlabel.crf import refine_all

    h, w = image.shape[:2]
    if len(classes) == 0:
        return np.zeros((h, w), dtype=np.uint8)
    present = [0, *[int(c) for c in classes]]
    fg = threshold_labels(maps, classes, fg_threshold)
    bg = threshold_labels(maps, classes, bg_threshold)
    if crf_params is not None:
        fg, bg = refine_all(image, [fg, bg], present, crf_params)
    conf = fg.copy()
    conf[fg == 0] = 255  # not confidently foreground ...
    conf[(fg == 0) & (bg == 0)] = 0  # ... unless confidently background
    return conf


def load_row_maps(labeler: str, image_id: str, cams_dir, seed_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The per-class maps a row refines further (IRN's confident regions and random walk): (maps (k, H, W)
    float32 in [0, 1], classes (k,)). Threshold rows: the exported maps. Matting rows: the matting alphas
    (``{id}_alpha.npz`` in the seed shard), or the exported maps for an image whose matting failed."""
    maps, classes, _ = load_row_maps_and_kind(labeler, image_id, cams_dir, seed_dir)
    return maps, classes


def load_row_maps_and_kind(labeler: str, image_id: str, cams_dir,
                           seed_dir=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """``load_row_maps`` and whether the maps are matting alphas (False also for a matting row's image whose
    matting failed: its exported maps stand in)."""
    if labeler == "matting":
        path = Path(seed_dir) / f"{image_id}{ALPHAS_SUFFIX}"
        if path.exists():
            return (*read_alphas(path), True)
    return (*read_maps(Path(cams_dir) / f"{image_id}{MAPS_SUFFIX}"), False)
