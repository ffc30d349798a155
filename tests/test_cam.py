import numpy as np
import pytest
import torch

from matlabel.backbone import ResNetBackbone
from matlabel.cam import CAMNet, cams_to_labels, labels_at_thresholds, multiscale_cams, normalize


@pytest.fixture(scope="module")
def tiny_net():
    torch.manual_seed(0)
    return CAMNet(20, ResNetBackbone("resnet18", weights="none", output_stride=16, freeze_bn=False,
                                     train_from="stem")).eval()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_backbone_output_stride_16_without_dilation(arch):
    net = ResNetBackbone(arch, weights="none", output_stride=16)
    x = torch.zeros(1, 3, 96, 128)
    assert net(x).shape[-2:] == (6, 8)            # 96/16, 128/16
    assert net(x, upto="layer2").shape[-2:] == (12, 16)  # stride 8: the paper's D2CAM feature map F
    assert all(m.dilation == (1, 1) for m in net.layer4.modules() if isinstance(m, torch.nn.Conv2d))


def test_frozen_stages_and_batchnorm_follow_irn():
    net = ResNetBackbone("resnet50", weights="none", output_stride=16, freeze_bn=True, train_from="layer3")
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.layer2.parameters())
    assert all(p.requires_grad for p in net.layer3.parameters())
    assert all(not m.training for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_cam_is_relu_of_classifier_on_features(tiny_net):
    x = torch.randn(2, 3, 64, 64)
    cams = tiny_net.cam(x)
    assert cams.shape == (2, 20, 4, 4) and (cams >= 0).all()
    # logits = classifier(mean of features) = mean over the map of the pre-ReLU CAM
    pre = tiny_net.classifier(tiny_net.backbone(x))
    torch.testing.assert_close(tiny_net(x), pre.mean((2, 3)), rtol=1e-4, atol=1e-5)


def test_multiscale_export_shapes_and_normalisation(tiny_net):
    image = np.random.default_rng(0).integers(0, 255, (75, 101, 3), dtype=np.uint8)
    cams = multiscale_cams(tiny_net, image, [3, 15], scales=(1.0, 0.5, 1.5, 2.0), flip=True)
    assert cams.shape == (2, 75, 101) and cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() <= 1
    np.testing.assert_allclose(cams.reshape(2, -1).max(1), 1.0, atol=1e-3)


def test_flip_averaging_is_symmetric_for_a_symmetric_image(tiny_net):
    half = np.random.default_rng(1).integers(0, 255, (64, 32, 3), dtype=np.uint8)
    image = np.concatenate([half, half[:, ::-1]], 1)
    cams = multiscale_cams(tiny_net, image, [1], scales=(1.0,), flip=True)
    np.testing.assert_allclose(cams[0], cams[0][:, ::-1], atol=1e-4)


def test_cams_to_labels_hand_case():
    cams = np.array([[[0.9, 0.1], [0.3, 0.0]], [[0.2, 0.05], [0.6, 0.0]]], dtype=np.float32)
    labels = cams_to_labels(cams, [8, 15], bg_threshold=0.15)
    # pixel (0,0): class 8 (0.9); (0,1): background (0.15 > 0.1); (1,0): class 15 (0.6); (1,1): background
    assert labels.tolist() == [[8, 0], [15, 0]]


def test_normalize_uses_imagenet_statistics():
    x = normalize(np.full((2, 2, 3), 255, dtype=np.uint8))
    assert x.shape == (3, 2, 2)
    assert x[0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229)


def test_thresholds_share_one_argmax_and_match_the_background_plane_rule():
    rng = np.random.default_rng(0)
    cams = rng.random((3, 20, 30)).astype(np.float32)
    cams[:, 0, 0] = 0.15  # a tie with the background plane goes to the background
    thresholds = [0.0, 0.15, 0.5, 0.99]
    fast = labels_at_thresholds(cams, [2, 7, 15], thresholds)
    for t, labels in zip(thresholds, fast):
        keys = np.array([0, 2, 7, 15])
        plane = np.concatenate([np.full((1, 20, 30), t, np.float32), cams])
        np.testing.assert_array_equal(labels, keys[plane.argmax(0)])
    assert fast[1][0, 0] == 0
    assert labels_at_thresholds(np.zeros((0, 4, 5), np.float32), [], [0.1])[0].shape == (4, 5)


class _RingModel(torch.nn.Module):
    """cam(x): class 0 lit (0.8) on the outer ring of an 8x8 grid, class 1 lit (0.5) in the interior only."""

    def cam(self, x):
        maps = torch.zeros(x.shape[0], 2, 8, 8)
        maps[:, 0] = 0.8
        maps[:, 0, 1:-1, 1:-1] = 0.0
        maps[:, 1, 1:-1, 1:-1] = 0.5
        return maps


def test_border_response_by_hand():
    from matlabel.cam import border_response
    out = border_response(_RingModel(), (64, 64))
    assert set(out) == {"black", "mean"}
    # max-normalised: class 0 border 1, interior 0 -> +1; class 1 border 0, interior 1 -> -1; mean 0
    for r in out.values():
        assert r["excess"] == pytest.approx(0.0, abs=1e-4)
        assert r["raw_border"] == pytest.approx(0.8) and r["raw_interior"] == pytest.approx(0.5)
        assert r["worst"] == {"class": 1, "excess": pytest.approx(1.0, abs=1e-4)}
    class OnlyRing(_RingModel):
        def cam(self, x):
            return super().cam(x)[:, :1]
    only = border_response(OnlyRing())["black"]
    assert only["excess"] == pytest.approx(1.0, abs=1e-4) and only["worst"]["class"] == 1


@pytest.mark.parametrize("method, cells", [("cam", 1), ("recam", 1), ("d2cam", 2)])  # 16 px at stride 16, 16, 8
def test_border_pad_reads_every_methods_maps_from_the_mirrored_input_on_the_same_grid(method, cells):
    """export.border_pad reads CAM's, ReCAM's and D2CAM's maps alike (matlabel.cam.read_maps): the maps of the input
    mirrored by 16 px, their outer 16 px of cells cropped off, on the plain maps' grid."""
    from matlabel.cam import read_maps
    from matlabel.models import build
    model, _ = build(method, 20, dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=True))
    model.eval()
    x = torch.randn(2, 3, 70, 90)
    mirrored = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (16, 16), (16, 16)), mode="reflect"))
    with torch.no_grad():
        plain, padded, want = model.cam(x), read_maps(model, x, 16), model.cam(mirrored)
        assert padded.shape == plain.shape  # ceil(70/s) x ceil(90/s): the cells cover the same pixels
        torch.testing.assert_close(padded, want[..., cells:-cells, cells:-cells], rtol=0, atol=0)
        # an input no larger than the pad is replicated instead of mirrored
        small = torch.randn(1, 3, 12, 16)
        assert read_maps(model, small, 16).shape == model.cam(small).shape
        # a constant image: the trunk's zero padding makes the plain maps' border cells differ from the centre; read
        # from the image mirrored beyond the trunk's reach, every cell sees the same input and the maps are flat
        const = torch.zeros(1, 3, 64, 64) + torch.tensor([0.3, -0.2, 0.5]).view(1, 3, 1, 1)
        spread = {pad: (read_maps(model, const, pad) - read_maps(model, const, pad)[..., 3:4, 3:4]).abs().amax().item()
                  for pad in (0, 192)}
    assert spread[192] < 1e-6 < 1e-4 < spread[0], spread
    image = np.random.default_rng(0).integers(0, 255, (75, 101, 3), dtype=np.uint8)
    assert not np.allclose(multiscale_cams(model, image, [3], border_pad=16), multiscale_cams(model, image, [3]))
    for bad in (8 if cells == 1 else 12, -16, True):
        with pytest.raises(ValueError, match="border_pad must be a multiple of"):
            multiscale_cams(model, image, [3], border_pad=bad)
