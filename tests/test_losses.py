"""The D2CAM losses (paper Eq. 5–8) on hand-computed tiny cases, and the Table 4 variant switches."""
import math

import pytest
import torch

from matlabel.backbone import ResNetBackbone
from matlabel.config import paper_config
from matlabel.d2cam import D2CAMNet
from matlabel.losses import (VARIANTS, WEIGHTS, D2CAMLossConfig, area_loss, area_per_image, cls_loss, d2_loss,
                             d2cam_loss, loss_for_variant, ma_loss, oe_loss)

LN2, LN3, LN5 = math.log(2), math.log(3), math.log(5)
PAPER = paper_config()["d2cam"]["loss"]  # the weights' one owner


def test_cls_loss_hand_case():
    # soft margin: mean over classes of log(1 + e^{-2}) (positive, logit 2) and log(1 + e^{-1}) (negative, logit -1)
    loss = cls_loss(torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx((0.1269280110 + 0.3132616875) / 2, abs=1e-6)  # 0.2200948


def d2_case():
    """Three images, N = 3; image 0 holds classes 0 and 2, image 1 class 1, image 2 no label."""
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0]])
    pair_img, pair_cls = labels.nonzero(as_tuple=True)  # (0,0), (0,2), (1,1)
    y_fg = torch.tensor([[0.0, 0, 0], [0, 0, LN2], [0, 20, 0]])
    y_bg = torch.tensor([[0.0, LN2, LN2], [0, 0, 0], [0, -20, 0]])
    return y_fg, y_bg, pair_img, pair_cls, labels


def test_d2_loss_hand_case():
    # pair (0,0): SCE_fg = ln 3 (uniform), SCE_bg = -log(1/(1+2+2)) = ln 5 -> 1 - 0.1 ln 5 + ln 3 = 1.9376685
    # pair (0,2): SCE_fg = -log(2/4) = ln 2, SCE_bg = ln 3            -> 1 - 0.1 ln 3 + ln 2 = 1.5832860
    # pair (1,1): SCE_fg ≈ 4e-9, SCE_bg ≈ 20 + ln 2                  -> ReLU(1 - 2.069 + 0) = 0
    # per image then over the two labelled images: ((1.9376685 + 1.5832860) / 2 + 0) / 2 = 0.8802386
    a = 1 - 0.1 * LN5 + LN3
    b = 1 - 0.1 * LN3 + LN2
    loss = d2_loss(*d2_case(), beta=0.1)
    assert loss.item() == pytest.approx(((a + b) / 2 + 0) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.8802386, abs=1e-6)


def test_d2_loss_beta_weights_the_background_term():
    y_fg, y_bg, pair_img, pair_cls, labels = d2_case()
    # beta = 0: pair (1,1) becomes 1 + ~0 = 1; image 0: (1 + ln 3 + 1 + ln 2) / 2
    loss = d2_loss(y_fg, y_bg, pair_img, pair_cls, labels, beta=0.0)
    assert loss.item() == pytest.approx(((2 + LN3 + LN2) / 2 + 1) / 2, abs=1e-6)


def map_case():
    """m_fg (2 images, 3 classes, 2×2); image 0 holds classes 0, 1; image 1 class 0; class 2 is absent."""
    m = torch.zeros(2, 3, 2, 2)
    m[0, 0] = torch.tensor([[1.0, 0.0], [0.5, 0.5]])  # mean 0.5
    m[0, 1] = torch.tensor([[0.5, 0.0], [0.7, 0.2]])  # mean 0.35
    m[0, 2] = 1.0  # absent class: must be ignored by every loss
    m[1, 0] = 0.1  # mean 0.1
    m[1, 2] = 1.0
    labels = torch.tensor([[1.0, 1, 0], [1, 0, 0]])
    return m, labels


def test_area_loss_is_the_mean_area_ratio_of_present_classes():
    m, labels = map_case()
    # image 0: (0.5 + 0.35) / 2 = 0.425; image 1: 0.1; batch mean 0.2625
    torch.testing.assert_close(area_per_image(m, labels), torch.tensor([0.425, 0.1]))
    assert area_loss(m, labels).item() == pytest.approx(0.2625, abs=1e-6)


def test_ma_loss_applies_the_margin_per_image():
    m, labels = map_case()
    # image 0: ReLU(0.425 - 0.2) + 0.05 * 0.425 = 0.24625; image 1: ReLU(0.1 - 0.2) + 0.05 * 0.1 = 0.005
    assert ma_loss(m, labels, margin=0.2, lam=0.05).item() == pytest.approx((0.24625 + 0.005) / 2, abs=1e-6)


def test_oe_loss_penalises_overlap_of_present_classes_only():
    m, labels = map_case()
    # image 0: M^0 + M^1 = [[1.5, 0], [1.2, 0.7]] -> ReLU(. - 1) = [[0.5, 0], [0.2, 0]], pixel mean 0.175
    # image 1: one class in [0, 1] -> 0. Batch mean 0.0875 (class 2, all ones, is not counted)
    assert oe_loss(m, labels).item() == pytest.approx(0.0875, abs=1e-6)


def test_losses_are_fp32_from_bf16_inputs():
    m, labels = map_case()
    y_fg, y_bg, pair_img, pair_cls, pair_labels = d2_case()
    d2 = d2_loss(y_fg.bfloat16(), y_bg.bfloat16(), pair_img, pair_cls, pair_labels, PAPER["beta"])
    ma = ma_loss(m.bfloat16(), labels, PAPER["margin"], PAPER["lam"])
    for loss in (area_loss(m.bfloat16(), labels), ma, oe_loss(m.bfloat16(), labels), d2):
        assert loss.dtype == torch.float32


def test_unknown_area_mode_is_rejected():
    with pytest.raises(ValueError, match="area must be one of"):
        D2CAMLossConfig(area="big")
    with pytest.raises(ValueError, match="unknown D2CAM variant"):
        loss_for_variant("cam", PAPER)


@pytest.fixture(scope="module")
def tiny_batch():
    torch.manual_seed(0)
    net = D2CAMNet(20, ResNetBackbone("resnet18", weights="none", freeze_bn=False, train_from="stem"))
    labels = torch.zeros(3, 20)
    labels[0, 3] = labels[1, [1, 7]] = labels[2, [0, 4, 19]] = 1
    return net, {"image": torch.randn(3, 3, 64, 64), "label": labels}


# variant -> (the terms it must report, with their weights in the total)
EXPECTED = {
    "d2": {"d2": PAPER["gamma_d2"]},
    "d2_area": {"d2": PAPER["gamma_d2"], "area": PAPER["gamma_ma"]},
    "d2_ma": {"d2": PAPER["gamma_d2"], "ma": PAPER["gamma_ma"]},
    "d2_ma_oe": {"d2": PAPER["gamma_d2"], "ma": PAPER["gamma_ma"], "oe": PAPER["gamma_oe"]},
}


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_variant_switches_exactly_its_terms(variant, tiny_batch):
    net, batch = tiny_batch
    losses = loss_for_variant(variant, PAPER)(net, batch)
    assert set(losses) == {"total", "cls", *EXPECTED[variant]}
    assert all(v.dtype == torch.float32 and v.ndim == 0 for v in losses.values())
    assert all(losses[k].item() > 0 for k in EXPECTED[variant] if k != "oe")  # oe may be 0 on random maps
    expected = losses["cls"] + sum(w * losses[k] for k, w in EXPECTED[variant].items())
    torch.testing.assert_close(losses["total"], expected)


def test_variants_cover_table4_and_full_is_the_default(tiny_batch):
    assert set(VARIANTS) == set(EXPECTED)
    assert VARIANTS["d2_ma_oe"] == D2CAMLossConfig()
    assert set(PAPER) == set(WEIGHTS)  # config.yaml gives every weight ...
    assert all(getattr(cfg, w) is None for cfg in VARIANTS.values() for w in WEIGHTS)  # ... and no variant one
    with pytest.raises(ValueError, match=r"D2CAM loss weights \['beta', .*'gamma_oe'\] not given"):
        d2cam_loss(*tiny_batch, VARIANTS["d2_ma_oe"])


def test_without_d2_the_pair_branch_does_not_run(tiny_batch, monkeypatch):
    net, batch = tiny_batch
    monkeypatch.setattr(D2CAMNet, "decoupled_logits", lambda *a, **k: pytest.fail("pair branch ran"))
    losses = d2cam_loss(net, batch, D2CAMLossConfig(use_d2=False, **PAPER))
    assert set(losses) == {"total", "cls", "ma", "oe"}
