"""The benchmarks' regions (bench/results/): the matting sweep, the GPU scale check on the H100 and the H200, the
node projection of VOC's Tables 1 + 2, and the CRF presets."""
from __future__ import annotations

import re
import sys

from docs_render.formatting import half_up, md_table, pct
from docs_render.sources import Missing, Sources


# --------------------------------------------------------------------------------- matting speed (bench/results/)

SWEEP = "bench/results/matting_sweep"
OURS, BASE, PYM = "ours (hard, all classes)", "baseline", "pymatting (per class)"


def _sweep(src: Sources) -> list[dict]:
    """The sweep's settings, each with CG steps and time shares parsed from its log (in the JSON's order)."""
    settings = src.json(f"{SWEEP}.json")["settings"]
    log = src.text(f"{SWEEP}.log")
    blocks = log.split("\nsummary (")[1:]
    if len(blocks) != len(settings):
        raise ValueError(f"{SWEEP}.log has {len(blocks)} summaries for {len(settings)} settings")
    for s, block in zip(settings, blocks):
        s["cg_steps"] = int(re.search(rf"^{re.escape(OURS)}\s+\S+\s+\S+\s+\S+\s+\S+\s+(\d+)", block, re.M).group(1))
        share = {m.group(1).strip(): float(m.group(2))
                 for m in re.finditer(r"^  (.+?)\s+[\d.]+\s+([\d.]+) %$", block, re.M)}
        s["share_search"] = share["neighbour search (kd-tree queries)"] + share["kd-tree builds (pymatting)"]
        s["share_cg"] = share["CG solve"]
    return settings


def _ratio(s: dict, prefix: str) -> float:
    return next(v["cpu_ratio_to_ours"] for k, v in s["methods"].items() if k.startswith(prefix))


def matting_sweep(src: Sources) -> str:
    """The matting sweep: seconds per image and ratios per unknown share (bench/results/matting_sweep.{json,log})."""
    ss = _sweep(src)
    base = src.json(f"{SWEEP}.json")["args"]["baseline"]
    rows = [
        ["unknown pixels per class trimap", *(pct(s["unknown_share"], 1) for s in ss)],
        ["unknown in some class, per image", *(pct(s["unknown_share_any_class"], 1) for s in ss)],
        ["ours, CPU s per image (all its classes)", *(f"{s['methods'][OURS]['cpu_s_per_image']:.2f}" for s in ss)],
        [f"{base} / ours", *(f"{_ratio(s, BASE):.2f}×" for s in ss)],
        ["pymatting / ours", *(f"{_ratio(s, PYM):.1f}×" for s in ss)],
        ["CG steps (largest)", *(str(s["cg_steps"]) for s in ss)],
        ["share of our time: kd-tree neighbour search + its builds", *(f"{half_up(s['share_search'])}%" for s in ss)],
        ["share of our time: CG", *(f"{half_up(s['share_cg'])}%" for s in ss)],
    ]
    return md_table(rows[0], rows[1:])


def matting_speed(src: Sources) -> str:
    """README's summary of the sweep: three operating points (about 9%, 23% and 65% unknown per class)."""
    ss = _sweep(src)
    picks = [min(ss, key=lambda s: abs(s["unknown_share"] - target)) for target in (0.09, 0.23, 0.65)]
    secs = ", ".join(f"{s['methods'][OURS]['cpu_s_per_image']:.2f} s at {pct(s['unknown_share'])}" for s in picks)
    last = picks[-1]
    return (f"{secs} ({pct(last['unknown_share_any_class'])} of the image unknown in some class, as with a trained "
            f"CAM's maps on VOC photos); " + ", ".join(f"{_ratio(s, PYM):.2g}×" for s in picks)
            + " pymatting's speed, and " + ", ".join(f"{_ratio(s, BASE):.2f}×" for s in picks)
            + " this project's matting before its speed work")



def matting_goal_point(src: Sources) -> str:
    """The sweep's last setting (the share of unknown pixels a trained CAM's maps give): its seconds per image."""
    last = _sweep(src)[-1]
    return f"{last['methods'][OURS]['cpu_s_per_image']:.2f} s at {pct(last['unknown_share_any_class'])} unknown"


def matting_alpha_agreement(src: Sources) -> str:
    """The largest alpha difference to ours over the sweep's settings: the baseline commit's and pymatting's."""
    ss = _sweep(src)
    base = src.json(f"{SWEEP}.json")["args"]["baseline"]
    worst = {prefix: max(v["max_abs_alpha_diff_to_ours"] for s in ss for k, v in s["methods"].items()
                         if k.startswith(prefix)) for prefix in (BASE, PYM)}
    return (f"within {worst[BASE]:.1e} of {base}'s (the same graph; the solver changed) and within "
            f"{worst[PYM]:.2g} of pymatting's").replace("e-0", "e-")

# ------------------------------------------------------------------------------- the GPU scale check (bench/results/)

SCALE = {"H100": "bench/results/voc_scale_h100.json", "H200": "bench/results/voc_scale_h200.json"}
SCALE_LABELS = {"d2cam": "D2CAM training (ResNet-50, crop 512, batch 16, bf16)",
                "export": "map export, train_aug (4 scales × flip)",
                "matting": "trimap + KNN matting (CPU, {unknown} unknown pixels)",
                "crf_label": "confident regions, label CRF (CPU)", "irn": "IRN training (batch 32, crop 512)",
                "walk": "random walk, train_aug", "deeplab": "DeepLab-v2 training (ResNet-101, MSC, 10 × 321², bf16)",
                "deeplab_predict": "DeepLab multi-scale inference, val", "crf_deeplab": "DeepLab CRF, val (CPU)"}


def _per_unit(p: dict) -> str:
    s = p["s_per_unit"]
    if s >= 1 or p["on"] == "cpu":
        return f"{s:.2f} s"
    return f"{1000 * s:.1f} ms" if s < 0.1 else f"{1000 * s:.0f} ms"


def _projected(p: dict) -> str:
    return f"{p['minutes']:.1f} min" + (f" on {p['parallel']} cores" if p["on"] == "cpu" else "")


def voc_scale(src: Sources) -> str:
    """Per-stage cost per unit and projected VOC minutes on the H100 and the H200 (bench/results/voc_scale_*.json)."""
    runs = {card: src.json(path) for card, path in SCALE.items()}
    first = next(iter(runs.values()))
    unknown = pct(first["stages"]["matting"]["unknown_share"])
    by_card = {card: {p["stage"]: p for p in run["projection"]} for card, run in runs.items()}
    rows = []
    for p in first["projection"]:
        row = [SCALE_LABELS.get(p["stage"], p["what"]).format(unknown=unknown), f"{p['units']:,} {p['unit']}s"]
        for card in runs:
            q = by_card[card][p["stage"]]
            row += [_per_unit(q), _projected(q)]
        rows.append(row)
    rows.append(["**total**", "",
                 *(x for run in runs.values() for x in ("", f"**{run['projected_minutes']:.1f} min**"))])
    return md_table(["stage (Mat-Label row, critical path)", "units on VOC",
                     *(f"{card}: {what}" for card in runs for what in ("per unit", "projected"))], rows)


def d2cam_step_ratio(src: Sources) -> str:
    """D2CAM's step against the plain CAM step on each card (voc_scale's same-process measurement)."""
    parts = []
    for card, path in SCALE.items():
        run = src.json(path)
        st = run["stages"]
        parts.append(f"{run['d2cam_over_cam']:.2f}× on an {card} ({1000 * st['d2cam']['s_per_unit']:.1f} vs "
                     f"{1000 * st['cam']['s_per_unit']:.1f} ms; peak memory {st['d2cam']['peak_gib']:.1f} vs "
                     f"{st['cam']['peak_gib']:.1f} GiB)")
    return " and ".join(parts)


def deeplab_5x2(src: Sources) -> str:
    """The reference's 5 × 2 accumulated DeepLab passes against one pass of 10, per card (voc_scale, same process)."""
    return " / ".join(f"{src.json(path)['deeplab_5x2_over_config']:.2f}× ({card})" for card, path in SCALE.items())


def matting_gpu_machines(src: Sources) -> str:
    """The matting stage's CPU seconds per image at its unknown share on each card's machine (voc_scale)."""
    stage = {card: src.json(path)["stages"]["matting"] for card, path in SCALE.items()}
    return ", ".join(f"{m['s_per_unit']:.2f} s per image at {pct(m['unknown_share'], 1)} unknown on the {card} "
                     "machine's cores" for card, m in stage.items())


def loader_vs_d2cam(src: Sources) -> str:
    """Images per second the data loader gives on 16 cores against what a D2CAM step consumes, over the cards."""
    batch = int(src.config("config/voc-scale.yaml")["d2cam"]["batch_size"])
    runs = [src.json(path) for path in SCALE.values()]
    loader = [r["loader_images_per_s"] for r in runs]
    used = sorted(batch / r["stages"]["d2cam"]["s_per_unit"] for r in runs)
    return (f"about {round(min(loader), -2):,.0f} images/s of JPEG decode + augmentation on 16 cores against the "
            f"{round(used[0], -1):.0f}–{round(used[-1], -1):.0f} images/s D2CAM consumes")


def voc_scale_h100_minutes(src: Sources) -> str:
    """The projected VOC wall time of the Mat-Label row on the H100 (voc_scale_h100.json)."""
    return f"about {round(src.json(SCALE['H100'])['projected_minutes'])} minutes"


def deeplab_autotuner_ms(src: Sources) -> str:
    """DeepLab's 5 x 2 loop per iteration in the first H200 run, cudnn's autotuner on (voc_scale_h200_first.json)."""
    return f"{1000 * src.json('bench/results/voc_scale_h200_first.json')['stages']['deeplab']['s_per_unit']:.0f} ms"


def voc_scale_minutes(src: Sources) -> str:
    """The projected VOC wall time of the Mat-Label row over the cards (voc_scale's projection)."""
    minutes = sorted(src.json(path)["projected_minutes"] for path in SCALE.values())
    low, high = round(minutes[0]), round(minutes[-1])
    return f"{low}-minute" if low == high else f"{low}–{high}-minute"


def crf_deeplab_per_image(src: Sources) -> str:
    """The DeepLab evaluation's CRF per image on each card's machine (voc_scale's ``crf_deeplab`` stage)."""
    parts = [f"{src.json(path)['stages']['crf_deeplab']['s_per_unit']:.2f} s" for path in SCALE.values()]
    cards = list(SCALE)
    return (f"{parts[0]} per VOC-size image on the {cards[0]} machine's cores, "
            + ", ".join(f"{p} on the {c}'s" for p, c in zip(parts[1:], cards[1:])))


PROJECTION = "bench/results/node_projection_h200.json"


def node_projection(src: Sources) -> str:
    """Tables 1 + 2 of VOC list-scheduled on four nodes (bench/results/node_projection_h200.json)."""
    sc = src.json(PROJECTION)["scenarios"]
    rows = []
    for gpus, cores in dict.fromkeys((s["gpus"], s["cores"]) for s in sc):
        fifo = next(s for s in sc if (s["gpus"], s["cores"], s["order"]) == (gpus, cores, "fifo"))
        crit = next(s for s in sc if (s["gpus"], s["cores"], s["order"]) == (gpus, cores, "critical"))
        rows.append([f"{gpus} GPU{'s' if gpus > 1 else ''} + {cores} cores", f"{fifo['minutes']:.1f} min",
                     f"{crit['minutes']:.1f} min", pct(fifo["gpu_utilisation"]),
                     pct(fifo["cpu_work_share_under_a_gpu_job"]), f"{fifo['minutes_no_gpu_job_running']:.1f} min"])
    return md_table(["node", "wall, fifo order", "wall, longest path first", "GPU busy",
                     "CPU jobs' work while a GPU job runs", "no GPU job running"], rows)


def node_projection_summary(src: Sources) -> str:
    """README's summary of the projection: one GPU, the largest node, the Mat-Label row alone."""
    d = src.json(PROJECTION)
    fifo = [s for s in d["scenarios"] if s["order"] == "fifo"]
    one = min(fifo, key=lambda s: (s["gpus"], s["cores"]))
    big = max(fifo, key=lambda s: (s["gpus"], s["cores"]))
    row = d["chain"]["list_scheduled_1gpu"]
    return (f"{one['minutes']:.0f} min on {one['gpus']} GPU + {one['cores']} cores, {big['minutes']:.0f} min on "
            f"{big['gpus']} GPUs + {big['cores']} cores, the Mat-Label row alone {row['minutes']:.0f} min on 1 GPU")


CRITICAL_JOBS = {"train_classifier": "D2CAM training", "export_cams": "export",
                 "matting_labels": "matting of one shard", "ir_labels": "its confident regions", "train_irn": "IRN",
                 "random_walk": "walk", "train_deeplab": "DeepLab-v2", "evaluate_deeplab": "evaluation with its CRFs"}
WORK_RULES = {"ir_labels": "the confident regions", "matting_labels": "the matting",
              "crf_labels": "Table 1's CRF column", "train_deeplab": "DeepLab-v2 training",
              "evaluate_deeplab": "DeepLab-v2's evaluation", "random_walk": "the walks",
              "train_irn": "IRN", "export_cams": "the map export", "train_classifier": "the three classifiers"}


def _critical_jobs(d: dict) -> str:
    """The critical path's jobs with their minutes, the zero-minute ones (download, tables) left out."""
    parts = []
    for j in d["critical_path"]["jobs"]:
        rule = j["job"].split("(")[0]
        if rule in CRITICAL_JOBS:
            parts.append(f"{CRITICAL_JOBS[rule]} {j['minutes']:.1f}")
    return ", ".join(parts)


def node_projection_row(src: Sources) -> str:
    """The Mat-Label row alone: serial sum, list-scheduled under both accountings, critical path."""
    d = src.json(PROJECTION)
    c = d["chain"]
    one, acc = c["list_scheduled_1gpu"], c["list_scheduled_1gpu_voc_scale_accounting"]
    card = d["device"].replace("NVIDIA ", "")
    return (f"{c['jobs']} jobs, {one['gpus']} GPU + {one['cores']} cores: `voc_scale.py`'s serial sum recomputed from "
            f"the DAG's jobs is {c['serial_minutes']:.1f} min (the {card} JSON's own "
            f"{c['voc_scale_projected_minutes']:.1f} min spread the evaluation's CRFs over {one['cores']} cores; "
            f"a test recomputes it with the job's workers). List-scheduled as the jobs run: {acc['minutes']:.1f} min "
            f"with one CRF per confident image as `voc_scale.py` counts it, {one['minutes']:.1f} min with the code's "
            f"two; its critical path is {c['critical_path_minutes']:.1f} min")


def node_projection_work(src: Sources) -> str:
    """All of Tables 1 + 2: GPU and CPU work, the critical path's jobs, the work per rule."""
    d = src.json(PROJECTION)
    w = d["work"]
    cpu = sorted(((k.split(" ")[0], v) for k, v in w["by_rule"].items() if "core-min" in k), key=lambda kv: -kv[1])
    gpu = sorted(((k.split(" ")[0], v) for k, v in w["by_rule"].items() if "GPU-min" in k), key=lambda kv: -kv[1])

    def fmt(v):
        return f"{v:.0f}" if v >= 100 else f"{v:.1f}"
    return (f"{w['gpu_job_minutes']:.0f} minutes of GPU jobs, {w['cpu_job_core_minutes']:,.0f} core-minutes of CPU "
            f"jobs, and a critical path of {d['critical_path']['minutes']:.1f} min (the Mat-Label row: "
            f"{_critical_jobs(d)}). Of the CPU work, " + ", ".join(f"{WORK_RULES[r]} {fmt(v)}" for r, v in cpu)
            + " core-minutes; of the GPU jobs' minutes, " + ", ".join(f"{WORK_RULES[r]} {fmt(v)}" for r, v in gpu))


def node_projection_one_gpu(src: Sources) -> str:
    """On one GPU (fifo): the wall time against the GPU work, the card's idle minutes, the CPU work beside GPU jobs."""
    d = src.json(PROJECTION)
    one = min((s for s in d["scenarios"] if s["order"] == "fifo"), key=lambda s: (s["gpus"], s["cores"]))
    return (f"{one['minutes']:.0f} min against a bound of {d['work']['gpu_job_minutes']:.0f} (the GPU work): the card "
            f"waits {one['minutes_no_gpu_job_running']:.0f} minutes")


def node_projection_shards64(src: Sources) -> str:
    """The same projection with 64 shards on the largest node (node_projection_h200_shards64.json)."""
    d = src.json(PROJECTION.replace(".json", "_shards64.json"))
    big = max(d["scenarios"], key=lambda s: (s["gpus"], s["cores"]))
    runs = {s["order"]: s["minutes"] for s in d["scenarios"] if (s["gpus"], s["cores"]) == (big["gpus"], big["cores"])}
    dl = {j["job"].split("(")[0]: j["minutes"] for j in d["critical_path"]["jobs"]}
    return (f"projects {runs['fifo']:.1f} min (fifo) / {runs['critical']:.1f} min on {big['gpus']} GPUs + "
            f"{big['cores']} cores, critical path {d['critical_path']['minutes']:.1f} min, of which DeepLab-v2's "
            f"training is {dl['train_deeplab']:.1f} and its evaluation {dl['evaluate_deeplab']:.1f}")


def crf_presets(src: Sources) -> str:
    """The CRF presets of ``matlabel.crf.PRESETS``, the default from config.yaml's ``crf.preset``."""
    sys.path.insert(0, str(src.root))
    from matlabel.crf import PRESETS
    default = src.yaml("config.yaml")["crf"]["preset"]
    unary = {"label": "the seed labels (gt_prob {gt_prob})", "score": "the row's maps as probabilities (background "
             "(1 − max)^{bg_power}; matting rows: the alphas, background 1 − max alpha)"}
    rows = []
    for name, p in PRESETS.items():
        rows.append([f"`{name}`" + (" (default)" if name == default else ""), unary[p["unary"]].format(**p),
                     f"sxy {p['gaussian_sxy']:g}, compat {p['gaussian_compat']:g}",
                     f"sxy {p['bilateral_sxy']:g}, srgb {p['bilateral_srgb']:g}, compat {p['bilateral_compat']:g}",
                     str(p["iterations"])])
    return md_table(["`crf.preset`", "unary", "Gaussian kernel", "bilateral kernel", "iterations"], rows)


# --------------------------------------------------------------- D2CAM's step on CPU (bench/results/)

D2CAM_THROUGHPUT = "bench/results/d2cam_throughput.csv"


def d2cam_cpu_step(src: Sources) -> str:
    """D2CAM's training step against the plain CAM step on CPU, per network, crop and batch (d2cam_throughput.py)."""
    rows = [r for r in src.csv(D2CAM_THROUGHPUT) if r["device"] == "cpu"]
    if not rows:
        raise Missing(f"{D2CAM_THROUGHPUT}: no CPU rows")
    return ", ".join(f"{float(r['ratio']):.2f}× for {r['arch']} at crop {r['crop']}, batch {r['batch']} "
                     f"({r['threads']} threads)" for r in rows)


# ------------------------------------------------------------------------ the export's cost (bench/results/)

EXPORT_COST = "bench/results/export_cost.csv"


def export_cost(src: Sources) -> str:
    """The multi-scale export against one forward pass, per network and image size (bench/bench_export.py --save)."""
    rows = src.csv(EXPORT_COST)
    parts = [f"{float(r['ratio']):.1f}× a single forward pass for {r['arch']} at {r['size'].replace('x', '×')} "
             f"({float(r['export_s']):.2f} s per image on {r['device'].upper()}, {r['threads']} threads)"
             for r in rows]
    return (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") + parts[-1] + (
        f", against {float(rows[0]['pixel_work']):g}× the pixel work")


# ---------------------------------------------------------------------- a perfect seed through the CRF (bench/results/)

CRF_GT = "bench/results/crf_gt_seed.csv"
CRF_GT_DATASETS = {"demo": "the demo's images", "photos": "the 248 real photos"}


def _crf_gt(src: Sources) -> dict[tuple[str, str], float]:
    """crf_gt_seed.csv's mIoU by (dataset, reading)."""
    return {(r["dataset"], r["reading"]): float(r["miou"]) for r in src.csv(CRF_GT)}


def crf_gt_seed(src: Sources) -> str:
    """What the label CRF with PSA's pairwise terms and with IRN's leaves of a ground-truth seed (crf_gt_seed.csv)."""
    rows = _crf_gt(src)
    names = [d for d in CRF_GT_DATASETS if (d, "irn_label") in rows]
    hybrid = " and ".join(f"{rows[(d, 'irn_label_psa_pairwise')]:.0f} on {CRF_GT_DATASETS[d]}" for d in names)
    irn = " / ".join(f"{rows[(d, 'irn_label')]:.0f}" for d in names)
    return f"it erodes a ground-truth seed to {hybrid} (mIoU against the masks), IRN's terms keep {irn}"


def crf_gt_seed_cost(src: Sources) -> str:
    """The mIoU points the hybrid and IRN's own label CRF take off a ground-truth seed on the real photos."""
    rows = _crf_gt(src)
    none, hybrid, irn = (rows[("photos", k)] for k in ("none", "irn_label_psa_pairwise", "irn_label"))
    return (f"{none - hybrid:.0f} points of mIoU on the 248 real photos (IRN's own terms: {none - irn:.0f}; "
            "`bench/crf_gt_seed.py`)")
