"""ReCAM, Class Re-Activation Maps (Chen, Wang, Wu, Hua, Zhang, Sun, CVPR 2022, arXiv 2203.00962).

Follows the authors' code, zhaozhengChen/ReCAM (built on IRN; commit 2bdbcd2 read):

- a second training stage after the CAM baseline, starting from the trained CAM (config ``init_from: cam``).
  The CAM network is unchanged (backbone, global average pooling, 1×1 classifier without bias); a *class
  predictor*, a 1×1 convolution C → num_fg without bias (net/resnet50_cam.py ``Class_Predictor``), is added;
- class-wise features (net/resnet50_cam.py ``Net_CAM_Feature.forward``): the CAMs ReLU(w_k · f) of the
  layer4 features f, each divided by its own spatial maximum (+1e-5), weight f and are averaged over all
  positions: x_k = mean_{ij} cam_k(i, j) · f(i, j) ∈ R^C, for every class k. No gradient is stopped: the
  predictor's loss reaches the classifier and the backbone through the maps and the features;
- loss (step/train_recam.py): multilabel soft margin on the logits + ``ce_weight`` × the predictor's
  softmax cross-entropy over the num_fg classes, one term per (image, present class) pair with the class as
  target, averaged over each image's classes, summed over images and divided by the batch size
  (``Class_Predictor.forward``: ``loss / batch_size``). ``ce_weight`` = ``recam_loss_weight``: 1.0 on VOC
  (run_sample.py), 0.1 on COCO (run_sample_coco.py);
- maps (step/make_recam.py ``CAM.forward2``): ReLU(conv2d(f, w_pred ⊙ w_cls)), the predictor's weight times
  the classifier's weight *elementwise* (both (num_fg, C, 1, 1)), i.e. cam_k = ReLU(Σ_c w_pred[k,c] w_cls[k,c]
  f_c); then IRN's multi-scale/flip export (``matlabel.cam.multiscale_cams``). Note: the COCO script
  (step_coco/make_recam.py) exports plain ``CAM.forward`` (classifier weight only) of the ReCAM-trained model;
  this module implements the VOC maps.

Our choices: the class-wise features are one batched matrix product (B, K, hw) @ (B, hw, C) instead of the
reference's (B, K, C, h, w) broadcast (same values, ~K× less memory); the cross-entropy is computed for all
pairs of the batch at once instead of a Python loop over images (same value, tested).
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from matlabel.backbone import StagedBackbone, build_backbone
from matlabel.cam import CAMNet


class ReCAMNet(CAMNet):
    """The CAM network (same parameter names: ``backbone.*``, ``classifier.weight``) plus the class predictor.

    ``forward(x)`` → (B, num_fg) logits (as ``CAMNet``); ``forward_recam(x)`` → (logits, class-wise features
    (B, num_fg, C)) for the training loss; ``cam(x)`` → (B, num_fg, h, w) ReCAM maps (non-negative, at the
    backbone's output stride); ``param_groups()`` → (backbone + classifier, predictor).
    """

    def __init__(self, num_fg: int, backbone: StagedBackbone):
        super().__init__(num_fg, backbone)
        # Class_Predictor(num_classes, representation_size).classifier: PyTorch's default Conv2d init, as there
        self.predictor = nn.Conv2d(backbone.out_channels, num_fg, 1, bias=False)

    def forward_recam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) → logits (B, num_fg) and class-wise features (B, num_fg, C) (Net_CAM_Feature.forward)."""
        f = self.backbone(x)
        logits = self.classifier(f.mean((2, 3), keepdim=True)).flatten(1)
        cams = F.relu(F.conv2d(f, self.classifier.weight))
        return logits, class_features(f, cams)

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """ReCAM maps ReLU(conv2d(f, w_pred ⊙ w_cls)) (make_recam.py → CAM.forward2, ReLU before the flip sum)."""
        return F.relu(F.conv2d(self.backbone(x), self.predictor.weight * self.classifier.weight))

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(trainable backbone + classifier, predictor): train_recam.py trains the first at 0.1 × and the
        predictor at 1 × ``recam_learning_rate``, so config ``lr: 5.0e-5, head_lr_mult: 10`` reproduces it."""
        trainable = [p for p in self.backbone.parameters() if p.requires_grad]
        return [*trainable, *self.classifier.parameters()], list(self.predictor.parameters())


def class_features(feature: torch.Tensor, cams: torch.Tensor) -> torch.Tensor:
    """Class-wise features x_k = mean_{ij} (cam_k / max cam_k)(i, j) · f(i, j).

    feature : (B, C, h, w); cams : (B, K, h, w) non-negative. Returns (B, K, C). Same values as
    Net_CAM_Feature's ``mean((cams / (max + 1e-5)).unsqueeze(2) * feature.unsqueeze(1), spatial)``.
    """
    cams = cams / (cams.flatten(2).amax(2)[..., None, None] + 1e-5)
    hw = feature.shape[-2] * feature.shape[-1]
    return torch.bmm(cams.flatten(2), feature.flatten(2).transpose(1, 2)) / hw


def predictor_ce(predictor_weight: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The class predictor's loss (Class_Predictor.forward), for all (image, present class) pairs at once.

    predictor_weight : (K, C, 1, 1) or (K, C); feats : (B, K, C) class-wise features; labels : (B, K) multi-hot.
    Each pair's feature x_k is classified into K classes with target k; per image the CE is averaged over its
    present classes, then summed over images and divided by B (images without a label contribute 0 but count
    in B, as in the reference). Returns a scalar in fp32.
    """
    present = labels > 0
    pair_img, pair_cls = present.nonzero(as_tuple=True)
    if len(pair_img) == 0:
        return feats.sum().float() * 0.0  # keeps the graph; the reference would return 0 (and divide acc by 0)
    logits = F.linear(feats[pair_img, pair_cls], predictor_weight.flatten(1))  # (P, K)
    ce = F.cross_entropy(logits.float(), pair_cls, reduction="none")
    per_image = present.sum(1)[pair_img].float()
    return (ce / per_image).sum() / labels.shape[0]


def recam_loss(model: ReCAMNet, batch: dict, ce_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """L = multilabel soft margin(logits, labels) + ce_weight · L_ce (step/train_recam.py ``loss``)."""
    logits, feats = model.forward_recam(batch["image"])
    cls = F.multilabel_soft_margin_loss(logits.float(), batch["label"])
    ce = predictor_ce(model.predictor.weight, feats, batch["label"])
    return {"total": cls + ce_weight * ce, "cls": cls, "ce": ce}


def make_loss(ce_weight: float = 1.0):
    """The training loss with the config's weights (``matlabel.models`` loss factory; config ``recam.loss``)."""
    return functools.partial(recam_loss, ce_weight=float(ce_weight))


def build(num_fg: int, backbone: dict) -> ReCAMNet:
    """``ReCAMNet`` on ``build_backbone(**backbone)`` (the ``matlabel.models`` builder signature)."""
    return ReCAMNet(num_fg, build_backbone(**backbone))
