import pytest

from matlabel.cam import CAMNet
from matlabel.d2cam import D2CAMNet
from matlabel.losses import VARIANTS
from matlabel.models import METHODS, TABLE4_METHODS, build, config_section
from matlabel.train import multilabel_loss

BACKBONE = dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=False, train_from="stem")


def test_every_table4_variant_has_a_method_and_the_full_one_is_d2cam():
    assert set(TABLE4_METHODS) == {"cam", *VARIANTS}
    assert TABLE4_METHODS["d2_ma_oe"] == "d2cam"
    assert set(TABLE4_METHODS.values()) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_build_gives_the_right_model_and_loss(method):
    model, loss_fn = build(method, 20, BACKBONE, loss={"beta": 0.3} if method != "cam" else None)
    if method == "cam":
        assert isinstance(model, CAMNet) and loss_fn is multilabel_loss and config_section(method) == "cam"
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
