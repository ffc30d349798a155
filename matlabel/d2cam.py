"""D2CAM, the Double Decoupled Class Activation Map network (paper Sec. 3.2.1, Fig. 3, Eq. 2–4).

The ResNet trunk is split at its stride-8 feature map F:

- N1 = stem, layer1, layer2 (Eq. 2: F = N1(I), F ∈ R^{C×H/8×W/8});
- N2 = layer3, layer4, global average pooling, a 1×1 classifier without bias (the CAM baseline's head),
  so the multi-label logits are Ŷ = N2(F);
- the generator φ = a single 3×3 convolution C → N followed by a sigmoid: M_fg = φ(F) ∈ [0, 1]^{N×h×w},
  M_bg = 1 − M_fg;
- for each class c present in an image, Ŷ_fg^c = N2(F ⊗ M_fg^c) (Eq. 3) and Ŷ_bg^c = N2(F ⊗ M_bg^c) (Eq. 4).

All (image, class) pairs of a mini-batch, foreground and background, go through N2 in ONE call of batch 2P
(P = number of positive labels in the batch). The losses are in ``matlabel.losses``.

Gradient truncation (paper Sec. 4.2, "we truncate the gradients of N1 and N2 in the computation of L_d2"):
the pair branch multiplies the *detached* F by a map computed from the detached F, and runs N2 with
detached parameters (``torch.func.functional_call``), so the gradient of L_d2 flows through N2's
computation into M_fg and reaches φ only. L_ma and L_oe (not truncated in the paper) use M_fg = φ(F), whose
gradient also reaches N1 when N1 is trained (``train_from`` earlier than layer3).

BatchNorm in the pair branch (our choice; the paper does not say): the masked features always use the
running statistics and never update them. With ``freeze_bn=True`` (the paper's setting, IRN's FixedBatchNorm)
that is what every pass does anyway. With ``freeze_bn=False`` (the from-scratch demo) the clean pass
Ŷ = N2(F) trains and updates BatchNorm as usual, while the masked pairs are evaluated in eval mode: batch
statistics of masked features would renormalise the mask away (a uniformly dimmed F ⊗ M has the same
normalised activations as F) and would pollute the running statistics used at export time.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.func import functional_call

from matlabel.backbone import STAGES, StagedBackbone, build_backbone

SPLIT = "layer2"  # last stage of N1: its output, at stride 8, is the paper's F
N2_STAGES = STAGES[STAGES.index(SPLIT) + 1:]  # ("layer3", "layer4")
FEATURE_STRIDE = 8  # F (and M_fg) is at stride 8 whatever the backbone's output stride


@dataclass
class D2CAMOutputs:
    """Everything the D2CAM losses need, from one forward pass of a mini-batch.

    Attributes
    ----------
    feat : (B, C, h, w) the feature map F = N1(I), h = ⌈H/8⌉, w = ⌈W/8⌉.
    m_fg : (B, N, h, w) foreground maps M_fg = φ(F), in [0, 1]; gradient reaches φ (and N1 if it trains).
    logits : (B, N) Ŷ = N2(F).
    pair_img, pair_cls : (P,) long, image index and class index (0-based) of every positive label,
        ordered by image then class (``labels.nonzero()``); P = total number of labels in the batch.
    y_fg, y_bg : (P, N) Ŷ_fg^c = N2(F ⊗ M_fg^c) and Ŷ_bg^c = N2(F ⊗ M_bg^c) with truncated gradients
        (only φ receives their gradient); ``None`` when the pairs were not requested.
    """

    feat: torch.Tensor
    m_fg: torch.Tensor
    logits: torch.Tensor
    pair_img: torch.Tensor
    pair_cls: torch.Tensor
    y_fg: torch.Tensor | None = None
    y_bg: torch.Tensor | None = None

    @property
    def m_bg(self) -> torch.Tensor:
        """(B, N, h, w) background maps M_bg = 1 − M_fg."""
        return 1 - self.m_fg


class D2CAMNet(nn.Module):
    """ResNet split into N1 / N2 with the class activation map generator φ (paper Fig. 3).

    Parameters
    ----------
    num_fg : number of foreground classes N (20 on VOC, 80 on COCO).
    backbone : the trunk (``matlabel.backbone.build_backbone``: ResNet or EfficientNet-Lite0); its ``layer2``
        output is F. ``output_stride`` only affects N2's internal resolution, the maps are always at stride 8.

    ``forward(x)`` → (B, N) logits Ŷ; ``cam(x)`` → (B, N, h, w) maps M_fg in [0, 1] at stride 8 (``map_stride``;
    the export rule upsamples them, and reads them at the border as every method's: ``matlabel.cam.read_maps``);
    ``forward_d2(x, labels)`` → ``D2CAMOutputs`` for the training losses.
    """

    map_stride = FEATURE_STRIDE

    def __init__(self, num_fg: int, backbone: StagedBackbone):
        super().__init__()
        self.backbone = backbone
        self.generator = nn.Conv2d(feature_channels(backbone), num_fg, 3, padding=1)  # φ (with bias)
        # φ starts near zero, so every map starts at sigmoid(0) = 0.5 (paper silent on the init). PyTorch's
        # default init on un-normalised layer2 features saturates the sigmoid at once, and saturated maps get no
        # gradient (what it did on the demo: bench/README.md).
        nn.init.normal_(self.generator.weight, std=1e-3)
        nn.init.zeros_(self.generator.bias)
        self.classifier = nn.Conv2d(backbone.out_channels, num_fg, 1, bias=False)

    def n1(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image → F (B, C, ⌈H/8⌉, ⌈W/8⌉), Eq. 2."""
        return self.backbone.forward_from(x, "stem", SPLIT)

    def n2(self, feat: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) feature map → (B, N) logits: layer3, layer4, global average pooling, classifier."""
        f = self.backbone.forward_from(feat, N2_STAGES[0], N2_STAGES[-1])
        return self.classifier(f.mean((2, 3), keepdim=True)).flatten(1)

    def generate(self, feat: torch.Tensor) -> torch.Tensor:
        """φ: (B, C, h, w) → M_fg (B, N, h, w) in [0, 1] (3×3 convolution + sigmoid)."""
        return torch.sigmoid(self.generator(feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → (B, N) multi-label logits Ŷ = N2(N1(x))."""
        return self.n2(self.n1(x))

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → M_fg (B, N, ⌈H/8⌉, ⌈W/8⌉) in [0, 1]; N2 is not run."""
        return self.generate(self.n1(x))

    def forward_d2(self, x: torch.Tensor, labels: torch.Tensor, with_pairs: bool = True) -> D2CAMOutputs:
        """One training forward pass: F, M_fg, Ŷ and, for every positive label, Ŷ_fg^c and Ŷ_bg^c.

        Parameters
        ----------
        x : (B, 3, H, W) normalised images.
        labels : (B, N) multi-hot {0, 1} image-level labels.
        with_pairs : run the pair branch (Eq. 3–4); off for loss variants without L_d2.
        """
        feat = self.n1(x)
        m_fg = self.generate(feat)
        logits = self.n2(feat)
        pair_img, pair_cls = labels.nonzero(as_tuple=True)
        out = D2CAMOutputs(feat, m_fg, logits, pair_img, pair_cls)
        if with_pairs:
            # truncation: the map of the pair branch is φ(F.detach()) so L_d2 never reaches N1 through φ's
            # input (same values as m_fg; recomputing costs one 3×3 convolution at stride 8)
            m_d2 = self.generate(feat.detach()) if feat.requires_grad else m_fg
            out.y_fg, out.y_bg = self.decoupled_logits(feat.detach(), m_d2, pair_img, pair_cls)
        return out

    def decoupled_logits(self, feat: torch.Tensor, m_fg: torch.Tensor, pair_img: torch.Tensor,
                         pair_cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ŷ_fg^c = N2(F ⊗ M_fg^c) and Ŷ_bg^c = N2(F ⊗ (1 − M_fg^c)) of all pairs in one N2 call (Eq. 3–4).

        Parameters
        ----------
        feat : (B, C, h, w) F (the caller detaches it).
        m_fg : (B, N, h, w) foreground maps in [0, 1].
        pair_img, pair_cls : (P,) image and class index of each pair.

        Returns
        -------
        y_fg, y_bg : (P, N) logits each. N2 runs on a (2P, C, h, w) batch with detached parameters and its
        BatchNorm on running statistics, so the gradient reaches ``m_fg`` only.
        """
        if len(pair_img) == 0:  # no labels in the batch: nothing to decouple
            empty = m_fg.new_zeros((0, m_fg.shape[1]))
            return empty, empty
        m = m_fg[pair_img, pair_cls].unsqueeze(1).to(feat.dtype)  # (P, 1, h, w)
        f = feat[pair_img]  # (P, C, h, w)
        masked = torch.cat([f * m, f * (1 - m)], 0)  # (2P, C, h, w): fg pairs then bg pairs
        stages = [getattr(self.backbone, name) for name in N2_STAGES]
        with running_statistics(stages):
            for stage in stages:
                # no torch.no_grad for stages before train_from here: the gradient must reach m_fg
                masked = _call_detached(stage, masked)
        logits = _call_detached(self.classifier, masked.mean((2, 3), keepdim=True)).flatten(1)
        y_fg, y_bg = logits.chunk(2, 0)
        return y_fg, y_bg

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained backbone parameters that train, new parameters φ + classifier) for the 1× / 10× lr."""
        trainable = [p for p in self.backbone.parameters() if p.requires_grad]
        return trainable, [*self.generator.parameters(), *self.classifier.parameters()]


def build(num_fg: int, backbone: dict) -> D2CAMNet:
    """``D2CAMNet`` on ``build_backbone(**backbone)`` (the ``matlabel.models`` builder signature)."""
    return D2CAMNet(num_fg, build_backbone(**backbone))


def feature_channels(backbone: StagedBackbone) -> int:
    """Channels C of F, the output of N1's last stage (128 for ResNet-18/34, 512 for ResNet-50/101, 40 for
    EfficientNet-Lite0)."""
    norms = [m for m in getattr(backbone, SPLIT).modules() if isinstance(m, nn.BatchNorm2d)]
    return norms[-1].num_features


def _call_detached(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with its parameters detached: the gradient flows to ``x`` but not to the parameters."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, (x,))


@contextmanager
def running_statistics(modules: list[nn.Module]):
    """Within the block, every BatchNorm in ``modules`` normalises with its running statistics and does not
    update them (eval mode); the previous modes are restored afterwards."""
    norms = [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = [m.training for m in norms]
    for m in norms:
        m.training = False
    try:
        yield
    finally:
        for m, mode in zip(norms, modes):
            m.training = mode
