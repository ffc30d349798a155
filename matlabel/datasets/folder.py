"""A user's own images in VOC layout (``dataset: folder``): checked, labelled and described by a manifest.

The folder (config ``data.folder.root``) is read, never written::

    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationClass/<id>.png            palette/grey PNG of class indices, 255 = ignore; needed for the
                                                 evaluated splits (config splits.eval_seed, splits.eval_seg) and
                                                 for every image whose labels come from its mask
    <root>/ImageSets/Segmentation/<split>.txt    one image id per line
    <root>/classes.txt                           optional: class names, one a line, background first
    <root>/cls_labels.csv                        optional: ``<id>,<foreground classes>`` image-level labels

:func:`prepare_folder` checks every file the configured splits need (all problems collected and reported
together), then writes ``<out_dir>/cls_labels.json`` and, last, ``<out_dir>/dataset.json`` whose root is
``<out_dir>/root``, a link to the user's folder (so a moved folder with the same content reruns nothing). With
``max_side`` (config ``data.folder.max_side``) the images, masks and split lists are first copied to
``<out_dir>/resized/`` with the long side at most ``max_side`` pixels, and the manifest's root is that copy: every
stage, and the scores, then run at that size (a CPU run on a few hundred photos; the paper's numbers are
at full size). docs/folder-dataset.md is the user's guide.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from matlabel.datasets.content import image_size
from matlabel.datasets.layout import (IGNORE_INDEX, VOC_CLASSES, parse_split_list, split_path, write_cls_labels,
                                      write_manifest, write_split)
from matlabel.io import atomic_dir

IMAGE_DIR = "JPEGImages"
MASK_DIR = "SegmentationClass"
CLASSES_FILE = "classes.txt"
LABELS_CSV = "cls_labels.csv"
RESIZED_DIR = "resized"  # under out_dir: the copy at data.folder.max_side
ROOT_LINK = "root"  # under out_dir: a link to the user's folder, which the manifest names (link_root)
EVAL_ROLES = ("eval_seed", "eval_seg")  # config splits whose images are scored against their masks
MAX_CLASSES = IGNORE_INDEX  # class indices 0..254; 255 is the ignore label
HOW_TO_NAME_CLASSES = (f"give the class names (background first) as config data.folder.classes: [background, ...], "
                       f"in <root>/{CLASSES_FILE} (one name a line, background first), or `data.folder.classes: voc` "
                       "for the 21 PASCAL VOC classes")

log = logging.getLogger(__name__)


class FolderDatasetError(ValueError):
    """The folder cannot be used as it is; ``problems`` lists every problem found (each naming its file)."""

    def __init__(self, root, problems: Sequence[str], max_shown: int = 20):
        self.root, self.problems = Path(root), list(problems)
        shown = self.problems[:max_shown]
        more = len(self.problems) - len(shown)
        tail = f"\n  ... and {more} more (all of them are in the rule's log; data.folder.max_errors shows more)" \
            if more > 0 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the dataset folder {root} (data.folder.root); fix them "
                         f"and rerun (docs/folder-dataset.md):\n  - " + "\n  - ".join(shown) + tail)


def _fail(root, problems: list[str], max_errors: int):
    """Raise FolderDatasetError; when it shows only the first ``max_errors``, log them all (the rule's log)."""
    if len(problems) > max_errors:
        log.error("all %d problems of the dataset folder %s:\n  - %s", len(problems), root, "\n  - ".join(problems))
    raise FolderDatasetError(root, problems, max_errors)


def read_classes_file(path: str | os.PathLike) -> list[str]:
    """Class names of ``classes.txt``: one a line, background first; blank lines and ``#`` comments skipped (a UTF-8
    byte order mark too: it would become part of the first name)."""
    names = []
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def class_names_problems(names: Sequence[str], where: str) -> list[str]:
    problems = []
    if len(names) < 2:
        problems.append(f"{where}: {len(names)} class name(s); give background first and at least one object class")
    if len(names) > MAX_CLASSES:
        problems.append(f"{where}: {len(names)} classes; at most {MAX_CLASSES} (index 255 means 'ignore')")
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        problems.append(f"{where}: class name(s) listed twice: {dup}")
    return problems


def resolve_class_names(root: str | os.PathLike, classes=None) -> tuple[str, ...]:
    """The class names (background first), by this rule: config ``data.folder.classes`` when given (a list of
    names, or ``"voc"`` for :data:`VOC_CLASSES`), else ``<root>/classes.txt``; else ``ValueError`` saying how."""
    root = Path(root).expanduser()
    if isinstance(classes, str):
        if classes.lower() != "voc":
            raise ValueError(f"data.folder.classes: {classes!r} is not a class list; the one named set is 'voc' "
                             f"(the 21 PASCAL VOC classes); otherwise give the names, background first, as a list "
                             f"[background, ...] or in <root>/{CLASSES_FILE}")
        return VOC_CLASSES
    if classes is not None:
        names, where = [str(c).strip() for c in classes], "data.folder.classes"
    else:
        path = root / CLASSES_FILE
        if not path.is_file():
            hint = (" (this looks like an extracted VOCdevkit/VOC2012: set `data.folder.classes: voc`)"
                    if (root / "Annotations").is_dir() else "")
            raise ValueError(f"{path}: missing, and config data.folder.classes is not set, so the class names are "
                             f"unknown{hint}; {HOW_TO_NAME_CLASSES}")
        names, where = read_classes_file(path), str(path)
    problems = class_names_problems(names, where)
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(names)


def folder_config_errors(folder: Mapping | None) -> list[str]:
    """Config errors of ``data.folder`` (when ``dataset: folder``), each naming its key, for ``check_config``."""
    folder = folder or {}
    max_side_error = _max_side_error(folder.get("max_side"))
    if max_side_error:
        return [max_side_error]
    root = folder.get("root")
    if not root:
        return ["data.folder.root: required when dataset is folder: the path of your folder in VOC layout "
                "(JPEGImages/, SegmentationClass/, ImageSets/Segmentation/); docs/folder-dataset.md"]
    if not Path(root).expanduser().is_dir():
        return [f"data.folder.root: {root} is not a folder (a relative path is taken from the workflow's working "
                f"directory, {os.getcwd()})"]
    try:
        resolve_class_names(root, folder.get("classes"))
    except (ValueError, OSError) as err:
        return [str(err) if str(err).startswith("data.folder.classes") else f"data.folder.classes: {err}"]
    return []


def _parse_class(token: str, index_of: dict[str, int]) -> int | None:
    if re.fullmatch(r"[+-]?\d+", token):
        return int(token)
    return index_of.get(token)


SEPARATOR_NAMES = {";": "';'", "\t": "a tab", "|": "'|'"}  # what a spreadsheet may write instead of ','


def read_labels_csv(path: str | os.PathLike, class_names: Sequence[str], image_dir: str | os.PathLike,
                    problems: list[str]) -> dict[str, list[int]]:
    """Image-level labels of ``cls_labels.csv``: ``<id>,<classes>`` a line, classes as indices (1..K-1) or names,
    separated by spaces (or more commas); ``<id>,`` = no object. Blank lines, ``#`` comments (whole lines or the
    rest of a line, as in classes.txt), a header line ``id,classes`` and a UTF-8 byte order mark are skipped.
    Problems (unknown id, unknown class, background or index >= K, repeated id, lines separated by ';' or a tab
    instead of ',') are appended to ``problems`` naming the file and line."""
    path, image_dir = Path(path), Path(image_dir)
    k = len(class_names)
    index_of = {name: i for i, name in enumerate(class_names)}
    labels: dict[str, list[int]] = {}
    line_of: dict[str, int] = {}
    other_separator: dict[str, list[int]] = {}
    first = True
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        header, first = first and line.replace(" ", "").lower() == "id,classes", False
        if header:
            continue
        separator = next((c for c in SEPARATOR_NAMES if c in line.partition(",")[0]), None)
        if separator:  # before the first comma: the id field would hold the classes
            other_separator.setdefault(separator, []).append(n)
            continue
        image_id, _, rest = line.partition(",")
        image_id = image_id.strip()
        where = f"{path} line {n}"
        if not image_id:
            problems.append(f"{where}: no image id before the comma (form: <id>,<class> <class> ...)")
            continue
        if image_id in line_of:
            problems.append(f"{where}: id '{image_id}' already given on line {line_of[image_id]}; one line per image")
            continue
        line_of[image_id] = n
        if not (image_dir / f"{image_id}.jpg").is_file():
            problems.append(f"{where}: unknown id '{image_id}': there is no {image_dir / (image_id + '.jpg')}")
            continue
        classes = set()
        for token in (t for t in re.split(r"[\s,;]+", rest) if t):
            c = _parse_class(token, index_of)
            if c is None:
                problems.append(f"{where}: '{token}' is neither a class index nor one of the {k} class names")
            elif c == 0:
                problems.append(f"{where}: class 0 ({class_names[0]}) is the background; list the foreground classes "
                                f"only (1..{k - 1})")
            elif not 0 < c < k:
                problems.append(f"{where}: class index {c} is out of range: {k} classes, so foreground indices are "
                                f"1..{k - 1}")
            else:
                classes.add(c)
        labels[image_id] = sorted(classes)
    for separator, lines in other_separator.items():
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        problems.append(f"{path}: {len(lines)} line(s) (line {shown}) separate the id from its classes with "
                        f"{SEPARATOR_NAMES[separator]}, but the separator is ',' (a spreadsheet's CSV export may use "
                        f"{SEPARATOR_NAMES[separator]}): write each line as '<id>,<classes>', classes separated by "
                        "spaces, e.g. '2008_000123,1 15'")
    return labels


EXIF_ORIENTATION = 0x0112  # TIFF/EXIF tag 274: 1 = as stored; 2..8 = mirrored and/or rotated for display


def exif_oriented(paths) -> list[Path]:
    """The images whose EXIF orientation tag asks viewers to rotate or mirror them (tag present and not 1).

    The workflow reads every image as stored (``io.read_image``, PIL without ``exif_transpose``), the grid its
    mask must be drawn on; a photo straight from a phone may instead have been annotated as displayed. Header
    only, no pixels decoded."""
    found = []
    for path in paths:
        try:
            with Image.open(path) as img:
                if img.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
                    found.append(Path(path))
        except (OSError, SyntaxError, ValueError):
            continue  # unreadable images are reported by check_folder
    return found


def _mask_labels(path: Path, image_path: Path, image_size, num_classes: int, problems: list[str]) -> list[int] | None:
    """Foreground classes present in the mask ``path`` after checking it (mode, size, values); None on a problem."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                problems.append(f"{path}: mask PNG has mode {img.mode!r}; expected a palette ('P') or grey ('L') PNG "
                                "of class indices (re-save it with PIL as mode 'P'; colours are not class indices)")
                return None
            if image_size is not None and img.size != image_size:
                problems.append(f"{path}: mask is {img.size[0]}x{img.size[1]} (width x height) but its image "
                                f"{image_path} is {image_size[0]}x{image_size[1]}; a mask must have its image's size")
                return None
            counts = np.bincount(np.asarray(img, dtype=np.uint8).ravel(), minlength=256)
    except FileNotFoundError:
        return None  # reported by the caller, which knows why the mask is needed
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        problems.append(f"{path}: cannot read the mask ({type(err).__name__}: {err})")
        return None
    present = np.flatnonzero(counts)
    bad = [int(v) for v in present if v >= num_classes and v != IGNORE_INDEX]
    if bad:
        problems.append(f"{path}: mask values {bad} out of range: {num_classes} classes, so values must be "
                        f"0..{num_classes - 1} (or {IGNORE_INDEX} = ignore)")
        return None
    return [int(v) for v in present if 0 < v < num_classes]


def check_folder(root: str | os.PathLike, class_names: Sequence[str], splits: Mapping[str, str],
                 eval_roles: Sequence[str] = EVAL_ROLES, max_errors: int = 20
                 ) -> tuple[dict[str, list[str]], dict[str, list[int]], str]:
    """Check the folder for the configured splits and derive the image-level labels.

    Parameters
    ----------
    root : the user's folder in VOC layout.
    class_names : K names, background first.
    splits : config ``splits`` ({role: split name}, e.g. {"train_classifier": "train", ..., "eval_seg": "val"}).
    eval_roles : roles whose splits are evaluated against masks (every image there needs a mask).

    Returns
    -------
    ({split: ids}, {id: sorted foreground classes} for every id of the splits, source) where source says where
    the labels came from ("cls_labels.csv", "masks" or both).

    Raises
    ------
    FolderDatasetError
        listing every problem (each naming its file): a missing split list, an empty list or a repeated id, a
        missing or unreadable image, a missing mask where one is needed, a mask of another size than its image,
        or with values >= K other than 255, a line of cls_labels.csv with an unknown id or class.
    """
    root = Path(root).expanduser()
    k = len(class_names)
    problems: list[str] = []
    if not root.is_dir():
        _fail(root, [f"{root}: not a folder (config data.folder.root)"], max_errors)

    # split lists, each read once (several roles may name one split)
    split_ids: dict[str, list[str]] = {}
    roles_of: dict[str, list[str]] = {}
    for role, split in splits.items():
        roles_of.setdefault(split, []).append(role)
    for split, roles in roles_of.items():
        path = split_path(root, split)
        if not path.is_file():
            keys = ", ".join(f"splits.{r}" for r in roles)
            problems.append(f"{path}: split list missing; config {keys} = '{split}' names it (write the list, one id "
                            "a line, or set the config key to a split that has one)")
            continue
        split_ids[split] = parse_split_list(path, problems)
    eval_splits = {splits[r] for r in eval_roles if r in splits}
    export, eval_seed = splits.get("export"), splits.get("eval_seed")
    if export in split_ids and eval_seed in split_ids and eval_seed != export:
        exported = set(split_ids[export])
        outside = [i for i in split_ids[eval_seed] if i not in exported]
        if outside:
            problems.append(f"{split_path(root, eval_seed)}: {len(outside)} id(s) of splits.eval_seed "
                            f"'{eval_seed}' are not in splits.export '{export}' (e.g. {outside[:3]}); seeds are made "
                            "for the export split only, so the split they are scored on must be part of it")

    image_dir, mask_dir = root / IMAGE_DIR, root / MASK_DIR
    all_ids = list(dict.fromkeys(i for ids in split_ids.values() for i in ids))
    if all_ids and not image_dir.is_dir():
        problems.append(f"{image_dir}: folder missing; it must hold the {len(all_ids)} images of the split lists as "
                        "<id>.jpg")
        _fail(root, problems, max_errors)

    csv_path = root / LABELS_CSV
    csv_labels = read_labels_csv(csv_path, class_names, image_dir, problems) if csv_path.is_file() else {}

    # why each id needs a mask: its split is evaluated, or its labels must come from it
    need_mask: dict[str, str] = {}
    for split, ids in split_ids.items():
        if split in eval_splits:
            keys = ", ".join(f"splits.{r}" for r in roles_of[split] if r in eval_roles)
            for i in ids:
                need_mask.setdefault(i, f"split '{split}' is evaluated ({keys}), so each of its images needs a mask")
    for i in all_ids:
        if i not in csv_labels:
            why = (f"its labels come from its mask: {csv_path} has no line for it" if csv_path.is_file() else
                   f"its labels come from its mask (there is no {csv_path})")
            need_mask.setdefault(i, why + f"; add the mask or a line '{i},<class indices>' to {LABELS_CSV}")
    if need_mask and not mask_dir.is_dir():
        problems.append(f"{mask_dir}: folder missing; {len(need_mask)} image(s) need a mask <id>.png there, e.g. "
                        f"{next(iter(need_mask))}: {next(iter(need_mask.values()))}")
        need_mask = {}

    labels: dict[str, list[int]] = {}
    from_mask = 0
    for i in all_ids:
        image_path = image_dir / f"{i}.jpg"
        size = image_size(image_path, problems)
        mask_labels = None
        if i in need_mask:
            mask_path = mask_dir / f"{i}.png"
            if not mask_path.is_file():
                problems.append(f"{mask_path}: mask missing; {need_mask[i]}")
                continue
            mask_labels = _mask_labels(mask_path, image_path, size, k, problems)
        if i in csv_labels:
            labels[i] = csv_labels[i]
        elif mask_labels is not None:
            labels[i] = mask_labels
            from_mask += 1
    if problems:
        _fail(root, problems, max_errors)
    source = " and ".join(s for s, n in ((LABELS_CSV, len(labels) - from_mask), ("masks", from_mask)) if n)
    return split_ids, labels, source


def resized_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) with the long side at most ``max_side``, aspect kept (each side at least 1 pixel)."""
    w, h = size
    scale = max_side / max(w, h)
    if scale >= 1:
        return w, h
    return max(1, round(w * scale)), max(1, round(h * scale))


def _max_side_error(max_side) -> str | None:
    if max_side is None or (isinstance(max_side, int) and not isinstance(max_side, bool) and max_side >= 32):
        return None
    return f"data.folder.max_side must be an integer >= 32 or null, got {max_side!r}"


def write_resized_copy(root: Path, dest: Path, split_ids: Mapping[str, list[str]], max_side: int) -> None:
    """Copy the split lists, images and masks of ``split_ids`` from ``root`` to ``dest`` (VOC layout), images
    larger than ``max_side`` on their long side shrunk to it: images by area averaging (as cv2.INTER_AREA),
    masks by nearest neighbour (class indices and 255 stay exact). Smaller images are copied unchanged. The copy
    appears whole or not at all."""
    if _max_side_error(max_side):
        raise ValueError(_max_side_error(max_side))
    ids = list(dict.fromkeys(i for split_list in split_ids.values() for i in split_list))
    with atomic_dir(dest) as tmp:
        tmp = Path(tmp)
        for split, split_list in split_ids.items():
            write_split(tmp, split, split_list)
        (tmp / IMAGE_DIR).mkdir()
        (tmp / MASK_DIR).mkdir()
        shrunk = 0
        for i in ids:
            src = root / IMAGE_DIR / f"{i}.jpg"
            with Image.open(src) as img:
                size = resized_size(img.size, max_side)
                if size == img.size:
                    shutil.copyfile(src, tmp / IMAGE_DIR / f"{i}.jpg")
                else:
                    img.convert("RGB").resize(size, Image.Resampling.BOX).save(tmp / IMAGE_DIR / f"{i}.jpg",
                                                                                quality=95)
                    shrunk += 1
            mask = root / MASK_DIR / f"{i}.png"
            if mask.is_file():
                with Image.open(mask) as m:
                    # mode P or L kept as is, palette included: the values are the class indices
                    m.resize(size, Image.Resampling.NEAREST).save(tmp / MASK_DIR / f"{i}.png")
    log.info("copied %d images (%d shrunk to a long side of %d px) and their masks to %s", len(ids), shrunk, max_side,
             dest)


def link_root(root: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Make ``<out_dir>/root`` a link to the user's folder (as given: an absolute path, or a relative one taken from
    the working directory and linked relative to ``out_dir``) and return it; unchanged when it already points there.

    The manifest names this link, not the folder, so pointing ``data.folder.root`` at a moved or copied folder
    with the same content changes no file the rules read: the workflow relinks while it parses
    (rules/common/dataset.smk) and nothing reruns."""
    out_dir, root = Path(out_dir), Path(root).expanduser()
    link = out_dir / ROOT_LINK
    target = str(root) if root.is_absolute() else os.path.relpath(os.path.abspath(root), os.path.abspath(out_dir))
    if link.is_symlink() and os.readlink(link) == target:
        return link
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{ROOT_LINK}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)  # atomic: a reader sees the old link or the new one
    return link


def prepare_folder(root: str | os.PathLike, out_dir: str | os.PathLike, splits: Mapping[str, str], classes=None,
                   max_errors: int = 20, name: str = "folder", max_side: int | None = None) -> Path:
    """Check the user's folder and write ``<out_dir>/cls_labels.json`` and then ``<out_dir>/dataset.json``.

    Parameters
    ----------
    root : the user's folder in VOC layout (read only). The manifest names the link ``<out_dir>/root`` to it
        (``link_root``: absolute stays absolute, relative is linked relative to ``out_dir``).
    out_dir : where the manifest and the derived labels go (``resources/folder``).
    splits : config ``splits`` ({role: split name}).
    classes : config ``data.folder.classes`` (list of names, ``"voc"``, or None for ``<root>/classes.txt``).
    max_errors : at most this many problems are shown in the error message (all go to the log).
    max_side : None uses the folder as it is; an integer first copies it to ``<out_dir>/resized`` with every image
        (and mask) shrunk to at most that long side, and the manifest points at the copy.

    Returns
    -------
    Path of the manifest. Raises :class:`FolderDatasetError` (nothing written) when the folder has problems.
    """
    out_dir, root = Path(out_dir), Path(root).expanduser()
    manifest = out_dir / "dataset.json"
    manifest.unlink(missing_ok=True)  # the manifest marks a complete dataset: gone until we finish
    try:
        class_names = resolve_class_names(root, classes)
    except ValueError as err:
        raise FolderDatasetError(root, [str(err)], max_errors) from None
    split_ids, labels, source = check_folder(root, class_names, splits, max_errors=max_errors)
    train = splits.get("train_classifier")
    empty = [i for i in split_ids.get(train, []) if not labels[i]]
    if empty and len(empty) == len(split_ids.get(train, [])):
        raise FolderDatasetError(root, [
            f"{split_path(root, train)}: none of the {len(empty)} image(s) of the training split '{train}' "
            f"(splits.train_classifier) has an object class (labels from {source}: every mask holds only background "
            f"0 and ignore {IGNORE_INDEX}, or the lines of {LABELS_CSV} list no class), so the classifiers have "
            f"nothing to learn; give each training image its classes ('<id>,<classes>' in {root / LABELS_CSV}, or "
            f"the objects painted into its mask with their indices 1..{len(class_names) - 1}), or set "
            "splits.train_classifier to a split whose images show objects"], max_errors)
    if empty:
        log.warning("%d image(s) of the training split '%s' have no object class (classifier training skips them), "
                    "e.g. %s", len(empty), train, empty[:3])
    all_ids = sorted({i for ids in split_ids.values() for i in ids})
    rotated = exif_oriented(root / IMAGE_DIR / f"{i}.jpg" for i in all_ids)
    if rotated:
        log.warning("%d image(s) carry an EXIF orientation tag, e.g. %s: they are read as stored (unrotated), and "
                    "their masks must be drawn on that grid. If a mask was drawn on the rotated view, rotate the "
                    "JPEG losslessly first (e.g. `exiftran -ai <file>` or `jpegtran`)", len(rotated),
                    [str(p) for p in rotated[:3]])
    log.info("%d classes %s; labels of %d images from %s; splits %s", len(class_names), list(class_names),
             len(labels), source, {s: len(ids) for s, ids in split_ids.items()})
    data_root = link_root(root, out_dir)
    if max_side is None:
        shutil.rmtree(out_dir / RESIZED_DIR, ignore_errors=True)  # a copy from an earlier max_side is stale
    else:
        data_root = out_dir / RESIZED_DIR
        write_resized_copy(root, data_root, split_ids, max_side)
    write_cls_labels(out_dir, labels)
    write_manifest(manifest, name=name, root=data_root, class_names=class_names, mask_dir=MASK_DIR,
                   splits={s: len(ids) for s, ids in split_ids.items()}, labels_file=out_dir / "cls_labels.json")
    return manifest
