"""Can φ (Eq. 2's generator: one 3×3 convolution + sigmoid on F) segment photos at all, on this backbone's F?

    .venv/bin/python bench/phi_capacity.py WORKDIR [--stages layer2 layer3 layer4] [--iterations 300] [--name NAME]

D2CAM's maps are φ(F): a linear read-out of F at each cell. Whatever Eq. 5–8 teach it, φ cannot localise better
than a φ trained with the ground-truth masks themselves. This script measures that upper bound: on the CAM of a
``bench/real_photos.py`` working directory (N1 = its trunk, as ``d2cam.init_from: cam`` starts D2CAM), it trains
φ — the same layer as ``matlabel.d2cam.D2CAMNet.generator`` — on the ``train`` split's features with a per-pixel
binary cross-entropy against each present class's mask (a *supervised* probe, full batch, Adam), for F taken after
each of ``--stages``, and scores its maps as seeds (IRN's background plane, ``evaluate.bg_threshold``, and the
sweep) on the held-out ``val`` split, beside the CAM's own single-scale maps on the same photos. The probe sees
masks, so it is a diagnostic of the backbone's features, never a way to pick a setting of the workflow.

If the probe on the paper's F (stride 8) does not beat the CAM on held-out photos, no weakly supervised loss can
make D2CAM beat it with that F: the limit is the features, not the losses or the budget.
Rows go to ``bench/results/phi_capacity_<name>.csv``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_photos import merged_config, write_csv  # noqa: E402  (bench/ is not a package)

from matlabel.backbone import STAGES  # noqa: E402
from matlabel.cam import normalize  # noqa: E402
from matlabel.checkpoints import read_checkpoint  # noqa: E402
from matlabel.datasets.layout import load_manifest  # noqa: E402
from matlabel.evaluate import add_at_thresholds, threshold_meters  # noqa: E402
from matlabel.io import read_image, read_label_png  # noqa: E402
from matlabel.models import build, load_init  # noqa: E402

DATASET = "folder"


def features(model, manifest, image_id: str, stages) -> dict:
    """F after every stage of ``stages`` (single scale, no flip), the CAM's map, the mask and the image's classes."""
    x = normalize(read_image(manifest.image_path(image_id))).unsqueeze(0)
    out = {}
    with torch.no_grad():
        f = x
        for name in STAGES:
            f = getattr(model.backbone, name)(f)
            if name in stages:
                out[name] = f[0]
        cam = F.relu(model.classifier(f))[0]  # CAMNet.cam on the trunk output already computed
    out["cam"] = cam / (cam.flatten(1).amax(1)[:, None, None] + 1e-5)  # IRN's max-normalised CAM
    out["gt"] = torch.from_numpy(read_label_png(manifest.mask_path(image_id), manifest.num_classes).astype(np.int64))
    return out


def padded_batch(items: list[dict], stage: str, classes: list[list[int]], num_fg: int):
    """Features of ``stage`` zero-padded to one (B, C, h, w) tensor, with per-class targets and a validity mask
    (present classes only, inside the image, not the masks' 255 border)."""
    h = max(d[stage].shape[1] for d in items)
    w = max(d[stage].shape[2] for d in items)
    x = torch.zeros(len(items), items[0][stage].shape[0], h, w)
    target = torch.zeros(len(items), num_fg, h, w)
    valid = torch.zeros(len(items), num_fg, h, w)
    for i, (d, cls) in enumerate(zip(items, classes)):
        f = d[stage]
        fh, fw = f.shape[-2:]
        x[i, :, :fh, :fw] = f
        gt = F.interpolate(d["gt"][None, None].float(), size=(fh, fw), mode="nearest")[0, 0].long()
        for c in cls:
            target[i, c - 1, :fh, :fw] = (gt == c).float()
            valid[i, c - 1, :fh, :fw] = (gt != 255).float()
    return x, target, valid


def seed_scores(items, classes, map_fn, num_classes: int, bg_threshold: float, sweep) -> dict:
    """Seed mIoU (%) at ``bg_threshold`` and the best of the sweep, maps upsampled bilinearly to the mask's size."""
    meters = threshold_meters(num_classes, bg_threshold, sweep)
    for d, cls in zip(items, classes):
        if not cls:
            continue
        maps = map_fn(d)[[c - 1 for c in cls]]
        maps = F.interpolate(maps[None], size=d["gt"].shape, mode="bilinear", align_corners=False)[0]
        add_at_thresholds(meters, maps.numpy(), cls, d["gt"].numpy())
    miou = {t: 100 * m.miou() for t, m in meters.items()}
    best = max(miou, key=miou.get)
    return {"miou": round(miou[float(bg_threshold)], 2), "best_miou": round(miou[best], 2), "best_t": best}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path, help="a bench/real_photos.py working directory with a trained CAM")
    ap.add_argument("--stages", nargs="+", default=["layer2", "layer3", "layer4"], choices=STAGES[1:])
    ap.add_argument("--iterations", type=int, default=300, help="full-batch Adam steps of the probe")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--preset", action="append", default=None, help="config files as the run used "
                    "(default: config/folder-example.yaml and root.yaml)")
    ap.add_argument("--name", default="photos")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = merged_config(args.workdir, args.preset or ["config/folder-example.yaml", "root.yaml"])
    manifest = load_manifest(args.workdir / "resources" / DATASET / "dataset.json")
    num_fg = manifest.num_classes - 1
    model, _ = build("cam", num_fg, {**cfg["backbone"], "weights": "none"})
    load_init(model, read_checkpoint(args.workdir / "results" / DATASET / "maps" / "cam" / "model.pt"))
    model.eval()
    labels = manifest.labels()
    ev = cfg["evaluate"]
    data, classes = {}, {}
    for split in ("train", "val"):
        ids = manifest.split_ids(split)
        data[split] = [features(model, manifest, i, args.stages) for i in ids]
        classes[split] = [labels[i] for i in ids]
    rows = []
    for split in ("train", "val"):
        s = seed_scores(data[split], classes[split], lambda d: d["cam"], manifest.num_classes, ev["bg_threshold"],
                        ev["bg_threshold_sweep"])
        rows.append({"maps": "CAM (single scale)", "stage": "layer4", "channels": "", "stride": "", "split": split,
                     "images": len(data[split]), **s})
        print(rows[-1], flush=True)
    for stage in args.stages:
        x, target, valid = padded_batch(data["train"], stage, classes["train"], num_fg)
        phi = nn.Conv2d(x.shape[1], num_fg, 3, padding=1)  # φ's shape (matlabel.d2cam.D2CAMNet.generator)
        opt = torch.optim.Adam(phi.parameters(), lr=args.lr)
        t0 = time.perf_counter()
        for _ in range(args.iterations):
            opt.zero_grad()
            loss = (F.binary_cross_entropy_with_logits(phi(x), target, reduction="none") * valid).sum() / valid.sum()
            loss.backward()
            opt.step()
        with torch.no_grad():
            for split in ("train", "val"):
                s = seed_scores(data[split], classes[split], lambda d: torch.sigmoid(phi(d[stage][None])[0]),
                                manifest.num_classes, ev["bg_threshold"], ev["bg_threshold_sweep"])
                stride = round(data[split][0]["gt"].shape[0] / data[split][0][stage].shape[1])
                rows.append({"maps": "phi trained on the masks", "stage": stage, "channels": x.shape[1],
                             "stride": stride, "split": split, "images": len(data[split]), **s,
                             "train_bce": round(float(loss), 4), "train_s": round(time.perf_counter() - t0, 1)})
                print(rows[-1], flush=True)
    out = ROOT / "bench" / "results" / f"phi_capacity_{args.name}.csv"
    write_csv(out, rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
