"""dataset: folder built from VOC 2012 trainval (data.folder.voc_ids, config/voc-photos.yaml): the shipped id lists,
the folder built from a hand-made VOCtrainval tar (a few ids, some listed, some not) or an extracted copy, the config
checks, and the documented command planned and run through Snakemake (no internet)."""
from __future__ import annotations

import copy
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import ROOT, job_counts, snakemake, workdir, write_overlay
from matlabel.config import ConfigError, check_config, schema_errors
from matlabel.datasets.folder import prepare_folder
from matlabel.datasets.layout import VOC_CLASSES, load_manifest
from matlabel.datasets.voc_subset import (SUBSET_ROOT, VocSubsetError, build_voc_subset, id_lists_digest,
                                          read_id_lists, voc_subset_config_errors)
from test_prepare_voc12 import _png, _tar  # the hand-made VOC archive's members, as prepare_voc12's tests make them

VOC = "VOCdevkit/VOC2012"
LISTS = ROOT / "config" / "voc-photos"
DOC = ROOT / "docs" / "folder-dataset.md"
SECTION = "The developers' 330 VOC photos from your VOC download"
CLS = {name: i for i, name in enumerate(VOC_CLASSES)}
# the archive: id -> classes painted into its mask; the lists name four of them (and not 2009_000009, 2010_000010)
IN_ARCHIVE = {"2007_000032": ["aeroplane", "person"], "2007_000039": ["tvmonitor"], "2008_000001": ["dog"],
              "2008_000002": ["bus", "cat"], "2009_000009": ["horse"], "2010_000010": ["boat"]}
TRAIN, VAL = ["2007_000032", "2007_000039", "2008_000002"], ["2008_000001"]
SPLITS = {"train_classifier": "train", "export": "train", "eval_seed": "train", "eval_seg": "val"}


def _mask(classes, h=30, w=40):
    mask = np.zeros((h, w), np.uint8)
    for n, name in enumerate(classes):
        mask[5:25, 2 + 18 * n:18 + 18 * n] = CLS[name]
    mask[0, :] = 255  # VOC's object borders
    return mask


def _jpg(seed, h=30, w=40):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def voc_members(objects=IN_ARCHIVE) -> dict[str, bytes]:
    """The members of a tiny VOCtrainval_11-May-2012.tar: every id with its JPEG, annotation, class and object masks,
    and VOC's own split lists (which the lists of voc_ids replace)."""
    members = {f"{VOC}/ImageSets/Segmentation/train.txt": "".join(f"{i}\n" for i in objects).encode()}
    for n, (image_id, classes) in enumerate(objects.items()):
        members[f"{VOC}/JPEGImages/{image_id}.jpg"] = _jpg(n)
        members[f"{VOC}/Annotations/{image_id}.xml"] = f"<annotation>{image_id}</annotation>".encode()
        members[f"{VOC}/SegmentationClass/{image_id}.png"] = _png(_mask(classes))
        members[f"{VOC}/SegmentationObject/{image_id}.png"] = _png(_mask(classes[:1]))
    return members


def write_lists(folder: Path, **lists) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, ids in lists.items():
        (folder / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    (folder / "README.md").write_text("not a list\n")
    return folder


@pytest.fixture
def voc_tar(tmp_path):
    return _tar(tmp_path / "VOCtrainval_11-May-2012.tar", voc_members(), "w")


@pytest.fixture
def lists(tmp_path):
    return write_lists(tmp_path / "ids", train=TRAIN, val=VAL)


def files_of(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_shipped_lists_are_the_330_photos():
    train = (LISTS / "train.txt").read_text().splitlines()
    val = (LISTS / "val.txt").read_text().splitlines()
    assert (len(train), len(val)) == (248, 82) and not set(train) & set(val)
    for ids in (train, val):
        assert ids == sorted(set(ids)) and all(re.fullmatch(r"20(0[7-9]|1[0-2])_\d{6}", i) for i in ids)
    assert read_id_lists(LISTS) == {"train": train, "val": val}  # the README beside them is not a list
    assert "SBD" in (LISTS / "README.md").read_text()


def test_folder_from_the_archive_holds_exactly_the_listed_ids_byte_for_byte(voc_tar, lists, tmp_path):
    dest = tmp_path / "resources" / "voc_subset"
    assert build_voc_subset(lists, dest, voc_tar=voc_tar) == {"train": TRAIN, "val": VAL}
    ids = sorted(TRAIN + VAL)
    assert files_of(dest) == sorted(
        ["ImageSets/Segmentation/train.txt", "ImageSets/Segmentation/val.txt", "classes.txt"]
        + [f"JPEGImages/{i}.jpg" for i in ids] + [f"SegmentationClass/{i}.png" for i in ids])
    members = voc_members()
    for i in ids:
        assert (dest / "JPEGImages" / f"{i}.jpg").read_bytes() == members[f"{VOC}/JPEGImages/{i}.jpg"]
        assert (dest / "SegmentationClass" / f"{i}.png").read_bytes() == members[f"{VOC}/SegmentationClass/{i}.png"]
    for split in ("train", "val"):
        assert (dest / "ImageSets/Segmentation" / f"{split}.txt").read_bytes() == (lists / f"{split}.txt").read_bytes()
    assert not list(tmp_path.glob("resources/.*"))  # no scratch left beside it
    # the folder check accepts it, with the labels of the masks, under classes.txt and under classes: voc
    for classes in (None, "voc"):
        m = load_manifest(prepare_folder(dest, tmp_path / f"out_{classes}", SPLITS, classes=classes))
        assert m.class_names == VOC_CLASSES and m.splits == {"train": 3, "val": 1}
        assert m.labels() == {i: sorted(CLS[c] for c in IN_ARCHIVE[i]) for i in ids}


def test_an_extracted_vocdevkit_gives_the_same_folder(voc_tar, lists, tmp_path):
    from_tar = tmp_path / "from_tar"
    build_voc_subset(lists, from_tar, voc_tar=voc_tar)
    shutil.unpack_archive(voc_tar, tmp_path / "extracted")
    before = {f: (tmp_path / "extracted" / f).stat().st_mtime for f in files_of(tmp_path / "extracted")}
    for given in ("extracted", "extracted/VOCdevkit", "extracted/VOCdevkit/VOC2012"):
        dest = tmp_path / "from_dir" / given.replace("/", "_")
        build_voc_subset(lists, dest, voc_dir=tmp_path / given)
        assert files_of(dest) == files_of(from_tar)
        assert all((dest / f).read_bytes() == (from_tar / f).read_bytes() for f in files_of(dest))
    after = {f: (tmp_path / "extracted" / f).stat().st_mtime for f in files_of(tmp_path / "extracted")}
    assert after == before and len(after) == len(voc_members())  # the user's copy is only read


def test_a_listed_id_missing_from_the_archive_is_named_and_nothing_is_written(voc_tar, tmp_path):
    lists = write_lists(tmp_path / "ids", train=TRAIN + ["2011_000099"], val=VAL)
    dest = tmp_path / "resources" / "voc_subset"
    with pytest.raises(VocSubsetError) as info:
        build_voc_subset(lists, dest, voc_tar=voc_tar)
    message = str(info.value)
    assert "1 of the 5 listed id(s) missing" in message and str(voc_tar) in message
    assert "2011_000099 (no JPEGImages/2011_000099.jpg and no SegmentationClass/2011_000099.png; listed in " \
           f"{lists / 'train.txt'})" in message
    assert not dest.exists() and not list(dest.parent.iterdir())
    # an image without its mask: the mask is named
    members = voc_members()
    del members[f"{VOC}/SegmentationClass/2008_000001.png"]
    no_mask = _tar(tmp_path / "no_mask.tar", members, "w")
    with pytest.raises(VocSubsetError, match=r"2008_000001 \(no SegmentationClass/2008_000001.png; listed in .*val"):
        build_voc_subset(write_lists(tmp_path / "ids2", train=TRAIN, val=VAL), dest, voc_tar=no_mask)
    # another archive altogether: none of the ids there
    other = _tar(tmp_path / "other.tar", {"benchmark_RELEASE/dataset/train.txt": b"x\n"}, "w")
    with pytest.raises(VocSubsetError, match="4 of the 4 listed id.*is it PASCAL VOC 2012 trainval"):
        build_voc_subset(write_lists(tmp_path / "ids3", train=TRAIN, val=VAL), dest, voc_tar=other)


def test_bad_lists_are_named(tmp_path):
    with pytest.raises(VocSubsetError, match="no id lists"):
        read_id_lists(write_lists(tmp_path / "empty"))
    bad = write_lists(tmp_path / "bad", train=["2007_000032", "2007_000032"])
    with pytest.raises(VocSubsetError, match="listed twice"):
        read_id_lists(bad)
    assert id_lists_digest(tmp_path / "nowhere") == ""
    digest = id_lists_digest(LISTS)
    copied = shutil.copytree(LISTS, tmp_path / "copy")
    os.utime(copied / "train.txt", (0, 0))
    assert id_lists_digest(copied) == digest  # by content: touched, moved or copied lists rebuild nothing
    (copied / "val.txt").write_text("2007_000032\n")
    assert id_lists_digest(copied) != digest


def layered(*names) -> dict:
    def merge(a, b):  # as Snakemake layers config files: nested sections key by key
        return {**a, **{k: merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
                        for k, v in b.items()}}

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for name in names:
        cfg = merge(cfg, yaml.safe_load((ROOT / name).read_text()))
    return cfg


def test_the_shipped_config_is_valid_before_the_folder_exists(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a clean clone: no resources/ yet; the lists are found from the working directory
    (tmp_path / "config").symlink_to(ROOT / "config")
    cfg = layered("config/folder-example.yaml", "config/voc-photos.yaml")
    folder = cfg["data"]["folder"]
    assert folder["root"] == SUBSET_ROOT and folder["voc_ids"] == "config/voc-photos" and folder["classes"] == "voc"
    assert folder["max_side"] == 256  # folder-example's CPU settings stay
    assert schema_errors(cfg, ROOT / "schemas" / "config.schema.yaml") == []
    check_config(cfg)
    alone = layered("config/voc-photos.yaml")  # on its own: the paper's settings on the same photos
    assert schema_errors(alone, ROOT / "schemas" / "config.schema.yaml") == []
    check_config(alone)


def test_config_errors_name_the_keys(lists, tmp_path):
    good = {"root": SUBSET_ROOT, "classes": "voc", "voc_ids": str(lists), "voc_dir": None, "max_side": 256}
    assert voc_subset_config_errors(good, SPLITS) == []
    assert voc_subset_config_errors({**good, "root": "./resources/voc_subset/"}, SPLITS) == []

    def errors(**change):
        return voc_subset_config_errors({**good, **change}, SPLITS)

    assert errors(root="photos")[0].startswith(f"data.folder.root: must be {SUBSET_ROOT} with data.folder.voc_ids")
    assert errors(classes=None)[0].startswith("data.folder.classes: must be voc")
    assert errors(voc_ids=str(tmp_path / "nowhere"))[0].startswith("data.folder.voc_ids: ")
    assert errors(voc_dir=str(tmp_path))[0].startswith(f"data.folder.voc_dir: {tmp_path}: no JPEGImages/")
    assert errors(voc_ids=None, voc_dir=str(tmp_path))[0].startswith("data.folder.voc_dir: read only with")
    missing = voc_subset_config_errors(good, {**SPLITS, "eval_seg": "test"})
    assert missing == [f"splits.eval_seg: 'test' has no list {lists / 'test'}.txt in data.folder.voc_ids (its lists: "
                       "train, val)"]
    cfg = layered("config/folder-example.yaml")  # through check_config: the parse-time errors of a run
    cfg["data"]["folder"] = {**good, "root": "photos"}
    with pytest.raises(ConfigError, match="data.folder.root: must be"):
        check_config(copy.deepcopy(cfg))
    cfg["data"]["folder"] = good
    check_config(cfg)


def documented_command() -> list[str]:
    section = DOC.read_text().split(f"#### {SECTION}")[1].split("\n#### ")[0]
    block = re.search(r"^```[^\n]*\n(.*?)^```", section, re.M | re.S).group(1)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("snakemake ")]
    assert len(commands) == 1, commands
    return commands[0].split()


def test_dry_run_of_the_documented_command_plans_the_download_the_subset_and_table1(tmp_path):
    command = documented_command()
    assert command[:2] == ["snakemake", "results/table1.csv"]
    assert command[-3:] == ["--configfile", "config/folder-example.yaml", "config/voc-photos.yaml"]
    wd = workdir(tmp_path)
    out = snakemake(wd, *command[1:], "-n").stdout
    counts = job_counts(out)
    assert counts["download_archive"] == 1 and counts["voc_subset"] == 1 and counts["prepare_folder"] == 1
    assert counts["train_classifier"] == 3 and counts["table1"] == 1 and "prepare_voc12" not in counts
    assert "resources/downloads/VOCtrainval_11-May-2012.tar" in out and "benchmark.tgz" not in out  # no SBD
    subset = out.split("rule voc_subset:")[1].split("\n\n")[0]
    assert "input: resources/downloads/VOCtrainval_11-May-2012.tar" in subset and f"output: {SUBSET_ROOT}" in subset
    assert f"input: {SUBSET_ROOT}" in out.split("rule prepare_folder:")[1].split("reason:")[0]
    assert not (wd / "resources").exists()
    # an extracted VOCdevkit instead: nothing to download
    shutil.unpack_archive(_tar(tmp_path / "voc.tar", voc_members(), "w"), tmp_path / "mine")
    overlay = write_overlay(wd, {"data": {"folder": {"voc_dir": str(tmp_path / "mine" / "VOCdevkit")}}})
    counts = job_counts(snakemake(wd, *command[1:], overlay, "-n").stdout)
    assert "download_archive" not in counts and counts["voc_subset"] == 1 and counts["prepare_folder"] == 1


@pytest.mark.slow
def test_the_workflow_builds_and_checks_the_folder_and_follows_the_lists_by_content(tmp_path):
    """Through Snakemake, with the archive put by hand where the download goes: rule voc_subset, then prepare_folder
    accepts the folder; a second run plans nothing (the folder's parse-time digest must not change once it
    exists); editing a list rebuilds, touching one does not; a listed id missing from the archive stops the run
    naming it."""
    (tmp_path / "wd").mkdir()
    wd = workdir(tmp_path / "wd")
    downloads = wd / "resources" / "downloads"
    downloads.mkdir(parents=True)
    _tar(downloads / "VOCtrainval_11-May-2012.tar", voc_members(), "w")
    lists = write_lists(tmp_path / "ids", train=TRAIN, val=VAL)
    overlay = write_overlay(wd, {"data": {"folder": {"voc_ids": str(lists)}}})
    configs = ["--configfile", "config/folder-example.yaml", "config/voc-photos.yaml", overlay]
    target = "resources/folder/content/train.masks.json"
    run = snakemake(wd, target, "--cores", "1", *configs)
    assert "download_archive" not in run.stdout + run.stderr
    m = load_manifest(wd / "resources" / "folder" / "dataset.json")
    assert m.splits == {"train": 3, "val": 1} and m.class_names == VOC_CLASSES
    assert m.labels() == {i: sorted(CLS[c] for c in IN_ARCHIVE[i]) for i in TRAIN + VAL}
    assert sorted(p.stem for p in (wd / SUBSET_ROOT / "JPEGImages").iterdir()) == sorted(TRAIN + VAL)
    assert "Nothing to be done" in snakemake(wd, target, "-n", *configs).stdout
    os.utime(lists / "train.txt")
    assert "Nothing to be done" in snakemake(wd, target, "-n", *configs).stdout
    (lists / "train.txt").write_text("2007_000032\n2007_000039\n2011_000099\n")
    plan = snakemake(wd, target, "-n", *configs).stdout
    assert job_counts(plan)["voc_subset"] == 1 and job_counts(plan)["prepare_folder"] == 1
    bad = snakemake(wd, target, "--cores", "1", *configs, check=False)
    assert bad.returncode != 0
    assert "[voc_subset] VocSubsetError" in bad.stderr and "2011_000099 (no JPEGImages/2011_000099.jpg" in bad.stderr
