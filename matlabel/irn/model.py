"""The Inter-pixel Relation Network (Ahn, Cho, Kwak, CVPR 2019; jiwoon-ahn/irn net/resnet50_irn.py ``Net``).

Two branches on the stage features of a frozen ResNet (strides 2, 2, 2, 1: stem and layer1 at stride 4,
layer2 at 8, layer3 and layer4 at 16):

- class boundary (edge) branch: each of the five stage features → 1×1 conv to 32 channels + GroupNorm(4)
  (+ bilinear upsampling to stride 4) + ReLU, concatenated (160) → 1×1 conv to one logit;
- displacement branch: stem → 64, layer1 → 128, layer2 → 256, layer3/layer4 → 256 upsampled ×2
  (all 1×1 conv + GroupNorm + ReLU), stride-8 features concatenated (768) → 256 upsampled ×2,
  concatenated with the stride-4 ones (448) → 256 → 2 (the displacement field, in stride-4 pixels).

The backbone runs under ``torch.no_grad`` and in eval mode always: IRN detaches every stage and trains the
branches only (``Net.forward``: ``.detach()``; ``Net.train``: ``self.backbone.eval()``).
"""
from __future__ import annotations

import torch
from torch import nn

from matlabel.backbone import STAGES, StagedBackbone
from matlabel.irn.relations import PathIndex

EDGE_WIDTH = 32  # IRN fc_edge1..5 output channels
DP_WIDTHS = (64, 128, 256, 256, 256)  # IRN fc_dp1..5 output channels
DP_HIDDEN = 256  # IRN fc_dp6, fc_dp7


def stage_channels(backbone: StagedBackbone) -> tuple[int, ...]:
    """Output channels of the five stages (ResNet-50: 64, 256, 512, 1024, 2048; ResNet-18: 64, 64, 128, 256, 512;
    EfficientNet-Lite0: 24, 24, 40, 112, 1280).

    Read from the last BatchNorm of each stage (timm's BatchNormAct2d included), so any backbone of
    ``matlabel.backbone`` works.
    """
    out = []
    for name in STAGES:
        bns = [m for m in getattr(backbone, name).modules() if isinstance(m, nn.BatchNorm2d)]
        out.append(bns[-1].num_features)
    return tuple(out)


def _unit(c_in: int, c_out: int, groups: int, up: int = 1) -> nn.Sequential:
    """1×1 conv (no bias) + GroupNorm (+ bilinear ×up) + ReLU, IRN's branch unit (upsampling before ReLU)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 1, bias=False), nn.GroupNorm(groups, c_out)]
    if up > 1:
        layers.append(nn.Upsample(scale_factor=up, mode="bilinear", align_corners=False))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class IRNet(nn.Module):
    """IRN's edge and displacement branches on a frozen backbone (``matlabel.backbone.build_backbone``).

    Parameters
    ----------
    backbone : its parameters are frozen here (``requires_grad=False``, eval mode). Output stride 16
        (IRN) or 32; the upsampling factors of the layer4 units follow it.
    radius : radius of the training pairs (IRN step/train_irn.py: ``PathIndex(radius=10, …)``); the loss
        reads it from the model, as IRN's ``AffinityDisplacementLoss`` holds its ``path_index``.
    """

    def __init__(self, backbone: StagedBackbone, radius: int = 10):
        super().__init__()
        self.backbone = backbone
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.radius = int(radius)
        self.path_index = PathIndex(self.radius)
        c = stage_channels(backbone)
        os4 = backbone.output_stride // 4  # layer3 is at stride 16 always; layer4 at output_stride
        e = EDGE_WIDTH
        self.edge_layers = nn.ModuleList([
            _unit(c[0], e, 4), _unit(c[1], e, 4), _unit(c[2], e, 4, up=2), _unit(c[3], e, 4, up=4),
            _unit(c[4], e, 4, up=os4), nn.Conv2d(5 * e, 1, 1, bias=True),
        ])
        d = DP_WIDTHS
        self.dp_layers = nn.ModuleList([
            _unit(c[0], d[0], 8), _unit(c[1], d[1], 16), _unit(c[2], d[2], 16), _unit(c[3], d[3], 16, up=2),
            _unit(c[4], d[4], 16, up=os4 // 2),
            _unit(d[2] + d[3] + d[4], DP_HIDDEN, 16, up=2),
            nn.Sequential(nn.Conv2d(d[0] + d[1] + DP_HIDDEN, DP_HIDDEN, 1, bias=False), nn.GroupNorm(16, DP_HIDDEN),
                          nn.ReLU(inplace=True), nn.Conv2d(DP_HIDDEN, 2, 1, bias=False)),
        ])

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # IRN Net.train: the backbone stays in eval mode (BatchNorm statistics fixed)
        return self

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised image → the five stage features (no gradient, as IRN's ``.detach()``)."""
        feats = []
        for name in STAGES:
            x = self.backbone.forward_from(x, name, name)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) normalised image → (edge logits (B, 1, h, w), displacement (B, 2, h, w)).

        h, w = the stem's output size, ceil(H/4) and ceil(W/4) for the usual sizes (stride 4). Upsampled
        maps are cropped to it (IRN ``[..., :edge2.size(2), :edge2.size(3)]``).
        """
        f = self.features(x)
        el = self.edge_layers
        e = [el[0](f[0]), el[1](f[1])]
        h, w = e[1].shape[-2:]
        e += [el[i](f[i])[..., :h, :w] for i in (2, 3, 4)]
        edge = el[5](torch.cat(e, 1))

        dl = self.dp_layers
        dp1, dp2, dp3 = dl[0](f[0]), dl[1](f[1]), dl[2](f[2])
        h8, w8 = dp3.shape[-2:]
        dp4, dp5 = dl[3](f[3])[..., :h8, :w8], dl[4](f[4])[..., :h8, :w8]
        up3 = dl[5](torch.cat([dp3, dp4, dp5], 1))[..., :dp2.shape[-2], :dp2.shape[-1]]
        disp = dl[6](torch.cat([dp1, dp2, up3], 1))
        return edge, disp

    def edge(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → class-boundary probability (B, 1, h, w) in [0, 1] at stride 4."""
        return torch.sigmoid(self.forward(x)[0])

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(edge branch, displacement branch) for ``matlabel.train.train``'s 1× / ``head_lr_mult`` rates.

        IRN step/train_irn.py: ``trainable_parameters()`` = (edge_layers, dp_layers), optimised at
        1× and 10× the learning rate; the backbone is not optimised at all.
        """
        return list(self.edge_layers.parameters()), list(self.dp_layers.parameters())


def edge_to_affinity(edge: torch.Tensor, path_index: PathIndex) -> torch.Tensor:
    """Affinity of every pair from a boundary map: 1 − the largest boundary value on the path between them.

    IRN ``AffinityDisplacementLoss.to_affinity`` / misc/indexing.py ``edge_to_affinity`` (paper Eq. 3),
    the path including both ends. Computed by slicing instead of IRN's precomputed index arrays; the
    values are the same (checked against the reference on random maps).

    Parameters
    ----------
    edge : (B, h, w) or (B, 1, h, w) boundary probability in [0, 1].

    Returns
    -------
    (B, D, n_src) affinities in [0, 1], in ``path_index``'s pair layout.
    """
    if edge.dim() == 4:
        edge = edge[:, 0]
    out = []
    for path in path_index.paths:
        # max (not amax) routes the gradient to one element, as IRN's max_pool2d over the path does
        vals = torch.stack([path_index.shifted(edge, int(py), int(px)) for py, px in path], 1)
        out.append(vals.max(1).values.flatten(1))
    return 1 - torch.stack(out, 1)


def pair_displacement(disp: torch.Tensor, path_index: PathIndex) -> torch.Tensor:
    """D(src) − D(dst) for every pair (IRN ``to_pair_displacement``): (B, 2, h, w) → (B, 2, D, n_src)."""
    src, dst = path_index.pair_values(disp)
    return src - dst
