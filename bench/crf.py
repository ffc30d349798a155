"""What running the DenseCRF over the present labels only saves: per-image time of ``matlabel.crf.refine`` on
VOC-sized images with all 21 VOC labels in the unary (n_labels = 21, every label a CRF state) against only the
labels present in the image (background + its 1–3 classes, as IRN's step/cam_to_ir_label.py), in one process.

    .venv/bin/python bench/crf.py [--n 10] [--width 500] [--height 375] [--seed 0]

Images are procedural: a smooth two-tone background with 1–3 ellipses of distinct colours (random VOC classes),
plus pixel noise; seeds are the truth with a shifted boundary (dilated or eroded blobs), 10 % salt noise and
an unknown (255) band, like CAM seeds. Default CRFParams (PSA pairwise + IRN label unary). Pixel accuracy
against the procedural truth is printed for both, as the two unaries differ (the non-seed probability
1 − gt_prob is spread over 20 labels rather than k − 1). pydensecrf is single-threaded.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matlabel.crf import CRFParams, refine

NUM_LABELS = 21  # VOC: background + 20 classes


def make_sample(rng: np.random.Generator, height: int, width: int):
    """(image (H, W, 3) uint8, truth (H, W) uint8, seeds (H, W) uint8 with 255, present labels)."""
    yy, xx = np.mgrid[:height, :width]
    c0, c1 = rng.integers(0, 256, (2, 3))
    t = (xx / width)[..., None]
    img = (1 - t) * c0 + t * c1  # background gradient
    truth = np.zeros((height, width), np.uint8)
    seeds_mask = np.zeros((height, width), np.uint8)
    classes = rng.choice(np.arange(1, NUM_LABELS), size=rng.integers(1, 4), replace=False)
    for c in classes:
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        img[d <= 1] = rng.integers(0, 256, 3)
        truth[d <= 1] = c
        # seed blob: the same ellipse grown or shrunk by ~10 % (misplaced boundary)
        seeds_mask[d <= rng.uniform(0.8, 1.25)] = c
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    seeds = seeds_mask.copy()
    present = np.concatenate([[0], np.sort(classes)])
    flip = rng.random(seeds.shape) < 0.10
    seeds[flip] = rng.choice(present, size=int(flip.sum()))
    band = rng.integers(0, height - height // 10)
    seeds[band:band + height // 10] = 255  # an unknown band
    return img, truth, seeds, present.tolist()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    samples = [make_sample(rng, args.height, args.width) for _ in range(args.n)]
    params = CRFParams()
    img, _, seeds, present = samples[0]
    refine(img, seeds, present, params)  # warm-up (first-call allocation)

    times = {"all21": 0.0, "present": 0.0}
    correct = {"all21": 0, "present": 0, "seeds": 0}
    agree = 0
    for img, truth, seeds, present in samples:
        t0 = time.perf_counter()
        out_all = refine(img, seeds, list(range(NUM_LABELS)), params)
        t1 = time.perf_counter()
        out_present = refine(img, seeds, present, params)
        t2 = time.perf_counter()
        times["all21"] += t1 - t0
        times["present"] += t2 - t1
        correct["all21"] += int((out_all == truth).sum())
        correct["present"] += int((out_present == truth).sum())
        correct["seeds"] += int((seeds == truth).sum())
        agree += int((out_all == out_present).sum())

    px = args.n * args.height * args.width
    k = np.mean([len(s[3]) for s in samples])
    print(f"images: {args.n} x {args.width}x{args.height}, {params.iterations} iterations, "
          f"mean present labels {k:.2f}")
    print(f"all 21 labels : {times['all21'] / args.n:.3f} s/image, pixel acc {correct['all21'] / px:.4f}")
    print(f"present only  : {times['present'] / args.n:.3f} s/image, pixel acc {correct['present'] / px:.4f}")
    print(f"speed-up (all21 / present): {times['all21'] / times['present']:.2f}x; "
          f"outputs agree on {agree / px:.4f} of pixels; seed acc {correct['seeds'] / px:.4f}")


if __name__ == "__main__":
    main()
