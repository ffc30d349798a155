"""The training loop shared by the classifier-type models (CAM now; D2CAM and ReCAM plug in a loss).

SGD with IRN's polynomial decay (lr · (1 − step/max_step)^power per step), a 1×/10× learning rate for
pretrained/new parameters, seeded data order, an epoch checkpoint that a killed job resumes from, bf16
autocast on CUDA (losses in fp32) and fp32 on CPU.
"""
from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from matlabel.checkpoints import read_checkpoint, write_model, write_resume
from matlabel.io import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule (IRN step/train_cam.py defaults for the CAM baseline)."""

    epochs: int = 5
    batch_size: int = 16
    lr: float = 0.1
    head_lr_mult: float = 10.0
    weight_decay: float = 1e-4
    momentum: float = 1e-4
    poly_power: float = 0.9
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


def load_resume(path: Path, meta: dict, model: torch.nn.Module, opt: torch.optim.Optimizer,
                device: torch.device) -> dict | None:
    """Restore model, optimiser and torch RNG from the resume checkpoint ``path`` if it was written with ``meta``
    (the same configuration); returns the checkpoint dict, or None when there is none or it does not match."""
    if not path.exists():
        return None
    ckpt = read_checkpoint(path, device)
    if ckpt["meta"] != meta:
        log.info("ignoring %s: it was written with another configuration", path)
        return None
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["torch_rng"])
    return ckpt


def train(model: torch.nn.Module, dataset, cfg: TrainConfig, device: torch.device, out: str | os.PathLike,
          loss_fn: Callable[[torch.nn.Module, dict], dict] = multilabel_loss, extra: dict | None = None) -> list[dict]:
    """Train ``model`` on ``dataset`` and write ``{"model": state_dict, "config": ..., "history": ...}`` to ``out``.

    A checkpoint ``<out>.resume`` is written after each epoch and picked up by the next call with the same
    configuration, so a killed job loses at most one epoch; it is removed when training finishes.
    Returns the per-epoch history (mean of each loss term).
    """
    if len(dataset) == 0:  # else PyTorch's "num_samples=0" from the sampler
        raise ValueError("the training set is empty: no image of the training split has an object label")
    seed_everything(cfg.seed)
    out = Path(out)
    resume = out.with_name(out.name + ".resume")
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    pretrained, new = model.param_groups()
    opt = torch.optim.SGD([
        {"params": pretrained, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": new, "lr": cfg.lr * cfg.head_lr_mult, "weight_decay": cfg.weight_decay},
    ], lr=cfg.lr, momentum=cfg.momentum)
    base_lrs = [g["lr"] for g in opt.param_groups]
    steps_per_epoch = math.ceil(len(dataset) / cfg.batch_size)
    max_step = cfg.epochs * steps_per_epoch
    start_epoch, history = 0, []
    meta = resume_meta(cfg, extra)
    ckpt = load_resume(resume, meta, model, opt, device)
    if ckpt is not None:
        start_epoch, history = ckpt["epoch"], ckpt["history"]
        log.info("resuming from %s at epoch %d", resume, start_epoch)
    amp = device.type == "cuda"
    for epoch in range(start_epoch, cfg.epochs):
        dataset.set_epoch(epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                                             num_workers=cfg.num_workers, drop_last=False,
                                             pin_memory=device.type == "cuda")
        model.train()
        sums: dict[str, float] = {}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=True, mininterval=5)
        for i, batch in enumerate(bar):
            step = epoch * steps_per_epoch + i
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = poly_lr(base, step, max_step, cfg.poly_power)
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            if device.type == "cuda":
                batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                losses = loss_fn(model, batch)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{float(losses['total'].detach()):.4f}")
        history.append({"epoch": epoch + 1, **{k: v / max(1, len(loader)) for k, v in sums.items()}})
        log.info("epoch %d: %s", epoch + 1, history[-1])
        with atomic_path(resume, suffix=".pt") as tmp:
            write_resume(tmp, model.state_dict(), meta, history, opt.state_dict(), epoch=epoch + 1)
    with atomic_path(out) as tmp:
        write_model(tmp, model.state_dict(), meta, history)
    resume.unlink(missing_ok=True)
    return history
