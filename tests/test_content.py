"""Content stamps (matlabel/datasets/content.py): what a split's files are, so changing one reruns what reads it."""
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from matlabel.datasets.content import DatasetContentError, compute_stamp, refresh_stamps, stamp_path, write_stamp
from matlabel.datasets.layout import load_manifest, write_cls_labels, write_manifest, write_split
from matlabel.io import read_json, write_label_png

IDS = ["a", "b", "c"]


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "VOC"
    (root / "JPEGImages").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, image_id in enumerate(IDS):
        Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
        mask = np.zeros((12, 16), np.uint8)
        mask[2:8, 2:8] = i + 1
        write_label_png(root / "SegmentationClass" / f"{image_id}.png", mask)
    write_split(root, "train", IDS)
    write_cls_labels(root, {image_id: [i + 1] for i, image_id in enumerate(IDS)})
    manifest = tmp_path / "dataset.json"
    write_manifest(manifest, "toy", root, ["background", "x", "y", "z"], "SegmentationClass", {"train": 3})
    return manifest, root


def stamps(manifest):
    m = load_manifest(manifest)
    return {part: compute_stamp(m, "train", part)[0]["sha256"] for part in ("images", "masks")}


def test_each_part_changes_with_its_own_files_only(dataset):
    manifest, root = dataset
    before = stamps(manifest)
    assert before == stamps(manifest)  # deterministic
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(root / "JPEGImages" / "b.jpg")  # a replaced image
    after_image = stamps(manifest)
    assert after_image["images"] != before["images"] and after_image["masks"] == before["masks"]
    mask = np.zeros((12, 16), np.uint8)
    write_label_png(root / "SegmentationClass" / "c.png", mask)  # a replaced mask
    after_mask = stamps(manifest)
    assert after_mask["masks"] != after_image["masks"] and after_mask["images"] == after_image["images"]
    write_cls_labels(root, {"a": [1], "b": [2], "c": [1, 3]})  # edited image-level labels: the training signal
    after_labels = stamps(manifest)
    assert after_labels["images"] != after_mask["images"] and after_labels["masks"] == after_mask["masks"]
    write_split(root, "train", ["c", "b", "a"])  # the list as written: the loaders read it in this order
    assert stamps(manifest)["images"] != after_labels["images"]


def test_stamp_is_rewritten_only_when_the_content_changes(dataset):
    manifest, root = dataset
    stamp = stamp_path(manifest.parent / "content", "train", "images")
    assert write_stamp(manifest, stamp) is True
    first = read_json(stamp)
    assert first == {"dataset": "toy", "split": "train", "part": "images", "count": 3, "sha256": first["sha256"]}
    os.utime(stamp, ns=(1, 1))
    image = root / "JPEGImages" / "a.jpg"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))  # touched, same bytes
    assert refresh_stamps(manifest, [stamp]) == [] and stamp.stat().st_mtime_ns == 1
    image.write_bytes(image.read_bytes() + b"\0")  # new bytes, same decoded pixels: a different file still
    assert refresh_stamps(manifest, [stamp]) == [stamp] and stamp.stat().st_mtime_ns > 1
    missing = stamp_path(manifest.parent / "content", "train", "masks")
    assert refresh_stamps(manifest, [missing]) == [] and not missing.exists()  # missing ones are the rule's to write


def test_the_cache_is_trusted_only_while_size_and_mtime_hold(dataset):
    manifest, root = dataset
    m = load_manifest(manifest)
    _, cache = compute_stamp(m, "train", "images")
    key = str(root / "JPEGImages" / "a.jpg")
    forged = {**cache, key: {**cache[key], "sha256": "0" * 64}}
    assert compute_stamp(m, "train", "images", forged)[0] != compute_stamp(m, "train", "images", cache)[0]
    image = root / "JPEGImages" / "a.jpg"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 1))
    assert compute_stamp(m, "train", "images", forged)[0] == compute_stamp(m, "train", "images")[0]


def _same_size_edit(path):
    """Other bytes, same length: one byte of the entropy-coded data flipped (the header, hence the size, intact)."""
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    return bytes(data)


def _replace_with_touch_r(image, tmp_path):
    keep = tmp_path / "mtime-ref"
    shutil.copy2(image, keep)  # only its times are used
    image.write_bytes(_same_size_edit(image))
    subprocess.run(["touch", "-r", str(keep), str(image)], check=True)


def _replace_with_cp_p(image, tmp_path):
    other = tmp_path / "other.jpg"
    other.write_bytes(_same_size_edit(image))
    subprocess.run(["touch", "-r", str(image), str(other)], check=True)  # the copy carries the original's mtime
    subprocess.run(["cp", "-p", str(other), str(image)], check=True)


def _replace_with_rename(image, tmp_path):  # as rsync -a: a new file with the old times renamed over it
    tmp = image.with_name(".a.jpg.tmp")
    tmp.write_bytes(_same_size_edit(image))
    st = image.stat()
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, image)


@pytest.mark.parametrize("replace", [_replace_with_touch_r, _replace_with_cp_p, _replace_with_rename])
def test_a_same_size_replacement_that_keeps_the_mtime_is_rehashed(dataset, tmp_path, replace):
    """issue 28 item 6: (size, mtime) do not tell a replaced file; the kernel-set ctime (and the inode) do."""
    from matlabel.datasets.content import folder_digest

    manifest, root = dataset
    stamp = stamp_path(manifest.parent / "content", "train", "images")
    write_stamp(manifest, stamp)
    source_cache = tmp_path / "source.json"
    first_digest = folder_digest(root, ["train"], source_cache)
    first = read_json(stamp)
    image = root / "JPEGImages" / "a.jpg"
    before, original = image.stat(), image.read_bytes()
    replace(image, tmp_path)
    after = image.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert image.read_bytes() != original
    assert refresh_stamps(manifest, [stamp]) == [stamp] and read_json(stamp) != first
    assert folder_digest(root, ["train"], source_cache) != first_digest


def test_entries_not_older_than_the_cache_are_hashed_again(dataset):
    """git's racy rule: a file hashed within the timestamp tick the cache was written in may change again without
    a new mtime or ctime, so its entry is trusted only when its times are older than the cache."""
    manifest, root = dataset
    m = load_manifest(manifest)
    true_stamp, cache = compute_stamp(m, "train", "images")
    key = str(root / "JPEGImages" / "a.jpg")
    forged = {**cache, key: {**cache[key], "sha256": "0" * 64}}  # a digest the file no longer has
    newest = max(max(e["mtime_ns"], e["ctime_ns"]) for e in cache.values())
    assert compute_stamp(m, "train", "images", forged, cache_written_ns=newest + 1)[0] != true_stamp  # trusted
    assert compute_stamp(m, "train", "images", forged, cache_written_ns=cache[key]["ctime_ns"])[0] == true_stamp
    # on disk the cache's own mtime is that time; a racy entry makes write_stamp rewrite it, trusted afterwards
    stamp = stamp_path(manifest.parent / "content", "train", "images")
    write_stamp(manifest, stamp)
    cache_file = stamp.with_name(".train.images.cache.json")
    entries = read_json(cache_file)
    os.utime(cache_file, ns=(entries[key]["ctime_ns"], entries[key]["ctime_ns"]))
    write_stamp(manifest, stamp)
    assert cache_file.stat().st_mtime_ns > entries[key]["ctime_ns"]


def test_problems_are_found_before_training_each_naming_its_file(dataset):
    manifest, root = dataset
    write_label_png(root / "SegmentationClass" / "a.png", np.zeros((16, 12), np.uint8))  # transposed mask
    (root / "JPEGImages" / "b.jpg").unlink()
    (root / "JPEGImages" / "b.png").write_bytes(b"")
    (root / "JPEGImages" / "c.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetContentError) as err:
        compute_stamp(load_manifest(manifest), "train", "images")
    text = str(err.value)
    assert "3 problem(s)" in text
    assert "a.png: mask is 12x16" in text and "a.jpg is 16x12" in text
    assert "b.jpg: image missing" in text and "found b.png" in text
    assert "c.jpg: cannot read the image" in text


def test_masks_part_names_a_missing_mask_and_labels_part_a_missing_entry(dataset):
    manifest, root = dataset
    (root / "SegmentationClass" / "b.png").unlink()
    with pytest.raises(DatasetContentError, match="b.png: mask missing"):
        compute_stamp(load_manifest(manifest), "train", "masks")
    compute_stamp(load_manifest(manifest), "train", "images")  # images need no mask
    write_cls_labels(root, {"a": [1], "b": [2]})
    with pytest.raises(DatasetContentError, match="no entry for image 'c'"):
        compute_stamp(load_manifest(manifest), "train", "images")


def test_existing_stamps_skips_the_caches(dataset):
    manifest, _ = dataset
    content = manifest.parent / "content"
    for part in ("images", "masks"):
        write_stamp(manifest, stamp_path(content, "train", part))
    assert sorted(p.name for p in content.iterdir()) == [".train.images.cache.json", ".train.masks.cache.json",
                                                         "train.images.json", "train.masks.json"]
    from matlabel.datasets.content import existing_stamps
    assert [p.name for p in existing_stamps(content)] == ["train.images.json", "train.masks.json"]


def test_folder_digest_follows_the_users_files_and_never_raises(dataset, tmp_path):
    from matlabel.datasets.content import folder_digest

    _, root = dataset
    cache = tmp_path / "cache" / "source.json"
    first = folder_digest(root, ["train"], cache)
    assert cache.is_file() and folder_digest(root, ["train"], cache) == first
    image = root / "JPEGImages" / "a.jpg"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    assert folder_digest(root, ["train"], cache) == first  # touched only
    original = image.read_bytes()
    image.write_bytes(original + b"\0")
    assert folder_digest(root, ["train"], cache) != first
    image.write_bytes(original)
    assert folder_digest(root, ["train"], cache) == first
    (root / "classes.txt").write_text("background\nx\ny\nz\n")
    assert folder_digest(root, ["train"], cache) != first
    (root / "SegmentationClass" / "b.png").unlink()
    image.unlink()
    assert folder_digest(root, ["train", "missing_split"], cache, save=False)  # bad folders: prepare_folder reports
    assert folder_digest(tmp_path / "nowhere", ["train"]) != first
