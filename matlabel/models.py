"""Networks and losses of the map-producing methods (their names and settings: ``matlabel.methods``).

Each method builds its network and its training loss; every network exposes ``cam(x)`` so that training, export
and evaluation rules are shared.
"""
from __future__ import annotations

import dataclasses
import functools

import torch

from matlabel import d2cam, recam
from matlabel.backbone import build_backbone
from matlabel.cam import CAMNet
from matlabel.losses import VARIANTS, d2cam_loss
from matlabel.methods import METHODS as _METHODS
from matlabel.methods import TABLE4_METHODS, config_section  # noqa: F401  (re-exported)
from matlabel.train import multilabel_loss


def build_cam(num_fg: int, backbone: dict) -> CAMNet:
    return CAMNet(num_fg, build_backbone(**backbone))


_BUILDERS = {"cam": build_cam, "d2cam": d2cam.build, "recam": recam.build}


def _loss(method: str):
    """None: the plain CAM loss; str: a D2CAM loss variant of matlabel.losses.VARIANTS; callable: the family's loss
    factory ``f(**config[method]["loss"]) -> loss_fn`` (ReCAM)."""
    family, variant = _METHODS[method]
    return {"cam": None, "d2cam": variant, "recam": recam.make_loss}[family]


# name: (builder(num_fg, backbone_kwargs) -> nn.Module, loss) for every method of matlabel.methods
METHODS = {name: (_BUILDERS[family], _loss(name)) for name, (family, _) in _METHODS.items()}


def build(method: str, num_fg: int, backbone: dict, seed: int = 0, loss: dict | None = None):
    """(model, loss_fn) of ``method``; new layers are initialised from ``seed`` (global RNG untouched).

    ``loss`` gives the D2CAM loss weights (config.yaml ``d2cam.loss``: beta, margin, lam, gamma_*) to the method's
    variant, which sets only which terms run (the loss refuses to run without them), or is passed as keyword
    arguments to the method's loss factory (ReCAM: ``ce_weight``).
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
        return builder(num_fg, backbone), loss_fn


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
