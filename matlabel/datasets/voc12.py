"""PASCAL VOC 2012 + SBD in the workflow's VOC layout (``train_aug``, ``SegmentationClassAug``, labels).

``prepare_voc12`` turns the two official archives into::

    <out_dir>/VOCdevkit/VOC2012/                       the VOC trainval tree, as shipped
        SegmentationClassAug/<id>.png                  train_aug ∪ train ∪ val masks (palette PNG)
        ImageSets/Segmentation/train_aug.txt           (SBD train ∪ SBD val ∪ VOC train) − VOC val
        cls_labels.json                                {id: [VOC class indices 1..20]}
    <out_dir>/dataset.json                             manifest, written last

which is the data of IRN (Ahn et al., CVPR 2019) and the paper's VOC experiments (Mat-Label, Sec. 4.1):
10,582 train_aug images with SBD masks (Hariharan et al., ICCV 2011), 1,464 train, 1,449 val.
"""
from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError
from tqdm import tqdm

from matlabel.datasets.download import safe_extract
from matlabel.datasets.layout import (
    VOC_CLASSES,
    read_split,
    write_cls_labels,
    write_manifest,
    write_split,
)
from matlabel.io import atomic_dir, write_label_png

SBD_DIR = "benchmark_RELEASE/dataset"
_CLASS_INDEX = {name: i for i, name in enumerate(VOC_CLASSES) if i > 0}


def sbd_mat_to_label(mat_path: str | os.PathLike) -> np.ndarray:
    """Read an SBD class mask ``cls/<id>.mat`` as an (H, W) uint8 map of VOC class indices.

    The mask is the ``GTcls.Segmentation`` field (0 = background, 1..20 = VOC classes, no ignore
    label), read as in torchvision's ``SBDataset`` (``mat['GTcls'][0]['Segmentation'][0]``).

    Raises
    ------
    ValueError
        The file is not a readable SBD class mask, or holds values outside 0..20 (message names the file).
    """
    try:
        gtcls = scipy.io.loadmat(mat_path, squeeze_me=True, struct_as_record=False)["GTcls"]
        seg = np.asarray(gtcls.Segmentation)
    except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError, MatReadError) as err:
        raise ValueError(f"{mat_path}: not a readable SBD class mask with GTcls.Segmentation ({err}). "
                         "Delete the SBD archive (benchmark.tgz) and download it again.") from err
    if seg.ndim != 2 or seg.size == 0 or seg.min() < 0 or seg.max() >= len(VOC_CLASSES):
        raise ValueError(f"{mat_path}: GTcls.Segmentation must be a 2-D map of 0..{len(VOC_CLASSES) - 1}, got shape "
                         f"{seg.shape}; the SBD archive is damaged: download benchmark.tgz again.")
    return seg.astype(np.uint8)


def build_train_aug_list(sbd_train, sbd_val, voc_train, voc_val) -> list[str]:
    """The ``train_aug`` ids: ``(SBD train ∪ SBD val ∪ VOC train) − VOC val``, sorted.

    This is the 10,582-image list of DeepLab/IRN: every SBD image (SBD's val overlaps VOC train, and
    parts of both SBD splits overlap VOC val, which must stay unseen) plus VOC 2012 train.
    """
    return sorted((set(sbd_train) | set(sbd_val) | set(voc_train)) - set(voc_val))


def labels_from_xml(xml_path: str | os.PathLike) -> list[int]:
    """Image-level labels of one VOC image: sorted VOC class indices (1..20) named in its annotation.

    IRN's rule (``voc12/dataloader.py``, ``load_image_label_from_xml``): every ``<name>`` element whose
    text is a VOC class counts, difficult and truncated objects included; part names (``head``,
    ``hand``, ``foot`` of the person layout) are not classes and are skipped.
    """
    if not Path(xml_path).is_file():
        raise FileNotFoundError(f"{xml_path}: VOC annotation missing; download VOCtrainval_11-May-2012.tar again.")
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as err:
        raise ValueError(f"{xml_path}: cannot read the VOC annotation ({err}). Delete the VOC archive "
                         "(VOCtrainval_11-May-2012.tar) and download it again.") from err
    names = {(el.text or "").strip() for el in root.iter("name")}
    return sorted(_CLASS_INDEX[n] for n in names if n in _CLASS_INDEX)


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split list missing; the archive it comes from is incomplete: "
                                "download it again.")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _extract_voc(voc_tar: Path, out_dir: Path, work: Path) -> Path:
    """Extract the VOC tar and move ``VOCdevkit/VOC2012`` to ``out_dir`` (replacing an old copy)."""
    safe_extract(voc_tar, work / "voc")
    src = work / "voc" / "VOCdevkit" / "VOC2012"
    if not (src / "JPEGImages").is_dir():
        raise ValueError(f"{voc_tar}: no VOCdevkit/VOC2012/JPEGImages inside; is this VOCtrainval_11-May-2012.tar? "
                         "Delete it and download it again.")
    dst = out_dir / "VOCdevkit" / "VOC2012"
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    return dst


def _extract_sbd(sbd_tgz: Path, work: Path) -> Path:
    """Extract only SBD's class masks and split lists (its images are VOC images we already have)."""
    keep = (f"{SBD_DIR}/train.txt", f"{SBD_DIR}/val.txt")
    safe_extract(sbd_tgz, work / "sbd", select=lambda n: n.startswith(f"{SBD_DIR}/cls/") or n in keep)
    sbd = work / "sbd" / SBD_DIR
    if not (sbd / "cls").is_dir():
        raise ValueError(f"{sbd_tgz}: no {SBD_DIR}/cls inside; is this SBD's benchmark.tgz? "
                         "Delete it and download it again.")
    return sbd


def _write_aug_masks(voc_root: Path, sbd_cls: Path, ids) -> None:
    """``SegmentationClassAug/<id>.png``: the VOC mask where VOC has one, else the converted SBD mask.

    VOC masks are copied byte for byte (they keep their 255 object borders); SBD masks have no ignore
    label. The folder appears whole or not at all.
    """
    voc_masks = voc_root / "SegmentationClass"
    with atomic_dir(voc_root / "SegmentationClassAug") as tmp:
        for image_id in tqdm(ids, desc="SegmentationClassAug", unit="mask"):
            voc_png = voc_masks / f"{image_id}.png"
            if voc_png.is_file():
                shutil.copyfile(voc_png, tmp / f"{image_id}.png")
                continue
            mat = sbd_cls / f"{image_id}.mat"
            if not mat.is_file():
                raise FileNotFoundError(f"{mat}: no mask for {image_id} in VOC SegmentationClass nor SBD cls; "
                                        "the SBD archive is incomplete: download benchmark.tgz again.")
            write_label_png(tmp / f"{image_id}.png", sbd_mat_to_label(mat))


def _check_images(voc_root: Path, ids) -> None:
    missing = [i for i in ids if not (voc_root / "JPEGImages" / f"{i}.jpg").is_file()]
    if missing:
        raise FileNotFoundError(f"{voc_root / 'JPEGImages'}: {len(missing)} images of the splits are missing "
                                f"(first: {missing[0]}.jpg); download VOCtrainval_11-May-2012.tar again.")


def prepare_voc12(voc_tar: str | os.PathLike, sbd_tgz: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Build VOC 2012 + SBD in the VOC layout under ``out_dir``; return the manifest path.

    Parameters
    ----------
    voc_tar : path
        ``VOCtrainval_11-May-2012.tar`` (md5 6cd6e144f989b92b3379bac3b3de84fd).
    sbd_tgz : path
        SBD's ``benchmark.tgz`` (md5 82b4d87ceb2ed10f6038a1cba92111cb).
    out_dir : path
        Output folder; receives ``VOCdevkit/VOC2012`` and ``dataset.json``. Scratch space goes to
        ``out_dir/_work`` and is removed at the end.

    Returns
    -------
    Path
        ``out_dir/dataset.json`` (name ``voc12``, 21 classes, ``mask_dir="SegmentationClassAug"``,
        split sizes of train, val, train_aug and test when a test list is present).
    """
    out_dir = Path(out_dir)
    manifest = out_dir / "dataset.json"
    manifest.unlink(missing_ok=True)  # the manifest marks a complete dataset: gone until we finish
    work = out_dir / "_work"
    shutil.rmtree(work, ignore_errors=True)

    voc_root = _extract_voc(Path(voc_tar), out_dir, work)
    sbd = _extract_sbd(Path(sbd_tgz), work)
    splits = {s: read_split(voc_root, s) for s in ("train", "val")}
    splits["train_aug"] = build_train_aug_list(_read_ids(sbd / "train.txt"), _read_ids(sbd / "val.txt"),
                                               splits["train"], splits["val"])
    write_split(voc_root, "train_aug", splits["train_aug"])
    if (voc_root / "ImageSets" / "Segmentation" / "test.txt").is_file():
        splits["test"] = read_split(voc_root, "test")

    labelled = sorted(set(splits["train_aug"]) | set(splits["train"]) | set(splits["val"]))
    _check_images(voc_root, labelled)
    _write_aug_masks(voc_root, sbd / "cls", labelled)
    labels = {i: labels_from_xml(voc_root / "Annotations" / f"{i}.xml")
              for i in tqdm(labelled, desc="cls_labels", unit="image")}
    write_cls_labels(voc_root, labels)

    shutil.rmtree(work)
    write_manifest(manifest, name="voc12", root=voc_root, class_names=VOC_CLASSES,
                   mask_dir="SegmentationClassAug", splits={s: len(ids) for s, ids in splits.items()})
    return manifest
