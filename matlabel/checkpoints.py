"""Reading parts of trained models: a classifier's ResNet trunk as another network's starting point."""
from __future__ import annotations

import os

import torch


def load_trunk(backbone: torch.nn.Module, checkpoint_path: str | os.PathLike) -> None:
    """Load the ``backbone.*`` tensors of a trained classifier checkpoint (``{"model": state_dict}``) into
    ``backbone`` (a ``matlabel.backbone`` backbone), strictly: the configs ``irn.backbone_from`` / ``deeplab.backbone_from``,
    the demo's stand-in for ImageNet weights. The architectures must match (same ``backbone.arch``)."""
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)["model"]
    trunk = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    if not trunk:
        raise ValueError(f"{checkpoint_path} holds no backbone.* tensors")
    backbone.load_state_dict(trunk)
