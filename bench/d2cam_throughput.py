"""What D2CAM's extra work costs in training: training steps (forward + backward + SGD step) of the plain CAM
baseline (CAMNet, L_cls) against the full D2CAM (L_cls + L_d2 + L_ma + L_oe: a second N2 call on the 2P masked
feature maps of the P positive labels), same backbone settings, batch and crop, in the same process.
The ratio sizes the D2CAM training jobs against the CAM job (paper: ResNet-50, crop 512, batch 16).

    .venv/bin/python bench/d2cam_throughput.py [--arch resnet50] [--crop 512] [--batch 16] [--device auto] [--steps 10]
                                               [--save]

bf16 autocast and channels_last on CUDA (as matlabel.train.train), fp32 on CPU. Labels: 1–3 classes per image,
cycling (1, 2, 1, 2, 1, 3, 1, 1) so 1.5 on average as in VOC train_aug; both models see the same batch. On CUDA
the peak GPU memory of each model's steps is printed too. --save adds the measurement to
``bench/results/d2cam_throughput.csv`` (replacing an earlier one of the same arch, crop, batch and device kind).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matlabel.backbone import build_backbone  # noqa: E402
from matlabel.cam import CAMNet  # noqa: E402
from matlabel.config import paper_config  # noqa: E402
from matlabel.d2cam import D2CAMNet  # noqa: E402
from matlabel.losses import loss_for_variant  # noqa: E402
from matlabel.train import multilabel_loss, resolve_device  # noqa: E402

NUM_FG = 20


LABELS_PER_IMAGE = (1, 2, 1, 2, 1, 3, 1, 1)  # cycled: 1.5 labels per image on average, as VOC train_aug


def make_batch(batch: int, crop: int, device: torch.device) -> dict:
    """Random normalised images and multi-hot labels with 1–3 classes per image (1.5 on average)."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(batch, NUM_FG)
    for i in range(batch):
        k = LABELS_PER_IMAGE[i % len(LABELS_PER_IMAGE)]
        labels[i, torch.randperm(NUM_FG, generator=gen)[:k]] = 1
    image = torch.randn(batch, 3, crop, crop, generator=gen)
    if device.type == "cuda":
        image = image.contiguous(memory_format=torch.channels_last)
    return {"image": image.to(device), "label": labels.to(device)}


def make_step(model: torch.nn.Module, loss_fn, batch: dict, device: torch.device):
    """A closure running one training step (forward, loss, backward, SGD step) of ``model`` on ``batch``."""
    cuda = device.type == "cuda"
    model.to(device).train()
    if cuda:
        model.to(memory_format=torch.channels_last)
    pretrained, new = model.param_groups()
    opt = torch.optim.SGD([{"params": pretrained}, {"params": new}], lr=1e-3)

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            losses = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()

    return step


def timed(step, device: torch.device) -> tuple[float, float]:
    """(seconds, peak CUDA memory in GiB or 0) of one call of ``step``."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t, torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0


def compare(steps: dict, n: int, device: torch.device) -> dict[str, tuple[float, float]]:
    """{name: (median seconds per step, peak GiB)}; the models' steps alternate (after two warm-up rounds) so
    that a load change on a shared machine hits both alike."""
    runs = {name: [] for name in steps}
    for i in range(n + 2):
        for name, step in steps.items():
            result = timed(step, device)
            if i >= 2:
                runs[name].append(result)
    return {name: (sorted(t for t, _ in r)[len(r) // 2], max(m for _, m in r)) for name, r in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--save", action="store_true", help="add the row to bench/results/d2cam_throughput.csv")
    args = ap.parse_args()
    device = resolve_device(args.device)
    batch = make_batch(args.batch, args.crop, device)
    # the paper's configuration of the trunk (config.yaml backbone:), random weights: timing only
    backbone = dict(arch=args.arch, weights="none", output_stride=16, freeze_bn=True, train_from="layer3")
    torch.manual_seed(0)
    steps = {
        "cam": make_step(CAMNet(NUM_FG, build_backbone(**backbone)), multilabel_loss, batch, device),
        "d2cam": make_step(D2CAMNet(NUM_FG, build_backbone(**backbone)),
                           loss_for_variant("d2_ma_oe", paper_config()["d2cam"]["loss"]), batch, device),
    }
    (cam, cam_mem), (d2, d2_mem) = compare(steps, args.steps, device).values()
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    pairs = int(batch["label"].sum())
    precision = "bf16 autocast + channels_last" if device.type == "cuda" else "fp32"
    print(f"device {device} ({name}), {args.arch}, crop {args.crop}, batch {args.batch}, {precision}, "
          f"median of {args.steps} alternating steps")
    print(f"{pairs} labels: D2CAM's pair branch runs N2 on {2 * pairs} masked maps besides the {args.batch} images")
    print(f"CAM   (reference): {args.batch / cam:8.2f} img/s  ({cam * 1e3:8.1f} ms/step)")
    print(f"D2CAM (full loss): {args.batch / d2:8.2f} img/s  ({d2 * 1e3:8.1f} ms/step)")
    print(f"ratio D2CAM / CAM step time: {d2 / cam:.2f}")
    if device.type == "cuda":
        print(f"peak GPU memory: CAM {cam_mem:.1f} GiB, D2CAM {d2_mem:.1f} GiB")
    if args.save:
        from classifier_budget import record_measurement  # bench/ is not a package

        record_measurement("d2cam_throughput", f"{args.arch}/{args.crop}/{args.batch}/{device.type}",
                           {"arch": args.arch, "crop": args.crop, "batch": args.batch, "device": device.type,
                            "threads": torch.get_num_threads(), "cam_s": round(cam, 4), "d2cam_s": round(d2, 4),
                            "ratio": round(d2 / cam, 2), "steps": args.steps})


if __name__ == "__main__":
    main()
