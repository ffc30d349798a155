"""Atomic file writing and the typed on-disk formats of the workflow.

Every output is written to a temporary name in the same directory and renamed into place, so a
killed job leaves either the whole file or nothing (DESIGN.md, "Contracts"). A write that fails because
the disk is full removes its temporary file and raises :class:`DiskFullError` naming the output.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

_IGNORE_INDEX = 255  # layout.IGNORE_INDEX (layout imports this module)


class DiskFullError(OSError):
    """A write failed with ENOSPC/EDQUOT; the message names the output and the fix. Its partial file was removed."""


def _raise_if_disk_full(err: BaseException, path: Path) -> None:
    """Re-raise ``err`` as :class:`DiskFullError` naming ``path`` when it says the disk (or quota) is full."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(err.errno, f"disk full while writing {path} ({os.strerror(err.errno)}); the partial "
                            f"output was removed and finished outputs are kept. Free space on the filesystem of "
                            f"{path.parent} (`df -h {path.parent}`) and rerun.") from err


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    The temporary name keeps the file extension (``suffix`` overrides it), so writers that pick a
    format from the name (PIL, numpy) still work. On any error the temporary file is removed (an
    existing ``path`` is left as it was); a full disk raises :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would have
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _raise_if_disk_full(err, path)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary directory next to ``path``; move it to ``path`` if the block succeeds.

    Used for shard outputs (one directory of per-image files): the shard appears whole or not at all.
    On any error the temporary directory is removed; a full disk raises :class:`DiskFullError` naming ``path``.
    SIGKILL skips that cleanup: a partial directory a killed earlier attempt left is removed here first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")  # mkdtemp's 8 random characters
    for old in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if stale.fullmatch(old.name):
            shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_if_disk_full(err, path)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically (byte-stable for equal inputs)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def output_folder_problems(folders) -> list[str]:
    """Of ``folders`` (relative paths the workflow writes under, parents before children), those that cannot hold
    its outputs: a file of that name, or a link to a path that does not exist. Each problem names the path and
    the fix; a child of a bad folder is not looked at."""
    problems, bad = [], []
    for folder in map(Path, folders):
        if any(b in folder.parents for b in bad):
            continue
        if folder.is_symlink() and not folder.exists():
            target = os.readlink(folder)
            problems.append(f"{folder}: a link to {target}, which does not exist (an unmounted disk or a deleted "
                            f"folder?); the workflow writes under {folder}/: create the target (mkdir -p {target}) or "
                            f"remove the link (rm {folder})")
        elif folder.exists() and not folder.is_dir():
            problems.append(f"{folder}: a file, but the workflow writes its outputs in a folder of that name; move "
                            f"the file away (mv {folder} {folder}.bak)")
        else:
            continue
        bad.append(folder)
    return problems


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: (n, 3) uint8, index 0 black, 255 the ignore colour (224, 224, 192).

    This is the bit-interleaving colour map of the VOC devkit (VOCcolormap.m), so our PNGs open with
    the same colours as the official masks.
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def write_label_png(path: str | os.PathLike, label: np.ndarray) -> None:
    """Write an (H, W) uint8 label map as a palette PNG with the VOC colour map, atomically."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {label.shape}")
    if label.dtype != np.uint8:
        if label.min() < 0 or label.max() > 255:
            raise ValueError("label values must be in 0..255")
        label = label.astype(np.uint8)
    img = Image.fromarray(label, mode="P")
    img.putpalette(voc_palette().flatten().tolist())
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def read_label_png(path: str | os.PathLike, num_classes: int | None = None) -> np.ndarray:
    """Read a palette (or single-channel) PNG label map as (H, W) uint8 class indices.

    Raises ``ValueError`` naming the file for an RGB mask: its colours are not class indices
    (OpenCV and ``Image.convert('RGB')`` produce such files from VOC's palette PNGs). With
    ``num_classes`` (K, background included) a value outside 0..K-1 that is not 255 (ignore) raises
    ``ValueError`` naming the file too.
    """
    with Image.open(path) as img:
        if img.mode not in ("P", "L"):
            raise ValueError(
                f"{path}: label PNG has mode {img.mode!r}; expected a palette ('P') or grey ('L') PNG of "
                "class indices. Re-export it with PIL as mode 'P' (do not convert VOC masks to RGB)."
            )
        label = np.array(img, dtype=np.uint8)
    if num_classes is not None:
        bad = np.unique(label[(label >= num_classes) & (label != _IGNORE_INDEX)])
        if bad.size:
            raise ValueError(f"{path}: label values {bad.tolist()} outside 0..{num_classes - 1} (and "
                             f"{_IGNORE_INDEX} = ignore); the mask is damaged or from another dataset. Re-create it "
                             "(delete the dataset and rerun its preparation rule).")
    return label


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as a writeable, C-contiguous (H, W, 3) uint8 RGB array.

    Raises ``FileNotFoundError`` naming the file when it is missing, ``ValueError`` when it is
    corrupt or truncated.
    """
    try:
        with Image.open(path) as img:
            img.load()
            arr = np.array(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: image missing (its id is in a split list). Re-run the dataset preparation "
                                "rule, or remove the id from the split list.") from err
    except (OSError, SyntaxError) as err:  # PIL reports corrupt/truncated files as OSError
        raise ValueError(f"{path}: cannot decode image ({err}). Re-download or remove it from the split list.") from err
    return np.ascontiguousarray(arr)
