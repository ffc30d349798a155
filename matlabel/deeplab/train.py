"""DeepLab-v2's training on pseudo-labels, as kazuto1011/deeplab-pytorch ``main.py`` ``train``.

20k iterations of 5 images x 2 accumulated sub-batches, cross-entropy summed over the MSC outputs against labels
resized with PIL nearest, SGD with 1x/10x/20x parameter groups from ``get_params``, poly decay updated every 10
iterations by ``libs/utils/lr_scheduler.py`` ``PolynomialLR``, BatchNorm frozen. The loop, its learning rates and
its resume checkpoints are the ones every model trains with (``matlabel.train.fit``); this module gives it
DeepLab's batches and step. Differs from the reference in how it executes only: bf16 autocast on CUDA (fp32 on CPU)
and the ``speed`` flags (``matlabel.train.Speed``: compiled forward pass and loss, fused SGD, channels_last; on for
CUDA, off for CPU by default).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from matlabel.datasets.layout import IGNORE_INDEX
from matlabel.deeplab.model import MSC, DeepLabV2
from matlabel.train import Plan, Speed, fit, to_device


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



@dataclass(frozen=True)
class SegConfig:
    """DeepLab-v2 training recipe. The recipe's numbers have no defaults here: config.yaml's ``deeplab.train`` holds
    deeplab-pytorch's configs/voc12.yaml values (named below), config/coco14.yaml the COCO recipe; only our run
    settings (``checkpoint_every``, ``seed``, ``num_workers``) default.

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

    iterations: int
    batch_size: int
    accumulate: int
    crop: int
    scales: tuple[float, ...]
    hflip: bool
    msc_scales: tuple[float, ...]
    lr: float
    momentum: float
    weight_decay: float
    poly_power: float
    poly_every: int
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
        """Build from a mapping (config.yaml's ``deeplab.train``); unknown or missing recipe keys raise."""
        fields = dataclasses.fields(cls)
        known = {f.name for f in fields}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DeepLab training keys {unknown}; known keys: {sorted(known)}")
        missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in values]
        if missing:
            raise ValueError(f"DeepLab training keys {missing} missing (config.yaml's deeplab.train sets every one)")
        return cls(**dict(values))


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


def deeplab_step(msc: MSC, names: Sequence[str], accumulate: int, device: torch.device,
                 speed: Speed) -> Callable[[Iterable[dict]], dict[str, torch.Tensor]]:
    """One DeepLab-v2 iteration (the ``step`` of :func:`train_deeplab`'s plan; the optimiser step is the loop's): for
    each sub-batch, the MSC forward pass under autocast (bf16 on CUDA) and :func:`msc_loss` in fp32 (compiled
    together when ``speed.compile``), backward of the loss / ``accumulate``. Returns each term summed over the
    sub-batches after the 1/accumulate scaling, in float64 on the device (as the floats the loop once summed)."""
    amp = device.type == "cuda"

    def forward(image: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            outputs = msc(image)
        return msc_loss(outputs, label, names)  # fp32 losses

    forward = speed.compiled(forward)

    def step(sub_batches: Iterable[dict]) -> dict[str, torch.Tensor]:
        sums = None
        for batch in sub_batches:
            batch = to_device(batch, device, speed.channels_last)
            losses = forward(batch["image"], batch["label"])
            (losses["total"] / accumulate).backward()
            terms = torch.stack([v.detach() for v in losses.values()]).double() / accumulate
            sums = terms if sums is None else sums + terms
        return dict(zip([*names, "total"], sums))

    return step


def train_deeplab(model: DeepLabV2, dataset, cfg: SegConfig, device: torch.device, out: str | os.PathLike,
                  extra: dict | None = None, speed: Speed | Mapping | None = None) -> list[dict]:
    """Train DeepLab-v2 with the MSC loss on ``dataset`` (a ``SegDataset``) as main.py ``train`` does.

    Each iteration accumulates the gradients of ``cfg.accumulate`` batches (each loss divided by ``accumulate``) and
    takes one SGD step; the learning rate of iteration i (0-based) is ``poly(poly_every * (i // poly_every))``,
    the value ``PolynomialLR`` stepped after every iteration gives. BatchNorm stays frozen if the model says so.

    Writes ``{"model": state_dict, "meta": {"config", "extra"}, "history"}`` to ``out``. Every
    ``cfg.checkpoint_every`` iterations ``<out>.resume`` is written (atomically) and a later call with equal
    ``meta`` resumes from it, reaching the weights of an uninterrupted run; it is removed at the end.
    Returns the history: one ``{"iteration", "lr", "x1", "x0.5", ..., "max", "total"}`` per iteration (losses
    summed over the accumulated sub-batches after the 1/accumulate scaling, i.e. the per-image-batch mean).
    ``speed``: ``matlabel.train.Speed`` or a config ``speed:`` mapping (default: each flag ``auto``).
    """
    for name in ("crop", "scales", "hflip"):  # the dataset builds the crops; the config records them
        if hasattr(dataset, name) and getattr(dataset, name) != getattr(cfg, name):
            raise ValueError(f"dataset.{name} = {getattr(dataset, name)!r} but cfg.{name} = {getattr(cfg, name)!r}; "
                             "build the SegDataset from the same config")
    msc = MSC(model, cfg.msc_scales)
    msc.train()  # ResNetBackbone.train keeps frozen BN in eval mode (main.py: model.train(); base.freeze_bn())
    names = ["x1", *[f"x{s:g}" for s in cfg.msc_scales], "max"]
    amp = device.type == "cuda"
    speed = Speed.resolve(speed, device)

    def rounds(start: int):
        """One unit per iteration: its only step takes the next ``accumulate`` batches of the seeded stream."""
        stream = _batches(dataset, cfg, start * cfg.accumulate, pin=amp)
        try:
            while True:
                yield [itertools.islice(stream, cfg.accumulate)]
        finally:
            stream.close()

    plan = Plan("iteration", cfg.iterations, 1, rounds, deeplab_step(msc, names, cfg.accumulate, device, speed),
                poly_every=cfg.poly_every, checkpoint_every=cfg.checkpoint_every)
    return fit(model, lambda: model.param_groups(cfg.lr, cfg.weight_decay), cfg, plan, device, out, extra, speed)
