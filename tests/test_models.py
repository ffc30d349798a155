import pytest

from matlabel.cam import CAMNet
from matlabel.d2cam import D2CAMNet
from matlabel.losses import VARIANTS
from matlabel.models import METHODS, TABLE4_METHODS, build, config_section
from matlabel.recam import ReCAMNet, recam_loss
from matlabel.train import multilabel_loss

BACKBONE = dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=False, train_from="stem")


def test_every_table4_variant_has_a_method_and_the_full_one_is_d2cam():
    assert set(TABLE4_METHODS) == {"cam", *VARIANTS}
    assert TABLE4_METHODS["d2_ma_oe"] == "d2cam"
    # every CAM/D2CAM method is a Table 4 row; the other methods (ReCAM) are comparisons outside Table 4
    assert set(TABLE4_METHODS.values()) == {m for m in METHODS if config_section(m) in ("cam", "d2cam")}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_build_gives_the_right_model_and_loss(method):
    loss = {"cam": None, "recam": {"ce_weight": 0.1}}.get(method, {"beta": 0.3})
    model, loss_fn = build(method, 20, BACKBONE, loss=loss)
    if method == "cam":
        assert isinstance(model, CAMNet) and loss_fn is multilabel_loss and config_section(method) == "cam"
    elif method == "recam":
        assert isinstance(model, ReCAMNet) and config_section(method) == "recam"
        assert loss_fn.func is recam_loss and loss_fn.keywords == {"ce_weight": 0.1}  # the config's weight
    else:
        variant = METHODS[method][1]
        assert isinstance(model, D2CAMNet) and config_section(method) == "d2cam"
        cfg = loss_fn.keywords["cfg"]
        assert cfg.beta == 0.3  # config overrides the weights ...
        assert (cfg.use_d2, cfg.area, cfg.use_oe) == (VARIANTS[variant].use_d2, VARIANTS[variant].area,
                                                      VARIANTS[variant].use_oe)  # ... not the variant's switches


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown method 'grad_cam'"):
        build("grad_cam", 20, BACKBONE)


def test_load_init_copies_the_trunk_and_classifier_of_a_cam_model_and_keeps_phi():
    import torch

    from matlabel.models import load_init

    cam, _ = build("cam", 6, BACKBONE, seed=1)
    d2, _ = build("d2cam", 6, BACKBONE, seed=2)
    phi_before = d2.generator.weight.detach().clone()
    fresh = load_init(d2, {"model": cam.state_dict()})
    assert fresh == ["generator.bias", "generator.weight"]
    for name, tensor in cam.state_dict().items():
        assert torch.equal(d2.state_dict()[name], tensor), name
    assert torch.equal(d2.generator.weight, phi_before)


def test_load_init_refuses_a_checkpoint_of_another_architecture():
    from matlabel.models import load_init

    other, _ = build("cam", 6, {**BACKBONE, "arch": "resnet34"})
    d2, _ = build("d2cam", 6, BACKBONE)
    with pytest.raises(ValueError, match="backbone"):
        load_init(d2, {"model": {k: v for k, v in other.state_dict().items() if "layer" in k}})


@pytest.mark.parametrize("train_n1", [True, False])
def test_d2cam_train_n1_decides_whether_n1_gets_a_gradient(train_n1):
    """d2cam.train_n1 (paper Sec. 4.2: only L_d2 is truncated, so N1 trains from L_cls, L_ma and L_oe) against IRN's
    frozen stage 1-2 (backbone.train_from layer3)."""
    import torch

    from matlabel.models import trunk_for_training

    backbone = trunk_for_training({**BACKBONE, "train_from": "layer3"}, train_n1)
    assert backbone["train_from"] == ("stem" if train_n1 else "layer3")
    from matlabel.config import paper_config

    model, loss_fn = build("d2cam", 20, backbone, loss=paper_config()["d2cam"]["loss"])
    labels = torch.zeros(2, 20)
    labels[0, 3] = labels[1, 7] = 1
    loss_fn(model, {"image": torch.randn(2, 3, 64, 64), "label": labels})["total"].backward()
    n1 = [p.grad for p in model.backbone.layer1.parameters()]
    assert all((g is not None and g.abs().sum() > 0) for g in n1) if train_n1 else all(g is None for g in n1)
    assert all(p.grad is not None for p in model.backbone.layer3.parameters())
    assert trunk_for_training(BACKBONE, None) == BACKBONE  # methods without the key keep backbone.train_from
