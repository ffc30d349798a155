"""ResNet backbone as IRN uses it (jiwoon-ahn/irn net/resnet50.py, net/resnet50_cam.py).

torchvision's ResNet with the last stage's stride set to 1 *without* dilation, so the feature map has
output stride 16 (IRN: strides (2, 2, 2, 1)). BatchNorm can be frozen (eval statistics always, IRN's
``FixedBatchNorm``), and the stages before ``train_from`` get no gradient (IRN trains layer3/layer4 and the
classifier only: conv1/bn1 are frozen and stage2's output is detached).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torchvision

ARCHS = {  # explicit registry: config name -> (torchvision constructor, ImageNet weights enum, feature channels)
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1, 512),
    "resnet34": (torchvision.models.resnet34, torchvision.models.ResNet34_Weights.IMAGENET1K_V1, 512),
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1, 2048),
    "resnet101": (torchvision.models.resnet101, torchvision.models.ResNet101_Weights.IMAGENET1K_V1, 2048),
}
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


class ResNetBackbone(nn.Module):
    """ResNet trunk returning stage features.

    Parameters
    ----------
    arch : one of ``ARCHS``.
    weights : ``"imagenet"`` (torchvision's IMAGENET1K_V1, the weights IRN loads; cached by torchvision),
        ``"none"`` (random init, the demo), or a path to a local ``state_dict`` file.
    output_stride : 16 (IRN, last stage stride 1) or 32 (torchvision's).
    freeze_bn : use the BatchNorm running statistics always and never update them (IRN's FixedBatchNorm).
    train_from : first stage that receives gradient; earlier stages run under ``torch.no_grad`` (IRN: layer3).
    """

    def __init__(self, arch: str = "resnet50", weights: str = "imagenet", output_stride: int = 16,
                 freeze_bn: bool = True, train_from: str = "layer3"):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown backbone {arch!r}; choose one of {sorted(ARCHS)}")
        if train_from not in STAGES:
            raise ValueError(f"train_from must be one of {STAGES}, got {train_from!r}")
        ctor, imagenet, self.out_channels = ARCHS[arch]
        net = ctor(weights=imagenet if weights == "imagenet" else None)
        if weights not in ("imagenet", "none"):
            path = Path(weights)
            if not path.exists():
                raise FileNotFoundError(f"backbone weights file {path} not found (config backbone.weights)")
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        if output_stride == 16:
            _remove_stride(net.layer4)
        elif output_stride != 32:
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.freeze_bn = freeze_bn
        self.train_from = train_from
        self.output_stride = output_stride
        first = STAGES.index(train_from)
        for name in STAGES[:first]:
            for p in getattr(self, name).parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()  # running statistics only; the affine weights still train, as in IRN
        return self

    def forward(self, x: torch.Tensor, upto: str = "layer4") -> torch.Tensor:
        """(B, 3, H, W) normalised image → features of stage ``upto``.

        layer2 output has stride 8 (the paper's D2CAM feature map F), layer4 stride ``output_stride``.
        """
        first = STAGES.index(self.train_from)
        for i, name in enumerate(STAGES):
            if i < first:
                with torch.no_grad():
                    x = getattr(self, name)(x)
            else:
                x = getattr(self, name)(x)
            if name == upto:
                return x
        raise ValueError(f"unknown stage {upto!r}")

    def forward_from(self, x: torch.Tensor, start: str = "stem", end: str = "layer4") -> torch.Tensor:
        """Run the stages ``start`` … ``end`` (inclusive) on ``x``, the input of stage ``start``.

        Same semantics as ``forward``: stages before ``train_from`` run under ``torch.no_grad``. D2CAM
        splits the trunk with it: N1 = ``forward_from(image, "stem", "layer2")`` (stride 8) and N2's trunk
        = ``forward_from(F, "layer3", "layer4")``.
        """
        for name in (start, end):
            if name not in STAGES:
                raise ValueError(f"unknown stage {name!r}; choose one of {STAGES}")
        i0, i1 = STAGES.index(start), STAGES.index(end)
        if i0 > i1:
            raise ValueError(f"stage {start!r} comes after {end!r}")
        first = STAGES.index(self.train_from)
        for i in range(i0, i1 + 1):
            if i < first:
                with torch.no_grad():
                    x = getattr(self, STAGES[i])(x)
            else:
                x = getattr(self, STAGES[i])(x)
        return x


def _remove_stride(layer: nn.Sequential) -> None:
    """Set every stride-2 convolution of a ResNet stage to stride 1 (IRN's last stage, no dilation)."""
    for m in layer.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)
