"""dataset: folder: a user's own VOC-layout folder, checked and described by resources/folder/ (never written into)."""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from matlabel.config import ConfigError, check_config
from matlabel.datasets.folder import FolderDatasetError, folder_config_errors, prepare_folder, resolve_class_names
from matlabel.datasets.layout import VOC_CLASSES, load_manifest
from matlabel.datasets.loader import VOCLayoutDataset
from matlabel.io import write_label_png
from helpers import ROOT, job_counts, snakemake, workdir, write_overlay

W, H = 40, 30
CLASSES = ["background", "cat", "dog"]
# id: classes painted into its mask (255 borders in every mask)
OBJECTS = {"a": [1], "b": [2], "c": [1, 2], "d": [2], "e": [1], "f": []}
TRAIN, VAL = ["a", "b", "c", "d"], ["e", "f"]
SPLITS = {"train_classifier": "train", "export": "train", "eval_seed": "train", "eval_seg": "val"}
# labels of train from cls_labels.csv, train not evaluated (seeds scored on val, so val is exported too)
SPLITS_CSV = {"train_classifier": "train", "export": "all", "eval_seed": "val", "eval_seg": "val"}


def _mask(classes):
    mask = np.zeros((H, W), np.uint8)
    for n, c in enumerate(classes):
        mask[5:25, 4 + 18 * n:18 + 18 * n] = c
    mask[0, :] = 255
    return mask


def _jpg(path, size=(W, H)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=80)


def _lists(root, **splits):
    d = root / "ImageSets" / "Segmentation"
    d.mkdir(parents=True, exist_ok=True)
    for name, ids in splits.items():
        (d / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))


def make_folder(root: Path, objects=OBJECTS, classes=CLASSES) -> Path:
    for image_id, cls in objects.items():
        _jpg(root / "JPEGImages" / f"{image_id}.jpg")
        write_label_png(root / "SegmentationClass" / f"{image_id}.png", _mask(cls))
    _lists(root, train=TRAIN, val=VAL, all=TRAIN + VAL)
    if classes:
        (root / "classes.txt").write_text("# background first\n" + "\n".join(classes) + "\n\n")
    return root


def listing(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in sorted(root.rglob("*"))}


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "photos")


def test_labels_from_masks_manifest_and_loader(folder, tmp_path):
    before = listing(folder)
    path = prepare_folder(folder, tmp_path / "resources" / "folder", SPLITS)
    assert listing(folder) == before  # the user's folder is only read
    m = load_manifest(path)
    assert m.name == "folder" and m.root == folder.resolve() and m.num_classes == 3
    assert m.class_names == tuple(CLASSES) and m.splits == {"train": 4, "val": 2}
    assert m.labels_path == (tmp_path / "resources" / "folder" / "cls_labels.json").resolve()
    assert m.labels() == {i: c for i, c in OBJECTS.items()}
    assert m.split_ids("val") == VAL and m.mask_path("a") == folder.resolve() / "SegmentationClass" / "a.png"
    ds = VOCLayoutDataset(m, "train", with_mask=True)
    item = ds[2]
    assert item["id"] == "c" and item["image"].shape == (H, W, 3) and item["label"].tolist() == [1.0, 1.0]
    assert item["mask"].shape == (H, W)


def test_labels_from_csv_where_given_masks_elsewhere(folder, tmp_path):
    for i in TRAIN:  # weak supervision: the training images have no mask, only image-level labels
        (folder / "SegmentationClass" / f"{i}.png").unlink()
    (folder / "cls_labels.csv").write_text("id,classes\n# image-level labels\na,1 2\nb,dog\nc,cat,dog\nd,\n")
    m = load_manifest(prepare_folder(folder, tmp_path / "out", SPLITS_CSV))
    assert m.labels() == {"a": [1, 2], "b": [2], "c": [1, 2], "d": [], "e": [1], "f": []}  # e, f from their masks
    assert m.splits == {"train": 4, "all": 6, "val": 2}


def test_relative_root_is_stored_relative(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = prepare_folder("photos", "resources/folder", SPLITS)
    assert not Path(yaml.safe_load(path.read_text())["root"]).is_absolute()
    assert load_manifest(path).root == folder.resolve()


def _write(path, text):
    path.write_text(text)


BAD = {
    "missing image": (lambda r: (r / "JPEGImages" / "b.jpg").unlink(), SPLITS, ["JPEGImages/b.jpg: image missing"]),
    "missing image, other extension": (
        lambda r: (r / "JPEGImages" / "b.jpg").rename(r / "JPEGImages" / "b.png"), SPLITS,
        ["JPEGImages/b.jpg: image missing", "found b.png"]),
    "missing mask of an evaluated split": (
        lambda r: (r / "SegmentationClass" / "e.png").unlink(), SPLITS,
        ["SegmentationClass/e.png: mask missing", "split 'val' is evaluated (splits.eval_seg)"]),
    "missing mask, labels from masks": (
        lambda r: (r / "SegmentationClass" / "a.png").unlink(), SPLITS_CSV,
        ["SegmentationClass/a.png: mask missing", "its labels come from its mask", "cls_labels.csv"]),
    "mask value out of range": (
        lambda r: write_label_png(r / "SegmentationClass" / "c.png", _mask([1, 7])), SPLITS,
        ["SegmentationClass/c.png: mask values [7] out of range", "0..2 (or 255 = ignore)"]),
    "mask of another size": (
        lambda r: write_label_png(r / "SegmentationClass" / "d.png", np.zeros((H, W + 2), np.uint8)), SPLITS,
        ["SegmentationClass/d.png: mask is 42x30", "JPEGImages/d.jpg is 40x30"]),
    "RGB mask": (
        lambda r: Image.new("RGB", (W, H)).save(r / "SegmentationClass" / "e.png"), SPLITS,
        ["SegmentationClass/e.png: mask PNG has mode 'RGB'"]),
    "empty split list": (
        lambda r: _write(r / "ImageSets" / "Segmentation" / "val.txt", "\n\n"), SPLITS,
        ["ImageSets/Segmentation/val.txt: split list is empty"]),
    "duplicate id": (
        lambda r: _write(r / "ImageSets" / "Segmentation" / "train.txt", "a\nb\nc\nb\n"), SPLITS,
        ["ImageSets/Segmentation/train.txt: id 'b' listed twice (lines 2 and 4)"]),
    "unreadable image": (
        lambda r: _write(r / "JPEGImages" / "c.jpg", "not a jpeg at all"), SPLITS,
        ["JPEGImages/c.jpg: cannot read the image"]),
    "split without list file": (
        lambda r: None, {**SPLITS, "eval_seg": "test"},
        ["ImageSets/Segmentation/test.txt: split list missing; config splits.eval_seg = 'test'"]),
    "csv with an unknown id": (
        lambda r: _write(r / "cls_labels.csv", "a,1\nzebra,2\n"), SPLITS,
        ["cls_labels.csv line 2: unknown id 'zebra'", "JPEGImages/zebra.jpg"]),
    "csv with a class index >= K": (
        lambda r: _write(r / "cls_labels.csv", "a,1 3\nb,horse\n"), SPLITS,
        ["cls_labels.csv line 1: class index 3 is out of range: 3 classes",
         "cls_labels.csv line 2: 'horse' is neither a class index nor one of the 3 class names"]),
    "eval_seed outside export": (
        lambda r: None, {**SPLITS, "eval_seed": "val"},
        ["'val' are not in splits.export 'train'"]),
    "no class names": (
        lambda r: (r / "classes.txt").unlink(), SPLITS,
        ["classes.txt: missing, and config data.folder.classes is not set", "classes: voc"]),
    # issue 28 item 9: each used to be misleading or to pass
    "csv separated by ';'": (
        lambda r: _write(r / "cls_labels.csv", "id;classes\na;1\nb;2 1\n"), SPLITS,
        ["cls_labels.csv: 3 line(s) (line 1, 2, 3) separate the id from its classes with ';', but the separator "
         "is ','"]),
    "id with a space": (
        lambda r: (_jpg(r / "JPEGImages" / "train 005.jpg"),
                   _write(r / "ImageSets" / "Segmentation" / "train.txt", "a\ntrain 005\n")), SPLITS,
        ["ImageSets/Segmentation/train.txt line 2: 'train 005': an id may not contain whitespace",
         "e.g. to 'train_005'"]),
    "training split without any object": (
        lambda r: [write_label_png(r / "SegmentationClass" / f"{i}.png", _mask([])) for i in TRAIN], SPLITS,
        ["ImageSets/Segmentation/train.txt: none of the 4 image(s) of the training split 'train' "
         "(splits.train_classifier) has an object class", "set splits.train_classifier"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_folder_stops_naming_the_file(folder, tmp_path, case):
    mutate, splits, messages = BAD[case]
    mutate(folder)
    out = tmp_path / "resources" / "folder"
    with pytest.raises(FolderDatasetError) as info:
        prepare_folder(folder, out, splits)
    text = str(info.value)
    for message in messages:
        assert message in text, text
    assert not (out / "dataset.json").exists()


def test_all_problems_reported_together_first_n_shown(folder, tmp_path):
    for i in ["a", "b", "c", "d"]:
        (folder / "JPEGImages" / f"{i}.jpg").unlink()
    (folder / "SegmentationClass" / "e.png").unlink()
    with pytest.raises(FolderDatasetError) as info:
        prepare_folder(folder, tmp_path / "out", SPLITS, max_errors=3)
    assert len(info.value.problems) == 5
    text = str(info.value)
    assert text.startswith(f"5 problem(s) in the dataset folder {folder}") and "... and 2 more" in text
    assert "a.jpg" in text and "e.png" not in text


def test_extracted_vocdevkit_works_with_classes_voc(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    make_folder(root, objects={"2007_000032": [1, 15], "2007_000039": [20], "2008_000001": [12]}, classes=None)
    _lists(root, train=["2007_000032", "2007_000039"], val=["2008_000001"])
    (root / "Annotations").mkdir()
    splits = {"train_classifier": "train", "export": "train", "eval_seed": "train", "eval_seg": "val"}
    with pytest.raises(FolderDatasetError, match="set `data.folder.classes: voc`"):
        prepare_folder(root, tmp_path / "out", splits)
    m = load_manifest(prepare_folder(root, tmp_path / "out", splits, classes="voc"))
    assert m.class_names == VOC_CLASSES and m.num_classes == 21
    assert m.labels() == {"2007_000032": [1, 15], "2007_000039": [20], "2008_000001": [12]}


def test_class_names_rule(folder):
    assert resolve_class_names(folder, ["background", "x"]) == ("background", "x")  # config first
    assert resolve_class_names(folder) == tuple(CLASSES)  # then classes.txt
    assert resolve_class_names(folder, "voc") == VOC_CLASSES
    with pytest.raises(ValueError, match="one named set is 'voc'"):
        resolve_class_names(folder, "coco")
    (folder / "classes.txt").write_text("background\ncat\ncat\n")
    with pytest.raises(ValueError, match=r"classes.txt: class name\(s\) listed twice: \['cat'\]"):
        resolve_class_names(folder)


def test_config_errors_name_data_folder_keys(folder):
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["dataset"] = "folder"
    with pytest.raises(ConfigError, match="data.folder.root: required when dataset is folder"):
        check_config(copy.deepcopy(cfg))
    cfg["data"]["folder"] = {"root": str(folder / "nope")}
    assert "is not a folder" in folder_config_errors(cfg["data"]["folder"])[0]
    cfg["data"]["folder"] = {"root": str(folder), "classes": None}
    check_config(cfg)
    (folder / "classes.txt").unlink()
    assert folder_config_errors(cfg["data"]["folder"])[0].startswith("data.folder.classes: ")


def test_folder_example_preset_is_valid():
    from matlabel.config import schema_errors

    def merge(a, b):  # as Snakemake layers config files: nested sections key by key
        return {**a, **{k: merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
                        for k, v in b.items()}}

    cfg = merge(yaml.safe_load((ROOT / "config.yaml").read_text()),
                yaml.safe_load((ROOT / "config" / "folder-example.yaml").read_text()))
    assert cfg["dataset"] == "folder" and cfg["data"]["folder"]["root"] == "path/to/your/VOC-layout-folder"
    errors = schema_errors(cfg, ROOT / "schemas" / "config.schema.yaml")
    if errors and all(e.startswith("backbone.arch:") for e in errors):
        pytest.skip(f"the schema does not know {cfg['backbone']['arch']} yet: {errors}")
    assert errors == []


@pytest.mark.slow
def test_snakemake_dry_run_and_prepare_rule(folder, tmp_path):
    (tmp_path / "wd").mkdir()
    wd = workdir(tmp_path / "wd")
    overlay = write_overlay(wd, {"dataset": "folder", "data": {"folder": {"root": str(folder)}},
                                 "splits": SPLITS})
    dry = snakemake(wd, "-n", "results/table1.csv", "--configfile", "config/demo.yaml", overlay)
    assert "prepare_folder" in dry.stdout and "synthesize_dataset" not in dry.stdout
    example = snakemake(wd, "-n", "results/table1.csv", "--configfile", "config/folder-example.yaml", overlay)
    assert "prepare_folder" in example.stdout  # the preset parses, validates and builds its DAG
    snakemake(wd, "resources/folder/dataset.json", "--cores", "1", "--configfile", "config/demo.yaml", overlay)
    m = load_manifest(wd / "resources" / "folder" / "dataset.json")
    assert m.root == folder.resolve() and m.labels() == OBJECTS
    assert (wd / "logs" / "folder" / "prepare_folder.log").exists()
    # images and masks are followed by content: a touched image replans nothing, a replaced one reruns the preparation
    image = folder / "JPEGImages" / "a.jpg"
    os.utime(image)
    assert "Nothing to be done" in snakemake(wd, "-n", "resources/folder/dataset.json", "--configfile",
                                             "config/demo.yaml", overlay).stdout
    original = image.read_bytes()
    image.write_bytes(original + b"\0")
    replaced = snakemake(wd, "-n", "resources/folder/dataset.json", "--configfile", "config/demo.yaml", overlay)
    assert "prepare_folder" in replaced.stdout and "params" in replaced.stdout.lower()
    image.write_bytes(original)
    # the split lists are followed by content as well: editing one reruns the preparation
    (folder / "ImageSets" / "Segmentation" / "val.txt").write_text("e\n")
    again = snakemake(wd, "-n", "resources/folder/dataset.json", "--configfile", "config/demo.yaml", overlay)
    assert "prepare_folder" in again.stdout and "params" in again.stdout.lower()
    # a bad folder stops the rule with the message naming the file, before anything else runs
    (folder / "SegmentationClass" / "e.png").unlink()
    bad = snakemake(wd, "resources/folder/dataset.json", "--cores", "1", "--configfile", "config/demo.yaml", overlay,
                    check=False)
    assert bad.returncode != 0 and "SegmentationClass/e.png: mask missing" in bad.stderr
    assert not (wd / "resources" / "folder" / "dataset.json").exists()


def test_max_side_runs_on_a_shrunk_copy(folder, tmp_path):
    """data.folder.max_side: images and masks shrunk (masks by nearest neighbour: indices and 255 exact) in a copy
    under resources/folder/resized/, the manifest pointing at it; the user's folder untouched."""
    big = {"a": (80, 60), "b": (30, 80)}  # a: long side 80 -> 40; b: portrait 80 -> 40; the rest (40 x 30) unchanged
    for image_id, size in big.items():
        _jpg(folder / "JPEGImages" / f"{image_id}.jpg", size)
        mask = np.zeros(size[::-1], np.uint8)
        mask[: size[1] // 2] = 1 if image_id == "a" else 2
        mask[-1] = 255
        write_label_png(folder / "SegmentationClass" / f"{image_id}.png", mask)
    before = listing(folder)
    out = tmp_path / "resources" / "folder"
    m = load_manifest(prepare_folder(folder, out, SPLITS, max_side=40))
    assert listing(folder) == before
    assert m.root == (out / "resized").resolve() and m.split_ids("train") == TRAIN and m.split_ids("val") == VAL
    sizes = {i: Image.open(m.image_path(i)).size for i in TRAIN + VAL}
    assert sizes == {"a": (40, 30), "b": (15, 40), "c": (W, H), "d": (W, H), "e": (W, H), "f": (W, H)}
    for i in TRAIN + VAL:
        with Image.open(m.mask_path(i)) as mask:
            assert mask.size == sizes[i] and mask.mode == "P"
            values = set(np.unique(np.asarray(mask)).tolist())
        assert values <= {0, 1, 2, 255} and 255 in values
    assert set(np.unique(np.asarray(Image.open(m.mask_path("a")))).tolist()) == {0, 1, 255}
    # unchanged images are byte copies
    assert (folder / "JPEGImages" / "c.jpg").read_bytes() == m.image_path("c").read_bytes()
    # back to null: the manifest is the user's folder again and the stale copy is gone
    m = load_manifest(prepare_folder(folder, out, SPLITS))
    assert m.root == folder.resolve() and not (out / "resized").exists()


def test_max_side_rejects_a_bad_value(folder, tmp_path):
    with pytest.raises(ValueError, match="max_side"):
        prepare_folder(folder, tmp_path / "out", SPLITS, max_side=8)
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    cfg["dataset"], cfg["data"]["folder"] = "folder", {"root": str(folder), "max_side": "big"}
    with pytest.raises(ConfigError, match="max_side"):
        check_config(cfg)


def test_exif_orientation_is_read_as_stored_and_warned_about(folder, tmp_path, caplog):
    # a phone photo: stored 40x30 with "rotate 90° for display" (orientation 6); its mask is drawn on the stored
    # grid, so the workflow reads the pixels as stored (both stay 40x30) and says so in the log
    path = folder / "JPEGImages" / "b.jpg"
    stored = Image.open(path).copy()
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, exif=exif.tobytes())
    with caplog.at_level("WARNING"):
        m = load_manifest(prepare_folder(folder, tmp_path / "out", SPLITS))
    from matlabel.io import read_image
    assert read_image(m.image_path("b")).shape == (H, W, 3)
    assert "1 image(s) carry an EXIF orientation tag" in caplog.text and "b.jpg" in caplog.text
    assert "exiftran" in caplog.text


BOM = "\ufeff"


def test_a_utf8_byte_order_mark_is_ignored_in_every_text_file(folder, tmp_path):
    """Notepad and some spreadsheets start a UTF-8 file with an invisible BOM: it used to make the first id of a
    split list a missing image and to become part of the background's name."""
    for name, ids in (("train", TRAIN), ("val", VAL)):
        (folder / "ImageSets" / "Segmentation" / f"{name}.txt").write_text(BOM + "\n".join(ids) + "\n",
                                                                           encoding="utf-8")
    (folder / "classes.txt").write_text(BOM + "\n".join(CLASSES) + "\n", encoding="utf-8")
    (folder / "cls_labels.csv").write_text(BOM + "a,cat dog\n", encoding="utf-8")
    m = load_manifest(prepare_folder(folder, tmp_path / "out", SPLITS))
    assert m.class_names == tuple(CLASSES) and m.split_ids("train") == TRAIN
    assert m.labels()["a"] == [1, 2]


def _doc_blocks(text):
    """The fenced code blocks of a markdown text, dedented (a block inside a list item is indented)."""
    import textwrap

    return [textwrap.dedent(b) for b in re.findall(r"^ *```[^\n]*\n(.*?)^ *```", text, re.M | re.S)]


DOC = ROOT / "docs" / "folder-dataset.md"


def test_documented_layout_and_cls_labels_example_run_as_written(tmp_path):
    """A folder built from the doc's layout block, with the doc's cls_labels.csv example copied as written (its
    trailing notes included: they used to give one error per word), passes the check with the labels the doc
    says."""
    blocks = _doc_blocks(DOC.read_text())
    layout = next(b for b in blocks if b.startswith("<root>/JPEGImages/"))
    csv = next(b for b in blocks if b.startswith("id,classes"))
    ids = ["2008_000123", "img_0042", "img_0043"]  # the example's ids
    root = tmp_path / "photos"
    for line in layout.splitlines():
        if not line.startswith("<root>/"):
            continue
        pattern = line.split()[0].replace("<root>", str(root))
        if "<split>" in pattern:
            _lists(root, train=ids)
        elif "<id>" in pattern:
            for i in ids:
                path = Path(pattern.replace("<id>", i))
                if path.suffix == ".jpg":
                    _jpg(path)
                else:
                    write_label_png(path, _mask([]))  # the csv's labels win over the masks
        elif pattern.endswith("classes.txt"):
            Path(pattern).write_text("\n".join(VOC_CLASSES) + "\n")  # the example's class names are VOC's
        elif pattern.endswith("cls_labels.csv"):
            Path(pattern).write_text(csv)
        else:
            raise AssertionError(f"a layout line the test does not know: {line}")
    splits = {"train_classifier": "train", "export": "train", "eval_seed": "train", "eval_seg": "train"}
    m = load_manifest(prepare_folder(root, tmp_path / "out", splits))
    cat, dog = VOC_CLASSES.index("cat"), VOC_CLASSES.index("dog")
    assert m.labels() == {"2008_000123": [1, 15], "img_0042": sorted([cat, dog]), "img_0043": []}


def test_moved_root_with_the_same_content_keeps_the_manifest(folder, tmp_path):
    """The manifest names resources/folder/root, a link the workflow points at the configured folder while it
    parses: a copied folder changes no byte the rules read."""
    from matlabel.datasets.folder import link_root

    out = tmp_path / "resources" / "folder"
    manifest = prepare_folder(folder, out, SPLITS)
    before = manifest.read_bytes()
    copy_ = tmp_path / "elsewhere" / "photos"
    shutil.copytree(folder, copy_)
    shutil.rmtree(folder)
    link_root(copy_, out)
    assert manifest.read_bytes() == before and load_manifest(manifest).root == copy_.resolve()
    assert load_manifest(manifest).labels() == OBJECTS


def test_output_folder_problems_name_the_path_and_the_fix(tmp_path, monkeypatch):
    from matlabel.io import output_folder_problems

    monkeypatch.chdir(tmp_path)
    folders = ["results", "results/folder", "resources", "resources/folder"]
    assert output_folder_problems(folders) == []
    Path("results").mkdir()
    Path("results/folder").write_text("")
    Path("resources").symlink_to(tmp_path / "gone")
    problems = output_folder_problems(folders)
    assert len(problems) == 2, problems
    assert problems[0].startswith("results/folder: a file") and "mv results/folder results/folder.bak" in problems[0]
    assert problems[1].startswith(f"resources: a link to {tmp_path / 'gone'}, which does not exist")
    assert "rm resources" in problems[1]


@pytest.mark.slow
def test_snakemake_as_a_new_user_warnings_moved_root_and_bad_output_folders(folder, tmp_path):
    """issue 28 item 9, through Snakemake: the check's warnings reach the terminal, a copied root with the same
    content reruns nothing, and a file or dangling link where the outputs go is named at parse time."""
    path = folder / "JPEGImages" / "b.jpg"  # a phone photo (EXIF "rotate for display")
    stored = Image.open(path).copy()
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, exif=exif.tobytes())
    write_label_png(folder / "SegmentationClass" / "d.png", _mask([]))  # a training image without any object
    (tmp_path / "wd").mkdir()
    wd = workdir(tmp_path / "wd")
    overlay = write_overlay(wd, {"dataset": "folder", "data": {"folder": {"root": str(folder)}}, "splits": SPLITS})
    targets = ["resources/folder/content/train.images.json", "results/folder/floor/val/eval.json"]
    run = snakemake(wd, *targets, "--cores", "1", "--configfile", "config/demo.yaml", overlay)
    assert "[prepare_folder] warning: 1 image(s) of the training split 'train' have no object class" in run.stderr
    assert "[prepare_folder] warning: 1 image(s) carry an EXIF orientation tag" in run.stderr and "b.jpg" in run.stderr
    # the folder copied elsewhere (new mtimes, new paths) and the old one gone: nothing downstream reruns
    moved = tmp_path / "moved" / "photos"
    moved.parent.mkdir()
    subprocess.run(["cp", "-r", str(folder), str(moved.parent)], check=True)
    shutil.rmtree(folder)
    overlay = write_overlay(wd, {"dataset": "folder", "data": {"folder": {"root": str(moved)}}, "splits": SPLITS})
    dry = snakemake(wd, "-n", *targets, "--configfile", "config/demo.yaml", overlay)
    assert "Nothing to be done" in dry.stdout, dry.stdout[-3000:]
    assert load_manifest(wd / "resources" / "folder" / "dataset.json").root == moved.resolve()
    # outputs that cannot be written: named with the fix when the workflow is parsed, not a traceback later
    shutil.rmtree(wd / "results" / "folder")
    (wd / "results" / "folder").write_text("")
    bad = snakemake(wd, *targets, "--cores", "1", "--configfile", "config/demo.yaml", overlay, check=False)
    assert bad.returncode != 0 and "results/folder: a file" in bad.stderr and "Traceback" not in bad.stderr
    shutil.rmtree(wd / "results")
    (wd / "results").symlink_to(tmp_path / "unmounted")
    bad = snakemake(wd, *targets, "--cores", "1", "--configfile", "config/demo.yaml", overlay, check=False)
    assert bad.returncode != 0 and f"results: a link to {tmp_path / 'unmounted'}, which does not exist" in bad.stderr


@pytest.mark.slow
def test_documented_commands_run_as_written(tmp_path):
    """Every snakemake command of docs/folder-dataset.md runs as written (the first block after its `cp`, the
    measured ones with the root.yaml it describes), and the measured Table 1 run has the job count it states."""
    (tmp_path / "wd").mkdir()
    wd = workdir(tmp_path / "wd", copy=("config",))
    make_folder(wd / "photos")
    text = DOC.read_text()
    commands = [line.split("#", 1)[0].strip() for line in _doc_blocks(text)[0].splitlines()]
    for command in filter(None, commands):
        if command.startswith("cp "):
            subprocess.run(command, shell=True, cwd=wd, check=True)
            mine = wd / "config" / "my-photos.yaml"  # "then set data.folder.root (and splits) in it"
            cfg = yaml.safe_load(mine.read_text())
            cfg["data"]["folder"]["root"] = "photos"
            mine.write_text(yaml.safe_dump(cfg))
        else:
            assert command.startswith("snakemake "), command
            snakemake(wd, *command.split()[1:], "-n")
    (wd / "root.yaml").write_text(re.search(r"`root.yaml` holds `([^`]+)`", text).group(1) + "\n")
    check, table1 = re.findall(r"`(snakemake [^`]+)`", text)[-2:]
    snakemake(wd, *check.split()[1:])
    dry = snakemake(wd, *table1.split()[1:], "-n")
    stated = int(re.search(r"\((?:<!-- generated:photos-jobs -->)?(\d+) jobs", text).group(1))  # make docs renders it
    assert job_counts(dry.stdout)["total"] == stated
