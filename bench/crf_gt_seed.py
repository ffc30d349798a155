"""What each CRF reading does to a perfect seed: the ground-truth masks through ``matlabel.crf.refine``, scored
against themselves, so the number is what the CRF's own terms take away from labels that were already right.

    .venv/bin/python bench/crf_gt_seed.py WORKDIR [--images 96] [--split train] [--name NAME]

WORKDIR is a working directory where the workflow prepared a dataset (``resources/<dataset>/dataset.json``; the
demo's, or a ``bench/real_photos.py`` one's); its ``dataset`` is read from the manifest found there. Each image's
mask is the seed (its void pixels, 255, stay unknown), the labels present in it are the CRF's states, and the
result is scored by the workflow's meter (``matlabel.metrics.ConfusionMeter``). Readings: IRN's label CRF
(preset ``irn_label``, the default of the "w/ CRF" column), and the same label unary under PSA's wide bilateral
terms (sxy 80, srgb 13: the hybrid the workflow ran before the presets). Reference in the same process: the seeds
unrefined (100 by construction, the check that the scoring is the workflow's).

One row per reading goes to ``bench/results/crf_gt_seed.csv``, all under the run ``NAME`` (a rerun replaces them).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from classifier_budget import append_csv  # noqa: E402  (bench/ is not a package)

from matlabel.crf import CRFParams, refine  # noqa: E402
from matlabel.datasets.layout import IGNORE_INDEX, load_manifest  # noqa: E402
from matlabel.io import read_image, read_label_png  # noqa: E402
from matlabel.metrics import ConfusionMeter  # noqa: E402

READINGS = {
    "none": None,  # the reference: the seed as it is
    "irn_label": {"preset": "irn_label"},
    "irn_label_psa_pairwise": {"preset": "irn_label", "bilateral_sxy": 80, "bilateral_srgb": 13},
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--images", type=int, default=96, help="the first N images of --split")
    ap.add_argument("--split", default="train")
    ap.add_argument("--name", default=None, help="the rows' name (default: the dataset's)")
    args = ap.parse_args(argv)

    manifests = sorted((args.workdir / "resources").glob("*/dataset.json"))
    if len(manifests) != 1:
        sys.exit(f"{args.workdir}: expected one resources/<dataset>/dataset.json, found {len(manifests)}")
    dataset = manifests[0].parent.name
    manifest = load_manifest(manifests[0])
    ids = manifest.split_ids(args.split)[:args.images]
    meters = {name: ConfusionMeter(manifest.num_classes) for name in READINGS}
    for image_id in ids:
        image = read_image(manifest.image_path(image_id))
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        present = [int(c) for c in np.unique(gt) if c != IGNORE_INDEX]
        if 0 not in present:
            present = [0, *present]
        for name, reading in READINGS.items():
            pred = gt if reading is None else refine(image, gt, present, CRFParams.from_mapping(reading))
            meters[name].add(gt, pred)
    name = args.name or dataset
    rows = [{"run": name, "dataset": name, "reading": reading, "images": len(ids), "split": args.split,
             "miou": round(100 * meters[reading].miou(), 1)} for reading in READINGS]
    append_csv(ROOT / "bench" / "results" / "crf_gt_seed.csv", rows, replace_run=name)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
