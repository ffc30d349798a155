"""The speed flags of the training loop (config ``speed:``, matlabel.train.Speed) on CPU: how they resolve, that the
defaults leave CPU training as it was, that each flag forced on trains to the eager weights (compiled, fused SGD,
channels_last), that checkpoints of a compiled run are the plain module's, and that the loop reads the loss terms
back from the device at checkpoints only, with the values it recorded when it read every term per step."""
import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import matlabel.deeplab as dl
from helpers import paper_seg
from matlabel.train import Plan, Speed, TrainConfig, fit, multilabel_loss, train

ROOT = Path(__file__).resolve().parents[1]
PARSE_ARGS = argparse.ArgumentParser.parse_args

CPU = torch.device("cpu")
OFF, ON = Speed(), Speed(True, True, True)
pytestmark = pytest.mark.usefixtures("one_thread")  # the machine is shared (conftest.py)


# ------------------------------------------------------------------------------------------------ the flags


def test_auto_is_on_for_cuda_and_off_for_cpu_and_true_false_force_it():
    assert Speed.resolve(None, CPU) == Speed.resolve({}, CPU) == OFF
    assert Speed.resolve({"compile": "auto"}, torch.device("cuda")) == ON  # no CUDA needed to resolve
    assert Speed.resolve(None, "cuda:1") == ON
    forced = {"compile": True, "fused_optimizer": False, "channels_last": "true"}
    assert Speed.resolve(forced, CPU) == Speed.resolve(forced, torch.device("cuda")) == Speed(True, False, True)
    assert Speed.resolve(Speed(fused_optimizer=True), torch.device("cuda")) == Speed(fused_optimizer=True)
    with pytest.raises(ValueError, match=r"unknown speed flags \['fast'\]"):
        Speed.resolve({"fast": True}, CPU)
    with pytest.raises(ValueError, match="speed.compile must be auto, true or false, got 'yes'"):
        Speed.resolve({"compile": "yes"}, CPU)
    assert OFF.optimizer([{"params": [nn.Parameter(torch.ones(2))]}], 0.1, 0.9).defaults["fused"] is None
    assert ON.optimizer([{"params": [nn.Parameter(torch.ones(2))]}], 0.1, 0.9).defaults["fused"] is True


def _bench_arguments(name: str, monkeypatch) -> argparse.Namespace:
    """The arguments bench/<name>.py runs with when given none: its parser's result, captured as it parses (the
    bench stops there)."""
    import importlib.util

    class Parsed(Exception):
        pass

    parsed = []

    def capture(self, args=None, namespace=None):
        parsed.append(PARSE_ARGS(self, args, namespace))
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(sys, "argv", [f"{name}.py"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # a bench puts its folders first
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(Parsed):
        spec.loader.exec_module(module)  # a bench that parses its arguments on import
        module.main([])  # ... or in main
    return parsed[0]


def test_the_benches_run_by_default_with_the_speed_flags_the_rules_read_from_config_yaml(monkeypatch):
    """``--speed-flags rules`` (the benches' default) is config.yaml's ``speed:`` as the training rules resolve it:
    compile stays off on CUDA while config.yaml says ``compile: false``, where ``auto`` turns every flag on."""
    import yaml

    rules = yaml.safe_load((ROOT / "config.yaml").read_text())["speed"]
    cuda = torch.device("cuda")
    assert Speed.parse("rules", cuda, rules) == Speed.resolve(rules, cuda)
    assert Speed.parse("rules", cuda, {"compile": False}) == Speed(False, True, True) != Speed.parse("auto", cuda)
    assert Speed.parse("rules", CPU, rules) == OFF and Speed.parse("rules", cuda, None) == ON  # no speed: all auto
    for bench in ("voc_scale", "cuda_determinism"):
        assert _bench_arguments(bench, monkeypatch).speed_flags == "rules", bench


# ------------------------------------------------------------------------------------------------ tiny trainings


class TinySeg(nn.Module):
    """A stride-8 stand-in for DeepLabV2 (its interface) with a hidden layer, so the compiled graph has work."""

    output_stride = 8

    def __init__(self, num_classes=3):
        super().__init__()
        self.num_classes = num_classes
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.hidden = nn.Conv2d(3, 8, 3, padding=1)
            self.conv = nn.Conv2d(8, num_classes, 1)

    def forward(self, x):
        return self.conv(F.relu(self.hidden(F.avg_pool2d(x / 255, 8, ceil_mode=True))))

    def param_groups(self, lr, weight_decay):
        return [{"params": [self.hidden.weight, self.conv.weight], "lr": lr, "weight_decay": weight_decay},
                {"params": [self.hidden.bias, self.conv.bias], "lr": 20 * lr, "weight_decay": 0.0}]


class SegData(torch.utils.data.Dataset):
    """Crops whose draws depend on (epoch, index) only, as SegDataset's; ``die_after`` items: the "kill"."""

    def __init__(self, n=4, die_after=None):
        self.n, self.epoch, self.calls, self.die_after = n, 0, 0, die_after

    def __len__(self):
        return self.n

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        self.calls += 1
        if self.die_after is not None and self.calls > self.die_after:
            raise KeyboardInterrupt
        g = torch.Generator().manual_seed(100 * self.epoch + i)
        label = torch.randint(0, 3, (32, 32), generator=g)
        image = torch.rand(3, 32, 32, generator=g) * 60 + 60 * label[None].float()  # learnable
        return {"image": image, "label": label}


SEG = paper_seg(iterations=6, batch_size=2, accumulate=2, crop=32, lr=0.05, momentum=0.9, checkpoint_every=3)


def train_seg(tmp_path, name, speed, cfg=SEG, data=None):
    model = TinySeg()
    history = dl.train_deeplab(model, data or SegData(), cfg, CPU, tmp_path / f"{name}.pt", speed=speed)
    return model.state_dict(), history


class TinyClassifier(nn.Module):
    """A classifier-type model (``param_groups()`` gives (pretrained, new)) on 3 x 32 x 32 images."""

    def __init__(self, num_classes=4):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                       nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
            self.classifier = nn.Conv2d(8, num_classes, 1, bias=False)

    def forward(self, x):
        return self.classifier(self.trunk(x).mean((2, 3), keepdim=True)).flatten(1)

    def param_groups(self):
        return list(self.trunk.parameters()), list(self.classifier.parameters())


class ClsData(SegData):
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(100 * self.epoch + i)
        label = (torch.arange(4) == i % 4).float()
        return {"image": torch.randn(3, 32, 32, generator=g) + label.argmax(), "label": label}


CLS = TrainConfig(epochs=3, batch_size=4, lr=0.05, head_lr_mult=10, momentum=0.9,
                  weight_decay=1e-4, poly_power=0.9, seed=0)


def train_cls(tmp_path, name, speed):
    model = TinyClassifier()
    history = train(model, ClsData(8), CLS, CPU, tmp_path / f"{name}.pt", multilabel_loss, speed=speed)
    return model.state_dict(), history


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize("run", [train_seg, train_cls], ids=["deeplab", "classifier"])
def test_defaults_on_cpu_are_the_plain_loop_bit_for_bit(tmp_path, run):
    default_w, default_h = run(tmp_path, "default", None)
    plain_w, plain_h = run(tmp_path, "plain", {"compile": False, "fused_optimizer": False, "channels_last": False})
    assert all(torch.equal(default_w[k], plain_w[k]) for k in plain_w)
    assert default_h == plain_h


@pytest.mark.parametrize("run", [train_seg, train_cls], ids=["deeplab", "classifier"])
def test_fused_sgd_gives_the_weights_of_the_for_each_sgd(tmp_path, run):
    eager_w, eager_h = run(tmp_path, "eager", OFF)
    fused_w, fused_h = run(tmp_path, "fused", Speed(fused_optimizer=True))
    assert max_diff(eager_w, fused_w) <= 1e-6
    assert [h["total"] for h in fused_h] == pytest.approx([h["total"] for h in eager_h], rel=1e-6)


@pytest.mark.parametrize("run", [train_seg, train_cls], ids=["deeplab", "classifier"])
def test_channels_last_on_cpu_trains_to_the_eager_weights(tmp_path, run):
    eager_w, _ = run(tmp_path, "eager", OFF)
    cl_w, _ = run(tmp_path, "cl", Speed(channels_last=True))
    assert max_diff(eager_w, cl_w) <= 1e-5


@pytest.mark.slow  # the first torch.compile of a process: ~25 s on 2 cores without inductor's cache, then seconds
@pytest.mark.parametrize("run", [train_seg, train_cls], ids=["deeplab", "classifier"])
def test_compiled_training_on_cpu_ends_near_eager_and_saves_the_plain_modules_weights(tmp_path, run):
    torch._dynamo.reset()
    eager_w, eager_h = run(tmp_path, "eager", OFF)
    compiled_w, compiled_h = run(tmp_path, "compiled", ON)  # compile + fused SGD + channels_last on CPU
    assert max_diff(eager_w, compiled_w) <= 1e-4
    assert [h["total"] for h in compiled_h] == pytest.approx([h["total"] for h in eager_h], rel=1e-4)
    ckpt = torch.load(tmp_path / "compiled.pt", weights_only=False)
    assert not any("_orig_mod" in k for k in ckpt["model"])
    plain = TinySeg() if run is train_seg else TinyClassifier()
    plain.load_state_dict(ckpt["model"])  # strict: a compiled run's checkpoint is a plain model's
    assert all(torch.equal(plain.state_dict()[k], compiled_w[k]) for k in compiled_w)


@pytest.mark.slow
def test_a_compiled_run_resumes_from_its_checkpoint(tmp_path):
    torch._dynamo.reset()
    full_w, full_h = train_seg(tmp_path, "full", ON)
    with pytest.raises(KeyboardInterrupt):  # dies in iteration 5, after the checkpoint of iteration 3
        train_seg(tmp_path, "resumed", ON, data=SegData(die_after=4 * SEG.batch_size * SEG.accumulate + 1))
    resume = torch.load(tmp_path / "resumed.pt.resume", weights_only=False)
    TinySeg().load_state_dict(resume["model"])
    resumed_w, resumed_h = train_seg(tmp_path, "resumed", ON)
    assert [h["iteration"] for h in resumed_h] == list(range(1, 7))
    assert max_diff(full_w, resumed_w) <= 1e-6
    assert [h["total"] for h in resumed_h] == pytest.approx([h["total"] for h in full_h], rel=1e-6)


# ------------------------------------------------------------------------------------------------ no host syncs


READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__float__, torch.Tensor.__format__,
         torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.__bool__}


class Counted(torch.Tensor):
    """A tensor that counts how often its values are read back to Python."""

    reads = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in READS:
            Counted.reads += 1
        return super().__torch_function__(func, types, args, kwargs or {})


def test_the_loop_reads_the_losses_at_checkpoints_only_with_the_values_of_python_float_sums(tmp_path):
    """float32 terms whose float32 sum differs from their float64 sum: the history holds, per unit, the sum of the
    terms read as Python floats divided by the unit's steps (what the loop recorded when it read every step)."""
    rng = np.random.default_rng(0)
    terms = rng.uniform(0, 3, (4, 5, 2)).astype(np.float32) * np.float32([1, 1e-3])  # units x steps x terms
    terms[:, 0, 0] = 1e7  # float32 rounds 1e7 + x to a multiple of 1
    model = nn.Linear(1, 1)
    it = iter(terms.reshape(-1, 2))

    def step(_):
        t = next(it)
        (model.weight * 0).sum().backward()
        return {"total": torch.tensor(t[0]).as_subclass(Counted), "aux": torch.tensor(t[1]).as_subclass(Counted)}

    plan = Plan("epoch", 4, 5, lambda start: ([None] * 5 for _ in range(start, 4)), step, checkpoint_every=2)
    cfg = dataclasses.replace(CLS, epochs=4)
    Counted.reads = 0
    history = fit(model, lambda: [{"params": list(model.parameters()), "lr": 0.1}], cfg, plan, CPU, tmp_path / "m.pt")
    assert Counted.reads == 2  # one transfer at each of the 2 checkpoints, none per step
    for unit, h in zip(terms, history):
        assert h["total"] == sum(float(v) for v in unit[:, 0]) / 5
        assert h["aux"] == sum(float(v) for v in unit[:, 1]) / 5
    assert history[0]["total"] != float(np.float32(terms[0, :, 0]).sum(dtype=np.float32)) / 5  # the test can see it


def test_deeplab_step_sums_the_terms_of_its_sub_batches_as_floats():
    msc = dl.MSC(TinySeg()).train()
    names = ["x1", "x0.5", "x0.75", "max"]
    batches = [torch.utils.data.default_collate([SegData()[i] for i in pair]) for pair in ((0, 1), (2, 3))]
    sums = dl.deeplab_step(msc, names, 2, CPU, OFF)(iter(batches))
    want = dict.fromkeys([*names, "total"], 0.0)
    for batch in batches:
        with torch.no_grad():
            for k, v in dl.msc_loss(msc(batch["image"]), batch["label"], names).items():
                want[k] += float(v) / 2
    assert list(sums) == list(want) and {k: float(v) for k, v in sums.items()} == want
    assert all(v.dtype == torch.float64 for v in sums.values())


@pytest.mark.slow  # compiles a ResNet-18 D2CAM forward + backward on CPU
def test_compiled_d2cam_on_cpu_ends_near_eager(tiny_synthetic, tmp_path):
    """The real classifier path: D2CAM's pair branch (a graph break at labels.nonzero(), a number of labels that
    varies per batch: automatic dynamic shapes), the epoch's smaller last batch (12 images in batches of 5). The
    losses are compared, not the weights: this tiny training (BatchNorm trained on 5 crops of 48 px) is chaotic in its
    weights, a change of rounding alone (channels_last) moves D2CAM's generator weights by 88% of their size."""
    from matlabel.config import paper_config
    from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset
    from matlabel.models import build

    backbone = dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=False, train_from="stem")
    cfg = TrainConfig(epochs=2, batch_size=5, lr=0.01, head_lr_mult=1, momentum=0.9,
                      weight_decay=1e-4, poly_power=0.9, seed=0)
    runs = {}
    for name, speed in (("eager", OFF), ("compiled", Speed(compile=True))):
        model, loss_fn = build("d2cam", 20, backbone, seed=0, loss=paper_config()["d2cam"]["loss"])
        data = VOCLayoutDataset(tiny_synthetic, "train", transform=ClassifierAugment((40, 64), 48, True, seed=0))
        runs[name] = model.state_dict(), train(model, data, cfg, CPU, tmp_path / f"{name}.pt", loss_fn, speed=speed)
    (eager_w, eager_h), (compiled_w, compiled_h) = runs["eager"], runs["compiled"]
    assert len(compiled_h) == len(eager_h) == 2
    for e, c in zip(eager_h, compiled_h):  # measured: the total within 2e-4, the small L_ma term within 0.3%
        assert c.keys() == e.keys() and [c[k] for k in e] == pytest.approx([e[k] for k in e], rel=1e-2, abs=1e-5)
    assert compiled_w.keys() == eager_w.keys() and all(torch.isfinite(v).all() for v in compiled_w.values())
