"""Per-stage cost of the whole Mat-Label pipeline at PASCAL VOC's size, and the projected VOC wall time.

    .venv/bin/python bench/voc_scale.py [--config config/voc-scale.yaml] [--device auto] [--seconds 8]
                                        [--cores 16] [--out voc_scale.json] [--stages d2cam,export,...]
                                        [--speed-flags channels_last,on]

Each stage runs the workflow's own library code (the functions the rules call) on synthetic VOC-size inputs
(500 x 375 images of ``matlabel.datasets.synthetic``, the paper's networks and recipes from config.yaml plus
the preset) for about ``--seconds`` after a warm-up, and reports seconds per unit: a training step, an image.
A unit count of the real datasets (VOC train_aug 10,582 images, val 1,449) turns it into the stage's wall
time; GPU stages run one after the other on the one GPU (``resources: gpu=1``), CPU stages on ``--cores``
processes side by side (one shard job per core). Reference in the same process: the plain CAM training step
beside D2CAM's (the ratio is printed), so numbers from different machines can be compared. The training
stages run as the rules do (``--speed-flags rules``: the config's ``speed:``). ``--speed-flags``
measures the training stages (their library steps and optimiser, matlabel.train.Speed) under several settings of
config ``speed:`` in the same process, e.g. ``channels_last,on``: the loop before the flags against all of them
(each setting's warm-up, which holds torch.compile's compilation, is reported as ``warmup_s``).

What the projection leaves out, on purpose: downloading and unpacking VOC + SBD (network-bound), the
Snakemake scheduling overhead (seconds per job), and data loading, which is reported separately as
images/s per core against what each training stage consumes (the loaders run in DataLoader workers beside the
GPU). Stages that need a missing package (pydensecrf for the CRFs) are reported as skipped, never guessed.

Critical path of Table 2's "Mat-Label" row (DeepLab on Mat-Label w/ IRN): D2CAM training -> CAM export of
train_aug -> trimap + KNN matting -> confident regions (label CRF) -> IRN training -> random walk ->
DeepLab-v2 training -> multi-scale + CRF evaluation of val. Printed as a table and written as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Dataset sizes the projection multiplies by (VOC 2012 + SBD train_aug, VOC 2012 val).
VOC_TRAIN_AUG, VOC_VAL = 10582, 1449


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "config" / "voc-scale.yaml"), help="preset over config.yaml")
    p.add_argument("--device", default="auto")
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per stage (after warm-up)")
    p.add_argument("--cores", type=int, default=16, help="CPU processes the projection runs CPU stages on")
    p.add_argument("--stages", default="all", help="comma-separated subset of the stage names")
    p.add_argument("--out", default=None, help="JSON file for the results (rewritten after every stage)")
    p.add_argument("--small", action="store_true", help="tiny networks and crops: a smoke test of the script on CPU")
    p.add_argument("--speed-flags", default="rules", help=(
        "comma-separated speed settings (config speed:, matlabel.train.Speed) the training stages (cam, d2cam, irn, "
        "deeplab, deeplab_5x2) are measured with, one after the other in this process: rules (the speed: section of "
        "config.yaml and --config, as the rules run it on this device), auto (every flag auto: all on for CUDA), off, "
        "on, or flag names joined by + (e.g. channels_last: the loop before the flags on CUDA). "
        "The first is the projection's; each further one is reported as stage@setting, with its speed-up and "
        "projected total"))
    return p.parse_args(argv)


ARGS = parse_args()
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # CPU stages are timed per process, one thread each, as the shard jobs

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from matlabel.train import Speed, resolve_device  # noqa: E402


def load_config(preset: str) -> dict:
    """config.yaml with the preset's top-level sections merged over it (one level deep, as Snakemake's
    --configfile does for the keys the preset sets)."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    over = yaml.safe_load(Path(preset).read_text()) if preset else {}

    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(dict(a.get(k) or {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a

    return merge(cfg, over or {})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, seconds: float, warmup: int = 2, max_n: int = 10_000) -> tuple[float, int]:
    """Mean seconds per call of ``fn`` over at least ``seconds`` (at least 2 calls) after ``warmup`` calls (their
    seconds, a compilation's included, left in ``timed.warmup_s``)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync(device)
    timed.warmup_s = time.perf_counter() - t0
    n, t0 = 0, time.perf_counter()
    while n < 2 or (time.perf_counter() - t0 < seconds and n < max_n):
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - t0) / n, n


def synthetic_images(n: int, small: bool):
    """``n`` rendered 500 x 375 synthetic examples (image, mask, labels); smaller with --small."""
    from matlabel.datasets.synthetic import SyntheticConfig, make_example

    cfg = SyntheticConfig(width=128, height=96, border_px=3, edge_blur=1.0) if small else SyntheticConfig()
    return [make_example(cfg, seed=0, index=i) for i in range(n)]


def soft_maps(mask: np.ndarray, labels) -> np.ndarray:
    """Exported-map stand-ins with a realistic unknown band: each class's ground truth, blurred (sigma 32 px at
    width 500, scaled with the width) and divided by its maximum. At 500 x 375 this leaves ~9% of the pixels unknown
    in the trimaps of Eq. 9, the share measured on the demo's Mat-Label trimaps (9.2%); the matting time grows with it
    (bench/matting.py)."""
    import cv2

    sigma = 32.0 * mask.shape[1] / 500
    maps = []
    for c in labels:
        m = cv2.GaussianBlur((mask == c).astype(np.float32), (0, 0), sigmaX=sigma)
        maps.append(m / max(m.max(), 1e-5))
    return np.stack(maps).astype(np.float32)


# ------------------------------------------------------------------------------------------------ the stages


def classifier_step(method: str, cfg: dict, device: torch.device, small: bool, speed: Speed):
    """One training step (forward, loss, backward, SGD) of the CAM baseline or full D2CAM at the config's
    backbone, batch and crop (bench/d2cam_throughput.py's models and batch), through the step and optimiser of
    matlabel.train.train with the ``speed`` flags."""
    sys.path.insert(0, str(ROOT / "bench"))
    from d2cam_throughput import make_batch

    from matlabel.cam import CAMNet
    from matlabel.d2cam import D2CAMNet
    from matlabel.losses import loss_for_variant
    from matlabel.train import multilabel_loss
    from matlabel.backbone import build_backbone

    bb = dict(cfg["backbone"], weights="none")
    crop, batch = (96, 4) if small else (cfg["augment"]["crop"], cfg[method]["batch_size"])
    if small:
        bb["arch"] = "resnet18"
    if method == "cam":
        model, loss = CAMNet(20, build_backbone(**bb)), multilabel_loss
    else:
        model = D2CAMNet(20, build_backbone(**bb))
        loss = loss_for_variant("d2_ma_oe", cfg["d2cam"]["loss"])
    return training_step(model, loss, make_batch(batch, crop, device), device, speed,
                         lambda: [{"params": p} for p in model.param_groups()])


def training_step(model, loss, batch: dict, device: torch.device, speed: Speed, groups):
    """A closure of one step of ``model`` on ``batch`` as matlabel.train.fit runs it with ``speed``: zero_grad,
    matlabel.train.classifier_step (forward + loss, compiled when the flag says so; backward), SGD step."""
    from matlabel.train import classifier_step

    model.to(device).train()
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    batch = dict(batch, image=batch["image"].contiguous())  # the step makes it channels_last if the flag says so
    opt = speed.optimizer(groups(), lr=1e-3, momentum=0.9)
    step = classifier_step(model, loss, device, speed)

    def run():
        opt.zero_grad(set_to_none=True)
        step(batch)
        opt.step()

    return run


def export_image(cfg: dict, device: torch.device, examples, small: bool):
    """Multi-scale (+ flip) maps of one image with the D2CAM network (rule export_cams)."""
    from matlabel.backbone import build_backbone
    from matlabel.cam import multiscale_cams
    from matlabel.d2cam import D2CAMNet

    bb = dict(cfg["backbone"], weights="none", **({"arch": "resnet18"} if small else {}))
    model = D2CAMNet(20, build_backbone(**bb)).to(device).eval()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    it = iter(range(10**9))

    def run():
        ex = examples[next(it) % len(examples)]
        multiscale_cams(model, ex.image, ex.labels or [1], cfg["export"]["scales"], cfg["export"]["flip"],
                        device=device, amp=device.type == "cuda", border_pad=cfg["export"].get("border_pad", 0))

    return run


def matting_image(cfg: dict, examples):
    """Trimap (Eq. 9) + KNN matting + labels of one image (rule matting_labels), one thread."""
    from matlabel.labels import MattingConfig, matting_labels

    mc = MattingConfig.from_config(cfg["trimap"], cfg["matting"])
    inputs = [(ex.image, soft_maps(ex.mask, ex.labels), ex.labels) for ex in examples if ex.labels]
    it = iter(range(10**9))
    unknown = []

    def run():
        image, maps, labels = inputs[next(it) % len(inputs)]
        _, _, info = matting_labels(image, maps, labels, mc)
        unknown.append(info.get("unknown", float("nan")))

    run.unknown = unknown
    return run


def crf_image(cfg: dict, examples, params_name: str):
    """The CRF work of one image as its rule does it: ``label``, the confident regions of rule ir_labels
    (``labels.confident_labels``: IRN's two label CRFs, foreground- and background-sure, on the row's maps at the
    matting rows' thresholds); ``deeplab``, DeepLab's evaluation CRF of rule evaluate_deeplab
    (``deeplab.segment`` over all 21 classes, as the reference's main.py ``crf``)."""
    from matlabel.crf import CRFParams
    from matlabel.deeplab import DEEPLAB_CRF, segment
    from matlabel.labels import confident_labels

    it = iter(range(10**9))
    crf = CRFParams.from_mapping(cfg["irn"]["crf"])
    conf = cfg["irn"]["confident"]["matting"] or {"fg": cfg["trimap"]["eps_fg"], "bg": cfg["trimap"]["eps_bg"]}
    inputs = [(ex.image, soft_maps(ex.mask, ex.labels), ex.labels) for ex in examples if ex.labels]
    probs = np.moveaxis(np.random.default_rng(0).dirichlet(np.ones(21), size=examples[0].mask.shape), -1, 0)
    probs = probs.astype(np.float32)

    def run():
        image, maps, labels = inputs[next(it) % len(inputs)]
        if params_name == "label":
            confident_labels(image, maps, labels, conf["fg"], conf["bg"], crf)
        else:
            segment(image, probs[:, :image.shape[0], :image.shape[1]], DEEPLAB_CRF, "all")

    return run


def irn_step(cfg: dict, device: torch.device, examples, small: bool, speed: Speed):
    """One IRN training step on the frozen trunk (rule train_irn): batch and crop of the config, with ``speed``."""
    from matlabel.backbone import build_backbone
    from matlabel.irn.data import AffinityAugment, downsample_label
    from matlabel.irn.loss import irn_loss
    from matlabel.irn.model import IRNet
    from matlabel.irn.relations import relation_labels

    t = cfg["irn"]["train"]
    crop, batch, radius = (96, 4, 5) if small else (t["crop"], t["batch_size"], t["radius"])
    bb = dict(cfg["backbone"], weights="none", **({"arch": "resnet18"} if small else {}))
    model = IRNet(build_backbone(**bb), radius=radius).to(device)
    aug = AffinityAugment(tuple(t["rescale"]), crop, t["hflip"])
    items = []
    for i in range(batch):
        ex = examples[i % len(examples)]
        x, y = aug(ex.image, ex.mask, np.random.default_rng(i))
        items.append((torch.as_tensor(x), *relation_labels(downsample_label(y), model.path_index)))
    b = {"image": torch.stack([it[0] for it in items]).to(device)}
    for k, j in (("bg_pos", 1), ("fg_pos", 2), ("neg", 3)):
        b[k] = torch.stack([torch.as_tensor(it[j]) for it in items]).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    return training_step(model, irn_loss, b, device, speed, lambda: [{"params": params}])


def walk_image(cfg: dict, device: torch.device, examples, small: bool):
    """IRN's random walk of one image from its exported maps (rule random_walk)."""
    from matlabel.backbone import build_backbone
    from matlabel.irn.model import IRNet
    from matlabel.irn.random_walk import sem_seg_labels

    w = cfg["irn"]["walk"]
    bb = dict(cfg["backbone"], weights="none", **({"arch": "resnet18"} if small else {}))
    model = IRNet(build_backbone(**bb), radius=5 if small else cfg["irn"]["train"]["radius"]).to(device).eval()
    inputs = [(ex.image, soft_maps(ex.mask, ex.labels), ex.labels) for ex in examples if ex.labels]
    it = iter(range(10**9))

    def run():
        image, maps, labels = inputs[next(it) % len(inputs)]
        sem_seg_labels(model, image, maps, labels, beta=w["beta"], exp_times=w["exp_times"], radius=w["radius"],
                       bg_threshold=w["bg_threshold"], pad_to=128 if small else w["pad_to"], device=device)

    return run


def deeplab_iteration(cfg: dict, device: torch.device, small: bool, speed: Speed, reference_loop: bool = False):
    """One DeepLab-v2 iteration (``accumulate`` MSC forward/backward passes of ``batch_size`` crops, one SGD
    step) as matlabel.deeplab.train_deeplab runs it (its step, matlabel.deeplab.deeplab_step, and fit's optimiser,
    with ``speed``); ``reference_loop``: deeplab-pytorch's 5 x 2 instead."""
    from matlabel.deeplab import MSC, DeepLabV2, deeplab_step

    t, m = cfg["deeplab"]["train"], dict(cfg["deeplab"]["model"], weights="none")
    if reference_loop:
        t = dict(t, batch_size=5, accumulate=2)
    if small:
        m["arch"], t = "resnet18", dict(t, crop=96, batch_size=2)
    model = DeepLabV2(21, **m).to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    msc = MSC(model, t["msc_scales"]).train()
    names = ["x1", *[f"x{s:g}" for s in t["msc_scales"]], "max"]
    opt = speed.optimizer(model.param_groups(t["lr"], t["weight_decay"]), t["lr"], t["momentum"])
    step = deeplab_step(msc, names, t["accumulate"], device, speed)
    gen = torch.Generator().manual_seed(0)
    batch = {"image": torch.randn(t["batch_size"], 3, t["crop"], t["crop"], generator=gen) * 60 + 120,
             "label": torch.randint(0, 21, (t["batch_size"], t["crop"], t["crop"]), generator=gen)}
    batch = {k: v.to(device) for k, v in batch.items()}

    def run():
        opt.zero_grad(set_to_none=True)
        step([batch] * t["accumulate"])
        opt.step()

    return run


def deeplab_predict_image(cfg: dict, device: torch.device, examples, small: bool):
    """Multi-scale inference of one val image (rule evaluate_deeplab, before its CRF)."""
    from matlabel.deeplab import DeepLabV2, predict

    m = dict(cfg["deeplab"]["model"], weights="none", **({"arch": "resnet18"} if small else {}))
    model = DeepLabV2(21, **m).to(device).eval()
    it = iter(range(10**9))

    def run():
        ex = examples[next(it) % len(examples)]
        predict(model, ex.image, cfg["deeplab"]["test"]["scales"], cfg["deeplab"]["test"]["flip"], device=device)

    return run


def loader_image(cfg: dict, examples, small: bool):
    """JPEG decode + classification augmentation of one image in one core (a DataLoader worker's unit)."""
    import io

    from PIL import Image

    from matlabel.datasets.loader import ClassifierAugment
    from matlabel.io import read_image

    blobs = []
    for ex in examples[:8]:
        buf = io.BytesIO()
        Image.fromarray(ex.image).save(buf, format="JPEG", quality=90)
        blobs.append(buf.getvalue())
    a = cfg["augment"]
    aug = ClassifierAugment(a["resize_long"], 96 if small else a["crop"], a["hflip"])
    label = np.zeros(20, dtype=np.float32)
    it = iter(range(10**9))

    def run():
        i = next(it)
        image = read_image(io.BytesIO(blobs[i % len(blobs)]))
        aug({"id": "x", "image": image, "label": label, "index": i}, np.random.default_rng(i))

    return run


# --------------------------------------------------------------------------------------------- projection


def stage_table(cfg: dict, cores: int) -> list[dict]:
    """The Mat-Label row's critical path: (stage, unit, units on VOC, where it runs)."""
    d2, irn, dl = cfg["d2cam"], cfg["irn"]["train"], cfg["deeplab"]["train"]
    return [
        dict(stage="d2cam", what="D2CAM training", unit="step",
             units=d2["epochs"] * math.ceil(VOC_TRAIN_AUG / d2["batch_size"]), on="gpu"),
        dict(stage="export", what="CAM export, train_aug", unit="image", units=VOC_TRAIN_AUG, on="gpu"),
        dict(stage="matting", what="trimap + KNN matting", unit="image", units=VOC_TRAIN_AUG, on="cpu"),
        dict(stage="crf_label", what="confident regions (label CRF)", unit="image", units=VOC_TRAIN_AUG, on="cpu"),
        dict(stage="irn", what="IRN training", unit="step",
             units=irn["epochs"] * math.ceil(VOC_TRAIN_AUG / irn["batch_size"]), on="gpu"),
        dict(stage="walk", what="random walk, train_aug", unit="image", units=VOC_TRAIN_AUG, on="gpu"),
        dict(stage="deeplab", what="DeepLab-v2 training", unit="iteration", units=dl["iterations"], on="gpu"),
        dict(stage="deeplab_predict", what="DeepLab multi-scale inference, val", unit="image", units=VOC_VAL,
             on="gpu"),
        dict(stage="crf_deeplab", what="DeepLab CRF, val", unit="image", units=VOC_VAL, on="cpu",
             par=cfg.get("threads", {}).get("evaluate_deeplab", 1)),  # worker processes of the evaluation job
    ]


def projection(cfg: dict, st: dict) -> tuple[list[dict], float, bool]:
    """The stage table with each stage's minutes from its measured seconds per unit (CPU stages on --cores);
    returns (rows, total of the measured stages, whether every stage was measured)."""
    total, rows = 0.0, []
    for row in stage_table(cfg, ARGS.cores):
        e = st.get(row["stage"], {})
        if "s_per_unit" not in e:
            rows.append({**row, "minutes": None})
            continue
        par = min(ARGS.cores, row.get("par", ARGS.cores)) if row["on"] == "cpu" else 1
        minutes = e["s_per_unit"] * row["units"] / par / 60
        total += minutes
        rows.append({**row, "s_per_unit": e["s_per_unit"], "parallel": par, "minutes": minutes})
    return rows, total, all(r["minutes"] is not None for r in rows)


def main() -> int:
    cfg = load_config(ARGS.config)
    device = resolve_device(ARGS.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"  # cudnn defaults, as the rules
    print(f"device {name}; torch {torch.__version__}; preset {ARGS.config}; cores for CPU stages {ARGS.cores}",
          flush=True)
    examples = synthetic_images(12, ARGS.small)
    wanted = None if ARGS.stages == "all" else set(ARGS.stages.split(","))
    settings = {spec: Speed.parse(spec, device, cfg.get("speed")) for spec in ARGS.speed_flags.split(",")}
    first = next(iter(settings))
    training = {
        "cam": lambda speed: classifier_step("cam", cfg, device, ARGS.small, speed),
        "d2cam": lambda speed: classifier_step("d2cam", cfg, device, ARGS.small, speed),
        "irn": lambda speed: irn_step(cfg, device, examples, ARGS.small, speed),
        "deeplab": lambda speed: deeplab_iteration(cfg, device, ARGS.small, speed),
        "deeplab_5x2": lambda speed: deeplab_iteration(cfg, device, ARGS.small, speed, reference_loop=True),
    }
    builders = {
        "cam": None, "d2cam": None,
        "export": lambda: export_image(cfg, device, examples, ARGS.small),
        "matting": lambda: matting_image(cfg, examples),
        "crf_label": lambda: crf_image(cfg, examples, "label"),
        "irn": None,
        "walk": lambda: walk_image(cfg, device, examples, ARGS.small),
        "deeplab": None, "deeplab_5x2": None,
        "deeplab_predict": lambda: deeplab_predict_image(cfg, device, examples, ARGS.small),
        "crf_deeplab": lambda: crf_image(cfg, examples, "deeplab"),
        "loader": lambda: loader_image(cfg, examples, ARGS.small),
    }
    runs = []  # (result name, stage, builder): the training stages once per speed setting, the first unsuffixed
    for stage, build in builders.items():
        if wanted is not None and stage not in wanted:
            continue
        if stage not in training:
            runs.append((stage, stage, build))
            continue
        for spec, speed in settings.items():
            runs.append((stage if spec == first else f"{stage}@{spec}", stage,
                         lambda build=training[stage], speed=speed: build(speed)))
    results = {"device": name, "torch": torch.__version__, "preset": ARGS.config, "cores": ARGS.cores,
               "small": ARGS.small, "speed_flags": {k: dataclasses.asdict(v) for k, v in settings.items()},
               "stages": {}}

    def save():
        if ARGS.out:
            Path(ARGS.out).write_text(json.dumps(results, indent=1))

    for stage, _, build in runs:
        try:
            fn = build()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            s, n = timed(fn, device, ARGS.seconds)
            entry = {"s_per_unit": s, "n": n, "warmup_s": timed.warmup_s}
            if device.type == "cuda":
                entry["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            if hasattr(fn, "unknown") and fn.unknown:
                entry["unknown_share"] = float(np.nanmean(fn.unknown))
            del fn
        except Exception as e:  # e.g. pydensecrf absent, out of memory: say so for this stage, never guess
            entry = {"skipped": f"{type(e).__name__}: {str(e)[:300]}"}
        results["stages"][stage] = entry
        print(f"{stage:16s} {json.dumps(entry)}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        save()

    st = results["stages"]
    if "cam" in st and "d2cam" in st and "s_per_unit" in st["cam"] and "s_per_unit" in st["d2cam"]:
        results["d2cam_over_cam"] = st["d2cam"]["s_per_unit"] / st["cam"]["s_per_unit"]
        print(f"D2CAM step / CAM step: {results['d2cam_over_cam']:.2f}x (same process)")
    if "s_per_unit" in st.get("deeplab", {}) and "s_per_unit" in st.get("deeplab_5x2", {}):
        results["deeplab_5x2_over_config"] = st["deeplab_5x2"]["s_per_unit"] / st["deeplab"]["s_per_unit"]
        print(f"DeepLab iteration, reference 5 x 2 loop / config's: {results['deeplab_5x2_over_config']:.2f}x")
    rows, total, complete = projection(cfg, st)
    results["projection"] = rows
    results["projected_minutes"] = total if complete else None
    for spec in list(settings)[1:]:  # the same projection with the training stages at the other speed setting
        other = {**st, **{s: st[f"{s}@{spec}"] for s in training if "s_per_unit" in st.get(f"{s}@{spec}", {})}}
        results.setdefault("speedup", {})[spec] = {
            s: st[s]["s_per_unit"] / st[f"{s}@{spec}"]["s_per_unit"] for s in training
            if "s_per_unit" in st.get(s, {}) and "s_per_unit" in st.get(f"{s}@{spec}", {})}
        _, other_total, other_complete = projection(cfg, other)
        results.setdefault("projected_minutes_by_speed", {first: results["projected_minutes"]})[spec] = (
            other_total if other_complete else None)
        print(f"speed flags {spec} (against {first}): step time ratio {first}/{spec} " + ", ".join(
            f"{s} {r:.2f}x" for s, r in results["speedup"][spec].items()) + f"; projected total "
            f"{other_total:.1f} min{'' if other_complete else ' (measured stages only)'}")
    print(f"\nProjected VOC wall time of the Mat-Label row on {name} + {ARGS.cores} cores:")
    for r in rows:
        m = "not measured" if r["minutes"] is None else f"{r['minutes']:7.1f} min"
        per = "" if r["minutes"] is None else f"{r['s_per_unit'] * 1e3:9.1f} ms/{r['unit']}"
        print(f"  {r['what']:38s} {r['units']:6d} {r['unit']}s {per:>18s}  {m}")
    print(f"  {'total' if complete else 'total of the measured stages':38s} {total:.1f} min")
    if "s_per_unit" in st.get("loader", {}):
        cap = ARGS.cores / st["loader"]["s_per_unit"]
        need = {k: cfg[k]["batch_size"] / st[k]["s_per_unit"] for k in ("d2cam",) if "s_per_unit" in st.get(k, {})}
        results["loader_images_per_s"] = cap
        print(f"  data loading: {cap:.0f} images/s on {ARGS.cores} cores" +
              "".join(f"; {k} consumes {v:.0f} images/s" for k, v in need.items()))
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
