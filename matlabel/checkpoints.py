"""Model checkpoints, each writer beside its reader, and reading parts of them (a classifier's trunk as another
network's starting point).

A trained model (``results/<dataset>/maps/<method>/model.pt``, IRN's and DeepLab's ``rows/<row>/.../model.pt``) is
``{"model": state_dict, "meta": the training's config and code version, "history": per-epoch or per-iteration
losses}``; a resume checkpoint (``<model>.resume``) adds ``optimizer``, ``torch_rng`` and the progress
(``epoch`` or ``iteration``), kept at :func:`resume_path` while the model trains. Both go through ``torch.save``
(pickled: read only files this workflow wrote).
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def write_model(path: str | os.PathLike, model_state: dict, meta: dict, history: list) -> None:
    torch.save({"model": model_state, "meta": meta, "history": history}, path)


def write_resume(path: str | os.PathLike, model_state: dict, meta: dict, history: list, optimizer_state: dict,
                 **progress) -> None:
    """A resume checkpoint: the model's fields plus the optimiser, torch's RNG state and ``progress``
    (``epoch=`` or ``iteration=``)."""
    torch.save({"meta": meta, "model": model_state, "optimizer": optimizer_state, "torch_rng": torch.get_rng_state(),
                "history": history, **progress}, path)


def resume_path(model_path: str | os.PathLike) -> Path:
    """Where the resume checkpoint of the model ``model_path`` is kept while it trains: ``<model>.resume``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".resume")


def load_resume(path: str | os.PathLike, meta: dict, model: torch.nn.Module, opt: torch.optim.Optimizer,
                device: str | torch.device) -> dict | None:
    """Restore model, optimiser and torch's RNG from the resume checkpoint ``path`` (:func:`write_resume`) if it was
    written with ``meta`` (the same configuration); returns the checkpoint, or None when there is none, it does not
    match, or it holds a NaN or infinite weight, optimiser state or loss (a warning; nothing is loaded)."""
    if not Path(path).exists():
        return None
    ckpt = read_checkpoint(path, device)
    if ckpt["meta"] != meta:
        log.info("ignoring %s: it was written with another configuration", path)
        return None
    # A checkpoint with a NaN or infinite weight or loss (written before fit checked them, or damaged) is ignored
    # with a warning rather than refused with an error: its weights are of no use (resumed, they only carry the NaN
    # on to model.pt and every later stage), the fix an error would name is deleting the file, and a restart whose
    # training diverges again stops at fit's own check, naming the loss term and the step. The file is replaced at
    # the restarted run's first checkpoint.
    bad = nonfinite({"model": ckpt["model"], "optimizer": ckpt["optimizer"], "history": ckpt["history"]})
    if bad:
        log.warning("ignoring %s: %s %s NaN or infinite; training restarts from scratch and replaces it at its "
                    "first checkpoint", path, first_names(bad), "is" if len(bad) == 1 else "are")
        return None
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["torch_rng"])
    return ckpt


def nonfinite(tree) -> list[str]:
    """The NaN or infinite values in ``tree`` (nested dicts, lists and tuples of tensors and numbers: a state dict,
    an optimiser's state, a loss history), each named by its keys joined with dots, in the order of ``tree``.

    Reads each device's floating-point tensors back in one transfer (one host sync per device)."""
    leaves = list(_leaves(tree, ""))
    bad = {i for i, (_, v) in enumerate(leaves) if isinstance(v, float) and not math.isfinite(v)}
    by_device: dict[torch.device, list[int]] = {}
    for i, (_, v) in enumerate(leaves):
        if torch.is_tensor(v) and (v.is_floating_point() or v.is_complex()):
            by_device.setdefault(v.device, []).append(i)
    for indices in by_device.values():
        finite = torch.stack([torch.isfinite(leaves[i][1]).all() for i in indices]).tolist()
        bad.update(i for i, ok in zip(indices, finite) if not ok)
    return [leaves[i][0] for i in sorted(bad)]


def _leaves(tree, name: str) -> Iterator[tuple[str, object]]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, f"{name}.{k}" if name else str(k))
    elif isinstance(tree, (list, tuple)):
        for k, v in enumerate(tree):
            yield from _leaves(v, f"{name}.{k}" if name else str(k))
    else:
        yield name, tree


def first_names(names: list[str], n: int = 3) -> str:
    """``names`` for a message: the first ``n``, then how many more."""
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """The whole checkpoint (a model's or a resume one) as written above."""
    return torch.load(path, map_location=device, weights_only=False)


def read_model_state(path: str | os.PathLike) -> dict:
    """The state dict of a trained model's checkpoint, on the CPU. A NaN or infinite weight (a model written
    before training checked its losses) is an error naming the file: no later stage runs on it."""
    state = read_checkpoint(path)["model"]
    bad = nonfinite(state)
    if bad:
        raise ValueError(f"{path}: weights {first_names(bad)} are NaN or infinite (a diverged training); delete the "
                         f"file so that its training rule runs again")
    return state


def load_trunk(backbone: torch.nn.Module, checkpoint_path: str | os.PathLike) -> None:
    """Load the ``backbone.*`` tensors of a trained classifier checkpoint (``{"model": state_dict}``) into
    ``backbone`` (a ``matlabel.backbone`` backbone), strictly: the configs ``irn.backbone_from`` /
    ``deeplab.backbone_from``, the demo's stand-in for ImageNet weights. The architectures must match (same
    ``backbone.arch``)."""
    state = read_model_state(checkpoint_path)
    trunk = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    if not trunk:
        raise ValueError(f"{checkpoint_path} holds no backbone.* tensors")
    backbone.load_state_dict(trunk)
