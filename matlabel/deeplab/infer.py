"""DeepLab-v2's evaluation, as kazuto1011/deeplab-pytorch ``main.py`` ``test`` (whole image, MSC max over scales 1,
0.5, 0.75, bilinear upsampling, softmax, argmax) and ``main.py`` ``crf`` with ``libs/utils/crf.py`` ``DenseCRF`` over
all classes.

Differs from the reference in one place: the CRF runs on the raw RGB image (the reference's ``main.py crf`` passes the
mean-subtracted image cast to uint8, which looks like a bug; its ``demo.py`` uses the raw image as we do). Inference
is fp32 on every device.
"""
from __future__ import annotations

import math
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from matlabel.crf import CRFParams, refine_probs
from matlabel.datasets.layout import Manifest
from matlabel.io import read_image, read_label_png, write_label_png
from matlabel.metrics import ConfusionMeter

#: How :func:`segment_all` starts its CRF workers: ``forkserver``, i.e. forked from a server process that was started
#: as a fresh interpreter (never a fork of this process, which may have started CUDA) and imported this module once,
#: so a pool's workers start without importing torch again. Each worker still imports the main script as
#: ``__mp_main__``, as under ``spawn``: a Snakemake script's own ``main`` stays behind its ``__name__`` guard.
POOL_CONTEXT = multiprocessing.get_context("forkserver")
POOL_CONTEXT.set_forkserver_preload([__name__])

#: main.py ``test``: the eval-mode MSC of libs/models/__init__.py ``DeepLabV2_ResNet101_MSC`` fuses the input scale
#: and scales 0.5, 0.75 by a pixel-wise max; no flip.
TEST_SCALES = (1.0, 0.5, 0.75)

#: configs/voc12.yaml CRF (ITER_MAX 10, POS_W 3, POS_XY_STD 1, BI_W 4, BI_XY_STD 67, BI_RGB_STD 3) in our names;
#: ``gt_prob`` is unused by ``refine_probs``.
DEEPLAB_CRF = CRFParams(iterations=10, gaussian_sxy=1, gaussian_compat=3, bilateral_sxy=67, bilateral_srgb=3,
                        bilateral_compat=4)


@torch.no_grad()
def predict(model: nn.Module, image: np.ndarray, scales: Sequence[float] = TEST_SCALES, flip: bool = False,
            device: torch.device | str = "cpu") -> np.ndarray:
    """Class probabilities of one image by multi-scale inference (main.py ``test`` with the eval-mode MSC).

    Parameters
    ----------
    model : a DeepLabV2 (put in eval mode here), already on ``device``.
    image : (H, W, 3) uint8 RGB, at its original size (the reference neither resizes nor pads at test time).
    scales : input scales whose logits are resized to the scale-1 logits' size (``model.logit_size(H, W)``) and
        fused by a pixel-wise max; the reference's eval MSC uses (1, 0.5, 0.75).
    flip : also run the horizontally flipped image at every scale and include its (unflipped) logits in the max
        (not in the reference; off by default).

    Returns
    -------
    (K, H, W) float32 softmax of the fused logits upsampled bilinearly to (H, W) (fp32, no autocast).
    """
    model.eval()
    h, w = image.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
    if hasattr(model, "logit_size"):
        size = model.logit_size(h, w)
    else:
        size = (math.ceil(h / model.output_stride), math.ceil(w / model.output_stride))
    fused = None
    for s in scales:
        xs = x if s == 1 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
        views = [model(xs)]
        if flip:
            views.append(model(xs.flip(-1)).flip(-1))
        for logits in views:
            logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
            fused = logits if fused is None else torch.maximum(fused, logits)
    fused = F.interpolate(fused, size=(h, w), mode="bilinear", align_corners=False)
    return F.softmax(fused, dim=1)[0].cpu().numpy().astype(np.float32)


def segment(image: np.ndarray, probs: np.ndarray, crf_params: CRFParams | None = None,
            crf_labels: str = "all") -> np.ndarray:
    """(H, W) uint8 label map from (K, H, W) probabilities: argmax, or argmax after DenseCRF.

    ``crf_labels="all"`` runs the CRF over all K classes (main.py ``crf``); ``"predicted"`` over the classes that
    win somewhere in the argmax map only (cheaper for COCO's 81 classes; a class the network never predicts stays
    absent, as it would almost always after the CRF anyway).
    """
    pred = probs.argmax(0).astype(np.uint8)
    if crf_params is None:
        return pred
    if crf_labels == "all":
        labels = np.arange(probs.shape[0])
    elif crf_labels == "predicted":
        labels = np.unique(pred).astype(np.int64)
    else:
        raise ValueError(f"crf_labels must be 'all' or 'predicted', got {crf_labels!r}")
    return refine_probs(image, probs[labels], labels.tolist(), crf_params)


def segment_all(model: nn.Module, images: Iterable[tuple[str, np.ndarray]], device: torch.device | str,
                scales: Sequence[float] = TEST_SCALES, flip: bool = False, crf_params: CRFParams | None = None,
                crf_labels: str = "all", workers: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """:func:`segment` of :func:`predict` for each ``(id, image)``, yielded as ``(id, label map)`` in input order.

    With a CRF and ``workers`` > 1, the CRFs (single-threaded pydensecrf over 21 classes, the slow part:
    bench/README.md) run in that many worker processes while the model predicts the next images, at most ``2 * workers``
    images ahead; each CRF is the same call as without workers, so the labels are the same. The workers are started from
    a fresh interpreter (:data:`POOL_CONTEXT`), never by forking this process: the model may have started CUDA here
    already, and a forked child of a CUDA process inherits a state it cannot use."""
    if crf_params is None or workers <= 1:
        for image_id, image in images:
            yield image_id, segment(image, predict(model, image, scales, flip, device), crf_params, crf_labels)
        return
    pending: deque = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=POOL_CONTEXT) as pool:
        for image_id, image in images:
            probs = predict(model, image, scales, flip, device)
            pending.append((image_id, pool.submit(segment, image, probs, crf_params, crf_labels)))
            while len(pending) > 2 * workers:
                image_id, future = pending.popleft()
                yield image_id, future.result()
        while pending:
            image_id, future = pending.popleft()
            yield image_id, future.result()


def evaluate_segmentation(model: nn.Module, manifest: Manifest, ids: Sequence[str], device: torch.device | str,
                          scales: Sequence[float] = TEST_SCALES, flip: bool = False,
                          crf_params: CRFParams | None = None, crf_labels: str = "all",
                          save_dir: str | os.PathLike | None = None, workers: int = 1) -> dict:
    """mIoU of the model's predictions of ``ids`` against the manifest's ground-truth masks.

    Inference by :func:`predict`; with ``crf_params`` (e.g. :data:`DEEPLAB_CRF`) the softmax is refined by DenseCRF
    first (:func:`segment`; in ``workers`` processes beside the model, :func:`segment_all`). With ``save_dir`` each
    prediction is also written there as ``<id>.png`` (palette PNG, class indices; Figure 5 reads them). Returns
    ``{"miou": %, "iou": {class name: % or None}, "n_images": n, "scales", "flip", "crf"}`` (percent, 2 decimals; a
    class absent from both GT and predictions is None and not averaged).
    """
    if getattr(model, "num_classes", manifest.num_classes) != manifest.num_classes:
        raise ValueError(f"model predicts {model.num_classes} classes, dataset {manifest.name} has "
                         f"{manifest.num_classes}")
    model.to(device)
    meter = ConfusionMeter(manifest.num_classes)
    gts = {}

    def images():
        for image_id in ids:
            image = read_image(manifest.image_path(image_id))
            gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
            if gt.shape != image.shape[:2]:
                raise ValueError(f"{manifest.mask_path(image_id)}: mask {gt.shape} and image {image.shape[:2]} differ")
            gts[image_id] = gt
            yield image_id, image

    preds = segment_all(model, images(), device, scales, flip, crf_params, crf_labels, workers)
    for image_id, pred in tqdm(preds, total=len(ids), desc="evaluate deeplab", mininterval=5):
        meter.add(gts.pop(image_id), pred)
        if save_dir is not None:
            write_label_png(Path(save_dir) / f"{image_id}.png", pred)
    iou = meter.iou()
    return {
        "miou": round(100 * meter.miou(), 2),
        "iou": {name: (None if np.isnan(v) else round(100 * float(v), 2))
                for name, v in zip(manifest.class_names, iou)},
        "n_images": len(ids),
        "scales": [float(s) for s in scales],
        "flip": bool(flip),
        "crf": None if crf_params is None else {**asdict(crf_params), "labels": crf_labels},
    }

