"""Registry of the map-producing methods a ``{method}`` wildcard can name.

Each entry builds the network and its training loss; every network exposes ``cam(x)`` so that
training, export and evaluation rules are shared. D2CAM's Table 4 ablation variants are methods of
their own (``d2cam_<variant>``); the full D2CAM (``d2cam``) is variant ``d2_ma_oe``, so Table 1's
"D2CAM only" row and Table 4's last row share one trained model. ReCAM (``recam``, ``matlabel.recam``) brings
its own loss factory and config section.
"""
from __future__ import annotations

import dataclasses
import functools

import torch

from matlabel import d2cam, recam
from matlabel.backbone import build_backbone
from matlabel.cam import CAMNet
from matlabel.losses import VARIANTS, d2cam_loss
from matlabel.train import multilabel_loss


def build_cam(num_fg: int, backbone: dict) -> CAMNet:
    return CAMNet(num_fg, build_backbone(**backbone))


# name: (builder(num_fg, backbone_kwargs) -> nn.Module, loss), loss being one of
#   None: the plain CAM loss (config section ``cam``);
#   str: a D2CAM loss variant of matlabel.losses.VARIANTS (config section ``d2cam``);
#   callable: a loss factory ``f(**config[method]["loss"]) -> loss_fn`` (config section named as the method).
METHODS = {
    "cam": (build_cam, None),
    "d2cam": (d2cam.build, "d2_ma_oe"),
    "d2cam_d2": (d2cam.build, "d2"),
    "d2cam_d2_area": (d2cam.build, "d2_area"),
    "d2cam_d2_ma": (d2cam.build, "d2_ma"),
    "recam": (recam.build, recam.make_loss),
}
# Table 4 row (paper's ablation) -> the method that trains it
TABLE4_METHODS = {"cam": "cam", "d2": "d2cam_d2", "d2_area": "d2cam_d2_area", "d2_ma": "d2cam_d2_ma",
                  "d2_ma_oe": "d2cam"}


# Modules that only one family of methods runs (families: config sections cam, d2cam, recam). A rule serving several
# methods leaves the other families' modules out of each job's code hash (matlabel/codehash.py), so editing
# recam.py does not retrain CAM or D2CAM.
FAMILY_MODULES = {"cam": (), "d2cam": ("matlabel.d2cam", "matlabel.losses"), "recam": ("matlabel.recam",)}


def other_methods_modules(method: str) -> tuple[str, ...]:
    """The modules of the families other than ``method``'s (FAMILY_MODULES)."""
    own = config_section(method)
    return tuple(m for family, modules in FAMILY_MODULES.items() if family != own for m in modules)


def config_section(method: str) -> str:
    """The config.yaml section holding a method's training settings (``cam``, ``d2cam`` or the method's name)."""
    loss = METHODS[method][1]
    if loss is None:
        return "cam"
    return "d2cam" if isinstance(loss, str) else method


def net_options(method: str, section: dict) -> dict:
    """The network settings of ``method`` in its config section (``config_section``), as ``build``'s ``net``:
    D2CAM's ``border_pad`` (how ``cam`` reads its maps); none for the other methods. Training and export both
    build from these."""
    if isinstance(METHODS[method][1], str):
        return {"border_pad": int(section.get("border_pad", 0))}
    return {}


def build(method: str, num_fg: int, backbone: dict, seed: int = 0, loss: dict | None = None,
          net: dict | None = None):
    """(model, loss_fn) of ``method``; new layers are initialised from ``seed`` (global RNG untouched).

    ``loss`` overrides the D2CAM loss weights (beta, margin, lam, gamma_*) of the method's variant, or is
    passed as keyword arguments to the method's loss factory (ReCAM: ``ce_weight``). ``net`` holds the
    builder's architecture keywords (``net_options``).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    builder, variant = METHODS[method]
    if variant is None:
        loss_fn = multilabel_loss
    elif callable(variant):  # the method's own loss factory
        loss_fn = variant(**(loss or {}))
    else:
        loss_fn = functools.partial(d2cam_loss, cfg=dataclasses.replace(VARIANTS[variant], **(loss or {})))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(num_fg, backbone, **(net or {})), loss_fn


def trunk_for_training(backbone: dict, train_n1: bool | None) -> dict:
    """The backbone settings a method trains with: ``train_n1`` (config ``d2cam.train_n1``) true trains D2CAM's N1
    (stem..layer2) too, i.e. ``train_from: stem`` (paper Sec. 4.2 truncates N1's gradient in L_d2 only); false or
    None (methods without the key) keep ``backbone.train_from``. Only the gradient changes: the weights' names and
    shapes, hence export and every later reader, are the same."""
    backbone = dict(backbone)
    if train_n1:
        backbone["train_from"] = "stem"
    return backbone


def load_init(model: torch.nn.Module, checkpoint: dict) -> list[str]:
    """Start ``model`` from another method's trained weights (config ``d2cam.init_from``, ``recam.init_from``).

    Copies every tensor of the source (a CAM model: the ResNet trunk and the 1×1 classifier, which D2CAM and
    ReCAM have under the same names); parameters the source does not have (D2CAM's generator φ, ReCAM's class
    predictor) keep their fresh initialisation. Returns the names left at their initialisation. Raises
    ValueError when a source tensor has no counterpart of the same shape (another arch, another class count),
    so a wrong file can neither half-load nor silently train from scratch.
    """
    source = checkpoint["model"]
    target = model.state_dict()
    bad = [k for k, v in source.items() if k not in target or target[k].shape != v.shape]
    if bad or not source:
        raise ValueError(f"the init checkpoint does not fit the model's backbone/classifier: "
                         f"{len(bad)} of {len(source)} tensors differ in name or shape, e.g. {bad[:3]}")
    model.load_state_dict(source, strict=False)
    return sorted(set(target) - set(source))
