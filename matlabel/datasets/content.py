"""Content stamps: what a split's images, masks and image-level labels are, as small files in the DAG.

Snakemake decides what to rerun from its rules' input files. A prepared dataset is thousands of files that no rule
lists, so replacing an image, a mask, a split list or ``cls_labels`` used to rerun nothing. Each split the workflow
reads gets stamps instead::

    resources/<dataset>/content/<split>.images.json   ids in list order, each image's bytes, its labels
    resources/<dataset>/content/<split>.masks.json    ids in list order, each mask's bytes

each ``{"dataset", "split", "part", "count", "sha256"}``, an input of the rules that read that part of that split
(training and export read images and labels; evaluations read masks). The rule ``dataset_content`` writes a stamp
the first time; on every later run the workflow refreshes the existing stamps while it parses (``refresh_stamps``)
and rewrites one only when its digest changed, so an edited image makes the stamp newer and the rules that read it
rerun, and a touched but unchanged file reruns nothing.

Hashing 10,582 VOC images takes seconds once; later runs only ``stat`` the files: a cache beside each stamp keeps
each file's digest under its stat data, as git's index does (git/git, Documentation/technical/racy-git.txt and
read-cache.c ``ie_match_stat``): device, inode, size, mtime and ctime, all in ns. A file replaced in place keeps none
of them all: ``touch -r``, ``cp -p`` and ``rsync -a`` can set the mtime back, but not the ctime, which the kernel
sets on every write, rename or ``utime``; a file written to a new inode (``rsync``, most editors) changes the inode.
An entry is also not trusted when its mtime or ctime is not older than the cache file itself (git's "racy" rule):
a file changed again within the timestamp tick in which it was hashed would keep all of its stat data, so such an
entry is hashed again on the next run, and the cache is rewritten so that it becomes trusted after that.

The images stamp also checks what training would otherwise find late: every listed image exists and is readable,
and a mask that exists has its image's size. Problems are raised together, each naming its file.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from matlabel.datasets.layout import Manifest, load_manifest, parse_split_list, split_path
from matlabel.io import read_json, write_json

PARTS = ("images", "masks")
CHUNK = 1 << 20


class DatasetContentError(ValueError):
    """Problems found in a prepared dataset's files, one line each, each naming its file."""

    def __init__(self, problems: Sequence[str], max_shown: int = 20):
        shown = list(problems[:max_shown])
        if len(problems) > max_shown:
            shown.append(f"... and {len(problems) - max_shown} more")
        super().__init__(f"{len(problems)} problem(s) in the dataset's files:\n  " + "\n  ".join(shown))
        self.problems = list(problems)


def stamp_path(content_dir: str | os.PathLike, split: str, part: str) -> Path:
    if part not in PARTS:
        raise ValueError(f"content part must be one of {PARTS}, got {part!r}")
    return Path(content_dir) / f"{split}.{part}.json"


def _cache_path(stamp: Path) -> Path:
    return stamp.with_name(f".{stamp.stem}.cache.json")


def image_size(path: Path, problems: list[str]) -> tuple[int, int] | None:
    """(width, height) from the image's header (PIL decodes no pixels for this); None and a problem if unreadable."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        hint = ""
        others = sorted(p.name for p in path.parent.glob(f"{path.stem}.*") if p.name != path.name)
        if others:
            hint = f" (found {', '.join(others)}: images must be JPEG files named <id>.jpg; convert or rename them)"
        problems.append(f"{path}: image missing (its id is in a split list){hint}")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        problems.append(f"{path}: cannot read the image ({type(err).__name__}: {err}); replace it or remove its id "
                        "from the split lists")
    return None


STAT_KEYS = ("dev", "ino", "size", "mtime_ns", "ctime_ns")  # git's index compares the same (read-cache.c)


def _stat_data(st: os.stat_result) -> dict:
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns}


def load_cache(path: str | os.PathLike | None) -> tuple[dict, int]:
    """The file entries of a digest cache and the cache file's mtime in ns (the time its entries were known
    current); ({}, 0) when it is missing or damaged (that only costs a rehash)."""
    if path is None:
        return {}, 0
    entries = _read_or_none(Path(path))
    if not isinstance(entries, dict):
        return {}, 0
    return entries, Path(path).stat().st_mtime_ns


class _FileCache:
    """Digest and (width, height) of files, reused while a file's stat data (``STAT_KEYS``) is unchanged and was
    not racy when the cache was written.

    Parameters
    ----------
    entries : {path: entry} of the last run (``load_cache``).
    written_ns : when ``entries`` were written (the cache file's mtime): an entry whose mtime or ctime is not older
        is "racily clean" in git's terms and is hashed again (git/git Documentation/technical/racy-git.txt).
        None: the entries are as old as now (a cache kept in memory).
    """

    def __init__(self, entries: dict, written_ns: int | None = None):
        self.old = entries
        self.written_ns = time.time_ns() if written_ns is None else written_ns
        self.new: dict = {}
        self.rehashed_racy = 0  # entries hashed again only because they were racy: rewrite the cache

    def _trusted(self, entry: dict | None, stat: dict) -> bool:
        if not isinstance(entry, dict) or any(entry.get(k) != stat[k] for k in STAT_KEYS):
            return False
        if max(stat["mtime_ns"], stat["ctime_ns"]) >= self.written_ns:
            self.rehashed_racy += 1
            return False
        return True

    def record(self, path: Path, problems: list[str], what: str) -> dict | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            if what == "image":
                image_size(path, problems)  # names the file, with a hint on a wrong extension
            else:
                problems.append(f"{path}: {what} missing (its id is in a split list that is evaluated)")
            return None
        key, stat = str(path), _stat_data(st)
        entry = self.old.get(key)
        if not self._trusted(entry, stat):
            size = _header_size(path, what, problems)
            if size is None:
                return None
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            entry = {**stat, "sha256": digest.hexdigest(), "wh": list(size)}
        self.new[key] = entry
        return entry

    def save(self, path: Path) -> None:
        """Write the entries to ``path`` when they changed or some were racy (the new mtime makes them trusted)."""
        if self.new != self.old or self.rehashed_racy:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, self.new)


def _header_size(path: Path, what: str, problems: list[str]) -> tuple[int, int] | None:
    """(width, height) of an image or mask from its header; (0, 0) for any other file; None and a problem if an
    image or mask cannot be read."""
    if what == "image":
        return image_size(path, problems)
    if what != "mask":
        return (0, 0)
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        problems.append(f"{path}: cannot read the mask ({type(err).__name__}: {err})")
        return None


def compute_stamp(manifest: Manifest, split: str, part: str, cache_entries: dict | None = None,
                  cache_written_ns: int | None = None) -> tuple[dict, dict]:
    """The stamp of ``part`` ("images" or "masks") of ``split``, and the file cache to keep for next time.

    ``cache_entries`` (written at ``cache_written_ns``, default now) are the file digests of an earlier run; see
    ``_FileCache`` for when one is trusted. Raises DatasetContentError listing every missing or unreadable file,
    every mask whose size is not its image's, and (images) every id without an entry in cls_labels; the split
    list's own problems (missing, empty, repeated ids) are raised by ``read_split``."""
    cache = _FileCache(cache_entries or {}, cache_written_ns)
    return _stamp(manifest, split, part, cache), cache.new


def _stamp(manifest: Manifest, split: str, part: str, cache: _FileCache) -> dict:
    ids = manifest.split_ids(split)
    problems: list[str] = []
    digest = hashlib.sha256(f"{part}\n".encode())
    if part == "images":
        labels = manifest.labels() if manifest.labels_path.is_file() else None
        for image_id in ids:
            image = manifest.image_path(image_id)
            entry = cache.record(image, problems, "image")
            mask = manifest.mask_path(image_id)
            if entry is not None and mask.is_file():
                mask_entry = cache.record(mask, problems, "mask")
                if mask_entry is not None and mask_entry["wh"] != entry["wh"]:
                    (mw, mh), (iw, ih) = mask_entry["wh"], entry["wh"]
                    problems.append(f"{mask}: mask is {mw}x{mh} (width x height) but its image {image} is {iw}x{ih}; "
                                    "a mask must have its image's size")
            if labels is not None and image_id not in labels:
                problems.append(f"{manifest.labels_path}: no entry for image '{image_id}' of split '{split}'")
                continue
            label = json.dumps(sorted(labels[image_id])) if labels is not None else "-"
            digest.update(f"{image_id}\t{entry['sha256'] if entry else '-'}\t{label}\n".encode())
    else:
        for image_id in ids:
            entry = cache.record(manifest.mask_path(image_id), problems, "mask")
            digest.update(f"{image_id}\t{entry['sha256'] if entry else '-'}\n".encode())
    if problems:
        raise DatasetContentError(problems)
    return {"dataset": manifest.name, "split": split, "part": part, "count": len(ids), "sha256": digest.hexdigest()}


def write_stamp(manifest_path: str | os.PathLike, stamp_file: str | os.PathLike) -> bool:
    """(Re)compute the stamp ``<content_dir>/<split>.<part>.json`` and write it if it is missing or its content
    changed (an unchanged stamp keeps its mtime, so nothing downstream reruns). Returns whether it was written."""
    stamp_file = Path(stamp_file)
    split, part = stamp_file.name[: -len(".json")].rsplit(".", 1)
    cache_file = _cache_path(stamp_file)
    cache = _FileCache(*load_cache(cache_file))  # missing or damaged: it only costs a rehash
    stamp = _stamp(load_manifest(manifest_path), split, part, cache)
    changed = not stamp_file.is_file() or _read_or_none(stamp_file) != stamp
    if changed:
        write_json(stamp_file, stamp)
    cache.save(cache_file)
    return changed


def _read_or_none(path: Path):
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def folder_digest(root: str | os.PathLike, splits: Iterable[str], cache_file: str | os.PathLike | None = None,
                  save: bool = True) -> str:
    """Digest of what ``prepare_folder`` reads from a user's folder: the split lists of ``splits``, the images and
    masks they list, classes.txt and cls_labels.csv; computed while the workflow is parsed and given to the rule as
    a param, so editing any of them reruns it (and, when the content changed, what follows), touching none does.

    Never raises on a bad folder (missing lists or files enter the digest as missing; prepare_folder reports them,
    naming each). ``cache_file`` keeps the file digests between runs (written when ``save``)."""
    root = Path(root).expanduser()
    cache_path = Path(cache_file) if cache_file else None
    cache, problems = _FileCache(*load_cache(cache_path)), []
    digest = hashlib.sha256()

    def add(path: Path, what: str) -> None:
        entry = cache.record(path, problems, what) if path.is_file() else None
        digest.update(f"{os.path.relpath(path, root)}\t{entry['sha256'] if entry else '-'}\n".encode())

    for name in ("classes.txt", "cls_labels.csv"):
        add(root / name, "file")
    for split in sorted(set(splits)):
        lst = split_path(root, split)
        add(lst, "file")
        if not lst.is_file():
            continue
        for image_id in parse_split_list(lst, []):  # the list's own problems are prepare_folder's to report
            add(root / "JPEGImages" / f"{image_id}.jpg", "file")
            add(root / "SegmentationClass" / f"{image_id}.png", "file")
    if save and cache_path:
        cache.save(cache_path)
    return digest.hexdigest()[:16]


def existing_stamps(content_dir: str | os.PathLike) -> list[Path]:
    """The stamps present in ``content_dir`` (``<split>.<part>.json``; the hidden caches excluded)."""
    return sorted(p for part in PARTS for p in Path(content_dir).glob(f"[!.]*.{part}.json"))


def refresh_stamps(manifest_path: str | os.PathLike, stamp_files: Iterable[str | os.PathLike]) -> list[Path]:
    """Refresh the stamps among ``stamp_files`` that exist (the rule writes missing ones) against the dataset as it
    is now; returns those rewritten. Called while the workflow is parsed, before Snakemake plans the jobs."""
    if not Path(manifest_path).is_file():
        return []
    return [Path(f) for f in stamp_files if Path(f).is_file() and write_stamp(manifest_path, f)]
