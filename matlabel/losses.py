"""The D2CAM training losses (paper Sec. 3.2.1 Eq. 5–8, Sec. 4.2 "Training"), one function per equation.

L_total = L_cls + γ1·L_d2 + γ2·L_ma + γ3·L_oe, the weights those of config.yaml ``d2cam.loss``. Every term is computed
in fp32, also under bf16 autocast. Reductions (the paper writes each loss for one image): a per-image value is averaged
over the images of the batch that hold at least one label (images without labels have no classes to decouple and
contribute nothing).

``d2cam_loss(model, batch, cfg)`` is the ``loss_fn(model, batch) -> {"total", <term>...}`` of
``matlabel.train.train``; ``loss_for_variant(name, weights)`` gives it for one Table 4 variant of ``VARIANTS``.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AREA_MODES = ("ma", "area", "none")
# The weights of the loss: their values are config.yaml's d2cam.loss alone (the paper's, Sec. 3.2.1 and 4.2).
WEIGHTS = ("beta", "margin", "lam", "gamma_d2", "gamma_ma", "gamma_oe")


@dataclass(frozen=True)
class D2CAMLossConfig:
    """Loss weights and switches (paper Sec. 3.2.1 and 4.2; Table 4 ablation).

    The weights (:data:`WEIGHTS`) have no values here: they are config.yaml's ``d2cam.loss``, None until given
    (``dataclasses.replace(cfg, **weights)``, as ``matlabel.models.build`` does), and :func:`d2cam_loss` refuses a
    config without them. A Table 4 variant (:data:`VARIANTS`) sets the switches only.

    Attributes
    ----------
    beta : β of Eq. 5, weight of the background term.
    margin : m of Eq. 6, the area ratio above which the area is fully penalised.
    lam : λ of Eq. 6, the weight of the area below the margin.
    gamma_d2, gamma_ma, gamma_oe : γ1, γ2, γ3 of L_total; ``gamma_ma`` also weights the plain L_area of the
        ``area="area"`` variant.
    use_d2 : add L_d2 (Eq. 5).
    area : ``"ma"`` margin-wise area loss (Eq. 6), ``"area"`` plain area loss (Eq. 7), ``"none"``.
    use_oe : add the overlap elimination loss (Eq. 8).
    """

    beta: float | None = None
    margin: float | None = None
    lam: float | None = None
    gamma_d2: float | None = None
    gamma_ma: float | None = None
    gamma_oe: float | None = None
    use_d2: bool = True
    area: str = "ma"
    use_oe: bool = True

    def __post_init__(self):
        if self.area not in AREA_MODES:
            raise ValueError(f"area must be one of {AREA_MODES}, got {self.area!r}")


# Table 4 rows other than the plain CAM baseline (which is matlabel.models' "cam" method)
VARIANTS = {
    "d2": D2CAMLossConfig(area="none", use_oe=False),
    "d2_area": D2CAMLossConfig(area="area", use_oe=False),
    "d2_ma": D2CAMLossConfig(area="ma", use_oe=False),
    "d2_ma_oe": D2CAMLossConfig(),  # the full D2CAM
}


def cls_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_cls: multi-label soft-margin loss (Sec. 3.2.1 "Loss Functions", as the CAM baseline).

    logits : (B, N) Ŷ; labels : (B, N) multi-hot {0, 1}. Returns a scalar ≥ 0, the mean over images and
    classes of −[y·log σ(ŷ) + (1 − y)·log(1 − σ(ŷ))].
    """
    return F.multilabel_soft_margin_loss(logits.float(), labels.float())


def d2_loss(y_fg: torch.Tensor, y_bg: torch.Tensor, pair_img: torch.Tensor, pair_cls: torch.Tensor,
            labels: torch.Tensor, beta: float) -> torch.Tensor:
    """L_d2, the double decoupled loss (Eq. 5).

    Per (image, class) pair: ReLU(1 − β·SCE(Ŷ_bg^c, Y^c) + SCE(Ŷ_fg^c, Y^c)), SCE = softmax cross-entropy
    against the one-hot Y^c of class c (≥ 0). Averaged over the classes of each image (the 1/|C| of Eq. 5),
    then over the labelled images of the batch (so an image with three classes weighs as much as one with one).

    Parameters
    ----------
    y_fg, y_bg : (P, N) logits Ŷ_fg^c, Ŷ_bg^c of the P pairs.
    pair_img, pair_cls : (P,) long, image and class index of each pair (distinct pairs).
    labels : (B, N) multi-hot labels the pairs come from.
    beta : β, the weight of the background term (config d2cam.loss.beta).

    Returns
    -------
    Scalar ≥ 0.
    """
    sce_fg = F.cross_entropy(y_fg.float(), pair_cls, reduction="none")
    sce_bg = F.cross_entropy(y_bg.float(), pair_cls, reduction="none")
    per_pair = F.relu(1 - beta * sce_bg + sce_fg)  # (P,)
    # (B, N) grid of pair losses (index_put of distinct indices: deterministic, unlike index_add on CUDA)
    grid = torch.zeros(labels.shape, dtype=per_pair.dtype, device=per_pair.device)
    grid = grid.index_put((pair_img, pair_cls), per_pair)
    return _mean_over_labelled(grid.sum(1) / _class_count(labels).clamp(min=1), labels)


def area_per_image(m_fg: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_area of each image (Eq. 7), normalised: the mean over present classes of the mean of M_fg^c.

    Eq. 7 sums over the pixels, but its margin m in Eq. 6 is a "foreground area ratio", so we divide
    by the number of pixels h·w: the value is the mean foreground fraction, in [0, 1] and independent of
    the crop size.

    m_fg : (B, N, h, w) in [0, 1]; labels : (B, N) multi-hot. Returns (B,) in [0, 1] (0 without labels).
    """
    y = (labels > 0).float()
    ratio = m_fg.float().mean((2, 3))  # (B, N) area ratio of every class map
    return (ratio * y).sum(1) / _class_count(labels).clamp(min=1)


def area_loss(m_fg: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_area (Eq. 7, normalised as in ``area_per_image``) averaged over the labelled images: scalar in [0, 1]."""
    return _mean_over_labelled(area_per_image(m_fg, labels), labels)


def ma_loss(m_fg: torch.Tensor, labels: torch.Tensor, margin: float, lam: float) -> torch.Tensor:
    """L_ma, the margin-wise area loss (Eq. 6): ReLU(L_area − m) + λ·L_area per image, then the batch mean.

    The margin applies to each image's own area ratio (the paper: "when the sample foreground area ratio"
    is above m the weight is 1 + λ, else λ), not to the batch mean.

    m_fg : (B, N, h, w) in [0, 1]; labels : (B, N). Returns a scalar in [0, 1 + λ].
    """
    area = area_per_image(m_fg, labels)
    return _mean_over_labelled(F.relu(area - margin) + lam * area, labels)


def oe_loss(m_fg: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_oe, the overlap elimination loss (Eq. 8): ReLU(Σ_{c∈C} M_fg^c(i, j) − 1) over the pixels.

    Only the present classes are summed. As for Eq. 7 we take the mean over the pixels instead of the sum
    (crop-size independent; the value is the mean excess activation), then the mean over labelled images.

    m_fg : (B, N, h, w) in [0, 1]; labels : (B, N). Returns a scalar in [0, |C|max − 1].
    """
    y = (labels > 0).to(torch.float32)[:, :, None, None]
    excess = F.relu((m_fg.float() * y).sum(1) - 1)  # (B, h, w)
    return _mean_over_labelled(excess.mean((1, 2)), labels)


def d2cam_loss(model, batch: dict, cfg: D2CAMLossConfig) -> dict[str, torch.Tensor]:
    """L_total = L_cls + γ1·L_d2 + γ2·L_ma (or L_area) + γ3·L_oe of one mini-batch (Sec. 4.2).

    Parameters
    ----------
    model : a ``matlabel.d2cam.D2CAMNet``.
    batch : ``{"image": (B, 3, H, W), "label": (B, N) multi-hot float, ...}``.
    cfg : which terms and weights (see ``VARIANTS``); every weight given (ValueError naming the missing ones).

    Returns
    -------
    ``{"total", "cls"}`` plus ``"d2"``, ``"ma"`` or ``"area"``, ``"oe"`` for the enabled terms only
    (unweighted values; ``total`` holds the weights). All fp32 scalars.
    """
    missing = [name for name in WEIGHTS if getattr(cfg, name) is None]
    if missing:
        raise ValueError(f"D2CAM loss weights {missing} not given: pass config.yaml's d2cam.loss")
    labels = batch["label"]
    out = model.forward_d2(batch["image"], labels, with_pairs=cfg.use_d2)
    terms = {"cls": cls_loss(out.logits, labels)}
    total = terms["cls"]
    if cfg.use_d2:
        terms["d2"] = d2_loss(out.y_fg, out.y_bg, out.pair_img, out.pair_cls, labels, cfg.beta)
        total = total + cfg.gamma_d2 * terms["d2"]
    if cfg.area == "ma":
        terms["ma"] = ma_loss(out.m_fg, labels, cfg.margin, cfg.lam)
        total = total + cfg.gamma_ma * terms["ma"]
    elif cfg.area == "area":
        terms["area"] = area_loss(out.m_fg, labels)
        total = total + cfg.gamma_ma * terms["area"]
    if cfg.use_oe:
        terms["oe"] = oe_loss(out.m_fg, labels)
        total = total + cfg.gamma_oe * terms["oe"]
    return {"total": total, **terms}


def loss_for_variant(variant: str, weights: dict):
    """``loss_fn(model, batch)`` of a Table 4 variant (a key of ``VARIANTS``) for ``matlabel.train.train``, with
    ``weights`` (config.yaml's ``d2cam.loss``: beta, margin, lam, gamma_*)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown D2CAM variant {variant!r}; known: {sorted(VARIANTS)}")
    return functools.partial(d2cam_loss, cfg=dataclasses.replace(VARIANTS[variant], **weights))


def _class_count(labels: torch.Tensor) -> torch.Tensor:
    """(B, N) multi-hot → (B,) float number of present classes |C| per image."""
    return (labels > 0).sum(1).float()


def _mean_over_labelled(per_image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of a (B,) per-image loss over the images with at least one label (0 if there is none)."""
    has = (_class_count(labels) > 0).float()
    return (per_image * has).sum() / has.sum().clamp(min=1)
