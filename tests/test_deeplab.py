"""DeepLab-v2 (matlabel.deeplab) and its training data (matlabel.deeplab.data), on tiny CPU inputs."""
import dataclasses
import io
import math
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import matlabel.deeplab as dl
import matlabel.deeplab.export
import matlabel.deeplab.infer
from helpers import ROOT, paper_seg
from matlabel.config import check_files
from matlabel.datasets.layout import VOC_CLASSES, load_manifest, write_manifest, write_split
from matlabel.io import read_image, read_label_png, voc_palette, write_label_png
from matlabel.deeplab.data import SegDataset, augment

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # the machine is shared (conftest.py)


def tiny_model(**kw):
    return dl.DeepLabV2(21, arch="resnet18", weights="none", **kw)


# ------------------------------------------------------------------------------------------------ model


def test_output_stride_8_with_dilated_stages():
    model = tiny_model().eval()
    # deeplab-pytorch's downsampling (libs/models/resnet.py): conv1 7x7/2, max-pool 3x3/2 ceil_mode, 1x1/2 conv
    ref = nn.Sequential(nn.Conv2d(1, 1, 7, 2, 3), nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.Conv2d(1, 1, 1, 2, 0))
    with torch.no_grad():
        for h, w in [(33, 45), (17, 9), (32, 40), (64, 48)]:
            want = ref(torch.zeros(1, 1, h, w)).shape[-2:]
            assert model(torch.rand(1, 3, h, w) * 255).shape == (1, 21, *want) == (1, 21, *model.logit_size(h, w))
        assert model(torch.rand(1, 3, 33, 45) * 255).shape[-2:] == (math.ceil(33 / 8), math.ceil(45 / 8))
    for n in range(8, 600):  # the arithmetic, checked against the reference's layers at every size
        assert model.logit_size(n, n)[0] == ref(torch.zeros(1, 1, n, 1)).shape[-2], n
    assert model.logit_size(321, 513) == (41, 65) and model.logit_size(160, 320) == (21, 41)  # not ceil(H/8)
    for stage, d in ((model.backbone.layer3, 2), (model.backbone.layer4, 4)):
        convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
        assert all(c.stride == (1, 1) for c in convs)
        # every 3x3 conv of the stage, the first block's included (deeplab-pytorch _ResLayer)
        assert all(c.dilation == (d, d) and c.padding == (d, d) for c in convs if c.kernel_size == (3, 3))
    assert [c.dilation[0] for c in model.aspp.branches] == [6, 12, 18, 24]


def test_resnet101_is_the_papers_trunk():
    model = dl.DeepLabV2(21, arch="resnet101", weights="none").eval()
    bb = model.backbone
    assert [len(bb.layer1), len(bb.layer2), len(bb.layer3), len(bb.layer4)] == [3, 4, 23, 3]
    with torch.no_grad():
        assert model(torch.rand(1, 3, 41, 41) * 255).shape == (1, 21, 6, 6)


def test_aspp_is_a_sum_of_biased_branches_initialised_as_the_reference():
    model = tiny_model()
    x = torch.randn(1, 512, 5, 5)
    assert torch.allclose(model.aspp(x), sum(c(x) for c in model.aspp.branches))
    w = torch.cat([c.weight.flatten() for c in model.aspp.branches])
    assert abs(float(w.detach().std()) - 0.01) < 1e-3
    assert all(float(c.bias.detach().abs().max()) == 0 for c in model.aspp.branches)


def test_input_normalisation():
    zeros = torch.zeros(1, 3, 16, 16)
    for norm in dl.INPUT_NORMS:
        model = tiny_model(input_norm=norm).eval()
        mean_image = torch.tensor(model.mean_rgb).view(1, 3, 1, 1).expand(1, 3, 16, 16)
        with torch.no_grad():  # the mean pixel normalises to zero
            assert torch.allclose(model(mean_image), model.aspp(model.backbone(zeros)), atol=1e-5)
    model = tiny_model(input_norm="caffe").eval()
    x = torch.rand(1, 3, 16, 16) * 255
    bgr_mean = torch.tensor([104.008, 116.669, 122.675]).view(1, 3, 1, 1)  # configs/voc12.yaml, B G R
    with torch.no_grad():
        assert torch.allclose(model(x), model.aspp(model.backbone(x[:, [2, 1, 0]] - bgr_mean)), atol=1e-5)
    assert tiny_model().mean_rgb == pytest.approx((123.675, 116.28, 103.53))


def test_param_groups_10x_20x_and_no_decay_on_biases():
    model = tiny_model()
    groups = {g["name"]: g for g in model.param_groups(2.5e-4, 5e-4)}
    assert groups["backbone"]["lr"] == 2.5e-4 and groups["backbone"]["weight_decay"] == 5e-4
    assert groups["aspp_weight"]["lr"] == pytest.approx(2.5e-3) and groups["aspp_weight"]["weight_decay"] == 5e-4
    assert groups["aspp_bias"]["lr"] == pytest.approx(5e-3) and groups["aspp_bias"]["weight_decay"] == 0
    assert {id(p) for p in groups["aspp_weight"]["params"]} == {id(c.weight) for c in model.aspp.branches}
    assert {id(p) for p in groups["aspp_bias"]["params"]} == {id(c.bias) for c in model.aspp.branches}
    # frozen BN: the optimiser sees exactly the conv weights (main.py get_params), each once
    listed = [id(p) for g in groups.values() for p in g["params"]]
    convs = [m.weight for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert len(listed) == len(set(listed)) == len(convs) + 8
    assert {id(p) for p in groups["backbone"]["params"]} == {id(p) for p in convs}
    unfrozen = tiny_model(freeze_bn=False)
    n_bn = sum(2 for m in unfrozen.modules() if isinstance(m, nn.BatchNorm2d))
    assert len(unfrozen.param_groups(1.0, 0.0)[0]["params"]) == len(convs) + n_bn


def test_msc_outputs_sizes_and_max_fusion():
    model = tiny_model()
    msc = dl.MSC(model, (0.5, 0.75)).train()
    x = torch.rand(2, 3, 64, 48) * 255
    outs = msc(x)
    assert [tuple(o.shape[-2:]) for o in outs] == [(9, 7), (5, 4), (7, 5), (9, 7)]  # full, 0.5, 0.75, max
    up = [F.interpolate(o, size=(9, 7), mode="bilinear", align_corners=False) for o in outs[1:3]]
    assert torch.equal(outs[3], torch.maximum(outs[0], torch.maximum(up[0], up[1])))
    assert (outs[3] > outs[0]).any()  # the scaled logits do contribute
    msc.eval()
    with torch.no_grad():
        assert torch.allclose(msc(x), outs[3].detach(), atol=1e-5)


def test_reference_shapes_at_crop_321():
    """main.py train at crop 321: logits 41 at scale 1, 21 at 0.5 (160 px), 31 at 0.75 (240 px), max 41."""
    msc = dl.MSC(tiny_model()).train()
    with torch.no_grad():
        outs = msc(torch.rand(1, 3, 321, 321) * 255)
    assert [o.shape[-1] for o in outs] == [41, 21, 31, 41]


def test_resize_labels_is_pil_nearest():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 21, (2, 321, 321)).astype(np.uint8)
    labels[:, :5] = 255
    for size in [(41, 41), (20, 20), (30, 30), (7, 11)]:
        ours = dl.resize_labels(torch.from_numpy(labels).long(), size).numpy()
        pil = np.stack([np.asarray(Image.fromarray(lab).resize(size[::-1], Image.NEAREST)) for lab in labels])
        assert np.array_equal(ours, pil), size


def test_msc_loss_sums_the_outputs_and_ignores_255():
    logits = [torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
    labels = torch.randint(0, 4, (2, 32, 32))
    labels[0, :16] = 255
    losses = dl.msc_loss(logits, labels, ["a", "b"])
    for name, lg in zip("ab", logits):
        want = F.cross_entropy(lg, dl.resize_labels(labels, lg.shape[-2:]), ignore_index=255)
        assert torch.allclose(losses[name], want)
    assert torch.allclose(losses["total"], losses["a"] + losses["b"])
    empty = dl.msc_loss(logits, torch.full((2, 32, 32), 255), ["a", "b"])
    assert float(empty["total"]) == 0.0  # not NaN


def test_the_recipes_come_from_the_configs():
    """config.yaml's deeplab.train is deeplab-pytorch's configs/voc12.yaml in one pass (batch 10 = 5 x 2);
    config/coco14.yaml changes only what the COCO recipe changes (LPCAM: 100k iterations, lr 2e-4)."""
    voc = paper_seg()
    assert (voc.iterations, voc.batch_size * voc.accumulate, voc.crop, voc.lr, voc.momentum, voc.weight_decay,
            voc.poly_power, voc.poly_every) == (20000, 10, 321, 2.5e-4, 0.9, 5e-4, 0.9, 10)
    assert voc.scales == (0.5, 0.75, 1.0, 1.25, 1.5) and voc.msc_scales == (0.5, 0.75)
    coco = dl.SegConfig.from_mapping(check_files([ROOT / "config" / "coco14.yaml"])["deeplab"]["train"])
    assert dataclasses.replace(voc, iterations=100000, lr=2e-4) == coco
    assert dl.SegConfig.from_mapping({**dataclasses.asdict(voc), "scales": [1, 2]}).scales == (1.0, 2.0)
    with pytest.raises(ValueError, match="unknown"):
        dl.SegConfig.from_mapping({**dataclasses.asdict(voc), "iters": 3})
    with pytest.raises(ValueError, match=r"\['lr'\] missing"):
        dl.SegConfig.from_mapping({k: v for k, v in dataclasses.asdict(voc).items() if k != "lr"})
    with pytest.raises(ValueError, match="accumulate"):
        dataclasses.replace(voc, accumulate=0)


# ------------------------------------------------------------------------------------------------ data


def test_augment_keeps_image_and_label_aligned_and_pads_with_mean_and_ignore():
    rng = np.random.default_rng(0)
    label = np.kron(rng.integers(0, 5, (5, 6)), np.ones((8, 8), dtype=np.int64)).astype(np.uint8)  # 40 x 48
    colours = rng.integers(0, 256, (5, 3)).astype(np.uint8)
    image = colours[label]
    flips = 0
    for k in range(12):
        img, lab = augment(image, label, np.random.default_rng(k), 24, (1.0,), True, (1.0, 2.0, 3.0))
        assert img.shape == (24, 24, 3) and img.dtype == np.float32 and lab.dtype == np.int64
        assert np.array_equal(img, colours[lab].astype(np.float32))
        flips += not any(np.array_equal(lab, label[y:y + 24, x:x + 24]) for y in range(17) for x in range(25))
    assert 0 < flips < 12  # some draws flipped, some did not
    # scale 0.5 -> 20 x 24, crop 32: padded bottom/right with the mean colour and 255
    img, lab = augment(image, label, np.random.default_rng(0), 32, (0.5,), False, (1.0, 2.0, 3.0))
    assert np.array_equal(lab[:20, :24], np.asarray(Image.fromarray(label).resize((24, 20), Image.NEAREST)))
    assert (lab[20:] == 255).all() and (lab[:, 24:] == 255).all()
    assert (img[20:] == [1.0, 2.0, 3.0]).all() and (img[:, 24:] == [1.0, 2.0, 3.0]).all()


def test_segdataset_draws_depend_on_seed_epoch_and_index_only(tiny_synthetic):
    ds = SegDataset(tiny_synthetic, "train", None, crop=32, seed=0)
    a = [ds[i] for i in range(4)]
    b = SegDataset(tiny_synthetic, "train", None, crop=32, seed=0)
    assert all(torch.equal(x["image"], b[i]["image"]) and torch.equal(x["label"], b[i]["label"])
               for i, x in enumerate(a))
    assert a[0]["image"].shape == (3, 32, 32) and a[0]["image"].dtype == torch.float32
    assert a[0]["label"].shape == (32, 32) and a[0]["label"].dtype == torch.int64
    ds.set_epoch(1)
    assert any(not torch.equal(x["image"], ds[i]["image"]) for i, x in enumerate(a))


def test_segdataset_reads_pseudo_labels_from_shards(tiny_synthetic, tmp_path):
    ids = tiny_synthetic.split_ids("train")
    for k, image_id in enumerate(ids):
        h, w = read_label_png(tiny_synthetic.mask_path(image_id)).shape
        write_label_png(tmp_path / f"shard{k % 2}" / f"{image_id}.png", np.full((h, w), 7, np.uint8))
    ds = SegDataset(tiny_synthetic, "train", [tmp_path / "shard0", tmp_path / "shard1"], crop=80, seed=0)
    assert all(set(ds[i]["label"].unique().tolist()) <= {7, 255} for i in range(len(ds)))
    assert any((ds[i]["label"] == 255).any() for i in range(len(ds)))  # the 80-pixel crop is padded
    with pytest.raises(FileNotFoundError, match="no pseudo-label"):
        SegDataset(tiny_synthetic, "train", [tmp_path / "shard0"], crop=32)


# ------------------------------------------------------------------------------------------------ training


class TinyNet(nn.Module):
    """A stride-8 stand-in for DeepLabV2 with the same interface (cheap schedule/bookkeeping tests)."""

    output_stride = 8

    def __init__(self, num_classes=3):
        super().__init__()
        self.num_classes = num_classes
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x):
        return self.conv(F.avg_pool2d(x / 255, 8, ceil_mode=True))

    def param_groups(self, lr, weight_decay):
        return [{"params": [self.conv.weight], "lr": lr, "weight_decay": weight_decay},
                {"params": [self.conv.bias], "lr": 20 * lr, "weight_decay": 0.0}]


class RecordingData(torch.utils.data.Dataset):
    def __init__(self, n=5, die_after=None):
        self.n, self.epoch, self.calls, self.die_after = n, 0, [], die_after

    def __len__(self):
        return self.n

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        self.calls.append((self.epoch, i))
        if self.die_after is not None and len(self.calls) > self.die_after:
            raise KeyboardInterrupt  # the "kill"
        g = torch.Generator().manual_seed(i)
        return {"image": torch.rand(3, 16, 16, generator=g) * 255, "label": torch.randint(0, 3, (16, 16), generator=g)}


def test_poly_every_10_and_accumulation_consume_the_data_in_seeded_epochs(tmp_path):
    cfg = paper_seg(iterations=25, batch_size=2, accumulate=3, lr=0.1, poly_every=10, checkpoint_every=100)
    data = RecordingData(5)
    history = dl.train_deeplab(TinyNet(), data, cfg, CPU, tmp_path / "m.pt")
    lrs = [h["lr"] for h in history]
    # libs/utils/lr_scheduler.py PolynomialLR(step_size=10) stepped after each iteration
    assert lrs[:10] == [0.1] * 10
    assert lrs[10:20] == pytest.approx([0.1 * (1 - 10 / 25) ** 0.9] * 10)
    assert lrs[20:] == pytest.approx([0.1 * (1 - 20 / 25) ** 0.9] * 5)
    # 25 iterations x 3 batches of <= 2 = 75 batches = 25 epochs of 3 batches: each epoch a permutation
    assert len(data.calls) == 125
    epochs = [[i for e, i in data.calls if e == k] for k in range(25)]
    assert all(sorted(e) == list(range(5)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled per epoch
    assert [h["iteration"] for h in history] == list(range(1, 26))
    assert set(history[0]) == {"iteration", "lr", "x1", "x0.5", "x0.75", "max", "total"}


class EpochData(RecordingData):
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(100 * self.epoch + i)  # like SegDataset: draws keyed by (epoch, index)
        return {"image": torch.rand(3, 16, 16, generator=g) * 255, "label": torch.randint(0, 3, (16, 16), generator=g)}


def test_worker_processes_see_the_epoch(tmp_path):
    weights = []
    for workers in (0, 1):
        cfg = paper_seg(iterations=6, batch_size=2, accumulate=1, lr=0.1, num_workers=workers)
        torch.manual_seed(0)
        model = TinyNet()
        dl.train_deeplab(model, EpochData(4), cfg, CPU, tmp_path / f"w{workers}.pt")
        weights.append(model.conv.weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], rtol=0, atol=1e-7)


def test_one_step_is_sgd_on_the_accumulated_msc_loss(tmp_path):
    """One iteration = mean over the 2 sub-batches of the loss summed over all 4 MSC outputs; bias lr 20x."""
    cfg = paper_seg(iterations=1, batch_size=2, accumulate=2, lr=0.1, momentum=0.0, weight_decay=0.0)
    torch.manual_seed(0)
    model, ref = TinyNet(), TinyNet()
    ref.load_state_dict(model.state_dict())
    data = RecordingData(4)
    dl.train_deeplab(model, data, cfg, CPU, tmp_path / "m.pt")
    order = np.random.default_rng([cfg.seed, 0]).permutation(4).tolist()  # epoch 0's seeded order
    msc = dl.MSC(ref).train()
    for sub in (order[:2], order[2:]):
        batch = torch.utils.data.default_collate([data[i] for i in sub])
        total = dl.msc_loss(msc(batch["image"]), batch["label"], ["a", "b", "c", "d"])["total"]
        (total / 2).backward()
    with torch.no_grad():
        assert torch.allclose(model.conv.weight, ref.conv.weight - 0.1 * ref.conv.weight.grad, atol=1e-6)
        assert torch.allclose(model.conv.bias, ref.conv.bias - 2.0 * ref.conv.bias.grad, atol=1e-6)


def test_resume_skips_done_batches_and_ignores_another_configuration(tmp_path):
    # 5 images in batches of 2: an epoch is 3 iterations (2 + 2 + 1 images); the run dies in iteration 6
    cfg = paper_seg(iterations=6, batch_size=2, accumulate=1, lr=0.1, checkpoint_every=2)
    for out in ("m.pt", "n.pt"):
        with pytest.raises(KeyboardInterrupt):
            dl.train_deeplab(TinyNet(), RecordingData(5, die_after=9), cfg, CPU, tmp_path / out)
        assert (tmp_path / f"{out}.resume").exists()
    data = RecordingData(5)
    history = dl.train_deeplab(TinyNet(), data, cfg, CPU, tmp_path / "m.pt")
    assert [h["iteration"] for h in history] == list(range(1, 7))
    assert [e for e, _ in data.calls] == [1, 1, 1]  # iterations 5 and 6 only: epoch 1's last two batches
    data = RecordingData(5)
    dl.train_deeplab(TinyNet(), data, dataclasses.replace(cfg, lr=0.05), CPU, tmp_path / "n.pt")
    assert len(data.calls) == 10  # started from iteration 0, not 4


def _train_cfg(**kw):
    base = {"iterations": 4, "batch_size": 2, "accumulate": 2, "crop": 32, "lr": 1e-3, "checkpoint_every": 2,
            "seed": 0}
    return paper_seg(**{**base, **kw})


def _data(manifest, cfg):
    return SegDataset(manifest, "train", None, crop=cfg.crop, scales=cfg.scales, hflip=cfg.hflip, seed=cfg.seed)


def test_training_lowers_the_loss_and_keeps_bn_frozen(tiny_synthetic, tmp_path):
    cfg = _train_cfg(iterations=8, scales=(1.0,), lr=1e-3)
    data = _data(tiny_synthetic, cfg)
    batch = torch.utils.data.default_collate([data[i] for i in range(6)])
    model = tiny_model()
    bn_before = {k: v.clone() for k, v in model.state_dict().items() if "bn" in k or "downsample.1" in k}
    msc = dl.MSC(model).train()
    with torch.no_grad():
        before = float(dl.msc_loss(msc(batch["image"]), batch["label"], ["a", "b", "c", "d"])["total"])
    history = dl.train_deeplab(model, data, cfg, CPU, tmp_path / "m.pt")
    with torch.no_grad():
        after = float(dl.msc_loss(msc(batch["image"]), batch["label"], ["a", "b", "c", "d"])["total"])
    assert after < 0.7 * before, (before, after, [h["total"] for h in history])
    state = model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in bn_before.items())  # running stats and affine untouched
    ckpt = torch.load(tmp_path / "m.pt", weights_only=False)
    assert set(ckpt) == {"model", "meta", "history"} and ckpt["meta"]["config"]["iterations"] == 8
    assert not (tmp_path / "m.pt.resume").exists()
    with pytest.raises(ValueError, match="crop"):
        dl.train_deeplab(tiny_model(), _data(tiny_synthetic, _train_cfg(crop=40)), cfg, CPU, tmp_path / "x.pt")


def test_killed_training_resumes_to_the_same_weights(tiny_synthetic, tmp_path):
    cfg = _train_cfg()
    dl.train_deeplab(tiny_model(), _data(tiny_synthetic, cfg), cfg, CPU, tmp_path / "full.pt")

    class Dying(SegDataset):
        count = 0

        def __getitem__(self, i):
            Dying.count += 1
            if Dying.count > 2 * cfg.batch_size * cfg.accumulate + 1:  # dies inside iteration 3
                raise KeyboardInterrupt
            return super().__getitem__(i)

    dying = Dying(tiny_synthetic, "train", None, crop=cfg.crop, scales=cfg.scales, hflip=cfg.hflip, seed=cfg.seed)
    with pytest.raises(KeyboardInterrupt):
        dl.train_deeplab(tiny_model(), dying, cfg, CPU, tmp_path / "resumed.pt")
    assert (tmp_path / "resumed.pt.resume").exists() and not (tmp_path / "resumed.pt").exists()
    history = dl.train_deeplab(tiny_model(seed=5), _data(tiny_synthetic, cfg), cfg, CPU, tmp_path / "resumed.pt")
    assert [h["iteration"] for h in history] == [1, 2, 3, 4]
    full = torch.load(tmp_path / "full.pt", weights_only=False)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=False)
    for k, v in full["model"].items():
        assert torch.allclose(v, resumed["model"][k], rtol=0, atol=1e-7), k
    assert [h["total"] for h in full["history"]] == pytest.approx([h["total"] for h in resumed["history"]])


# ------------------------------------------------------------------------------------------------ evaluation

GT = np.array([[0, 0, 0, 1, 1, 1],
               [0, 0, 0, 1, 1, 1],
               [0, 0, 2, 2, 255, 255],
               [0, 0, 2, 2, 255, 255]], np.uint8)
PRED = np.array([[0, 0, 1, 1, 1, 1],
                 [0, 0, 0, 1, 1, 1],
                 [0, 0, 2, 0, 0, 0],
                 [0, 2, 2, 2, 0, 0]], np.uint8)


def _manifest(tmp_path, images, masks, classes=VOC_CLASSES[:3]):
    root = tmp_path / "VOC"
    (root / "JPEGImages").mkdir(parents=True)
    for image_id, image in images.items():
        Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg", quality=100)
    for image_id, mask in masks.items():
        write_label_png(root / "SegmentationClass" / f"{image_id}.png", mask)
    write_split(root, "val", list(images))
    write_manifest(tmp_path / "dataset.json", "tiny", root, classes, "SegmentationClass", {"val": len(images)})
    return load_manifest(tmp_path / "dataset.json")


def _one_hot(pred, k=3, p=1.0):
    probs = np.full((k, *pred.shape), (1 - p) / (k - 1), np.float32)
    np.put_along_axis(probs, pred[None].astype(np.int64), p, axis=0)
    return probs


def test_evaluate_segmentation_hand_computed_miou(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path, {"a": np.zeros((4, 6, 3), np.uint8)}, {"a": GT})
    monkeypatch.setattr(matlabel.deeplab.infer, "predict", lambda *a, **k: _one_hot(PRED))
    res = dl.evaluate_segmentation(TinyNet(), manifest, ["a"], CPU)
    # IoU = TP / (GT + pred - TP), 255 pixels dropped: bg 8/(10+9-8), class 1 6/(6+7-6), class 2 3/(4+4-3)
    iou = [8 / 11, 6 / 7, 3 / 5]
    assert res["miou"] == round(100 * sum(iou) / 3, 2) == 72.81
    assert res["iou"] == {"background": 72.73, "aeroplane": 85.71, "bicycle": 60.0}
    assert res["n_images"] == 1 and res["crf"] is None


def test_evaluate_with_a_real_constant_model(tiny_synthetic):
    model = tiny_model()
    with torch.no_grad():
        for c in model.aspp.branches:
            c.weight.zero_()
            c.bias.zero_()
        model.aspp.branches[0].bias[0] = 5.0  # background everywhere, at every scale
    ids = tiny_synthetic.split_ids("val")
    res = dl.evaluate_segmentation(model, tiny_synthetic, ids, CPU)
    masks = [read_label_png(tiny_synthetic.mask_path(i)) for i in ids]
    bg = sum(int((m == 0).sum()) for m in masks) / sum(int((m != 255).sum()) for m in masks)
    fg = set().union(*[set(np.unique(m).tolist()) for m in masks]) - {0, 255}
    assert res["miou"] == round(100 * bg / (1 + len(fg)), 2)
    assert all(res["iou"][VOC_CLASSES[c]] == 0.0 for c in fg)


def test_predict_fuses_scales_and_returns_probabilities():
    model = tiny_model()
    image = np.random.default_rng(0).integers(0, 256, (37, 50, 3)).astype(np.uint8)
    probs = dl.predict(model, image, scales=(1.0, 0.5, 0.75), device=CPU)
    assert probs.shape == (21, 37, 50) and np.allclose(probs.sum(0), 1, atol=1e-5)
    single = dl.predict(model, image, scales=(1.0,), device=CPU)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        want = F.softmax(F.interpolate(model(x), size=(37, 50), mode="bilinear", align_corners=False), 1)[0]
    assert np.allclose(single, want.numpy(), atol=1e-5)
    assert not np.allclose(single, probs, atol=1e-4)  # the 0.5 and 0.75 scales change the result


def test_crf_cleans_noisy_predictions(tmp_path, monkeypatch):
    gt = np.zeros((24, 24), np.uint8)
    gt[:, 12:] = 1
    image = np.where(gt[..., None] == 1, 220, 30).astype(np.uint8).repeat(3, axis=2)
    manifest = _manifest(tmp_path, {"a": image}, {"a": gt}, VOC_CLASSES[:2])
    noisy = gt.copy()
    flip = np.random.default_rng(0).random(gt.shape) < 0.3
    noisy[flip] = 1 - noisy[flip]
    monkeypatch.setattr(matlabel.deeplab.infer, "predict", lambda *a, **k: _one_hot(noisy, k=2, p=0.6))
    plain = dl.evaluate_segmentation(TinyNet(2), manifest, ["a"], CPU)
    for labels in ("all", "predicted"):
        crf = dl.evaluate_segmentation(TinyNet(2), manifest, ["a"], CPU, crf_params=dl.DEEPLAB_CRF, crf_labels=labels)
        assert plain["miou"] < 60 and crf["miou"] > 95, (plain["miou"], crf["miou"])
    assert dl.DEEPLAB_CRF.bilateral_sxy == 67 and dl.DEEPLAB_CRF.bilateral_srgb == 3


def test_crf_workers_give_the_same_predictions_in_order(tiny_synthetic, tmp_path):
    """The evaluation CRFs in worker processes beside the model (segment_all, workers > 1) give exactly the
    predictions, files and score of the one-process run, in the ids' order."""
    model = tiny_model()
    ids = tiny_synthetic.split_ids("val")
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        out.mkdir()
        runs[workers] = dl.evaluate_segmentation(model, tiny_synthetic, ids, CPU, crf_params=dl.DEEPLAB_CRF,
                                                 save_dir=out, workers=workers)
        images = ((i, read_image(tiny_synthetic.image_path(i))) for i in ids)
        assert [i for i, _ in dl.segment_all(model, images, CPU, crf_params=dl.DEEPLAB_CRF, workers=workers)] == ids
    assert runs[1] == runs[2]
    for i in ids:
        np.testing.assert_array_equal(read_label_png(tmp_path / "w1" / f"{i}.png"),
                                      read_label_png(tmp_path / "w2" / f"{i}.png"))


def test_crf_workers_are_spawned_not_forked(tiny_synthetic, monkeypatch):
    """segment_all's CRF pool starts fresh interpreters (spawn or forkserver), never forks: the model may have started
    CUDA in this process, and a forked child inherits CUDA's state without being able to use it."""
    import concurrent.futures
    import multiprocessing

    import matlabel.deeplab.infer as infer

    methods = []

    class Recording(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            methods.append((kwargs.get("mp_context") or multiprocessing.get_context()).get_start_method())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(infer, "ProcessPoolExecutor", Recording)
    ids = tiny_synthetic.split_ids("val")[:2]
    images = [(i, read_image(tiny_synthetic.image_path(i))) for i in ids]
    model = tiny_model()
    pooled = list(dl.segment_all(model, images, CPU, crf_params=dl.DEEPLAB_CRF, workers=2))
    assert len(methods) == 1 and methods[0] in ("spawn", "forkserver"), methods
    plain = list(dl.segment_all(model, images, CPU, crf_params=dl.DEEPLAB_CRF, workers=1))
    assert [i for i, _ in pooled] == ids and all(np.array_equal(a, b) for (_, a), (_, b) in zip(pooled, plain))


def test_export_voc_test_writes_the_servers_layout(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = {"2008_000001": rng.integers(0, 256, (4, 6, 3)).astype(np.uint8),
              "2008_000002": rng.integers(0, 256, (4, 6, 3)).astype(np.uint8)}
    manifest = _manifest(tmp_path, images, {})
    monkeypatch.setattr(matlabel.deeplab.infer, "predict", lambda *a, **k: _one_hot(PRED))
    for name, mode in (("voc.tar", "r:"), ("voc.tgz", "r:gz")):
        members = dl.export_voc_test(TinyNet(), manifest, list(images), CPU, tmp_path / name)
        with tarfile.open(tmp_path / name, mode) as tar:
            names = tar.getnames()
            assert names == members == [f"results/VOC2012/Segmentation/comp6_test_cls/{i}.png" for i in images]
            png = Image.open(io.BytesIO(tar.extractfile(names[0]).read()))
            assert png.mode == "P" and np.array_equal(np.array(png), PRED)
            assert np.array_equal(np.array(png.getpalette()[:9]), voc_palette()[:3].flatten())


def test_export_with_a_real_model_has_the_image_size(tmp_path):
    manifest = _manifest(tmp_path, {"x": np.zeros((19, 27, 3), np.uint8)}, {})
    dl.export_voc_test(tiny_model(), manifest, ["x"], CPU, tmp_path / "r.tar", competition="comp5")
    with tarfile.open(tmp_path / "r.tar") as tar:
        (name,) = tar.getnames()
        assert name == "results/VOC2012/Segmentation/comp5_test_cls/x.png"
        assert np.array(Image.open(io.BytesIO(tar.extractfile(name).read()))).shape == (19, 27)
