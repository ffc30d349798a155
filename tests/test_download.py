"""download / safe_extract against a local HTTP server and hand-made archives (no internet)."""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import zipfile

import numpy as np
import pytest
from http_server import FileServer

from matlabel.datasets import download as download_module
from matlabel.datasets.download import (
    ChecksumError,
    CorruptArchiveError,
    DownloadError,
    UnsafeArchiveError,
    download,
    fetch_archive,
    safe_extract,
    verify_md5,
)
from matlabel.datasets.sources import ARCHIVES, DATASET_ARCHIVES, Archive

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "blob.bin").write_bytes(PAYLOAD)
    return root


def _leftovers(folder):
    """Temporary/partial files a download or extraction might leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp")))


# ----------------------------------------------------------------------------------------------- download

def test_download_verifies_md5_and_skips_when_present(served, tmp_path):
    dest = tmp_path / "dl" / "blob.bin"
    with FileServer(served) as server:
        assert download(server.url("blob.bin"), dest, md5=PAYLOAD_MD5, size=len(PAYLOAD), progress=False) == dest
        assert dest.read_bytes() == PAYLOAD
        assert len(server.requests) == 1
        download(server.url("blob.bin"), dest, md5=PAYLOAD_MD5, progress=False)  # verified copy: no request
        assert len(server.requests) == 1
    assert _leftovers(dest.parent) == []
    assert verify_md5(dest, PAYLOAD_MD5.upper()) and not verify_md5(dest, "0" * 32)


def test_dropped_connection_is_resumed_with_a_range_request(served, tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer(served, drop_after=100_000, drops=1) as server:
        download(server.url("blob.bin"), dest, md5=PAYLOAD_MD5, size=len(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    first, second = server.requests
    assert (first["range"], first["status"], first["sent"]) == (None, 200, 100_000)
    assert (second["range"], second["status"]) == ("bytes=100000-", 206)
    assert second["sent"] == len(PAYLOAD) - 100_000


def test_part_file_resumes_and_restarts_when_server_ignores_range(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:5000])
    with FileServer(served) as server:
        download(server.url("blob.bin"), dest, md5=PAYLOAD_MD5, progress=False)
    assert server.requests[0]["range"] == "bytes=5000-" and server.requests[0]["sent"] == len(PAYLOAD) - 5000
    assert dest.read_bytes() == PAYLOAD

    dest.unlink()
    (tmp_path / "blob.bin.part").write_bytes(b"garbage" * 100)  # not a prefix of the file
    with FileServer(served, ignore_range=True) as server:  # answers 200: the part must be rewritten from 0
        download(server.url("blob.bin"), dest, md5=PAYLOAD_MD5, progress=False)
    assert server.requests[0]["status"] == 200 and dest.read_bytes() == PAYLOAD


def test_part_larger_than_size_restarts_from_zero(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(b"x" * (len(PAYLOAD) + 10))
    with FileServer(served) as server:
        download(server.url("blob.bin"), dest, md5=PAYLOAD_MD5, size=len(PAYLOAD), progress=False)
    assert server.requests[0]["range"] is None and dest.read_bytes() == PAYLOAD


def test_bad_checksum_raises_and_leaves_nothing(served, tmp_path):
    dest = tmp_path / "blob.bin"
    wrong = "0123456789abcdef0123456789abcdef"
    with FileServer(served) as server, pytest.raises(ChecksumError) as info:
        download(server.url("blob.bin"), dest, md5=wrong, progress=False)
    message = str(info.value)
    assert server.url("blob.bin") in message and wrong in message and PAYLOAD_MD5 in message
    assert str(dest) in message
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_connection_refused_names_url_dest_md5_and_demo(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/VOCtrainval.tar"
    dest = tmp_path / "VOCtrainval.tar"
    with pytest.raises(DownloadError) as info:
        download(url, dest, md5=PAYLOAD_MD5, timeout=2, progress=False)
    message = str(info.value)
    assert url in message and str(dest) in message and PAYLOAD_MD5 in message and "make demo" in message
    assert not dest.exists()


def test_http_error_is_a_download_error(served, tmp_path):
    with FileServer(served) as server, pytest.raises(DownloadError, match="404"):
        download(server.url("missing.bin"), tmp_path / "missing.bin", progress=False)


def test_missing_md5_downloads_with_a_warning(served, tmp_path, caplog):
    with FileServer(served) as server, caplog.at_level("WARNING"):
        download(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert "UNVERIFIED" in caplog.text and (tmp_path / "blob.bin").read_bytes() == PAYLOAD


def test_fetch_archive_falls_back_to_a_mirror(served, tmp_path, monkeypatch):
    with FileServer(served) as server:
        entry = Archive(url=server.url("gone.bin"), md5=PAYLOAD_MD5, size_bytes=len(PAYLOAD), filename="blob.bin",
                        manual_hint="ask a friend", mirrors=(server.url("blob.bin"),))
        monkeypatch.setitem(download_module.ARCHIVES, "fake", entry)
        assert fetch_archive("fake", tmp_path, progress=False).read_bytes() == PAYLOAD
        monkeypatch.setitem(download_module.ARCHIVES, "fake", Archive(
            url=server.url("gone.bin"), md5=None, size_bytes=None, filename="x.bin", manual_hint="ask a friend"))
        with pytest.raises(DownloadError, match="ask a friend"):
            fetch_archive("fake", tmp_path, progress=False)


def test_registry_is_complete():
    for names in DATASET_ARCHIVES.values():
        for name in names:
            entry = ARCHIVES[name]
            assert entry.md5 is None or len(entry.md5) == 32
            assert entry.url.endswith(entry.filename)


# ----------------------------------------------------------------------------------------------- extract

def _tar_bytes(entries, mode="w:gz"):
    """entries: (name, bytes) for files, (name, ("sym"|"hard", target)) for links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE if content[0] == "sym" else tarfile.LNKTYPE
                info.linkname = content[1]
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries:
            zf.writestr(zipfile.ZipInfo(name), content)
    return buf.getvalue()


GOOD = [("top/a.txt", b"alpha"), ("top/sub/b.bin", PAYLOAD[:1000])]


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "zip"])
def test_safe_extract_roundtrip(tmp_path, kind):
    archive = tmp_path / f"good.{kind}"
    archive.write_bytes(_zip_bytes(GOOD) if kind == "zip" else _tar_bytes(GOOD, "w:gz" if kind == "tar.gz" else "w"))
    dest = tmp_path / "out"
    assert safe_extract(archive, dest, progress=False) == dest
    assert (dest / "top/a.txt").read_bytes() == b"alpha"
    assert (dest / "top/sub/b.bin").read_bytes() == PAYLOAD[:1000]
    assert _leftovers(tmp_path) == []


def test_safe_extract_select_and_replace(tmp_path):
    archive = tmp_path / "good.tgz"
    archive.write_bytes(_tar_bytes(GOOD))
    dest = tmp_path / "out"
    (dest / "stale").mkdir(parents=True)
    safe_extract(archive, dest, select=lambda name: name.endswith(".txt"), progress=False)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["top/a.txt"]


@pytest.mark.parametrize("entries", [
    [("top/ok.txt", b"fine"), ("../evil.txt", b"pwned")],
    [("top/ok.txt", b"fine"), ("top/../../evil.txt", b"pwned")],
    [("top/ok.txt", b"fine"), ("/ABSOLUTE/evil.txt", b"pwned")],
    [("top/ok.txt", b"fine"), ("top/link", ("sym", "../../evil.txt"))],
    [("top/ok.txt", b"fine"), ("top/link", ("sym", "/etc/passwd"))],
    [("top/ok.txt", b"fine"), ("top/link", ("hard", "../evil.txt"))],
    [("top/up", ("sym", "..")), ("top/link", ("sym", "up/..")), ("top/link/evil.txt", b"pwned")],
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-abs", "hardlink-out", "symlink-chain"])
def test_tar_escapes_are_refused_before_writing(tmp_path, entries):
    entries = [(n.replace("/ABSOLUTE", str(tmp_path / "abs")), c) for n, c in entries]
    archive = tmp_path / "bad.tgz"
    archive.write_bytes(_tar_bytes(entries))
    dest = tmp_path / "box" / "out"
    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract(archive, dest, progress=False)
    assert str(archive) in str(info.value) and entries[1][0] in str(info.value)
    assert not (tmp_path / "box").exists()  # not even the parent of dest was created
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "abs").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_zip_escapes_are_refused_before_writing(tmp_path, name):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip_bytes([("top/ok.txt", b"fine"), (name, b"pwned")]))
    dest = tmp_path / "box" / "out"
    with pytest.raises(UnsafeArchiveError, match="bad.zip"):
        safe_extract(archive, dest, progress=False)
    assert not (tmp_path / "box").exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "zip"])
def test_truncated_archive_is_corrupt(tmp_path, kind):
    big = [("top/a.bin", PAYLOAD), ("top/b.bin", PAYLOAD[::-1])]
    data = _zip_bytes(big) if kind == "zip" else _tar_bytes(big, "w:gz" if kind == "tar.gz" else "w")
    archive = tmp_path / f"cut.{kind}"
    archive.write_bytes(data[: len(data) * 2 // 3])
    dest = tmp_path / "out"
    with pytest.raises(CorruptArchiveError) as info:
        safe_extract(archive, dest, progress=False)
    assert str(archive) in str(info.value) and "download it again" in str(info.value)
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_tar_cut_at_a_member_boundary_is_corrupt(tmp_path):
    data = _tar_bytes([("a.bin", b"x" * 512), ("b.bin", b"y" * 512)], mode="w")
    archive = tmp_path / "cut.tar"
    archive.write_bytes(data[:1024])  # header + data of a.bin only, no end-of-archive marker
    with pytest.raises(CorruptArchiveError):
        safe_extract(archive, tmp_path / "out", progress=False)


def test_missing_archive_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tar"):
        safe_extract(tmp_path / "nope.tar", tmp_path / "out", progress=False)


# ------------------------------------------------------------------------------------- ImageNet weights (data too)

def test_weights_are_checked_against_the_sha256_prefix_in_their_name(served, tmp_path):
    prefix = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    dest = tmp_path / "weights" / f"resnet50-{prefix}.pth"
    with FileServer(served) as server:
        download(server.url("blob.bin"), dest, sha256_prefix=prefix, progress=False)
        assert dest.read_bytes() == PAYLOAD
        download(server.url("blob.bin"), dest, sha256_prefix=prefix, progress=False)  # verified: no request
        assert len(server.requests) == 1
        bad = tmp_path / "weights" / "resnet50-00000000.pth"
        with pytest.raises(ChecksumError, match=r"sha256 mismatch \(expected it to start with 00000000.*sha256sum"):
            download(server.url("blob.bin"), bad, sha256_prefix="00000000", progress=False)
        assert not bad.exists() and _leftovers(bad.parent) == []


def test_offline_weights_download_names_the_file_its_checksum_and_where_to_put_it(tmp_path):
    from matlabel.weights import file_by_name, imagenet_file, staged
    entry = imagenet_file("resnet50")
    assert entry.url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert entry.sha256_prefix == "0676ba61" and entry.path == "resources/weights/resnet50-0676ba61.pth"
    assert file_by_name("resnet101-63fe2227.pth").arch == "resnet101"
    from matlabel.backbone import ARCHS  # the written-out URLs are torchvision's, for every ResNet it offers
    from matlabel.weights import IMAGENET_URLS
    assert IMAGENET_URLS == {arch: enum.url for arch, (_, enum, _) in ARCHS.items()}
    assert imagenet_file("efficientnet_lite0") is None  # ships with pip
    assert staged({"arch": "resnet50", "weights": "none"}) is None
    assert staged({"arch": "resnet101", "weights": "imagenet"}).filename == "resnet101-63fe2227.pth"
    with pytest.raises(ValueError, match="not a known ImageNet weights file"):
        file_by_name("resnet50-deadbeef.pth")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / entry.filename
    with pytest.raises(DownloadError) as info:
        download(f"http://127.0.0.1:{port}/{entry.filename}", dest, sha256_prefix=entry.sha256_prefix, timeout=2,
                 progress=False)
    message = str(info.value)
    assert str(dest) in message and "sha256 starting with 0676ba61" in message
