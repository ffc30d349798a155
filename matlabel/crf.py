"""Dense CRF refinement of pseudo-label maps (the "w/ CRF" column of the paper's seed table).

A fully connected CRF (Krähenbühl & Koltun, NeurIPS 2011; ``pydensecrf``) with a Gaussian smoothness kernel and
a bilateral appearance kernel, run over the labels PRESENT in the image only (background plus the image's
classes) rather than over all 21/81 dataset labels, as IRN does (jiwoon-ahn/irn step/cam_to_ir_label.py passes
``n_labels=keys.shape[0]``, the image's keys plus background). Pure functions, no file I/O.

Label maps are (H, W) uint8: 0 = background, 1..N = classes, 255 = ignore/unknown.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_labels, unary_from_softmax

from matlabel.datasets.layout import IGNORE_INDEX as UNKNOWN  # the label value meaning "ignore/unknown"


UNARIES = ("label", "score")

#: Parameter sets that belong together (config ``crf.preset``), each a unary with the pairwise terms its source
#: code uses with it. ``irn_label``: IRN's ``crf_inference_label`` (jiwoon-ahn/irn misc/imutils.py): the seed
#: labels as unary (``gt_prob`` 0.7), Gaussian sxy 3 compat 3, bilateral sxy 50 srgb 5 compat 10, 10 iterations.
#: ``psa_score``: PSA's ``crf_inference`` (jiwoon-ahn/psa tool/imutils.py): the maps as a probability unary
#: (``unary_from_softmax``), Gaussian sxy 3 compat 3, bilateral sxy 80 srgb 13 compat 10, 10 iterations, the
#: background plane (1 - max)^4 of threshold rows as PSA infer_cls.py (``--low_alpha 4``). Mixing them (PSA's wide
#: bilateral with IRN's hard label unary) over-smooths (measured on real photos: bench/README.md).
PRESETS = {
    "irn_label": dict(unary="label", iterations=10, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=50,
                      bilateral_srgb=5, bilateral_compat=10, gt_prob=0.7),
    "psa_score": dict(unary="score", iterations=10, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=80,
                      bilateral_srgb=13, bilateral_compat=10, bg_power=4),
}


# CRFParams' defaults are preset irn_label's, read from there so that its numbers are written once; bg_power, which
# only the score unary uses, is PSA's.
_IRN_LABEL = PRESETS["irn_label"]


@dataclass(frozen=True)
class CRFParams:
    """DenseCRF settings; the defaults are IRN's ``crf_inference_label`` (preset ``irn_label``, see :data:`PRESETS`)
    and PSA's ``bg_power`` (preset ``psa_score``).

    Attributes
    ----------
    iterations : int, >= 1
        Mean-field iterations.
    gaussian_sxy, gaussian_compat : float, > 0
        Spatial std (pixels) and weight of the smoothness kernel.
    bilateral_sxy, bilateral_srgb, bilateral_compat : float, > 0
        Spatial std (pixels), colour std (0..255 units) and weight of the appearance kernel.
    gt_prob : float in (0, 1)
        Probability given to a pixel's seed label by the label unary (``refine`` only).
    unary : "label" or "score"
        What the "w/ CRF" stage gives the CRF (:func:`row_unary` / ``scripts/crf_labels.py``): the seed labels
        (``refine``) or the row's maps as probabilities (``refine_probs``). ``refine`` itself ignores it.
    bg_power : float, > 0
        Exponent of the score unary's background plane (1 - max map)^bg_power for maps that are not alphas.
    """

    iterations: int = _IRN_LABEL["iterations"]
    gaussian_sxy: float = _IRN_LABEL["gaussian_sxy"]
    gaussian_compat: float = _IRN_LABEL["gaussian_compat"]
    bilateral_sxy: float = _IRN_LABEL["bilateral_sxy"]
    bilateral_srgb: float = _IRN_LABEL["bilateral_srgb"]
    bilateral_compat: float = _IRN_LABEL["bilateral_compat"]
    gt_prob: float = _IRN_LABEL["gt_prob"]
    unary: str = _IRN_LABEL["unary"]
    bg_power: float = PRESETS["psa_score"]["bg_power"]

    def __post_init__(self):
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, (int, np.integer)) \
                or self.iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {self.iterations!r}")
        for name in ("gaussian_sxy", "gaussian_compat", "bilateral_sxy", "bilateral_srgb", "bilateral_compat"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (isinstance(self.gt_prob, (int, float, np.number)) and 0 < self.gt_prob < 1):
            raise ValueError(f"gt_prob must be in (0, 1), got {self.gt_prob!r}")
        if self.unary not in UNARIES:
            raise ValueError(f"unary must be one of {UNARIES}, got {self.unary!r}")
        if not (isinstance(self.bg_power, (int, float, np.number)) and np.isfinite(self.bg_power)
                and self.bg_power > 0):
            raise ValueError(f"bg_power must be a finite number > 0, got {self.bg_power!r}")

    @classmethod
    def from_mapping(cls, values: Mapping) -> CRFParams:
        """Build params from a mapping (e.g. the ``crf:`` section of config.yaml): ``preset`` (a key of
        :data:`PRESETS`) first, then any other key overrides it; without a preset, missing keys keep the defaults.

        Raises ``ValueError`` naming unknown keys or an unknown preset.
        """
        values = dict(values)
        preset = values.pop("preset", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown CRF keys {unknown}; known keys: {sorted(known | {'preset'})}")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown CRF preset {preset!r}; known: {sorted(PRESETS)}")
        return cls(**{**PRESETS.get(preset, {}), **values})


def refine(image: np.ndarray, labels: np.ndarray, present: Sequence[int],
           params: CRFParams = CRFParams()) -> np.ndarray:
    """DenseCRF on a seed label map, over the present labels only (IRN's ``crf_inference_label``).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB (any layout/writeability; copied to a C-contiguous writeable array).
    labels : (H, W) integer label map, values in ``present`` or 255 (unknown).
    present : distinct labels in 0..254 that the CRF may assign, e.g. ``[0, 3, 15]`` (background plus the
        image's classes). Ties in the CRF's marginals go to the earlier entry.
    params : CRF settings (unary: ``gt_prob`` on the seed label, the rest spread evenly).

    Returns
    -------
    (H, W) uint8 label map with values in ``present`` only. Pixels that were 255 get a uniform unary
    ("unsure") and are assigned whatever the CRF decides from their neighbours and colour; no 255 is output.
    With a single present label that label is returned everywhere without running the CRF.

    Raises ``ValueError`` on bad shapes, or on a label in ``labels`` that is neither in ``present`` nor 255.
    """
    return refine_all(image, [labels], present, params)[0]


def refine_all(image: np.ndarray, label_maps: Sequence[np.ndarray], present: Sequence[int],
               params: CRFParams = CRFParams()) -> list[np.ndarray]:
    """:func:`refine` of each of several label maps of one image over the same ``present`` labels, equal to
    calling it on each, with one DenseCRF: its pairwise kernels (the permutohedral lattice of the image, about a
    third of a call on a 500 x 375 photo) are built once and each map only sets its unary and runs the
    inference (IRN's confident regions refine two maps per image)."""
    rgb = _as_rgb(image)
    present_arr = _check_present(present)
    k = len(present_arr)
    unaries = []
    for labels in label_maps:
        labels = np.asarray(labels)
        _check_label_map(labels, rgb.shape[:2], "labels")
        if labels.size and labels.min() < 0:
            raise ValueError("labels must be >= 0")
        # Compact index 0..k-1 per present label; -1 marks 255 and anything not present.
        lut = np.full(max(int(labels.max(initial=0)), UNKNOWN) + 1, -1, dtype=np.int64)
        lut[present_arr] = np.arange(k)
        compact = lut[labels]
        unknown = labels == UNKNOWN
        stray = (compact < 0) & ~unknown
        if stray.any():
            raise ValueError(f"labels {sorted(np.unique(labels[stray]).tolist())} are not in present "
                             f"{present_arr.tolist()} (and are not {UNKNOWN} = unknown)")
        if k == 1:  # nothing to decide: no CRF
            unaries.append(None)
            continue
        compact[unknown] = 0  # any valid index for unary_from_labels; these columns get the uniform unary below
        unary = unary_from_labels(compact, k, gt_prob=params.gt_prob, zero_unsure=False)
        # 255 = unsure: uniform unary, as pydensecrf's zero_unsure does for label 0 (our 0 is background).
        unary[:, unknown.ravel()] = -np.log(1.0 / k)
        unaries.append(unary)
    if k == 1:
        return [np.full(rgb.shape[:2], present_arr[0], dtype=np.uint8) for _ in unaries]
    return [present_arr[idx].astype(np.uint8) for idx in _infer(rgb, unaries, k, params)]


def refine_probs(image: np.ndarray, probs: np.ndarray, labels: Sequence[int],
                 params: CRFParams = CRFParams()) -> np.ndarray:
    """DenseCRF with a probability unary (PSA's ``crf_inference``), over the present labels only.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    probs : (k, H, W) scores in [0, 1], one plane per entry of ``labels`` (softmax, alpha-derived, ...);
        the unary is -log(max(p, 1e-5)) (``unary_from_softmax``), planes need not sum to 1.
    labels : the k distinct labels (0..254) of the planes of ``probs``, e.g. ``[0, 3, 15]``.
    params : CRF settings (``gt_prob`` is unused here).

    Returns
    -------
    (H, W) uint8 label map with values in ``labels``; with k = 1, that label everywhere (CRF skipped).
    """
    rgb = _as_rgb(image)
    present_arr = _check_present(labels)
    probs = np.asarray(probs)
    k = len(present_arr)
    if probs.ndim != 3 or probs.shape[0] != k or probs.shape[1:] != rgb.shape[:2]:
        raise ValueError(f"probs must be (k, H, W) = ({k}, {rgb.shape[0]}, {rgb.shape[1]}), got {probs.shape}")
    if not np.issubdtype(probs.dtype, np.number) or not np.isfinite(probs).all() \
            or probs.min(initial=0) < 0 or probs.max(initial=0) > 1 + 1e-6:
        raise ValueError("probs must be finite numbers in [0, 1]")
    if k == 1:
        return np.full(rgb.shape[:2], present_arr[0], dtype=np.uint8)
    unary = np.ascontiguousarray(unary_from_softmax(probs.astype(np.float32)))
    return present_arr[_infer(rgb, [unary], k, params)[0]].astype(np.uint8)


def row_unary(maps: np.ndarray, classes: Sequence[int], alphas: bool, bg_power: float) -> tuple[np.ndarray, list[int]]:
    """The probability planes of a row's "score" unary: ((k+1, H, W) [background, maps...], [0, *classes]).

    ``maps`` : (k, H, W) in [0, 1]. Matting alphas (``alphas``) are probabilities already: the background plane
    is 1 - max alpha, so without pairwise terms the argmax is the seed's own rule (foreground at alpha > 0.5).
    CAM-like maps get PSA's background (1 - max)^bg_power (psa infer_cls.py).
    """
    maps = np.clip(np.asarray(maps, dtype=np.float32), 0, 1)
    if maps.ndim != 3 or maps.shape[0] != len(classes):
        raise ValueError(f"maps must be (k, H, W) with k = {len(classes)} classes, got {maps.shape}")
    peak = maps.max(0) if len(classes) else np.zeros(maps.shape[1:], np.float32)
    bg = 1 - peak if alphas else np.power(1 - peak, bg_power)
    return np.concatenate([bg[None], maps]), [0, *[int(c) for c in classes]]


def _infer(rgb: np.ndarray, unaries: Sequence[np.ndarray], k: int, params: CRFParams) -> list[np.ndarray]:
    """Mean-field inference of each (k, H*W) unary on one CRF of the image (pydensecrf's inference starts from
    the unary each time, so sharing the pairwise terms changes nothing); returns the (H, W) argmax compact
    indices."""
    h, w = rgb.shape[:2]
    d = dcrf.DenseCRF2D(w, h, k)
    d.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    d.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb, rgbim=rgb,
                           compat=params.bilateral_compat)
    out = []
    for unary in unaries:
        d.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
        q = np.asarray(d.inference(params.iterations), dtype=np.float32).reshape(k, h, w)
        out.append(np.argmax(q, axis=0))
    return out


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) C-contiguous writeable uint8 copy (pydensecrf rejects read-only arrays, e.g. np.asarray(PIL))."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.integer):
            raise ValueError(f"image must be uint8 RGB in 0..255, got dtype {image.dtype}")
        if image.min() < 0 or image.max() > 255:
            raise ValueError("image values must lie in 0..255")
    return np.array(image, dtype=np.uint8, order="C", copy=True)


def _check_present(present: Sequence[int]) -> np.ndarray:
    arr = np.asarray(present)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"present labels must be a non-empty sequence of integers, got {present!r}")
    if arr.min() < 0 or arr.max() >= UNKNOWN or len(np.unique(arr)) != arr.size:
        raise ValueError(f"present labels must be distinct values in 0..{UNKNOWN - 1}, got {arr.tolist()}")
    return arr.astype(np.int64)


def _check_label_map(labels: np.ndarray, shape: tuple, name: str) -> None:
    if labels.shape != tuple(shape):
        raise ValueError(f"{name} must be (H, W) = {tuple(shape)} like the image, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be an integer label map, got dtype {labels.dtype}")
