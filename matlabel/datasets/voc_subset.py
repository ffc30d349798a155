"""A folder for ``dataset: folder`` built from PASCAL VOC 2012 trainval: the images and masks of listed ids.

Config ``data.folder.voc_ids`` names a folder of id lists ``<split>.txt`` (``config/voc-photos``: the developers'
330 photos, 248 ``train`` and 82 ``val``). Rule ``voc_subset`` runs :func:`build_voc_subset`, which copies each
listed id's JPEG and ``SegmentationClass`` PNG, bytes unchanged, from the VOC 2012 trainval archive
(``VOCtrainval_11-May-2012.tar``, downloaded and md5-checked as for ``dataset: voc12``) or from an extracted
``VOCdevkit/VOC2012`` (config ``data.folder.voc_dir``) into::

    resources/voc_subset/JPEGImages/<id>.jpg
    resources/voc_subset/SegmentationClass/<id>.png
    resources/voc_subset/ImageSets/Segmentation/<split>.txt     the lists as given
    resources/voc_subset/classes.txt                            the 21 VOC classes, background first

That folder is ``data.folder.root`` (it must be :data:`SUBSET_ROOT`: the workflow writes there and nowhere else),
and rule ``prepare_folder`` checks it like any user's folder. Because the folder does not exist before the first
run, :func:`voc_subset_config_errors` replaces the folder's parse-time checks (``folder_config_errors``) by checks
of the lists and keys, and the workflow follows the lists by content (:func:`id_lists_digest`), not the folder.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from matlabel.datasets.download import safe_extract
from matlabel.datasets.layout import VOC_CLASSES, parse_split_list, write_split
from matlabel.io import atomic_dir, write_text

SUBSET_ROOT = "resources/voc_subset"  # the folder rule voc_subset builds: data.folder.root must name it
VOC_IN_ARCHIVE = "VOCdevkit/VOC2012"  # where VOCtrainval_11-May-2012.tar keeps the dataset
IMAGE_DIR, MASK_DIR = "JPEGImages", "SegmentationClass"
PARTS = ((IMAGE_DIR, ".jpg"), (MASK_DIR, ".png"))  # what the folder takes of each id, as <dir>/<id><ext>
SPLIT_NAME = re.compile(r"[A-Za-z0-9_]+")  # a split name of the config schema ($defs/split)
MAX_SHOWN = 10  # missing ids named in the error


class VocSubsetError(ValueError):
    """The id lists or the VOC source cannot give the folder; the message names the files and ids."""


def read_id_lists(lists_dir: str | os.PathLike) -> dict[str, list[str]]:
    """The lists ``<lists_dir>/<split>.txt`` as {split: ids} (file order; the folder check's rules: one id a line,
    each once, no whitespace inside). Other files (a README) are not lists. Raises :class:`VocSubsetError`."""
    lists_dir = Path(lists_dir)
    if not lists_dir.is_dir():
        raise VocSubsetError(f"{lists_dir}: not a folder; it must hold the id lists <split>.txt (one VOC 2012 id a "
                             "line), e.g. config/voc-photos")
    files = sorted(lists_dir.glob("*.txt"))
    if not files:
        raise VocSubsetError(f"{lists_dir}: no id lists <split>.txt (one VOC 2012 id a line), e.g. train.txt")
    problems: list[str] = []
    lists = {}
    for path in files:
        if not SPLIT_NAME.fullmatch(path.stem):
            problems.append(f"{path}: '{path.stem}' is not a split name (letters, digits and _ only)")
            continue
        lists[path.stem] = parse_split_list(path, problems)
    if problems:
        raise VocSubsetError("; ".join(problems))
    return lists


def id_lists_digest(lists_dir: str | os.PathLike) -> str:
    """Digest of the lists' names and bytes (a param of the rules that read them: editing one reruns them,
    touching one does not); "" when there is no such folder (the config check names it)."""
    lists_dir = Path(lists_dir)
    if not lists_dir.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(lists_dir.glob("*.txt")):
        digest.update(f"{path.name}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def find_voc_root(voc_dir: str | os.PathLike) -> Path:
    """The ``VOC2012`` folder (holding ``JPEGImages/`` and ``SegmentationClass/``) given as itself, its
    ``VOCdevkit`` or the folder the archive was extracted in. Raises :class:`VocSubsetError`."""
    voc_dir = Path(voc_dir).expanduser()
    for candidate in (voc_dir, voc_dir / "VOC2012", voc_dir / VOC_IN_ARCHIVE):
        if (candidate / IMAGE_DIR).is_dir() and (candidate / MASK_DIR).is_dir():
            return candidate
    raise VocSubsetError(f"{voc_dir}: no {IMAGE_DIR}/ and {MASK_DIR}/ there, nor in its VOC2012/ or "
                         f"{VOC_IN_ARCHIVE}/; give the extracted VOC 2012 trainval (VOCtrainval_11-May-2012.tar) "
                         "as data.folder.voc_dir, e.g. /data/VOCdevkit/VOC2012")


def _missing_message(source: str, missing: dict[str, list[str]], lists: Mapping[str, list[str]],
                     lists_dir: Path, n_ids: int) -> str:
    def where(image_id):
        return ", ".join(f"{lists_dir / split}.txt" for split, ids in lists.items() if image_id in ids)

    shown = [f"{i} (no {' and no '.join(files)}; listed in {where(i)})"
             for i, files in list(missing.items())[:MAX_SHOWN]]
    more = f"\n  ... and {len(missing) - MAX_SHOWN} more" if len(missing) > MAX_SHOWN else ""
    hint = ("none of them is there: is it PASCAL VOC 2012 trainval (VOCtrainval_11-May-2012.tar, md5 "
            "6cd6e144f989b92b3379bac3b3de84fd)?" if len(missing) == n_ids else
            "the lists name images of VOC 2012 segmentation trainval (each with a SegmentationClass mask): remove "
            "these ids from the lists, or use a complete VOC 2012 trainval")
    return (f"{source}: {len(missing)} of the {n_ids} listed id(s) missing; {hint}:\n  " + "\n  ".join(shown) + more)


def build_voc_subset(lists_dir: str | os.PathLike, dest: str | os.PathLike, voc_tar: str | os.PathLike | None = None,
                     voc_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Write the folder ``dest`` (see the module docstring) with the images and masks of the ids listed in
    ``lists_dir``, taken from the VOC 2012 trainval archive ``voc_tar`` (only those members are extracted) or from
    the extracted ``voc_dir`` (copied), bytes unchanged; return the lists {split: ids}.

    Every listed id must have both files there; otherwise :class:`VocSubsetError` names each missing one and its
    list, and nothing is written. The folder appears whole or not at all (replacing an older one)."""
    if (voc_tar is None) == (voc_dir is None):
        raise ValueError("give exactly one of voc_tar (the VOC 2012 trainval archive) and voc_dir (an extracted copy)")
    lists_dir = Path(lists_dir)
    lists = read_id_lists(lists_dir)
    ids = sorted({i for split_ids in lists.values() for i in split_ids})
    with atomic_dir(dest) as tmp:
        tmp = Path(tmp)
        if voc_tar is not None:
            wanted = {f"{VOC_IN_ARCHIVE}/{IMAGE_DIR}/{i}.jpg" for i in ids} | {
                f"{VOC_IN_ARCHIVE}/{MASK_DIR}/{i}.png" for i in ids}
            safe_extract(voc_tar, tmp / ".archive", select=wanted.__contains__, progress=False)
            src, source, move = tmp / ".archive" / VOC_IN_ARCHIVE, f"{voc_tar} ({VOC_IN_ARCHIVE}/)", True
        else:
            src = find_voc_root(voc_dir)
            source, move = str(src), False
        missing = {}
        for i in ids:
            files = [f"{d}/{i}{ext}" for d, ext in PARTS if not (src / d / f"{i}{ext}").is_file()]
            if files:
                missing[i] = files
        if missing:
            raise VocSubsetError(_missing_message(source, missing, lists, lists_dir, len(ids)))
        for d, ext in PARTS:
            (tmp / d).mkdir()
            for i in ids:
                (os.replace if move else shutil.copyfile)(src / d / f"{i}{ext}", tmp / d / f"{i}{ext}")
        shutil.rmtree(tmp / ".archive", ignore_errors=True)
        for split, split_ids in lists.items():
            write_split(tmp, split, split_ids)
        write_text(tmp / "classes.txt", "".join(f"{name}\n" for name in VOC_CLASSES))
    return lists


def voc_subset_config_errors(folder: Mapping | None, splits: Mapping[str, str]) -> list[str]:
    """Config errors of ``data.folder`` when it sets ``voc_ids`` or ``voc_dir`` (``dataset: folder``), each naming its
    key; in place of ``folder_config_errors``, whose root must exist already (this one is built by the workflow)."""
    from matlabel.datasets.folder import _max_side_error

    folder = folder or {}
    voc_ids, voc_dir = folder.get("voc_ids"), folder.get("voc_dir")
    if not voc_ids:
        return [f"data.folder.voc_dir: read only with data.folder.voc_ids (the id lists to take from it, e.g. "
                f"config/voc-photos); got voc_dir {voc_dir} without them"]
    errors = []
    max_side_error = _max_side_error(folder.get("max_side"))
    if max_side_error:
        errors.append(max_side_error)
    root = folder.get("root")
    if not root or os.path.normpath(root) != SUBSET_ROOT:
        errors.append(f"data.folder.root: must be {SUBSET_ROOT} with data.folder.voc_ids: the workflow builds the "
                      f"folder there from VOC 2012 (rule voc_subset); got {root} (to use a folder of your own, set "
                      "data.folder.voc_ids: null)")
    if str(folder.get("classes")).lower() != "voc":
        errors.append(f"data.folder.classes: must be voc with data.folder.voc_ids (the masks are VOC 2012's, 21 "
                      f"classes); got {folder.get('classes')}")
    try:
        lists = read_id_lists(voc_ids)
    except VocSubsetError as err:
        errors.append(f"data.folder.voc_ids: {err}")
    else:
        for role, split in splits.items():
            if split not in lists:
                errors.append(f"splits.{role}: '{split}' has no list {Path(voc_ids) / split}.txt in "
                              f"data.folder.voc_ids (its lists: {', '.join(sorted(lists))})")
    if voc_dir:
        try:
            find_voc_root(voc_dir)
        except VocSubsetError as err:
            errors.append(f"data.folder.voc_dir: {err}")
    return errors
