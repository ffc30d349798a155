import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from matlabel.cam import CAMNet, multiscale_cams
from matlabel.models import build, load_init
from matlabel.recam import ReCAMNet, class_features, predictor_ce, recam_loss
from matlabel.train import TrainConfig, train

BACKBONE = dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=False, train_from="stem")


def test_class_features_and_predictor_ce_by_hand():
    # C = 2 channels at 2 positions: f(p1) = (1, 0), f(p2) = (0, 2)
    feature = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # (1, 2, 1, 2)
    cams = torch.tensor([[[[2.0, 1.0]], [[0.0, 3.0]]]])  # class 0: (2, 1) -> (1, 0.5); class 1: (0, 3) -> (0, 1)
    feats = class_features(feature, cams)
    # x_0 = mean(1 * (1, 0), 0.5 * (0, 2)) = (0.5, 0.5); x_1 = mean(0 * (1, 0), 1 * (0, 2)) = (0, 1)
    assert feats.shape == (1, 2, 2)
    assert torch.allclose(feats[0], torch.tensor([[0.5, 0.5], [0.0, 1.0]]), rtol=1e-4)

    # identity predictor, three images: {0, 1} with the features above, {1} with x_1 = (2, 0), {} (no label)
    w = torch.eye(2)
    batch_feats = torch.stack([feats[0], torch.tensor([[9.0, 9.0], [2.0, 0.0]]), torch.zeros(2, 2)])
    labels = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    img0 = (math.log(2) + math.log(1 + math.exp(-1))) / 2  # logits (.5, .5) target 0; logits (0, 1) target 1
    img1 = math.log(1 + math.exp(2))  # logits (2, 0), target 1
    # per image mean over its classes, summed, divided by the batch size including the unlabelled image
    assert predictor_ce(w, batch_feats, labels).item() == pytest.approx((img0 + img1) / 3, rel=1e-5)


def _reference_class_predictor(weight, x, label):
    """The reference's loop (ReCAM net/resnet50_cam.py Class_Predictor.forward), re-written for the test."""
    loss = 0
    for i in range(x.shape[0]):
        idx = torch.nonzero(label[i]).squeeze(1)
        if idx.shape[0] == 0:
            continue
        logit = F.conv2d(x[i][label[i] > 0][..., None, None], weight).squeeze(-1).squeeze(-1)
        loss = loss + F.cross_entropy(logit, idx)
    return loss / x.shape[0]


def test_batched_loss_and_features_equal_the_reference_formulation():
    g = torch.Generator().manual_seed(0)
    feature = torch.randn(4, 8, 3, 5, generator=g).relu()
    cams = torch.randn(4, 6, 3, 5, generator=g).relu()
    # Net_CAM_Feature.forward: broadcast product (B, K, C, h, w), mean over positions
    norm = cams / (F.adaptive_max_pool2d(cams, (1, 1)) + 1e-5)
    expected = (norm.unsqueeze(2) * feature.unsqueeze(1)).flatten(3).mean(-1)
    feats = class_features(feature, cams)
    assert torch.allclose(feats, expected, atol=1e-6)

    weight = torch.randn(6, 8, 1, 1, generator=g)
    labels = torch.tensor([[1, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]).float()
    ours = predictor_ce(weight, feats, labels)
    assert ours.item() == pytest.approx(_reference_class_predictor(weight, feats, labels).item(), rel=1e-5)


def test_loss_terms_and_weight():
    torch.manual_seed(0)
    model = build("recam", 5, BACKBONE)[0].eval()
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([[1.0, 0, 1, 0, 0], [0, 0, 0, 1, 0]])}
    with torch.no_grad():
        one = recam_loss(model, batch)
        tenth = recam_loss(model, batch, ce_weight=0.1)
    assert set(one) == {"total", "cls", "ce"}
    with torch.no_grad():
        cls = F.multilabel_soft_margin_loss(model(batch["image"]), batch["label"])
    assert one["cls"].item() == pytest.approx(cls.item())
    assert one["ce"].item() > 0
    assert one["total"].item() == pytest.approx(one["cls"].item() + one["ce"].item(), rel=1e-6)
    assert tenth["total"].item() == pytest.approx(tenth["cls"].item() + 0.1 * tenth["ce"].item(), rel=1e-6)


def test_predictor_loss_reaches_classifier_and_backbone():
    """No gradient is stopped in the reference: L_ce trains the classifier (through the maps) and the trunk."""
    model, _ = build("recam", 5, BACKBONE)
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([[1.0, 0, 1, 0, 0], [0, 0, 0, 1, 0]])}
    recam_loss(model, batch)["ce"].backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.predictor.weight.grad.abs().sum() > 0
    assert model.backbone.layer4[-1].conv2.weight.grad.abs().sum() > 0


def test_shapes_with_resnet18():
    model, _ = build("recam", 20, BACKBONE)
    model.eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        logits, feats = model.forward_recam(x)
        maps = model.cam(x)
    assert isinstance(model, ReCAMNet) and isinstance(model, CAMNet)  # a CAMNet: same names, same forward
    assert logits.shape == (2, 20) and feats.shape == (2, 20, 512)
    assert maps.shape == (2, 20, 4, 3) and (maps >= 0).all()
    assert torch.allclose(logits, model(x))
    out = multiscale_cams(model, np.zeros((40, 56, 3), np.uint8), classes=[3, 15])
    assert out.shape == (2, 40, 56) and out.dtype == np.float32


def test_maps_use_the_elementwise_product_of_predictor_and_classifier_weights():
    model, _ = build("recam", 4, BACKBONE)
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        f = model.backbone(x)
        cam = CAMNet.cam(model, x)  # the classifier-only CAM of the same weights
        model.predictor.weight.fill_(1.0)
        assert torch.allclose(model.cam(x), cam, atol=1e-6)  # w_pred = 1 gives back the CAM
        # one-hot predictor row: class k's map is ReLU(w_cls[k, c] · f_c) alone (not a matrix product)
        model.predictor.weight.zero_()
        model.predictor.weight[2, 7] = 1.0
        maps = model.cam(x)
        assert torch.allclose(maps[0, 2], F.relu(model.classifier.weight[2, 7, 0, 0] * f[0, 7]), atol=1e-6)
        assert maps[0, [0, 1, 3]].abs().max() == 0


def test_param_groups_split_backbone_and_classifier_from_predictor():
    model, _ = build("recam", 20, {**BACKBONE, "train_from": "layer3"})
    slow, fast = model.param_groups()
    assert [id(p) for p in fast] == [id(model.predictor.weight)]
    ids = {id(p) for p in slow}
    assert id(model.classifier.weight) in ids and id(model.predictor.weight) not in ids
    assert ids == {id(p) for n, p in model.named_parameters() if p.requires_grad and not n.startswith("predictor")}
    assert all(id(p) not in ids for p in model.backbone.layer2.parameters())  # frozen stages stay out


def test_load_init_from_a_cam_leaves_only_the_predictor_fresh():
    cam, _ = build("cam", 6, BACKBONE, seed=1)
    model, _ = build("recam", 6, BACKBONE, seed=2)
    before = model.predictor.weight.detach().clone()
    assert load_init(model, {"model": cam.state_dict()}) == ["predictor.weight"]
    for name, tensor in cam.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert torch.equal(model.predictor.weight, before)


def test_training_lowers_the_loss(tiny_synthetic, tmp_path):
    from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset

    dataset = VOCLayoutDataset(tiny_synthetic, "train", transform=ClassifierAugment((40, 64), 48, True, seed=0))
    model, loss_fn = build("recam", 20, BACKBONE, loss={"ce_weight": 1.0})
    cfg = TrainConfig(epochs=3, batch_size=4, lr=0.01, head_lr_mult=1, momentum=0.9,
                      weight_decay=1e-4, poly_power=0.9, seed=0)
    history = train(model, dataset, cfg, torch.device("cpu"), tmp_path / "model.pt", loss_fn)
    assert {"total", "cls", "ce"} <= set(history[0])
    assert history[-1]["total"] < history[0]["total"]
    assert history[-1]["ce"] < history[0]["ce"]
    assert "predictor.weight" in torch.load(tmp_path / "model.pt", weights_only=False)["model"]
