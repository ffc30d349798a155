"""Registry of the map-producing methods a ``{method}`` wildcard can name.

Each entry builds the network and its training loss; every network exposes ``cam(x)`` so that
training, export and evaluation rules are shared. D2CAM's Table 4 ablation variants are methods of
their own (``d2cam_<variant>``); the full D2CAM (``d2cam``) is variant ``d2_ma_oe``, so Table 1's
"D2CAM only" row and Table 4's last row share one trained model.
"""
from __future__ import annotations

import dataclasses
import functools

import torch

from matlabel import d2cam
from matlabel.backbone import ResNetBackbone
from matlabel.cam import CAMNet
from matlabel.losses import VARIANTS, d2cam_loss
from matlabel.train import multilabel_loss


def build_cam(num_fg: int, backbone: dict) -> CAMNet:
    return CAMNet(num_fg, ResNetBackbone(**backbone))


# name: (builder(num_fg, backbone_kwargs) -> nn.Module, D2CAM loss variant or None for the plain CAM loss)
METHODS = {
    "cam": (build_cam, None),
    "d2cam": (d2cam.build, "d2_ma_oe"),
    "d2cam_d2": (d2cam.build, "d2"),
    "d2cam_d2_area": (d2cam.build, "d2_area"),
    "d2cam_d2_ma": (d2cam.build, "d2_ma"),
}
# Table 4 row (paper's ablation) -> the method that trains it
TABLE4_METHODS = {"cam": "cam", "d2": "d2cam_d2", "d2_area": "d2cam_d2_area", "d2_ma": "d2cam_d2_ma",
                  "d2_ma_oe": "d2cam"}


def config_section(method: str) -> str:
    """The config.yaml section holding a method's training settings (``cam`` or ``d2cam``)."""
    return "cam" if METHODS[method][1] is None else "d2cam"


def build(method: str, num_fg: int, backbone: dict, seed: int = 0, loss: dict | None = None):
    """(model, loss_fn) of ``method``; new layers are initialised from ``seed`` (global RNG untouched).

    ``loss`` overrides the D2CAM loss weights (beta, margin, lam, gamma_*) of the method's variant.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    builder, variant = METHODS[method]
    if variant is None:
        loss_fn = multilabel_loss
    else:
        loss_fn = functools.partial(d2cam_loss, cfg=dataclasses.replace(VARIANTS[variant], **(loss or {})))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(num_fg, backbone), loss_fn
