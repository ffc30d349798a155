"""The VOC 2012 test set's predictions as the evaluation server's archive (the test masks are not public)."""
from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from matlabel.crf import CRFParams
from matlabel.datasets.layout import Manifest
from matlabel.deeplab.infer import TEST_SCALES, segment_all
from matlabel.io import atomic_path, read_image, voc_palette


#: VOC devkit VOCinit.m: VOCopts.seg.clsrespath = results/<dataset>/Segmentation/<comp>_<testset>_cls/<id>.png.
#: comp5 = trained on VOC data only, comp6 = other data allowed (ImageNet/COCO pretraining: WSSS papers submit comp6).
VOC_RESULT_PATH = "results/{year}/Segmentation/{comp}_{testset}_cls/{id}.png"


def export_voc_test(model: nn.Module, manifest: Manifest, ids: Sequence[str], device: torch.device | str,
                    out_tar: str | os.PathLike, scales: Sequence[float] = TEST_SCALES, flip: bool = False,
                    crf_params: CRFParams | None = None, crf_labels: str = "all", competition: str = "comp6",
                    year: str = "VOC2012", testset: str = "test", workers: int = 1) -> list[str]:
    """Predict ``ids`` and write them as the VOC evaluation server's archive.

    Members are palette PNGs (VOC colour map, class indices, image size) at :data:`VOC_RESULT_PATH`, e.g.
    ``results/VOC2012/Segmentation/comp6_test_cls/2008_000006.png``; ``.tgz``/``.tar.gz`` names are gzipped, others
    plain tar. Written atomically; returns the member names. ``workers``: CRF processes (:func:`segment_all`).
    """
    if competition not in ("comp5", "comp6"):
        raise ValueError(f"competition must be 'comp5' or 'comp6', got {competition!r}")
    model.to(device)
    palette = voc_palette().flatten().tolist()
    name = str(out_tar)
    mode = "w:gz" if name.endswith((".tgz", ".tar.gz")) else "w"
    members = []
    with atomic_path(out_tar, suffix=".tar") as tmp, tarfile.open(tmp, mode) as tar:
        images = ((image_id, read_image(manifest.image_path(image_id))) for image_id in ids)
        preds = segment_all(model, images, device, scales, flip, crf_params, crf_labels, workers)
        for image_id, pred in tqdm(preds, total=len(ids), desc="export voc test", mininterval=5):
            png = Image.fromarray(pred)  # mode L; putpalette makes it a palette ("P") image
            png.putpalette(palette)
            buf = io.BytesIO()
            png.save(buf, format="PNG")
            info = tarfile.TarInfo(VOC_RESULT_PATH.format(year=year, comp=competition, testset=testset, id=image_id))
            info.size = buf.tell()
            info.mode = 0o644
            buf.seek(0)
            tar.addfile(info, buf)
            members.append(info.name)
    return members
