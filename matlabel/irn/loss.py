"""IRN's training loss (jiwoon-ahn/irn step/train_irn.py ``run`` and net/resnet50_irn.py
``AffinityDisplacementLoss.forward``; paper Eqs. 4–7).

Affinity terms on a = 1 − max boundary on the path (``edge_to_affinity``):
    pos_aff_bg = Σ bg_pos · −log(a + 1e-5) / (Σ bg_pos + 1e-5),   pos_aff_fg likewise with fg_pos,
    neg_aff    = Σ neg · −log(1 + 1e-5 − a) / (Σ neg + 1e-5).
Displacement terms on δ = D(src) − D(dst) (stride-4 pixels), target the pair's offset (dy, dx):
    dp_fg = Σ fg_pos · |δ − (dy, dx)|₁ / (2 Σ fg_pos + 1e-5),   dp_bg = Σ bg_pos · |δ|₁ / (2 Σ bg_pos + 1e-5).
Total, exactly as the reference: (pos_aff_bg/2 + pos_aff_fg/2 + neg_aff)/2 + (dp_fg + dp_bg)/2.
"""
from __future__ import annotations

import torch

from matlabel.irn.model import IRNet, edge_to_affinity, pair_displacement

EPS = 1e-5  # IRN's constant in the logs and the normalisers


def irn_loss(model: IRNet, batch: dict) -> dict[str, torch.Tensor]:
    """IRN's affinity + displacement loss of one batch.

    Parameters
    ----------
    model : ``IRNet``; its ``path_index`` (radius) must be the one the labels were made with.
    batch : ``{"image": (B, 3, H, W), "bg_pos", "fg_pos", "neg": (B, D, n_src) bool/float}`` as
        ``IRNDataset`` yields; the label map behind them has the network's output size (H/4, W/4).

    Returns
    -------
    ``{"total", "pos_aff_bg", "pos_aff_fg", "neg_aff", "dp_fg", "dp_bg"}``, scalar float32 tensors.
    """
    edge_logits, disp = model(batch["image"])
    pi = model.path_index
    bg, fg, neg = (batch[k].float() for k in ("bg_pos", "fg_pos", "neg"))
    ch, cw = pi.source_window(*edge_logits.shape[-2:])
    if bg.shape[-2:] != (len(pi), ch * cw):
        raise ValueError(f"relation labels have shape {tuple(bg.shape[-2:])} but the network's "
                         f"{tuple(edge_logits.shape[-2:])} output with radius {pi.radius} needs "
                         f"({len(pi)}, {ch * cw}): the dataset's crop/radius must match the model's "
                         "(crop = 4 × the output size)")
    # the losses in fp32 even under bf16 autocast (log(a + 1e-5) needs the precision)
    aff = edge_to_affinity(torch.sigmoid(edge_logits.float()), pi)
    pos_l = -torch.log(aff + EPS)
    neg_l = -torch.log(1.0 + EPS - aff)
    pos_aff_bg = (bg * pos_l).sum() / (bg.sum() + EPS)
    pos_aff_fg = (fg * pos_l).sum() / (fg.sum() + EPS)
    neg_aff = (neg * neg_l).sum() / (neg.sum() + EPS)

    pair = pair_displacement(disp.float(), pi)  # (B, 2, D, n_src)
    target = torch.as_tensor(pi.directions.T, dtype=pair.dtype, device=pair.device).unsqueeze(-1)  # (2, D, 1)
    dp_fg = ((pair - target).abs() * fg.unsqueeze(1)).sum() / (2 * fg.sum() + EPS)
    dp_bg = (pair.abs() * bg.unsqueeze(1)).sum() / (2 * bg.sum() + EPS)

    total = (pos_aff_bg / 2 + pos_aff_fg / 2 + neg_aff) / 2 + (dp_fg + dp_bg) / 2
    return {"total": total, "pos_aff_bg": pos_aff_bg, "pos_aff_fg": pos_aff_fg, "neg_aff": neg_aff,
            "dp_fg": dp_fg, "dp_bg": dp_bg}
