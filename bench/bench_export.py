"""How much the paper's multi-scale export costs: our export of one image (scales {1.0, 0.5, 1.5, 2.0},
each with its flip, upsampling, normalisation) against the reference run of a single forward pass of the
same network at scale 1.0, in the same process. The ratio sizes the export shards (config n_shards).

    .venv/bin/python bench/bench_export.py [--arch resnet50] [--size 500x375] [--device auto] [--repeat 5] [--save]

--save adds the measurement to ``bench/results/export_cost.csv`` (replacing an earlier one of the same arch, size and
device kind), which docs/demo-results.md shows (``make docs``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matlabel.backbone import build_backbone  # noqa: E402
from matlabel.cam import CAMNet, multiscale_cams, normalize  # noqa: E402
from matlabel.train import resolve_device  # noqa: E402


def timed(fn, repeat: int, device) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--size", default="500x375", help="WxH of the image (VOC-like by default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--save", action="store_true", help="add the row to bench/results/export_cost.csv")
    args = ap.parse_args()
    device = resolve_device(args.device)
    w, h = map(int, args.size.split("x"))
    model = CAMNet(20, build_backbone(args.arch, weights="none")).to(device).eval()
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    classes = [1, 15]
    x = normalize(image).unsqueeze(0).to(device)
    amp = device.type == "cuda"

    def reference():
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            model.cam(x)

    ours = timed(lambda: multiscale_cams(model, image, classes, device=device, amp=amp), args.repeat, device)
    ref = timed(reference, args.repeat, device)
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), {args.arch}, {w}x{h}")
    print(f"single forward at scale 1.0 (reference): {ref * 1e3:8.1f} ms")
    print(f"multi-scale + flip export (ours):        {ours * 1e3:8.1f} ms")
    work = 2 * (1 + .25 + 2.25 + 4)
    print(f"ratio ours / reference: {ours / ref:.2f}  (pixel work of 4 scales x 2 flips = {work:.1f}x)")
    if args.save:
        from classifier_budget import record_measurement  # bench/ is not a package

        record_measurement("export_cost", f"{args.arch}/{w}x{h}/{device.type}",
                           {"arch": args.arch, "size": f"{w}x{h}", "device": device.type,
                            "threads": torch.get_num_threads(), "reference_s": round(ref, 4),
                            "export_s": round(ours, 4), "ratio": round(ours / ref, 2), "pixel_work": work})


if __name__ == "__main__":
    main()
