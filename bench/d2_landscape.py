"""Where is L_d2 (Eq. 5) lowest on real photos? Eq. 5 evaluated for hand-made maps, and its gradient at M = 0.5.

    .venv/bin/python bench/d2_landscape.py WORKDIR [--images 48]

WORKDIR is a ``bench/real_photos.py`` working directory with a trained CAM (``results/folder/maps/cam/model.pt``).
D2CAM is initialised from that CAM (as ``d2cam.init_from: cam``): N1 and N2 are the CAM's, φ is not used; instead
Eq. 5 is evaluated on the first ``--images`` training photos (whole image, no augmentation) for maps M_fg^c set by
hand, at F's resolution: all ones, a uniform 0.5 or 0.2, the ground-truth object of class c (hard, or 0.1/0.9 soft),
and its complement. If the object mask does not score below the uniform maps, L_d2 cannot teach φ to find objects
whatever the budget; if it does, the failure is in reaching it (φ's capacity on F, the steps, L_ma's pull).
The gradient −∂L_d2/∂M at M = 0.5 on and off the object says which way the first steps push the maps.
``--fill mean`` reads N2 on masked features another way (not the paper's ⊗, an experiment): a masked-out cell
takes F's per-channel mean over the image instead of 0, i.e. F ⊗ M + (1 − M) ⊗ mean(F).
Prints one table; ``--out FILE`` adds (or replaces) this ``--fill``'s rows in a CSV (``fill, quantity, value, n``:
L_d2 per map, then the gradient on and off the object and the share of pairs where it is larger on the object),
which ``make docs`` renders into docs/real-photos.md (``bench/results/d2_landscape_photos.csv``).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matlabel.cam import normalize  # noqa: E402
from matlabel.checkpoints import read_checkpoint  # noqa: E402
from matlabel.config import paper_config  # noqa: E402
from matlabel.datasets.layout import load_manifest  # noqa: E402
from matlabel.io import read_image, read_label_png  # noqa: E402
from matlabel.losses import d2_loss  # noqa: E402
from matlabel.models import build, load_init  # noqa: E402

MAPS = {
    "all ones": lambda obj: torch.ones_like(obj),
    "uniform 0.5": lambda obj: torch.full_like(obj, 0.5),
    "uniform 0.2": lambda obj: torch.full_like(obj, 0.2),
    "object (hard)": lambda obj: obj,
    "object (0.1 / 0.9)": lambda obj: 0.1 + 0.8 * obj,
    "complement of the object": lambda obj: 1 - obj,
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--arch", default="efficientnet_lite0")
    ap.add_argument("--fill", choices=("zero", "mean"), default="zero",
                    help="masked-out cells of F: 0 (the paper's F ⊗ M) or F's per-channel mean over the image")
    ap.add_argument("--out", type=Path, help="CSV to add this --fill's rows to (replacing earlier rows of it)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    beta = paper_config()["d2cam"]["loss"]["beta"]
    man = load_manifest(args.workdir / "resources" / "folder" / "dataset.json")
    num_fg = man.num_classes - 1
    model, _ = build("d2cam", num_fg, {"arch": args.arch, "weights": "none", "output_stride": 16, "freeze_bn": True})
    load_init(model, read_checkpoint(args.workdir / "results" / "folder" / "maps" / "cam" / "model.pt"))
    model.eval()
    labels = man.labels()
    losses = {k: [] for k in MAPS}
    grads = []
    for image_id in man.split_ids("train")[: args.images]:
        classes = labels[image_id]
        if not classes:
            continue
        with torch.no_grad():
            feat = model.n1(normalize(read_image(man.image_path(image_id))).unsqueeze(0))
        h, w = feat.shape[-2:]
        gt = torch.from_numpy(read_label_png(man.mask_path(image_id), man.num_classes).astype(np.int64))
        gt = F.interpolate(gt[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
        lab = torch.zeros(1, num_fg)
        lab[0, [c - 1 for c in classes]] = 1
        pi, pc = lab.nonzero(as_tuple=True)
        obj = torch.zeros(1, num_fg, h, w)
        for c in classes:
            obj[0, c - 1] = (gt == c).float()
        for name, make in MAPS.items():
            with torch.no_grad():
                y_fg, y_bg = (model.decoupled_logits(feat, make(obj), pi, pc) if args.fill == "zero"
                              else mean_filled_logits(model.decoupled_logits, feat, make(obj), pi, pc))
                losses[name].append(float(d2_loss(y_fg, y_bg, pi, pc, lab, beta)))
        m = torch.full((1, num_fg, h, w), 0.5, requires_grad=True)
        y_fg, y_bg = (model.decoupled_logits(feat, m, pi, pc) if args.fill == "zero"
                      else mean_filled_logits(model.decoupled_logits, feat, m, pi, pc))
        d2_loss(y_fg, y_bg, pi, pc, lab, beta).backward()
        for c in classes:
            g, o = -m.grad[0, c - 1], obj[0, c - 1] > 0
            if o.any() and (~o).any():
                grads.append((float(g[o].mean()), float(g[~o].mean())))
    print(f"L_d2 (Eq. 5) on {len(losses['all ones'])} photos, N1/N2 of the trained CAM, masked cells at {args.fill}:")
    print("| maps M_fg^c | L_d2 |\n| --- | --- |")
    for name, vals in losses.items():
        print(f"| {name} | {np.mean(vals):.2f} |")
    g = np.array(grads)
    print(f"\n-dL_d2/dM at M = 0.5 (mean per cell): on the object {g[:, 0].mean():.2e}, off it {g[:, 1].mean():.2e}; "
          f"larger on the object for {np.mean(g[:, 0] > g[:, 1]):.0%} of {len(g)} (image, class) pairs")
    if args.out:
        rows = [(name, float(np.mean(vals)), len(vals)) for name, vals in losses.items()]
        rows += [("grad on object", float(g[:, 0].mean()), len(g)), ("grad off object", float(g[:, 1].mean()), len(g)),
                 ("share larger on object", float(np.mean(g[:, 0] > g[:, 1])), len(g))]
        write_rows(args.out, args.fill, rows)


FIELDS = ("fill", "quantity", "value", "n")


def write_rows(path: Path, fill: str, rows) -> None:
    """Replace ``fill``'s rows of the CSV at ``path`` (created if absent) by ``rows`` of (quantity, value, n)."""
    kept = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as f:
            kept = [r for r in csv.DictReader(f) if r["fill"] != fill]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(kept)
        w.writerows({"fill": fill, "quantity": q, "value": f"{v:.6g}", "n": n} for q, v, n in rows)


def mean_filled_logits(decoupled_logits, feat: torch.Tensor, maps: torch.Tensor, pair_img, pair_cls):
    """Ŷ_fg^c, Ŷ_bg^c with masked-out cells at F's per-channel image mean: N2(F ⊗ M + (1 − M) ⊗ mean(F)) and
    N2(F ⊗ (1 − M) + M ⊗ mean(F)), each through ``decoupled_logits`` (``D2CAMNet.decoupled_logits``, unbound
    arguments as there) with a map of ones, whose F ⊗ 1 branch is the filled feature map. Differentiable in
    ``maps`` (``bench/classifier_budget.py --fill mean`` trains with it)."""
    m = maps[pair_img, pair_cls].unsqueeze(1).to(feat.dtype)  # (P, 1, h, w)
    f = feat[pair_img]
    mean = f.mean((2, 3), keepdim=True)
    ones = torch.ones((len(pair_img),) + maps.shape[1:], dtype=maps.dtype, device=maps.device)
    each = torch.arange(len(pair_img), device=feat.device)
    y_fg = decoupled_logits(f * m + (1 - m) * mean, ones, each, pair_cls)[0]
    y_bg = decoupled_logits(f * (1 - m) + m * mean, ones, each, pair_cls)[0]
    return y_fg, y_bg


if __name__ == "__main__":
    main()
