"""The bad-input catalogue (issue #9): each bad input gives an error naming the file (or config key) and the fix,
or skips the image with a logged warning and a count, and loses nothing already computed.

Each case builds its bad file on a tiny dataset in tmp_path and calls the library function or the script entry
point that meets it first. The table in docs/reliability.md lists the cases with these tests.
"""
from __future__ import annotations

import copy
import errno
import importlib.util
import io
import logging
import re
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from http_server import FileServer
from PIL import Image
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from matlabel import runlog
from matlabel.config import ConfigError, check_config, paper_config, validate_config
from matlabel.datasets.download import (
    ChecksumError,
    CorruptArchiveError,
    UnsafeArchiveError,
    download,
    safe_extract,
)
from matlabel.datasets.layout import (
    VOC_CLASSES,
    load_manifest,
    write_cls_labels,
    write_manifest,
    write_split,
)
from matlabel.datasets.loader import VOCLayoutDataset
from matlabel.evaluate import evaluate_labels
from matlabel.io import (
    DiskFullError,
    atomic_dir,
    read_image,
    read_json,
    read_label_png,
    write_json,
    write_label_png,
)
from helpers import paper_matting
from matlabel.labels import matting_labels, threshold_labels
from matlabel.train import resolve_device
from matlabel.trimap import make_trimaps

ROOT = Path(__file__).resolve().parents[1]
H, W = 24, 32
IDS = ("a", "b")


def _image(seed: int) -> np.ndarray:
    """A textured (H, W, 3) uint8 image: a bright square on noise (noise keeps the JPEG large enough to cut)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 120, (H, W, 3), dtype=np.uint8)
    img[6:18, 8:22] = (230, 40, 40)
    return img


def _mask() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[6:18, 8:22] = 1
    return mask


def _dataset(tmp_path: Path, labels: dict | None = None, split_ids=IDS):
    """A two-image VOC-layout dataset (class 1 = aeroplane square) and its manifest."""
    root = tmp_path / "VOC"
    for i, image_id in enumerate(IDS):
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(i)).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        write_label_png(root / "SegmentationClass" / f"{image_id}.png", _mask())
    write_split(root, "train", split_ids)
    write_cls_labels(root, labels if labels is not None else {i: [1] for i in IDS})
    write_manifest(tmp_path / "dataset.json", "tiny", root, VOC_CLASSES, "SegmentationClass",
                   {"train": len(split_ids)})
    return load_manifest(tmp_path / "dataset.json")


def _script(name: str):
    """Load ``scripts/<name>.py`` as a module (its ``main(smk)`` is the rule's entry point)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def quiet_runlog(monkeypatch):
    """Keep the scripts' logging in pytest (runlog.start would redirect stderr and reset logging)."""
    monkeypatch.setattr(runlog, "start", lambda smk: logging.getLogger("test_bad_inputs"))


def _leftovers(folder: Path) -> list[str]:
    """Temporary files/directories of the atomic writers (hidden ``.<name>.*.tmp*``)."""
    return sorted(p.name for p in folder.rglob(".*") if ".tmp" in p.name)


# ------------------------------------------------------------------------------------------- 1, 2: images

def test_corrupt_jpeg_stops_naming_the_file(tmp_path):
    manifest = _dataset(tmp_path)
    path = manifest.image_path("a")
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="cannot decode image") as info:
        read_image(path)
    assert str(path) in str(info.value) and "Re-download" in str(info.value)
    ds = VOCLayoutDataset(manifest, "train")  # training meets it on its first pass over the split
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ds[ds.ids.index("a")]


def test_truncated_jpeg_stops_naming_the_file(tmp_path):
    manifest = _dataset(tmp_path)
    path = manifest.image_path("b")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot decode image") as info:
        read_image(path)
    assert str(path) in str(info.value) and "remove it from the split list" in str(info.value)
    assert read_image(manifest.image_path("a")).shape == (H, W, 3)  # the other images still read


# -------------------------------------------------------------------------------------------- 3, 4: masks

def _seed_shard(tmp_path: Path) -> Path:
    """A finished pseudo-label shard with perfect labels, to evaluate against the (bad) masks."""
    shard = tmp_path / "seed" / "shard0"
    for image_id in IDS:
        write_label_png(shard / f"{image_id}.png", _mask())
    return shard


def test_rgb_mask_stops_naming_the_file_and_the_fix(tmp_path):
    manifest = _dataset(tmp_path)
    shard = _seed_shard(tmp_path)
    path = manifest.mask_path("a")
    Image.fromarray(np.stack([_mask() * 128] * 3, axis=-1)).save(path)  # what OpenCV / convert("RGB") give
    with pytest.raises(ValueError, match="mode 'RGB'") as info:
        evaluate_labels(manifest, list(IDS), [shard])
    assert str(path) in str(info.value) and "Re-export it with PIL as mode 'P'" in str(info.value)


def test_mask_value_outside_the_classes_stops_naming_the_file(tmp_path):
    manifest = _dataset(tmp_path)
    shard = _seed_shard(tmp_path)
    bad = _mask()
    bad[0, 0] = 37
    write_label_png(manifest.mask_path("b"), bad)
    with pytest.raises(ValueError, match=r"label values \[37\] outside 0..20") as info:
        evaluate_labels(manifest, list(IDS), [shard])
    assert str(manifest.mask_path("b")) in str(info.value) and "preparation rule" in str(info.value)
    assert read_label_png(manifest.mask_path("b"))[0, 0] == 37  # without num_classes: read as it is
    bad[0, 0] = 255  # the ignore label is fine
    write_label_png(manifest.mask_path("b"), bad)
    assert evaluate_labels(manifest, list(IDS), [shard])["miou"] == 100.0


# ------------------------------------------------------------------------------- 5, 6: labels and splits

def test_image_without_object_label_is_skipped_with_a_count(tmp_path, quiet_runlog, caplog):
    manifest = _dataset(tmp_path, labels={"a": [], "b": [1]})
    with pytest.raises(ValueError, match="no object label") as info:
        VOCLayoutDataset(manifest, "train")  # the library default: stop, naming the labels file and the fix
    assert str(manifest.root / "cls_labels.json") in str(info.value)
    assert "remove them from ImageSets/Segmentation/train.txt" in str(info.value)

    trained = {}

    def fake_train(model, dataset, cfg, device, out, loss_fn=None, extra=None, speed=None):
        trained["ids"] = list(dataset.ids)
        return [{"epoch": 1}]

    class _Inputs(list):  # Snakemake's input: a list of the files that also has them as attributes
        def __init__(self, **named):
            super().__init__(named.values())
            self.__dict__.update(named)

        def get(self, key, default=None):  # Snakemake's Namedlist.get
            return self.__dict__.get(key, default)

    script = _script("train_classifier")
    script.train = fake_train  # the rule's entry point up to the training loop
    smk = SimpleNamespace(
        input=_Inputs(manifest=str(tmp_path / "dataset.json")),
        output=SimpleNamespace(model=str(tmp_path / "model.pt")), log=[], rule="train_classifier", threads=1,
        wildcards=SimpleNamespace(method="cam"),
        params=SimpleNamespace(device="cpu", speed={}, split="train", seed=0, code="test",
                               train={**paper_config()["cam"], "epochs": 1, "batch_size": 2},
                               augment={"resize_long": [24, 32], "crop": 24, "hflip": True},
                               backbone={"arch": "resnet18", "weights": "none", "output_stride": 16,
                                         "freeze_bn": False, "train_from": "stem"}))
    with caplog.at_level(logging.WARNING):
        script.main(smk)
    assert trained["ids"] == ["b"]  # the rule trains on the labelled images
    assert "skipping 1 image(s) of 'train' without any object label" in caplog.text and "['a']" in caplog.text


def test_split_naming_a_missing_image_stops_naming_the_file(tmp_path):
    manifest = _dataset(tmp_path, labels={"a": [1], "b": [1], "ghost": [1]}, split_ids=(*IDS, "ghost"))
    ds = VOCLayoutDataset(manifest, "train")
    with pytest.raises(FileNotFoundError) as info:
        ds[ds.ids.index("ghost")]
    assert str(manifest.image_path("ghost")) in str(info.value) and "split" in str(info.value)
    with pytest.raises(FileNotFoundError, match="image missing.*remove the id from the split list"):
        read_image(manifest.image_path("ghost"))  # what the export, CRF and IRN rules call

    write_cls_labels(manifest.root, {"a": [1], "b": [1]})  # an id the dataset preparation never saw
    with pytest.raises(ValueError, match="no image-level labels.*ghost.*re-run the dataset preparation rule"):
        VOCLayoutDataset(manifest, "train")


# ------------------------------------------------------------------------------------- 7, 8, 9: archives

def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_download_with_wrong_checksum_stops_and_keeps_nothing(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "VOCtrainval.tar").write_bytes(b"not the archive you are looking for" * 100)
    dest = tmp_path / "resources" / "VOCtrainval.tar"
    expected = "6cd6e144f989b92b3379bac3b3de84fd"
    with FileServer(www) as server, pytest.raises(ChecksumError) as info:
        download(server.url("VOCtrainval.tar"), dest, md5=expected, progress=False)
    message = str(info.value)
    assert "md5 mismatch" in message and expected in message and str(dest) in message and "md5sum" in message
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_truncated_archive_stops_and_extracts_nothing(tmp_path):
    rng = np.random.default_rng(1)
    data = _tgz({"VOC/a.bin": rng.bytes(50_000), "VOC/b.bin": rng.bytes(50_000)})
    archive = tmp_path / "cut.tgz"
    archive.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "out"
    with pytest.raises(CorruptArchiveError) as info:
        safe_extract(archive, dest, progress=False)
    assert str(archive) in str(info.value) and "Delete it and download it again" in str(info.value)
    assert not dest.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("kind, member", [("tgz", "VOC/../../evil.txt"), ("tgz", "/tmp/evil.txt"),
                                          ("zip", "../evil.txt"), ("zip", "/abs/evil.txt")])
def test_archive_member_escaping_the_folder_is_refused(tmp_path, kind, member):
    members = {"VOC/ok.txt": b"fine", member: b"pwned"}
    archive = tmp_path / f"bad.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data in members.items():
                zf.writestr(zipfile.ZipInfo(name), data)
    else:
        archive.write_bytes(_tgz(members))
    dest = tmp_path / "out" / "data"
    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract(archive, dest, progress=False)
    assert str(archive) in str(info.value) and repr(member) in str(info.value)
    assert "official source" in str(info.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


# -------------------------------------------------------------------------------------- 10, 11, 12: config

@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


SCHEMA = str(ROOT / "schemas" / "config.schema.yaml")


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(epochs=5), "'epochs' was unexpected"),  # top level
    (lambda c: c["cam"].update(epoch=5), "'epoch' was unexpected"),  # a typo in a section
])
def test_unknown_config_key_stops_before_any_job(config, mutate, key):
    cfg = copy.deepcopy(config)
    mutate(cfg)
    with pytest.raises(ConfigError, match="additional properties are not allowed") as info:
        validate_config(cfg, SCHEMA, ["my.yaml"])  # rules/common/config.smk runs this at parse time
    assert key in str(info.value) and "fix them in my.yaml" in str(info.value)
    assert "known keys there:" in str(info.value)
    with pytest.raises(WorkflowError, match="Additional properties are not allowed"):
        validate(cfg, SCHEMA)  # Snakemake's own validation agrees


def test_out_of_range_config_values_stop_naming_the_key(config):
    cfg = copy.deepcopy(config)
    cfg["cam"]["epochs"] = -1
    cfg["trimap"]["eps_fg"] = 1.5
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, SCHEMA)
    assert "2 config error(s)" in str(info.value)  # all of them at once, each naming its key
    assert "cam.epochs: -1 is less than the minimum of 1" in str(info.value)
    assert "trimap.eps_fg: 1.5 is greater than the maximum of 1" in str(info.value)
    for eps_bg in (0.8, 0.75):  # above and equal
        cfg = copy.deepcopy(config)
        cfg["trimap"]["eps_bg"] = eps_bg
        validate(cfg, SCHEMA)  # each value alone is a probability ...
        with pytest.raises(ConfigError, match=rf"trimap.eps_bg \({eps_bg}\) must be below trimap.eps_fg \(0.75\)"):
            check_config(cfg)  # ... the pair is not (paper Eq. 9)
    with pytest.raises(ValueError, match="eps_bg < eps_fg"):
        make_trimaps(np.zeros((1, 2, 2)), eps_fg=0.75, eps_bg=0.8)  # the library refuses it as well


def test_cuda_requested_without_cuda_stops_naming_the_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError) as info:
        resolve_device("cuda")
    assert "device: cuda" in str(info.value) and "set `device: auto` or `device: cpu`" in str(info.value)


# ------------------------------------------------------------------------------------- 13, 14: matting

def _cams_shard(tmp_path: Path, maps: dict[str, tuple[np.ndarray, list[int]]]) -> Path:
    shard = tmp_path / "cams" / "shard0"
    shard.mkdir(parents=True)
    for image_id, (cams, classes) in maps.items():
        np.savez_compressed(shard / f"{image_id}.npz", cams=cams.astype(np.float16),
                            classes=np.asarray(classes, np.int16))
    return shard


def _ramp() -> np.ndarray:
    """A map that is 1 on the square and fades out around it: foreground, unknown and background pixels."""
    yy, xx = np.mgrid[:H, :W]
    dist = np.maximum(np.maximum(6 - yy, yy - 17), np.maximum(8 - xx, xx - 21)).clip(0)
    return np.clip(1.0 - dist / 8.0, 0, 1)[None]


def _labels_smk(tmp_path: Path, cams: Path, out: Path, solver: dict) -> SimpleNamespace:
    """A matting_labels job with config.yaml's trimap and matting sections, ``solver`` overriding the latter's keys."""
    paper = paper_config()
    return SimpleNamespace(
        input=SimpleNamespace(manifest=str(tmp_path / "dataset.json"), cams=str(cams)), output=[str(out)], log=[],
        rule="matting_labels", threads=1, wildcards=SimpleNamespace(shard="0"),
        params=SimpleNamespace(labeler="matting", split="train", n_shards=1, bg_threshold=0.15,
                               trimap=paper["trimap"], matting={**paper["matting"], **solver}))


def test_empty_trimap_is_labelled_and_counted(tmp_path, quiet_runlog):
    image = np.repeat(np.linspace(60, 200, W, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(H, axis=0)
    no_fg, no_bg = np.zeros((1, H, W)), np.where(_mask() == 1, 1.0, 0.5)[None]  # all <= eps_bg; all > eps_bg
    labels, alphas, info = matting_labels(image, np.concatenate([no_fg, no_bg]), [3, 8], paper_matting())
    assert info["degenerate"] == [3, 8]  # defined alphas, no error: 0 without foreground, ~1 without background
    assert alphas[0].max() == 0 and alphas[1].min() > 0.999 and set(np.unique(labels)) == {8}

    _dataset(tmp_path)
    cams = _cams_shard(tmp_path, {"a": (_ramp(), [1]), "b": (np.concatenate([_ramp(), no_fg]), [1, 3])})
    out = tmp_path / "seed" / "shard0"
    _script("make_labels").main(_labels_smk(tmp_path, cams, out, {}))
    summary = read_json(out / "shard.json")
    assert summary["failures"] == {} and summary["degenerate_trimaps"] == {"b": [3]}
    assert 0 < summary["cg_iterations"]["mean"] <= summary["cg_iterations"]["max"] < 2000  # the solver's steps
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_alpha.npz", "b.png", "b_alpha.npz", "shard.json"]
    assert set(np.unique(read_label_png(out / "a.png"))) == {0, 1}


def test_matting_that_does_not_converge_falls_back_and_is_counted(tmp_path, quiet_runlog, caplog):
    _dataset(tmp_path)
    known = _mask()[None].astype(np.float64)  # no unknown pixel: nothing to solve, so "b" is labelled by matting
    cams = _cams_shard(tmp_path, {"a": (_ramp(), [1]), "b": (known, [1])})
    out = tmp_path / "seed" / "shard0"
    with caplog.at_level(logging.WARNING):  # one CG step at an unreachable tolerance: never converges
        _script("make_labels").main(_labels_smk(tmp_path, cams, out, {"max_iter": 1, "rtol": 1e-14}))
    summary = read_json(out / "shard.json")
    assert list(summary["failures"]) == ["a"] and summary["cg_iterations"] == {"mean": 0.0, "max": 0}
    assert summary["failures"]["a"].startswith("MattingFailure: knn_matting: CG did not reach")
    assert "a: matting failed (MattingFailure" in caplog.text
    # the shard is complete: "a" has its threshold seed and no alphas
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "b_alpha.npz", "shard.json"]
    np.testing.assert_array_equal(read_label_png(out / "a.png"), threshold_labels(_ramp(), [1], 0.15))
    assert _leftovers(tmp_path) == []


def test_shard_whose_matting_fails_on_every_image_stops_naming_it(tmp_path, quiet_runlog):
    """Every image with a class falls back: the shard would be a threshold row under Mat-Label's name, so it stops
    (an image without a class has nothing to solve and does not count)."""
    _dataset(tmp_path)
    cams = _cams_shard(tmp_path, {"a": (_ramp(), [1]), "b": (np.zeros((0, H, W)), [])})
    out = tmp_path / "seed" / "shard0"
    with pytest.raises(RuntimeError) as info:
        _script("make_labels").main(_labels_smk(tmp_path, cams, out, {"max_iter": 1, "rtol": 1e-14}))
    message = str(info.value)
    assert f"shard {out}: the matting failed on all 1 image(s) with a class" in message
    assert "first errors: a: MattingFailure: knn_matting: CG did not reach" in message and "matting.max_iter" in message
    assert not out.exists() and _leftovers(tmp_path) == []  # no shard is left for the tables to read


def test_matting_device_that_torch_cannot_use_stops_the_shard_before_its_first_image(tmp_path, quiet_runlog,
                                                                                     monkeypatch):
    """matting.device: cuda without a usable GPU used to make every image fall back, silently: now it stops."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _dataset(tmp_path)
    cams = _cams_shard(tmp_path, {"a": (_ramp(), [1]), "b": (_ramp(), [1])})
    out = tmp_path / "seed" / "shard0"
    with pytest.raises(RuntimeError, match="config matting.device: cuda, but no CUDA device is visible to PyTorch; "
                                           "set matting.device: cpu"):
        _script("make_labels").main(_labels_smk(tmp_path, cams, out, {"device": "cuda"}))
    assert not out.exists()


def test_maps_with_nan_stop_naming_the_file(tmp_path, quiet_runlog):
    """A NaN map is neither above nor below any threshold: it used to become unknown pixels (matting) or lose the
    argmax (threshold seed) without a word."""
    _dataset(tmp_path)
    damaged = _ramp()
    damaged[0, 2, 3:6] = np.nan
    cams = _cams_shard(tmp_path, {"a": (_ramp(), [1]), "b": (damaged, [1])})
    out = tmp_path / "seed" / "shard0"
    with pytest.raises(ValueError, match=rf"{cams / 'b.npz'}: maps have 3 non-finite values \(NaN or inf\); the "
                                         "export is damaged: delete this shard directory and rerun its export"):
        _script("make_labels").main(_labels_smk(tmp_path, cams, out, {}))
    assert not out.exists()


# ------------------------------------------------------------------------------------------ 15: disk full

def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_removes_the_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "labels" / "a.png"
    write_label_png(path, _mask())
    before = path.read_bytes()

    def half_then_full(self, fp, *args, **kwargs):
        Path(fp).write_bytes(before[: len(before) // 2])
        _disk_full()

    monkeypatch.setattr(Image.Image, "save", half_then_full)
    with pytest.raises(DiskFullError) as info:
        write_label_png(path, 1 - _mask())
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert "disk full while writing" in message and str(path) in message and "Free space" in message
    assert path.read_bytes() == before and _leftovers(tmp_path) == []

    monkeypatch.setattr(Path, "write_text", _disk_full)
    with pytest.raises(DiskFullError, match="summary.json"):
        write_json(tmp_path / "summary.json", {"miou": 1.0})
    assert not (tmp_path / "summary.json").exists() and _leftovers(tmp_path) == []


def test_disk_full_in_a_shard_stops_it_whole_and_names_the_shard(tmp_path, quiet_runlog, monkeypatch):
    out = tmp_path / "shard0"
    with pytest.raises(DiskFullError, match=re.escape(str(out))), atomic_dir(out) as tmp:
        (tmp / "a.png").write_bytes(b"done")
        _disk_full()
    assert not out.exists() and _leftovers(tmp_path) == []

    # in the matting rule a full disk is not a matting failure of one image: the shard stops, nothing half-written
    _dataset(tmp_path)
    cams = _cams_shard(tmp_path, {"a": (_ramp(), [1]), "b": (_ramp(), [1])})
    seed = tmp_path / "seed" / "shard0"
    monkeypatch.setattr(np, "savez_compressed", _disk_full)
    with pytest.raises(DiskFullError, match=re.escape(f"disk full while writing {seed}")):
        _script("make_labels").main(_labels_smk(tmp_path, cams, seed, {}))
    assert not seed.exists() and _leftovers(tmp_path) == []
