"""MS COCO 2014 in the workflow's VOC layout: semantic masks painted from the instance annotations.

``prepare_coco14`` turns the three official zips into::

    <out_dir>/COCO2014/
        JPEGImages/<stem>.jpg                  e.g. COCO_train2014_000000000009.jpg
        SegmentationClass/<stem>.png           palette PNG, 0 = background, 1..80 = classes
        ImageSets/Segmentation/{train,val}.txt
        cls_labels.json                        {stem: [class indices 1..80]}
    <out_dir>/dataset.json                     manifest, written last

following ReCAM (Chen et al., CVPR 2022), ``mscoco/annToMask.py`` and ``mscoco/dataloader.py``, the
COCO protocol of the WSSS baselines Mat-Label compares with: non-crowd instances painted in
annotation order (a later instance overwrites an earlier one), COCO category ids 1..90 mapped to
1..80 in sorted-id order, image-level labels from every instance annotation of the image, crowd
ones included.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import posixpath
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from matlabel.datasets.download import safe_extract
from matlabel.datasets.layout import write_cls_labels, write_manifest, write_split
from matlabel.io import atomic_dir, write_label_png

log = logging.getLogger(__name__)

SPLITS = ("train", "val")


def coco_category_map(categories) -> dict[int, int]:
    """COCO category id → contiguous class index 1..K, in sorted-id order.

    For COCO's 80 categories (ids 1..90 with gaps) this is ReCAM's ``category_map``
    (``mscoco/annToMask.py``: 1→1, …, 13→12, …, 90→80); 0 stays background.
    """
    return {cat_id: index for index, cat_id in enumerate(sorted(c["id"] for c in categories), start=1)}


def coco_class_names(categories) -> tuple[str, ...]:
    """``("background", <category names in sorted-id order>)``: 81 names for COCO 2014."""
    by_id = {c["id"]: c["name"] for c in categories}
    return ("background", *(by_id[i] for i in sorted(by_id)))


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """Binary (H, W) uint8 mask of one instance annotation (polygons, RLE or uncompressed RLE).

    The decoding of pycocotools' ``COCO.annToRLE`` + ``COCO.annToMask``, as a function of the
    annotation alone so it can run in worker processes.
    """
    segm = ann["segmentation"]
    if isinstance(segm, list):  # polygons: one object may have several parts
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm["counts"], list):  # uncompressed RLE (crowd regions)
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        rle = segm
    return mask_utils.decode(rle)


def paint_semantic_mask(anns, height: int, width: int, category_map: dict[int, int]) -> np.ndarray:
    """(H, W) uint8 class map: non-crowd instances painted in the given (annotation) order.

    As ReCAM's ``annToMask.py``: ``coco.getAnnIds(imgIds=i, iscrowd=False)``, later instances overwrite
    earlier ones where they overlap, crowd regions stay background (0) and no ignore label is used.
    """
    label = np.zeros((height, width), np.uint8)
    for ann in anns:
        if ann.get("iscrowd", 0):
            continue
        label[annotation_mask(ann, height, width) == 1] = category_map[ann["category_id"]]
    return label


def image_labels(anns, category_map: dict[int, int]) -> list[int]:
    """Sorted class indices of every instance annotation of an image, crowd annotations included.

    ReCAM's ``COCOClassificationDataset.getCategoryList`` reads all targets of torchvision's
    ``CocoDetection`` (which keeps crowd annotations), so a class present only as a crowd region is
    a label although the mask shows no pixel of it.
    """
    return sorted({category_map[ann["category_id"]] for ann in anns})


def _load_instances(path: Path):
    """(images sorted by id, {image id: annotations in file order}, categories) of an instances json."""
    try:
        with open(path) as f:
            data = json.load(f)
        anns_by_image = defaultdict(list)
        for ann in data["annotations"]:
            anns_by_image[ann["image_id"]].append(ann)
        return sorted(data["images"], key=lambda im: im["id"]), anns_by_image, data["categories"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a readable COCO instances file ({err}). Delete "
                         "annotations_trainval2014.zip and download it again.") from err


def _extract_annotations(ann_zip: Path, work: Path) -> dict[str, Path]:
    names = {f"instances_{split}2014.json": split for split in SPLITS}
    safe_extract(ann_zip, work / "ann", select=lambda n: posixpath.basename(n) in names)
    found = {names[p.name]: p for p in (work / "ann").rglob("instances_*2014.json")}
    if set(found) != set(SPLITS):
        raise ValueError(f"{ann_zip}: instances_train2014.json / instances_val2014.json missing; is this "
                         "annotations_trainval2014.zip? Delete it and download it again.")
    return found


def _move_images(image_zip: Path, images, work: Path, jpeg_dir: Path) -> None:
    """Extract the split's images (only those of ``images``) and move them to ``JPEGImages/<stem>.jpg``."""
    wanted = {im["file_name"] for im in images}
    safe_extract(image_zip, work, select=lambda n: posixpath.basename(n) in wanted)
    extracted = {p.name: p for p in work.rglob("*.jpg")}
    for im in images:
        src = extracted.get(im["file_name"])
        if src is None:
            raise FileNotFoundError(f"{image_zip}: image {im['file_name']} of the annotations is not in the zip; "
                                    "delete the zip and download it again.")
        os.replace(src, jpeg_dir / f"{Path(im['file_name']).stem}.jpg")


def _paint_and_write(job) -> None:
    path, anns, height, width, category_map = job
    write_label_png(path, paint_semantic_mask(anns, height, width, category_map))


def _write_masks(jobs, workers: int, desc: str) -> None:
    if workers <= 1:
        for job in tqdm(jobs, desc=desc, unit="mask"):
            _paint_and_write(job)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for _ in tqdm(pool.imap_unordered(_paint_and_write, jobs, chunksize=64), total=len(jobs), desc=desc,
                      unit="mask"):
            pass


def prepare_coco14(train_zip: str | os.PathLike, val_zip: str | os.PathLike, ann_zip: str | os.PathLike,
                   out_dir: str | os.PathLike, limit: int | None = None, workers: int = 1) -> Path:
    """Build MS COCO 2014 in the VOC layout under ``out_dir/COCO2014``; return the manifest path.

    Parameters
    ----------
    train_zip, val_zip, ann_zip : path
        ``train2014.zip``, ``val2014.zip``, ``annotations_trainval2014.zip`` (md5s in ``sources.py``).
    out_dir : path
        Output folder; receives ``COCO2014/`` and ``dataset.json``. Scratch space goes to
        ``out_dir/_work`` and is removed at the end.
    limit : int, optional
        Keep only the first ``limit`` images (by image id) of each split: a quick subset for smoke
        tests; only those images are extracted. ``None`` keeps all 82,783 train / 40,504 val images.
    workers : int
        Processes painting masks (ReCAM uses 8).

    Returns
    -------
    Path
        ``out_dir/dataset.json`` (name ``coco14``, 81 classes, ``mask_dir="SegmentationClass"``,
        split sizes of train and val).

    Notes
    -----
    Every image of the annotation file is kept, as in ReCAM, including the ~1% with no annotation
    (empty label list, all-background mask); their number is logged.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images per split or None, got {limit}")
    out_dir = Path(out_dir)
    manifest = out_dir / "dataset.json"
    manifest.unlink(missing_ok=True)  # the manifest marks a complete dataset: gone until we finish
    work = out_dir / "_work"
    shutil.rmtree(work, ignore_errors=True)
    root = out_dir / "COCO2014"

    instances = {split: _load_instances(path) for split, path in _extract_annotations(Path(ann_zip), work).items()}
    categories = instances["train"][2]
    if coco_class_names(categories) != coco_class_names(instances["val"][2]):
        raise ValueError(f"{ann_zip}: train and val annotation files list different categories")
    category_map = coco_category_map(categories)

    splits, labels = {}, {}
    with atomic_dir(root / "JPEGImages") as jpeg_tmp, atomic_dir(root / "SegmentationClass") as mask_tmp:
        for split, image_zip in zip(SPLITS, (Path(train_zip), Path(val_zip))):
            images, anns_by_image, _ = instances[split]
            images = images[:limit]
            _move_images(image_zip, images, work / split, jpeg_tmp)
            stems = [Path(im["file_name"]).stem for im in images]
            jobs = [(mask_tmp / f"{stem}.png", anns_by_image.get(im["id"], []), im["height"], im["width"],
                     category_map) for stem, im in zip(stems, images)]
            _write_masks(jobs, workers, desc=f"masks {split}2014")
            for stem, im in zip(stems, images):
                labels[stem] = image_labels(anns_by_image.get(im["id"], []), category_map)
            splits[split] = stems
            unlabeled = sum(not labels[s] for s in stems)
            if unlabeled:
                log.info("%s2014: %d of %d images have no annotation (kept, empty labels)", split, unlabeled,
                         len(stems))
    for split, stems in splits.items():
        write_split(root, split, stems)
    write_cls_labels(root, labels)

    shutil.rmtree(work)
    write_manifest(manifest, name="coco14", root=root, class_names=coco_class_names(categories),
                   mask_dir="SegmentationClass", splits={s: len(ids) for s, ids in splits.items()})
    return manifest
