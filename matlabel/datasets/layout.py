"""The VOC layout every dataset of the workflow is written in, and its manifest.

A dataset root holds::

    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationClass/<id>.png          palette PNG, class indices, 255 = ignore
    <root>/SegmentationClassAug/<id>.png       (VOC 2012 + SBD only) masks of train_aug
    <root>/ImageSets/Segmentation/<split>.txt  one image id per line
    <root>/cls_labels.json                     {id: [foreground class indices, sorted]}

and next to it a manifest ``dataset.json`` (written last by the rule that prepares the dataset, so
its presence means the dataset is complete)::

    {"name": ..., "root": <root relative to the manifest, or absolute>, "num_classes": K (background included),
     "class_names": [...], "mask_dir": "SegmentationClass", "splits": {split: n_images},
     "labels": <cls_labels.json relative to the manifest>}   (optional; absent: <root>/cls_labels.json)

A dataset the workflow must not write into (``dataset: folder``, a user's own folder) keeps its
``cls_labels.json`` next to the manifest instead: every reader goes through ``Manifest.labels_path``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matlabel.io import read_json, write_json, write_text

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
IGNORE_INDEX = 255
VOC_MAIN_FLAGS = ("-1", "0", "1")  # "<id> <flag>" lines of VOC's ImageSets/Main/<class>_<split>.txt


@dataclass(frozen=True)
class Manifest:
    """What a prepared dataset contains; ``root`` is absolute once loaded."""

    name: str
    root: Path
    num_classes: int
    class_names: tuple[str, ...]
    mask_dir: str = "SegmentationClass"
    splits: dict[str, int] = field(default_factory=dict)
    labels_file: Path | None = None  # None: <root>/cls_labels.json

    @property
    def labels_path(self) -> Path:
        """The ``cls_labels.json`` of this dataset (image id -> foreground class indices)."""
        return self.labels_file if self.labels_file is not None else self.root / "cls_labels.json"

    def split_ids(self, split: str) -> list[str]:
        return read_split(self.root, split)

    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def mask_path(self, image_id: str, mask_dir: str | None = None) -> Path:
        return self.root / (mask_dir or self.mask_dir) / f"{image_id}.png"

    def labels(self) -> dict[str, list[int]]:
        """Image id → foreground class indices (1..K-1) of ``cls_labels.json``; an index outside that range is an
        error naming the file and the image (it used to surface as a bare IndexError in training and export)."""
        labels = read_json(self.labels_path)
        for image_id, classes in labels.items():
            bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, int) or not 0 < c < self.num_classes]
            if bad:
                raise ValueError(f"{self.labels_path}: image '{image_id}' has class(es) {bad}, outside "
                                 f"1..{self.num_classes - 1} (foreground classes of {self.name}: "
                                 f"{', '.join(self.class_names[1:])}); fix the entry or the class list")
        return labels


def write_manifest(path: str | os.PathLike, name: str, root: str | os.PathLike, class_names, mask_dir: str,
                   splits: dict[str, int], labels_file: str | os.PathLike | None = None,
                   absolute_root: bool = False) -> None:
    """Write ``dataset.json`` (atomically) describing a dataset rooted at ``root``.

    ``root`` is stored relative to the manifest's folder, or absolute with ``absolute_root`` (a user's folder
    outside the workflow). ``labels_file``: the ``cls_labels.json`` when it is not ``<root>/cls_labels.json``
    (stored relative to the manifest's folder).
    """
    path = Path(path)
    if absolute_root:
        stored_root = os.path.abspath(root)
    else:  # links kept: a root that is a link (dataset: folder's <out_dir>/root) stays the link
        stored_root = os.path.relpath(os.path.abspath(root), os.path.abspath(path.parent))
    d = {"name": name, "root": stored_root, "num_classes": len(class_names), "class_names": list(class_names),
         "mask_dir": mask_dir, "splits": dict(splits)}
    if labels_file is not None:
        d["labels"] = os.path.relpath(Path(labels_file).resolve(), path.parent.resolve())
    write_json(path, d)


def load_manifest(path: str | os.PathLike) -> Manifest:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: dataset manifest missing; build it with `snakemake {path}`.")
    d = read_json(path)
    labels = d.get("labels")
    return Manifest(name=d["name"], root=(path.parent / d["root"]).resolve(), num_classes=int(d["num_classes"]),
                    class_names=tuple(d["class_names"]), mask_dir=d.get("mask_dir", "SegmentationClass"),
                    splits=dict(d.get("splits", {})),
                    labels_file=(path.parent / labels).resolve() if labels else None)


def split_path(root: str | os.PathLike, split: str) -> Path:
    """The list file of ``split`` in a VOC-layout root: ``ImageSets/Segmentation/<split>.txt``."""
    return Path(root) / "ImageSets" / "Segmentation" / f"{split}.txt"


def read_split(root: str | os.PathLike, split: str) -> list[str]:
    """Image ids of ``split``, in file order, blank lines skipped. An empty list or an id listed twice is an error
    naming the file (an empty evaluation split would score NaN; a repeated id would count twice)."""
    path = split_path(root, split)
    if not path.exists():
        raise FileNotFoundError(f"{path}: split list missing (is the dataset prepared? is '{split}' a split of it?)")
    problems: list[str] = []
    ids = parse_split_list(path, problems)
    if problems:
        raise ValueError("\n".join(problems))
    return ids


def parse_split_list(path: str | os.PathLike, problems: list[str]) -> list[str]:
    """Ids of a split list (each non-blank line, file order, each once; a UTF-8 byte order mark, which some editors
    write and no one sees, is dropped). A line may carry the -1/0/1 flag of VOC's ImageSets/Main lists after its
    id. An empty list, a repeated id or an id with whitespace inside is appended to ``problems`` naming the file
    (and lines)."""
    ids, first_line = [], {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        image_id = fields[0]
        if image_id in first_line:
            problems.append(f"{path}: id '{image_id}' listed twice (lines {first_line[image_id]} and {n}); "
                            "list each image once")
            continue
        if len(fields) > 1 and not (len(fields) == 2 and fields[1] in VOC_MAIN_FLAGS):
            problems.append(f"{path} line {n}: '{line.strip()}': an id may not contain whitespace (one id a line, the "
                            f"name of JPEGImages/<id>.jpg without .jpg); rename the image and its mask, e.g. to "
                            f"'{'_'.join(fields)}', and list that")
            continue
        first_line[image_id] = n
        ids.append(image_id)
    if not ids:
        problems.append(f"{path}: split list is empty; list one image id a line (the name of JPEGImages/<id>.jpg "
                        "without .jpg)")
    return ids


def write_split(root: str | os.PathLike, split: str, ids) -> None:
    write_text(split_path(root, split), "".join(f"{i}\n" for i in ids))


def write_cls_labels(root: str | os.PathLike, labels: dict[str, list[int]]) -> None:
    """Write ``cls_labels.json``: image id → sorted foreground class indices (1..K-1)."""
    write_json(Path(root) / "cls_labels.json", {k: sorted(int(c) for c in v) for k, v in sorted(labels.items())})


def labels_from_mask(mask, num_classes: int) -> list[int]:
    """Foreground classes present in a label map (0 = background and 255 = ignore excluded)."""
    vals = np.unique(mask)
    bad = vals[(vals >= num_classes) & (vals != IGNORE_INDEX)]
    if bad.size:
        raise ValueError(f"label values {bad.tolist()} outside 0..{num_classes - 1}/255")
    return [int(v) for v in vals if 0 < v < num_classes]
