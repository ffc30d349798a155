"""KNN matting speed and accuracy: pymatting's per-class ``estimate_alpha_knn`` against our per-image
``matlabel.matting.knn_matting`` (all classes of an image from one Laplacian), same images, same process.

    .venv/bin/python bench/matting.py [--n 5] [--width 500] [--height 375] [--threads 1] [--band 8]
                                      [--source blobs|synthetic] [--soft] [--skip-pymatting] [--seed 0]
                                      [--device cuda] [--json bench/results/matting_<card>.json]

Images (drawn here, no files):

* ``blobs`` (default): a smooth random background, 1-3 blobs of other colours with soft Gaussian edges,
  camera-like noise, 8-bit. Each blob is one class; its ground-truth alpha is its visible coverage.
* ``synthetic``: images of ``matlabel.datasets.synthetic.make_example`` (the workflow's demo data: textured
  backgrounds, thin structures, camouflage, JPEG-free), ground truth = its VOC mask (binary per class, the
  255 void band ignored).

Each class's trimap (paper Eq. 9) is foreground inside its ground-truth region eroded by ``--band`` px,
background outside it dilated by ``--band`` px (other objects included: one-vs-rest as in Mat-Label),
unknown between. Reported per method: wall and process-CPU seconds per image (all its classes),
mean |alpha - ground truth| over the unknown pixels, pixel accuracy of ``alphas_to_labels(.., 0.5)`` over the
pixels unknown in some class, and max/mean |alpha_ours - alpha_pymatting| over the unknown pixels.
``--device cuda`` also runs the torch path (``matlabel/matting_torch.py``) on that device and reports its largest
alpha difference to the CPU path; ``--json`` writes the summary there. ``--soft`` also runs our soft-constraint solve (lam = 100 on L = D - W, the original's system). Threads are
limited before numpy/numba load (OMP/MKL/OPENBLAS/NUMBA env vars).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5, help="number of images")
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--height", type=int, default=375)
    p.add_argument("--threads", type=int, default=1, help="numba/BLAS threads")
    p.add_argument("--band", type=int, default=8, help="half-width in px of the unknown band of the trimaps")
    p.add_argument("--source", choices=("blobs", "synthetic"), default="blobs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--soft", action="store_true", help="also time our soft-constraint solve (lam = 100)")
    p.add_argument("--skip-pymatting", action="store_true", help="do not run pymatting (faster)")
    p.add_argument("--device", default=None, help="also run the torch path on this device (e.g. cuda)")
    p.add_argument("--json", default=None, help="write the summary as JSON to this path")
    return p.parse_args(argv)


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matlabel.matting import alphas_to_labels, knn_matting  # noqa: E402

IGNORE = 255


def smooth_field(rng: np.random.Generator, h: int, w: int, sigma: float, channels: int) -> np.ndarray:
    """(h, w, channels) float64 smooth random field with values spread over [0, 1]."""
    f = ndimage.gaussian_filter(rng.standard_normal((h, w, channels)), (sigma, sigma, 0))
    f -= f.min(axis=(0, 1))
    f /= np.maximum(f.max(axis=(0, 1)), 1e-12)
    return f


def trimaps_from_regions(regions: np.ndarray, band: int) -> np.ndarray:
    """(C, h, w) bool ground-truth regions -> (C, h, w) float64 trimaps: 1 inside eroded by ``band`` px,
    0 outside dilated by ``band`` px, 0.5 between."""
    trimaps = []
    for inside in regions:
        fg = ndimage.binary_erosion(inside, iterations=band) if band else inside
        near = ndimage.binary_dilation(inside, iterations=band) if band else inside
        tri = np.full(inside.shape, 0.5)
        tri[fg] = 1.0
        tri[~near] = 0.0
        trimaps.append(tri)
    return np.stack(trimaps)


def blob_scene(rng: np.random.Generator, h: int, w: int, band: int) -> dict:
    """Blobs over a smooth background; ground truth = visible coverage alpha per blob (see module doc)."""
    bg_a, bg_b = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    t = smooth_field(rng, h, w, 40.0, 1)
    image = bg_a * (1 - t) + bg_b * t
    n_obj = int(rng.integers(1, 4))
    yy, xx = np.mgrid[0:h, 0:w]
    covers = []
    for _ in range(n_obj):
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.12, 0.25) * h, rng.uniform(0.1, 0.22) * w
        ang = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)) / rx
        v = (-(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)) / ry
        wobble = 0.15 * (smooth_field(rng, h, w, 20.0, 1)[..., 0] - 0.5)
        shape = (u ** 2 + v ** 2 < 1 + wobble).astype(np.float64)
        alpha = np.clip(ndimage.gaussian_filter(shape, rng.uniform(0.8, 2.5)), 0, 1)
        col_a, col_b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        tex = smooth_field(rng, h, w, 6.0, 1)
        colour = col_a * (1 - tex) + col_b * tex * 0.4 + col_a * tex * 0.6
        a = alpha[..., None]
        image = image * (1 - a) + colour * a
        # Later blobs occlude earlier ones: the visible coverage of earlier classes shrinks.
        covers = [c * (1 - alpha) for c in covers] + [alpha]
    image = np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1)
    image = np.round(image * 255) / 255  # 8-bit like a photo
    alphas = np.stack(covers)
    classes = np.arange(1, n_obj + 1)
    label = np.where(alphas.max(0) > 0.5, classes[alphas.argmax(0)], 0).astype(np.uint8)
    return {"image": image, "gt_alpha": alphas, "valid": np.ones_like(alphas, bool), "classes": classes,
            "label": label, "trimaps": trimaps_from_regions(alphas >= 0.5, band)}


def synthetic_scene(index: int, h: int, w: int, band: int, seed: int) -> dict:
    """An image of the workflow's synthetic dataset; ground truth = its mask (binary per class)."""
    from matlabel.datasets.synthetic import SyntheticConfig, make_example

    ex = make_example(SyntheticConfig(width=w, height=h), seed, index)
    classes = np.array(ex.labels)
    regions = np.stack([ex.mask == c for c in classes])
    return {"image": ex.image, "gt_alpha": regions.astype(np.float64),
            "valid": np.broadcast_to(ex.mask != IGNORE, regions.shape), "classes": classes,
            "label": ex.mask, "trimaps": trimaps_from_regions(regions, band)}


def main() -> None:
    args = ARGS
    rng = np.random.default_rng(args.seed)
    if args.source == "blobs":
        scenes = [blob_scene(rng, args.height, args.width, args.band) for _ in range(args.n)]
    else:
        scenes = [synthetic_scene(i, args.height, args.width, args.band, args.seed) for i in range(args.n)]
    n_cls = sum(s["trimaps"].shape[0] for s in scenes)
    unk = np.mean([np.mean(s["trimaps"] == 0.5) for s in scenes])
    print(f"{args.n} {args.source} images {args.width}x{args.height}, {n_cls} classes "
          f"({n_cls / args.n:.1f}/image), band {args.band} px: unknown {100 * unk:.1f}% of the pixels per "
          f"class trimap, threads {args.threads}")

    # Warm up the JIT caches on a small image so that the first timed call does not pay for them.
    small = blob_scene(np.random.default_rng(123), 40, 50, 3)
    knn_matting(small["image"], small["trimaps"])
    methods = {"ours (hard, all classes)": lambda im, tr: knn_matting(im, tr, return_info=True)}
    if args.device:
        from matlabel.matting_torch import knn_matting_torch

        knn_matting_torch(small["image"], small["trimaps"], device=args.device)  # warm-up: CUDA context, kernels
        methods[f"ours torch ({args.device})"] = lambda im, tr: knn_matting_torch(im, tr, device=args.device,
                                                                                  return_info=True)
    if args.soft:
        methods["ours (soft lam=100)"] = lambda im, tr: knn_matting(im, tr, lam=100.0, return_info=True)
    if not args.skip_pymatting:
        from pymatting import estimate_alpha_knn

        estimate_alpha_knn(small["image"], small["trimaps"][0])

        def pym(im, tr):
            im = im.astype(np.float64) / 255 if im.dtype == np.uint8 else im
            return np.stack([estimate_alpha_knn(im, t) for t in tr]), None
        methods["pymatting (per class)"] = pym

    results = {name: {"sec": [], "cpu": [], "mae": [], "acc": [], "alphas": [], "iters": [], "nsys": []}
               for name in methods}
    for i, s in enumerate(scenes):
        unknown = s["trimaps"] == 0.5
        any_unknown = unknown.any(0) & (s["label"] != IGNORE)
        line = []
        for name, fn in methods.items():
            r = results[name]
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                alphas, info = fn(s["image"], s["trimaps"])
            except ValueError as err:  # pymatting's CG raises when it does not converge
                print(f"  image {i}: {name} failed: {err}")
                r["alphas"].append(None)
                continue
            r["sec"].append(time.perf_counter() - t0)
            r["cpu"].append(time.process_time() - c0)
            sel = unknown & s["valid"]
            r["mae"].append(np.abs(alphas - s["gt_alpha"])[sel].mean())
            labels = alphas_to_labels(alphas, s["classes"], 0.5)
            r["acc"].append(np.mean(labels[any_unknown] == s["label"][any_unknown]))
            r["alphas"].append(alphas)
            if info is not None:
                r["iters"].append(int(info["iterations"].max()))
                r["nsys"].append(info["n_system"])
            line.append(f"{name.split(' (')[0]}{'-soft' if 'soft' in name else ''} {r['sec'][-1]:.3f}s")
        print(f"  image {i}: C={s['trimaps'].shape[0]} unknown(any class)={np.mean(unknown.any(0)) * 100:.1f}%  "
              + "  ".join(line))

    print(f"\nsummary ({args.source}, band {args.band}; seconds per image = all classes of the image, wall and "
          f"process CPU, {args.threads} thread(s); MAE = mean |alpha - ground truth| over the unknown pixels; "
          f"label acc = pixel accuracy of alphas_to_labels(., 0.5) over pixels unknown in some class)")
    print(f"{'method':26s} {'wall s/img':>10s} {'CPU s/img':>10s} {'MAE':>7s} {'label acc':>9s} "
          f"{'max CG it':>9s} {'system size':>11s}")
    for name, r in results.items():
        it = f"{max(r['iters'])}" if r["iters"] else "-"
        ns = f"{np.mean(r['nsys']):.0f}" if r["nsys"] else "-"
        print(f"{name:26s} {np.mean(r['sec']):10.3f} {np.mean(r['cpu']):10.3f} {np.mean(r['mae']):7.4f} "
              f"{np.mean(r['acc']):9.4f} {it:>9s} {ns:>11s}")
    summary = {"args": vars(args), "unknown_share": float(unk),
               "methods": {name: {"wall_s_per_image": float(np.mean(r["sec"])), "cpu_s_per_image": float(np.mean(r["cpu"])),
                                  "mae": float(np.mean(r["mae"])), "label_acc": float(np.mean(r["acc"]))}
                           for name, r in results.items() if r["sec"]}}
    if args.device:
        cpu_alphas, dev = results["ours (hard, all classes)"]["alphas"], results[f"ours torch ({args.device})"]
        diff = max(float(np.abs(a - b).max()) for a, b in zip(cpu_alphas, dev["alphas"]) if a is not None and b is not None)
        summary["torch_vs_cpu_max_abs_alpha_diff"] = diff
        print(f"torch ({args.device}) vs CPU path: max |alpha diff| {diff:.2e}; "
              f"{np.mean(results['ours (hard, all classes)']['sec']) / np.mean(dev['sec']):.1f}x faster")
        import torch
        if torch.cuda.is_available():
            summary["device_name"] = torch.cuda.get_device_name(0)
    if args.json:
        import json
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2))
    if "pymatting (per class)" in results:
        ours, ref = results["ours (hard, all classes)"], results["pymatting (per class)"]
        print(f"speed ratio pymatting/ours: {np.mean(ref['sec']) / np.mean(ours['sec']):.1f}x wall, "
              f"{np.mean(ref['cpu']) / np.mean(ours['cpu']):.1f}x CPU")
        for name in methods:
            if name == "pymatting (per class)":
                continue
            d_max, d_mean = [], []
            for a, b, s in zip(results[name]["alphas"], ref["alphas"], scenes):
                if a is None or b is None:
                    continue
                d = np.abs(a - b)[s["trimaps"] == 0.5]
                d_max.append(d.max())
                d_mean.append(d.mean())
            if d_max:
                print(f"{name} vs pymatting, unknown pixels: max |diff| {max(d_max):.4f}, "
                      f"mean |diff| {np.mean(d_mean):.5f}")


if __name__ == "__main__":
    main()
