"""The training loop of every model (:func:`fit`) and the classifier-type models' use of it (:func:`train`: CAM,
D2CAM, ReCAM and IRN plug in a loss; DeepLab-v2 plugs in its own batches and step in ``matlabel.deeplab.train``).

SGD with a polynomial learning-rate decay (lr · (1 − step/max_step)^power, IRN's per step, deeplab-pytorch's every
10 steps), seeded data order, a resume checkpoint that a killed job resumes from (``matlabel.checkpoints``), bf16
autocast on CUDA (losses in fp32) and fp32 on CPU. How the work is executed (:class:`Speed`: torch.compile of the
forward pass and loss, a fused SGD, channels_last) is set apart from the recipe (config ``speed:``); a flag's ``auto``
is on for CUDA and off for CPU (config.yaml keeps ``compile`` off until measured on a GPU), so CPU results stay those
of the plain eager loop.
"""
from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from matlabel.checkpoints import first_names, load_resume, nonfinite, resume_path, write_model, write_resume
from matlabel.io import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule of a classifier's or IRN's training. No recipe defaults here: config.yaml's ``cam``,
    ``d2cam``, ``recam`` and ``irn.train`` sections set every field (the paper's and the references' values, each
    cited there); only ``seed`` and ``num_workers`` default."""

    epochs: int
    batch_size: int
    lr: float
    head_lr_mult: float
    weight_decay: float
    momentum: float
    poly_power: float
    seed: int = 0
    num_workers: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA if available, else CPU; ``cuda`` without CUDA is an error naming the fix."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config device: cuda, but no CUDA device is visible to PyTorch; "
                           "set `device: auto` or `device: cpu` (or run on a GPU node)")
    return torch.device(name)


def multilabel_loss(model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    """L_cls: multi-label soft-margin loss on the logits (the CAM baseline's only loss)."""
    logits = model(batch["image"])
    loss = F.multilabel_soft_margin_loss(logits.float(), batch["label"])
    return {"total": loss, "cls": loss}


SPEED_FLAGS = ("compile", "fused_optimizer", "channels_last")


@dataclass(frozen=True)
class Speed:
    """How a training is executed on its device, apart from the recipe (config ``speed:``, docs/reproducing.md).

    ``compile``: ``torch.compile`` of each step's forward pass and loss (one graph per input shape, the model's own
    parameters: checkpoints keep the plain module's keys); ``fused_optimizer``: SGD's fused kernel (``fused=True``)
    instead of its for-each one; ``channels_last``: model and input images in channels-last memory format. Each
    changes float rounding only, never the recipe.
    """

    compile: bool = False
    fused_optimizer: bool = False
    channels_last: bool = False

    @classmethod
    def resolve(cls, flags: Speed | Mapping | None, device: torch.device) -> Speed:
        """The flags for ``device`` from a config ``speed:`` mapping (missing keys: ``auto``): ``auto`` is on for
        CUDA and off otherwise; ``true`` / ``false`` (or the text "true" / "false") force it."""
        if isinstance(flags, Speed):
            return flags
        flags = dict(flags or {})
        unknown = sorted(set(flags) - set(SPEED_FLAGS))
        if unknown:
            raise ValueError(f"unknown speed flags {unknown}; known: {list(SPEED_FLAGS)}")
        values = {}
        for name in SPEED_FLAGS:
            value = flags.get(name, "auto")
            value = {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value
            if value == "auto":
                value = torch.device(device).type == "cuda"
            if not isinstance(value, bool):
                raise ValueError(f"speed.{name} must be auto, true or false, got {flags.get(name)!r}")
            values[name] = value
        return cls(**values)

    @classmethod
    def parse(cls, spec: str, device: torch.device, rules: Speed | Mapping | None = None) -> Speed:
        """A setting named on a command line (the benches' ``--speed-flags``): ``rules`` (what the rules run with on
        ``device``: ``rules`` is the config's ``speed:`` section, resolved as the training rules resolve it), ``auto``
        (every flag auto: all on for CUDA, which is not the rules' setting while config.yaml keeps ``compile:
        false``), ``off``, ``on``, or flag names joined by ``+`` (those on, the others off)."""
        if spec == "rules":
            return cls.resolve(rules, device)
        if spec in ("auto", "off", "on"):
            return cls.resolve({} if spec == "auto" else dict.fromkeys(SPEED_FLAGS, spec == "on"), device)
        flags = spec.split("+")
        if not set(flags) <= set(SPEED_FLAGS):
            raise ValueError(f"speed setting {spec!r} is not rules, auto, off, on or flag names joined by + of "
                             f"{', '.join(SPEED_FLAGS)}")
        return cls(**{f: f in flags for f in SPEED_FLAGS})

    def optimizer(self, groups: list[dict], lr: float, momentum: float) -> torch.optim.SGD:
        """SGD over ``groups``; fused when ``fused_optimizer``."""
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, **({"fused": True} if self.fused_optimizer else {}))

    def compiled(self, fn: Callable, dynamic: bool | None = False) -> Callable:
        """``fn`` (a step's forward pass and loss) compiled when ``compile``, else itself. ``dynamic=False``: a
        graph per input shape (DeepLab: the full batch and an epoch's smaller last one); ``None``: torch's automatic
        dynamic shapes, one graph for every size once a size changes (D2CAM's and ReCAM's pair branches: a batch's
        number of labels varies)."""
        return torch.compile(fn, dynamic=dynamic) if self.compile else fn


def poly_lr(base: float, step: int, max_step: int, power: float) -> float:
    return base * (1 - step / max_step) ** power


def resume_meta(cfg, extra: dict | None = None) -> dict:
    """What a resume checkpoint must match to be picked up: the training config without ``num_workers`` (it
    follows the rule's threads, i.e. ``--cores``, and does not change the result: augmentation draws are keyed by
    (seed, epoch, index)) plus the caller's ``extra`` (backbone, code version, input stamps, ...)."""
    config = asdict(cfg)
    config.pop("num_workers", None)
    return {"config": config, "extra": extra or {}}


def input_stamps(*paths) -> dict[str, int]:
    """{path: modification time (ns)} of the given files/directories (nested lists flattened). Put in a training's
    ``extra``, it keeps a resume checkpoint from being picked up after its inputs were remade upstream (a plain
    resume after a kill sees the same times)."""
    flat: list[str] = []
    for p in paths:
        flat.extend([str(x) for x in p] if isinstance(p, (list, tuple)) else [str(p)])
    return {p: os.stat(p).st_mtime_ns for p in sorted(flat)}


@dataclass(frozen=True)
class Plan:
    """What one model's training feeds the shared loop :func:`fit`.

    Training is ``units`` units (``progress``: ``"epoch"`` for the classifiers, ``"iteration"`` for DeepLab) of
    ``steps_per_unit`` optimiser steps each. ``rounds(start)`` is a generator that yields, for each unit from
    ``start`` on, the inputs of its steps (an epoch's batches; one iteration's sub-batches); ``step(inputs)`` runs the
    forward and backward passes of one step and returns its loss terms as detached 0-dim tensors on the device (read
    by the loop in float64 at checkpoints and at the end only: no host sync per step). The learning rate is updated
    every ``poly_every`` steps; a resume checkpoint is written every ``checkpoint_every`` units (the last one
    included). A NaN or infinite loss term stops the training before the next checkpoint (:class:`FiniteWatch`).
    """

    progress: str
    units: int
    steps_per_unit: int
    rounds: Callable[[int], Generator[Iterable[Any], None, None]]
    step: Callable[[Any], dict[str, torch.Tensor]]
    poly_every: int = 1
    checkpoint_every: int = 1


def fit(model: torch.nn.Module, groups: Callable[[], list[dict]], cfg, plan: Plan, device: torch.device,
        out: str | os.PathLike, extra: dict | None = None, speed: Speed | Mapping | None = None) -> list[dict]:
    """Train ``model`` by ``plan`` and write ``{"model": state_dict, "meta": {"config", "extra"}, "history"}`` to
    ``out``; returns the history.

    ``groups()`` gives the SGD parameter groups (each with its base ``lr``), ``cfg`` the ``seed``, ``lr``,
    ``momentum`` and ``poly_power``. The learning rate of step s is ``poly_lr(base, poly_every * (s // poly_every),
    total steps, poly_power)``. The history holds one ``{progress: n, "lr": the first group's, <term>: mean over the
    unit's steps}`` per unit. The resume checkpoint ``<out>.resume`` is picked up by a later call with equal
    ``meta`` (:func:`resume_meta`), which then reaches the weights of an uninterrupted run; it is removed at the end.
    ``speed`` (:class:`Speed`, default: each flag ``auto``) sets the optimiser's kernel and the model's memory format
    (the plan's step compiles its own forward pass and puts its inputs in the same format); the history's values are
    the same float64 sums as the loss terms read one by one, synced with the host only when a checkpoint is written.

    A NaN or infinite loss term, or a NaN or infinite weight (parameter, buffer or optimiser state), raises
    ``FloatingPointError`` naming the term (or weight) and the step it first appeared at, before anything is written:
    the last resume checkpoint, if any, is the last finite state (:class:`FiniteWatch`).
    """
    speed = Speed.resolve(speed, device)
    log.info("on %s: %s", device, speed)
    seed_everything(cfg.seed)
    out = Path(out)
    resume = resume_path(out)
    model.to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = speed.optimizer(groups(), cfg.lr, cfg.momentum)
    base_lrs = [g["lr"] for g in opt.param_groups]
    max_step = plan.units * plan.steps_per_unit
    meta = resume_meta(cfg, extra)
    start, history = 0, []
    ckpt = load_resume(resume, meta, model, opt, device)
    if ckpt is not None:
        start, history = ckpt[plan.progress], ckpt["history"]
        log.info("resuming from %s at %s %d", resume, plan.progress, start)
    step = start * plan.steps_per_unit
    model.train()
    rounds = plan.rounds(start)
    bar = tqdm(total=max_step, initial=step, desc=f"{plan.units} {plan.progress}s", mininterval=5)
    pending: list[tuple[dict, dict[str, torch.Tensor], int]] = []  # units whose loss sums are still on the device
    watch = FiniteWatch(out, plan, max_step)
    try:
        for unit, inputs in zip(range(start, plan.units), rounds):
            sums: dict[str, torch.Tensor] = {}
            n = 0
            for item in inputs:
                for g, base in zip(opt.param_groups, base_lrs):
                    g["lr"] = poly_lr(base, plan.poly_every * (step // plan.poly_every), max_step, cfg.poly_power)
                opt.zero_grad(set_to_none=True)
                losses = plan.step(item)
                opt.step()
                for k, v in losses.items():  # float64 on the device: the sum of the terms read as Python floats
                    v = v.double() if torch.is_tensor(v) else torch.tensor(v, dtype=torch.float64)
                    sums[k] = sums[k] + v if k in sums else v
                    watch.update(k, v, step)
                step, n = step + 1, n + 1
                bar.update()
            pending.append(({plan.progress: unit + 1, "lr": opt.param_groups[0]["lr"]}, sums, n))
            if (unit + 1) % plan.checkpoint_every == 0:
                history.extend(watch.losses(_read_sums(pending), step))
                bar.set_postfix(loss=f"{history[-1].get('total', float('nan')):.4f}")
                log.info("%s %d: %s", plan.progress, unit + 1, history[-1])
                state, opt_state = model.state_dict(), opt.state_dict()
                watch.weights({"model": state, "optimizer": opt_state}, step)
                with atomic_path(resume, suffix=".pt") as tmp:
                    write_resume(tmp, state, meta, history, opt_state, **{plan.progress: unit + 1})
    finally:
        rounds.close()  # shuts down the DataLoader workers of the current epoch
        bar.close()
    history.extend(watch.losses(_read_sums(pending), step))
    state = model.state_dict()
    watch.weights({"model": state}, step)
    with atomic_path(out) as tmp:
        write_model(tmp, state, meta, history)
    resume.unlink(missing_ok=True)
    return history


class FiniteWatch:
    """Stops a training (:func:`fit`) on a NaN or infinite loss term or weight, before it is written.

    Each step, per loss term, two device tensors are updated in place (:meth:`update`; no host sync): whether every
    value so far was finite, and the number of steps while it was, which gives the first non-finite step. They are
    read only where the loop reads its loss sums anyway (:meth:`losses`), and only when a sum is not finite (a NaN or
    infinity stays in a sum). Nothing here draws random numbers or touches the values the training computes.
    """

    def __init__(self, out: Path, plan: Plan, max_step: int):
        self.out, self.plan, self.max_step = out, plan, max_step
        self.ok: dict[str, torch.Tensor] = {}  # term → all its values finite so far (bool, on the device)
        self.good: dict[str, torch.Tensor] = {}  # term → steps counted while all were finite (int64, on the device)
        self.since: dict[str, int] = {}  # term → 0-based index of the first step counted

    def update(self, term: str, value: torch.Tensor, step: int) -> None:
        """Take the value of ``term`` at step ``step`` (0-based), a tensor on the training's device."""
        if term not in self.ok:
            self.ok[term] = torch.ones((), dtype=torch.bool, device=value.device)
            self.good[term] = torch.zeros((), dtype=torch.int64, device=value.device)
            self.since[term] = step
        self.ok[term].logical_and_(torch.isfinite(value).reshape(()))
        self.good[term].add_(self.ok[term])

    def losses(self, entries: list[dict], step: int) -> list[dict]:
        """The history ``entries`` read after ``step`` steps, or ``FloatingPointError`` if a term in them is not
        finite: each non-finite term with the (1-based) step and unit where it first was."""
        if all(math.isfinite(v) for e in entries for v in e.values()):
            return entries
        first = {k: self.since[k] + int(self.good[k]) + 1 for k in self.ok if not bool(self.ok[k])}
        terms = [f"'{k}' from step {s} ({self.plan.progress} {(s - 1) // self.plan.steps_per_unit + 1}) on"
                 for k, s in sorted(first.items(), key=lambda kv: (kv[1], kv[0]))]
        if not terms:  # every step's value finite, their float64 sum not: only Python floats near 1e308 do that
            terms = [f"'{k}' summed over {self.plan.progress} {e[self.plan.progress]}"
                     for e in entries for k, v in e.items() if not math.isfinite(v)]
        self._stop(f"NaN or infinite loss: {', '.join(terms)}", step)

    def weights(self, state: dict, step: int) -> None:
        """``FloatingPointError`` if a tensor of ``state`` (``{"model": state dict, "optimizer": its state}``) holds a
        NaN or infinity (every loss term having been finite: e.g. an infinite gradient or BatchNorm variance)."""
        bad = nonfinite(state)
        if bad:
            self._stop(f"{first_names(bad)} {'is' if len(bad) == 1 else 'are'} NaN or infinite although every loss "
                       "term was finite", step)

    def _stop(self, what: str, step: int) -> NoReturn:
        resume = resume_path(self.out)
        kept = (f"{resume} keeps the last finite checkpoint and a rerun resumes from it" if resume.exists()
                else "there is no earlier checkpoint")
        raise FloatingPointError(
            f"training of {self.out} diverged: {what}; stopped after step {step} of {self.max_step} without writing "
            f"a checkpoint ({kept}). Lower the learning rate in the config (a new config starts from scratch) or "
            "check the training inputs, then rerun.")


def _read_sums(pending: list) -> list[dict]:
    """History entries of the ``pending`` units (``(entry, {term: float64 sum on the device}, steps)``; emptied):
    each term's sum read back in one transfer, then divided by the unit's steps in Python, as the loop did when it
    read every term with ``float()``."""
    if not pending:
        return []
    keys = [(i, k) for i, (_, sums, _) in enumerate(pending) for k in sums]
    values = torch.stack([pending[i][1][k].reshape(()) for i, k in keys]).tolist() if keys else []
    entries = [dict(entry) for entry, _, _ in pending]
    for (i, k), v in zip(keys, values):
        entries[i][k] = v / max(1, pending[i][2])
    pending.clear()
    return entries


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    """The batch's tensors on ``device``; its images channels_last when ``channels_last`` (as the model)."""
    batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
    if channels_last:
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    return batch


def epoch_loaders(dataset, cfg: TrainConfig, pin: bool) -> Callable[[int], Generator]:
    """``rounds`` of a :class:`Plan` by epochs: from epoch ``start`` on, a loader over the whole dataset in batches of
    ``cfg.batch_size`` (the last one smaller), shuffled by a generator seeded with (seed, epoch), after
    ``dataset.set_epoch`` (augmentation draws keyed by (seed, epoch, index))."""

    def rounds(start: int) -> Generator[torch.utils.data.DataLoader, None, None]:
        for epoch in range(start, cfg.epochs):
            dataset.set_epoch(epoch)
            gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            yield torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                                              num_workers=cfg.num_workers, drop_last=False, pin_memory=pin)

    return rounds


def classifier_step(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, dict], dict], device: torch.device,
                    speed: Speed) -> Callable[[dict], dict[str, torch.Tensor]]:
    """One training step of a classifier-type model (the ``step`` of :func:`train`'s plan; the optimiser step is the
    loop's): the batch to the device, ``loss_fn(model, batch)`` under autocast (bf16 on CUDA; compiled with the
    model's forward pass when ``speed.compile``), backward; returns the detached loss terms."""
    cuda = device.type == "cuda"

    def forward(batch: dict) -> dict[str, torch.Tensor]:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            return loss_fn(model, batch)

    forward = speed.compiled(forward, dynamic=None)

    def step(batch: dict) -> dict[str, torch.Tensor]:
        losses = forward(to_device(batch, device, speed.channels_last))
        losses["total"].backward()
        return {k: v.detach() for k, v in losses.items()}

    return step


def train(model: torch.nn.Module, dataset, cfg: TrainConfig, device: torch.device, out: str | os.PathLike,
          loss_fn: Callable[[torch.nn.Module, dict], dict] = multilabel_loss, extra: dict | None = None,
          speed: Speed | Mapping | None = None) -> list[dict]:
    """Train ``model`` on ``dataset`` by epochs (IRN's recipe) with :func:`fit`; returns the per-epoch history (mean
    of each loss term).

    Parameters: ``model.param_groups()`` gives (pretrained, new) parameters, at ``cfg.lr`` and ``cfg.lr ·
    head_lr_mult``; ``loss_fn(model, batch)`` the loss terms, ``"total"`` among them, computed under autocast. A
    resume checkpoint is written after each epoch, so a killed job loses at most one. ``speed``: :class:`Speed`
    or a config ``speed:`` mapping (default: each flag ``auto``).
    """
    if len(dataset) == 0:  # else PyTorch's "num_samples=0" from the sampler
        raise ValueError("the training set is empty: no image of the training split has an object label")
    cuda = device.type == "cuda"
    speed = Speed.resolve(speed, device)

    def groups() -> list[dict]:
        pretrained, new = model.param_groups()
        return [{"params": pretrained, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                {"params": new, "lr": cfg.lr * cfg.head_lr_mult, "weight_decay": cfg.weight_decay}]

    plan = Plan("epoch", cfg.epochs, math.ceil(len(dataset) / cfg.batch_size), epoch_loaders(dataset, cfg, pin=cuda),
                classifier_step(model, loss_fn, device, speed))
    return fit(model, groups, cfg, plan, device, out, extra, speed)
