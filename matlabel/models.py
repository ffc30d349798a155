"""Registry of the map-producing methods a ``{method}`` wildcard can name.

Each entry builds the network and names its training loss; every network exposes ``cam(x)`` so that
training, export and evaluation rules are shared. Later stages add D2CAM and ReCAM here.
"""
from __future__ import annotations

import torch

from matlabel.backbone import ResNetBackbone
from matlabel.cam import CAMNet
from matlabel.train import multilabel_loss


def build_cam(num_fg: int, backbone: dict) -> CAMNet:
    return CAMNet(num_fg, ResNetBackbone(**backbone))


METHODS = {
    # name: (builder(num_fg, backbone_kwargs) -> nn.Module, loss_fn(model, batch) -> {"total": ...})
    "cam": (build_cam, multilabel_loss),
}


def build(method: str, num_fg: int, backbone: dict, seed: int = 0):
    """(model, loss_fn) of ``method``; new layers are initialised from ``seed`` (global RNG untouched)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    builder, loss_fn = METHODS[method]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(num_fg, backbone), loss_fn
