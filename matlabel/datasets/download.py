"""Fetch and unpack the real datasets' archives: resumable, checksummed, and safe to extract.

``download`` streams a URL into ``<dest>.part`` with the standard library only, resumes an interrupted
transfer with an HTTP ``Range`` request, and renames the file to ``dest`` only once its md5 matches.
``safe_extract`` unpacks a tar (any compression) or zip archive after refusing members that would land
outside the destination, and moves the result into place in one rename, so a killed job never leaves
a half-extracted tree at ``dest`` (DESIGN.md, "Contracts").
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import logging
import lzma
import os
import posixpath
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PureWindowsPath
from typing import Callable

from tqdm import tqdm

from matlabel.datasets.sources import ARCHIVES
from matlabel.io import atomic_dir

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
USER_AGENT = "matlabel-downloader/1.0 (+urllib)"
OFFLINE_HINT = "offline? run the synthetic demo instead: make demo"


class DownloadError(RuntimeError):
    """The archive could not be fetched (network down, server error, connection dropped too often)."""


class ChecksumError(RuntimeError):
    """The downloaded bytes do not match the expected md5 (or size); the file has been deleted."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the extraction folder; nothing was extracted."""


class CorruptArchiveError(RuntimeError):
    """The archive is truncated or damaged and cannot be read to the end."""


class _Dropped(Exception):
    """The connection ended before the whole body arrived; the ``.part`` file can be resumed."""


# --------------------------------------------------------------------------------------------------
# Checksums


def file_md5(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> str:
    """md5 hex digest of a file (see ``file_digest``)."""
    return file_digest(path, "md5", chunk_bytes)


def file_digest(path: str | os.PathLike, algorithm: str, chunk_bytes: int = CHUNK_BYTES) -> str:
    """``algorithm`` (hashlib name) hex digest of a file, read in ``chunk_bytes`` chunks (constant memory for
    13 GB zips)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: str | os.PathLike, md5: str) -> bool:
    """``True`` when the file at ``path`` exists and its md5 equals ``md5`` (hex, case-insensitive)."""
    path = Path(path)
    return path.is_file() and file_md5(path) == md5.lower()


# --------------------------------------------------------------------------------------------------
# Download


def download(url: str, dest: str | os.PathLike, md5: str | None = None, size: int | None = None,
             timeout: float = 30, progress: bool = True, retries: int = 3, sha256_prefix: str | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming an interrupted transfer; verify it before it appears.

    Parameters
    ----------
    url : str
        HTTP(S) URL of the file.
    dest : path
        Final location. The bytes arrive in ``dest + ".part"``, renamed to ``dest`` only after the checks.
    md5 : str, optional
        Expected md5 hex digest. ``None`` downloads unverified and logs a warning.
    size : int, optional
        Expected size in bytes: a ``.part`` larger than this is discarded, a final size that differs fails.
    timeout : float
        Socket timeout in seconds for connecting and for each read.
    progress : bool
        Show a tqdm progress bar on stderr.
    retries : int
        How many times a connection that drops mid-transfer is resumed (``Range: bytes=<n>-``) before
        giving up. Errors before any byte arrives (refused, DNS, HTTP 4xx/5xx) are not retried.
    sha256_prefix : str, optional
        Expected start of the sha256 hex digest: torchvision's weight files carry the first 8 hex digits in
        their names and ``torch.hub`` checks them the same way (``check_hash``).

    Returns
    -------
    Path
        ``dest``. Returns at once when ``dest`` already exists and verifies.

    Raises
    ------
    ChecksumError
        The finished file has the wrong md5 or size (the file is deleted).
    DownloadError
        The network failed; the message names the URL, where a manual copy can go, and the md5.
    """
    dest = Path(dest)
    if dest.exists():
        if _verified(dest, md5, size, sha256_prefix):
            return dest
        log.warning("%s exists but does not match its checksum/size; downloading it again", dest)
        dest.unlink()
    if md5 is None and sha256_prefix is None:
        log.warning("no md5 is known for %s: the archive will be UNVERIFIED", url)
    expected = (f"md5: {md5}" if md5 else f"sha256 starting with {sha256_prefix}" if sha256_prefix
                else "md5: unknown, unverified")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, size, timeout, progress)
            break
        except _Dropped as err:
            if attempt == retries:
                raise DownloadError(_offline_message(url, dest, expected, f"connection dropped {retries + 1} times "
                                                     f"(last: {err}); the partial file {part} is kept and resumed "
                                                     "on the next run")) from None
            log.warning("%s: %s; resuming (attempt %d of %d)", url, err, attempt + 2, retries + 1)
            time.sleep(0.5 * 2 ** attempt)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
            raise DownloadError(_offline_message(url, dest, expected, err)) from err
    _check_finished(part, url, dest, md5, size, sha256_prefix)
    os.replace(part, dest)
    return dest


def fetch_archive(name: str, dest_dir: str | os.PathLike, timeout: float = 30, progress: bool = True,
                  url: str | None = None) -> Path:
    """Download the registered archive ``name`` (see ``sources.ARCHIVES``) into ``dest_dir``.

    The primary URL is tried first, then each mirror; the error after the last one adds the
    registry's manual-download hint. ``url`` replaces the registry's URLs (config data.url_overrides).
    """
    if name not in ARCHIVES:
        raise ValueError(f"unknown archive {name!r}; known: {', '.join(sorted(ARCHIVES))}")
    archive = ARCHIVES[name]
    dest = Path(dest_dir) / archive.filename
    errors = []
    for url in (url,) if url else (archive.url, *archive.mirrors):
        try:
            return download(url, dest, md5=archive.md5, size=archive.size_bytes, timeout=timeout, progress=progress)
        except DownloadError as err:
            errors.append(str(err))
    raise DownloadError("\n".join(errors) + f"\n{archive.manual_hint}")


def _verified(path: Path, md5: str | None, size: int | None, sha256_prefix: str | None = None) -> bool:
    if size is not None and path.stat().st_size != size:
        return False
    if sha256_prefix is not None and not _sha256_starts(path, sha256_prefix)[0]:
        return False
    return md5 is None or verify_md5(path, md5)


def _sha256_starts(path: Path, prefix: str) -> tuple[bool, str]:
    """(whether the file's sha256 starts with ``prefix``, the digest): torch.hub's ``check_hash`` test."""
    actual = file_digest(path, "sha256")
    return actual.startswith(prefix.lower()), actual


def _offline_message(url: str, dest: Path, expected: str, reason) -> str:
    return (f"cannot download {url}: {reason}.\n"
            f"Put a manually downloaded copy at {dest} (expected {expected}) and rerun; "
            f"{OFFLINE_HINT}")


def _resume_offset(part: Path, size: int | None) -> int:
    """Bytes already in ``part`` that a Range request can continue from (0 = start afresh)."""
    if not part.exists():
        return 0
    have = part.stat().st_size
    if size is not None and have > size:
        log.warning("%s is larger (%d B) than the archive (%d B); starting again from 0", part, have, size)
        part.unlink()
        return 0
    return have


def _fetch_into(url: str, part: Path, size: int | None, timeout: float, progress: bool) -> None:
    """One HTTP request: append to ``part`` from its current length, or rewrite it from byte 0."""
    offset = _resume_offset(part, size)
    if size is not None and offset == size:
        return  # an earlier run got every byte; only the checks are left
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the part does not fit the server's file: start again
            part.unlink()
            raise _Dropped("server refused the resume range (416); restarting from byte 0") from None
        raise
    with response:
        if offset and response.status != 206:
            log.warning("%s ignored the Range request (HTTP %d); restarting from byte 0", url, response.status)
            offset = 0
        elif offset and not _range_starts_at(response, offset):
            part.unlink()
            raise _Dropped("server answered a different byte range; restarting from byte 0")
        _stream(response, part, offset, size, progress)


def _range_starts_at(response, offset: int) -> bool:
    content_range = response.headers.get("Content-Range", "")  # "bytes <start>-<end>/<total>"
    try:
        return int(content_range.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return True  # no (parsable) header: trust the 206


def _stream(response, part: Path, offset: int, size: int | None, progress: bool) -> None:
    """Copy the response body to ``part`` (appending at ``offset``); raise ``_Dropped`` if it ends early."""
    length = response.headers.get("Content-Length")
    expected = int(length) if length and length.isdigit() else None
    total = size if size is not None else (offset + expected if expected is not None else None)
    received = 0
    with open(part, "ab" if offset else "wb") as f, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[:-5],
            file=sys.stderr, disable=not progress, leave=False) as bar:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
                raise _Dropped(f"{type(err).__name__}: {err} after {offset + received} bytes") from err
            if not chunk:
                break
            f.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    # http.client returns b"" (not an error) when the peer closes early, so count the bytes ourselves.
    if expected is not None and received < expected:
        raise _Dropped(f"connection closed after {offset + received} of {offset + expected} bytes")


def _check_finished(part: Path, url: str, dest: Path, md5: str | None, size: int | None,
                    sha256_prefix: str | None = None) -> None:
    have = part.stat().st_size
    if size is not None and have != size:
        part.unlink()
        raise ChecksumError(f"{url}: downloaded {have} bytes, expected {size}; the file was deleted. Rerun to "
                            f"download it again, or put a verified copy at {dest}.")
    if sha256_prefix is not None:
        ok, actual = _sha256_starts(part, sha256_prefix)
        if not ok:
            part.unlink()
            raise ChecksumError(
                f"{url}: sha256 mismatch (expected it to start with {sha256_prefix}, got {actual}); the file was "
                f"deleted. Rerun to download it again; if it fails again, download it by hand, check it with "
                f"`sha256sum` (it must start with {sha256_prefix}), and put it at {dest}.")
    if md5 is None:
        return
    actual = file_md5(part)
    if actual != md5.lower():
        part.unlink()
        raise ChecksumError(
            f"{url}: md5 mismatch (expected {md5}, got {actual}); the file was deleted. Rerun to download it "
            f"again; if it fails again, download it by hand, check it with `md5sum` against {md5}, and put it "
            f"at {dest}.")


# --------------------------------------------------------------------------------------------------
# Extraction


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike,
                 select: Callable[[str], bool] | None = None, progress: bool = True) -> Path:
    """Extract a tar (any compression) or zip archive into ``dest``, refusing unsafe members.

    Every member is checked before anything is written: an absolute path, a ``..`` component, a
    symlink or hard link resolving outside ``dest``, or a device/FIFO member raises
    ``UnsafeArchiveError``. The archive is extracted into a temporary folder next to ``dest`` and
    renamed to ``dest`` (replacing it) only when complete.

    Parameters
    ----------
    archive : path
        ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` or ``.zip``; the kind is read from
        the file's first bytes, not its name.
    dest : path
        Folder that will hold the archive's top-level members.
    select : callable, optional
        ``select(name) -> bool`` on each member's normalised path (``"a/b.png"``, no leading ``./``);
        only members it accepts are extracted (all members are still safety-checked).
    progress : bool
        Show a tqdm bar over the members on stderr.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    UnsafeArchiveError, CorruptArchiveError, FileNotFoundError
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive missing; download it first (see matlabel/datasets/sources.py)")
    with open(archive, "rb") as f:
        is_zip = f.read(2) == b"PK"
    extract = _extract_zip if is_zip else _extract_tar
    extract(archive, dest, select, progress)
    return dest


def _corrupt(archive: Path, err) -> CorruptArchiveError:
    return CorruptArchiveError(f"{archive}: archive is truncated or corrupt ({type(err).__name__}: {err}). "
                               "Delete it and download it again.")


def _unsafe(archive: Path, name: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: member {name!r} {why}; refusing to extract anything from this "
                              "archive. Get the archive from its official source.")


def _normalise(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/")).lstrip("/")


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or bool(PureWindowsPath(name).drive)


def _check_name(archive: Path, name: str) -> None:
    if _is_absolute(name):
        raise _unsafe(archive, name, "has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise _unsafe(archive, name, "has a '..' component (path traversal)")


def _resolve(parts: list[str], links: dict[str, str], depth: int = 0) -> list[str] | None:
    """Resolve path components inside the archive, following the archive's own symlinks.

    Returns the components of the resolved path relative to the extraction root, or ``None`` when it
    leaves the root (or loops): this is what a path would become once the links are on disk.
    """
    if depth > 32:
        return None
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
        target = links.get("/".join(out))
        if target is not None:
            if _is_absolute(target):
                return None
            out = _resolve(out[:-1] + target.replace("\\", "/").split("/"), links, depth + 1)
            if out is None:
                return None
    return out


def _check_tar_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    """Refuse absolute/'..' names, links resolving outside the root (through chains of the archive's
    own symlinks, e.g. ``up -> ..`` then ``x -> up/..``), files written through such links, devices."""
    links = {_normalise(m.name): m.linkname for m in members if m.issym()}
    for member in members:
        _check_name(archive, member.name)
        parent = posixpath.dirname(_normalise(member.name)).split("/")
        if _resolve(parent, links) is None:
            raise _unsafe(archive, member.name, "is written through a link that points outside the extraction folder")
        if member.issym() or member.islnk():
            # A symlink target is relative to the link's folder, a hard-link target to the archive root.
            start = parent if member.issym() else []
            target = member.linkname.replace("\\", "/")
            if _is_absolute(target) or _resolve(start + target.split("/"), links) is None:
                raise _unsafe(archive, member.name, f"is a link to {member.linkname!r}, outside the extraction folder")
        elif not (member.isfile() or member.isdir()):
            raise _unsafe(archive, member.name, "is a device or FIFO")


def _check_tar_complete(archive: Path, tf: tarfile.TarFile) -> None:
    """An uncompressed tar cut at a header boundary lists fewer members without an error: require the
    end-of-archive zero block where the listing stopped. (Compressed streams raise EOFError instead.)"""
    if not isinstance(tf.fileobj, io.BufferedReader):
        return
    tf.fileobj.seek(tf.offset)
    marker = tf.fileobj.read(tarfile.BLOCKSIZE)
    if len(marker) < tarfile.BLOCKSIZE or marker.count(0) != len(marker):
        raise _corrupt(archive, EOFError(f"no end-of-archive marker at byte {tf.offset}"))


def _extract_tar(archive: Path, dest: Path, select, progress: bool) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()  # reads the whole stream: truncation shows up here, before any write
            _check_tar_complete(archive, tf)
            _check_tar_members(archive, members)
            chosen = [m for m in members if select is None or select(_normalise(m.name))]
            with atomic_dir(dest) as tmp:
                bar = tqdm(chosen, desc=f"extract {archive.name}", unit="file", file=sys.stderr,
                           disable=not progress, leave=False)
                # The "data" filter (PEP 706) re-checks each link against the files on disk: defence in depth.
                tf.extractall(tmp, members=bar, filter="data")
    except tarfile.FilterError as err:
        raise _unsafe(archive, err.tarinfo.name, f"was refused by the tar data filter ({err})") from err
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as err:
        raise _corrupt(archive, err) from err


def _extract_zip(archive: Path, dest: Path, select, progress: bool) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_name(archive, info.filename)
            chosen = [i for i in infos if select is None or select(_normalise(i.filename))]
            with atomic_dir(dest) as tmp:
                # zipfile writes symlink members as plain files, so names are the only way out of tmp.
                for info in tqdm(chosen, desc=f"extract {archive.name}", unit="file", file=sys.stderr,
                                 disable=not progress, leave=False):
                    zf.extract(info, tmp)
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise _corrupt(archive, err) from err
