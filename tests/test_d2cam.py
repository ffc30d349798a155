"""The D2CAM network (paper Sec. 3.2.1, Eq. 2–4): shapes, the batched pair branch, gradient truncation,
BatchNorm handling of the masked pairs, export through ``multiscale_cams`` and a short training run."""
import numpy as np
import pytest
import torch

from matlabel.backbone import ResNetBackbone
from matlabel.cam import multiscale_cams
from matlabel.config import paper_config
from matlabel.d2cam import D2CAMNet, build
from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset
from matlabel.losses import D2CAMLossConfig, d2_loss, d2cam_loss, loss_for_variant
from matlabel.train import TrainConfig, train

BACKBONE = dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=False, train_from="stem")
PAPER = paper_config()["d2cam"]["loss"]  # the loss weights
FULL = D2CAMLossConfig(**PAPER)  # the full D2CAM


def tiny_net(**overrides) -> D2CAMNet:
    torch.manual_seed(0)
    return D2CAMNet(20, ResNetBackbone(**{**BACKBONE, **overrides}))


def labels_with(*classes_per_image) -> torch.Tensor:
    labels = torch.zeros(len(classes_per_image), 20)
    for i, classes in enumerate(classes_per_image):
        labels[i, list(classes)] = 1
    return labels


def test_backbone_forward_from_splits_the_trunk():
    net = ResNetBackbone(**BACKBONE).eval()
    x = torch.randn(1, 3, 64, 64)
    feat = net.forward_from(x, "stem", "layer2")
    torch.testing.assert_close(net.forward_from(feat, "layer3", "layer4"), net(x))
    with pytest.raises(ValueError, match="comes after"):
        net.forward_from(x, "layer3", "layer2")
    frozen = ResNetBackbone(**{**BACKBONE, "train_from": "layer3"})
    assert not frozen.forward_from(x, "stem", "layer2").requires_grad  # stages before train_from: no_grad


def test_shapes_of_maps_logits_and_pairs():
    net = tiny_net()
    labels = labels_with([3], [1, 7], [0, 4, 19])  # 1..3 classes: P = 6 pairs
    out = net.forward_d2(torch.randn(3, 3, 64, 64), labels)
    assert out.feat.shape == (3, 128, 8, 8)  # F at stride 8, C = 128 for ResNet-18
    assert out.m_fg.shape == out.m_bg.shape == (3, 20, 8, 8)
    assert 0 <= out.m_fg.min() and out.m_fg.max() <= 1
    torch.testing.assert_close(out.m_fg + out.m_bg, torch.ones_like(out.m_fg))
    assert out.logits.shape == (3, 20)
    assert out.y_fg.shape == out.y_bg.shape == (6, 20)
    assert out.pair_img.tolist() == [0, 1, 1, 2, 2, 2] and out.pair_cls.tolist() == [3, 1, 7, 0, 4, 19]


def test_pairs_run_through_n2_in_one_batched_call(monkeypatch):
    net = tiny_net()
    calls = []
    layer3_forward = type(net.backbone.layer3).forward

    def spy(self, x):
        if self is net.backbone.layer3:
            calls.append(x.shape[0])
        return layer3_forward(self, x)

    monkeypatch.setattr(type(net.backbone.layer3), "forward", spy)
    net.forward_d2(torch.randn(3, 3, 64, 64), labels_with([3], [1, 7], [0, 4, 19]))
    assert calls == [3, 12]  # the clean pass (B = 3), then fg + bg of the 6 pairs in one call


def test_batched_pairs_equal_n2_of_each_masked_feature_map():
    """Eq. 3–4 pair by pair, with N2 in eval mode (the pair branch uses BatchNorm running statistics)."""
    net = tiny_net().train()
    labels = labels_with([2, 5], [11])
    out = net.forward_d2(torch.randn(2, 3, 64, 64), labels)
    net.eval()
    with torch.no_grad():
        for p, (i, c) in enumerate(zip(out.pair_img.tolist(), out.pair_cls.tolist())):
            f, m = out.feat[i:i + 1], out.m_fg[i:i + 1, c:c + 1]
            torch.testing.assert_close(out.y_fg[p:p + 1], net.n2(f * m), rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(out.y_bg[p:p + 1], net.n2(f * (1 - m)), rtol=1e-4, atol=1e-5)


def test_l_d2_gradient_reaches_only_the_generator():
    """Paper Sec. 4.2: the gradients of N1 and N2 are truncated in L_d2 (N1 trains here: train_from=stem)."""
    net = tiny_net().train()
    labels = labels_with([3], [1, 7])
    out = net.forward_d2(torch.randn(2, 3, 64, 64), labels)
    d2_loss(out.y_fg, out.y_bg, out.pair_img, out.pair_cls, labels, PAPER["beta"]).backward()
    for name, p in [*net.backbone.named_parameters(), *net.classifier.named_parameters()]:
        assert p.grad is None or not p.grad.any(), name
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.generator.parameters())


def test_masked_pairs_leave_batchnorm_running_statistics_alone():
    """freeze_bn=False: the clean pass updates the running statistics, the masked pairs do not."""
    x, labels = torch.randn(2, 3, 64, 64), labels_with([3], [1, 7])
    reference, net = tiny_net().train(), tiny_net().train()
    reference(x)  # the clean pass only
    net.forward_d2(x, labels)
    ref_buffers = dict(reference.named_buffers())
    for name, buf in net.named_buffers():
        torch.testing.assert_close(buf, ref_buffers[name], msg=name)
    assert all(m.training for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))  # modes restored


def test_generator_gets_gradient_with_a_frozen_n1():
    """The paper's setting (train_from=layer3, frozen BN): F carries no gradient, φ still trains."""
    net = tiny_net(freeze_bn=True, train_from="layer3").train()
    losses = d2cam_loss(net, {"image": torch.randn(2, 3, 64, 64), "label": labels_with([3], [1, 7])}, FULL)
    losses["total"].backward()
    assert net.generator.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.backbone.layer2.parameters())
    pretrained, new = net.param_groups()
    assert {id(p) for p in new} == {id(p) for p in [*net.generator.parameters(), net.classifier.weight]}
    assert {id(p) for p in pretrained} == {id(p) for p in net.backbone.parameters() if p.requires_grad}


def test_batch_without_labels_gives_zero_d2():
    net = tiny_net()
    losses = d2cam_loss(net, {"image": torch.randn(2, 3, 64, 64), "label": torch.zeros(2, 20)}, FULL)
    assert losses["d2"].item() == 0 and losses["ma"].item() == 0 and losses["oe"].item() == 0
    losses["total"].backward()


def test_cam_is_the_stride_8_foreground_map_and_exports():
    net = tiny_net().eval()
    x = torch.randn(2, 3, 64, 48)
    maps = net.cam(x)
    assert maps.shape == (2, 20, 8, 6) and 0 <= maps.min() and maps.max() <= 1
    image = np.random.default_rng(0).integers(0, 255, (75, 101, 3), dtype=np.uint8)
    cams = multiscale_cams(net, image, [3, 15], scales=(1.0, 0.5, 1.5, 2.0), flip=True)
    assert cams.shape == (2, 75, 101) and cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() <= 1


def test_short_training_run_lowers_the_total_loss(tiny_synthetic, tmp_path):
    torch.manual_seed(0)
    model = build(20, BACKBONE)
    data = VOCLayoutDataset(tiny_synthetic, "train", transform=ClassifierAugment((40, 64), 48, True, seed=0))
    cfg = TrainConfig(epochs=4, batch_size=4, lr=0.01, head_lr_mult=1, momentum=0.9,
                      weight_decay=1e-4, poly_power=0.9, seed=0)
    history = train(model, data, cfg, torch.device("cpu"), tmp_path / "d2cam.pt", loss_for_variant("d2_ma_oe", PAPER))
    assert {"total", "cls", "d2", "ma", "oe"} <= set(history[0])
    assert history[-1]["total"] < history[0]["total"]


def test_generator_starts_unsaturated():
    """Every map starts near 0.5: a saturated sigmoid would give φ no gradient (seen with the default init)."""
    import torch

    from matlabel.backbone import ResNetBackbone
    from matlabel.d2cam import D2CAMNet

    torch.manual_seed(0)
    net = D2CAMNet(20, ResNetBackbone("resnet18", weights="none", freeze_bn=False, train_from="stem")).eval()
    x = torch.randn(2, 3, 64, 64) * 3
    m = net.cam(x)
    assert 0.3 < m.min() and m.max() < 0.7  # PyTorch's default init gives 0.001 .. 0.9998 here
    net.generator.reset_parameters()
    saturated = net.cam(x)
    assert saturated.min() < 0.01 and saturated.max() > 0.99
