"""The synthetic demo's regions: its tables under results/synthetic/ (``make demo``; not in git) and its training
steps against the paper's (config.yaml, config/demo.yaml)."""
from __future__ import annotations

import math
import sys

from docs_render.formatting import DASH, METHOD_NAMES, _signed, duration, md_table, pct, short_not_run
from docs_render.sources import DEMO, Missing, Sources, _short, _table1_labels, _table1_rows


def demo_table1(src: Sources) -> str:
    """Table 1 of the demo, ours beside the paper's (results/synthetic/table1.csv)."""
    rows = src.csv(f"results/{DEMO}/table1.csv")
    return md_table(["method", "seed", "seed (paper)", "w/ CRF", "w/ CRF (paper)", "w/ IRN", "w/ IRN (paper)"],
                    [[r["method"], r["seed"], r["seed_paper"], r["crf"], r["crf_paper"], r["irn"], r["irn_paper"]]
                     for r in rows])


def _demo_eval(src: Sources, row: str, stage: str) -> dict:
    """A demo row's score at a stage: its labels' eval.json, or for a map method's seed its maps' (matlabel.paths)."""
    sys.path.insert(0, str(src.root))
    from matlabel.paths import pattern
    try:
        return src.json(pattern("labels_eval", dataset=DEMO, row=row, stage=stage))
    except Missing:
        if stage != "seed":
            raise
        return src.json(pattern("maps_eval", dataset=DEMO, method=row))


def demo_class_iou(src: Sources) -> str:
    """Per-class IoU of every Table 1 row at each stage on the demo (each row's eval.json), classes present only."""
    sys.path.insert(0, str(src.root))
    from matlabel.tables import STAGE_NAMES
    rows = _table1_rows(src, f"results/{DEMO}/table1.csv")
    evals = {(row, st): _demo_eval(src, row, st) for row in rows for st in STAGE_NAMES}
    first = next(iter(evals.values()))["iou"]
    classes = [c for c in first if any(e["iou"].get(c) is not None for e in evals.values())]
    out = [[_short(src, row), STAGE_NAMES[st], *(DASH if e["iou"][c] is None else f"{e['iou'][c]:.0f}"
                                                          for c in classes), f"{e['miou']:.1f}"]
           for (row, st), e in evals.items()]
    return md_table(["row", "labels", *classes, "mIoU"], out)


def _demo_table1(src: Sources) -> dict[str, dict[str, float]]:
    return {row: {c: float(r[c]) for c in ("seed", "crf", "irn")}
            for row, r in _table1_rows(src, f"results/{DEMO}/table1.csv").items()}


def _gain(x: float) -> str:
    return "0.0" if round(x, 1) == 0 else _signed(x)


def demo_seeds_vs_floor(src: Sources) -> str:
    """D2CAM's and Mat-Label's seeds against the floor (table1.csv)."""
    sys.path.insert(0, str(src.root))
    from matlabel.tables import FLOOR_ROW
    t = _demo_table1(src)
    floor = float(next(r for r in src.csv(f"results/{DEMO}/table1.csv") if r["method"] == FLOOR_ROW)["seed"])
    return (f"D2CAM's maps ({t['d2cam']['seed']:.1f}, {_signed(t['d2cam']['seed'] - floor)} against the floor) and "
            f"Mat-Label on D2CAM's trimaps ({t['matlabel']['seed']:.1f}, {_signed(t['matlabel']['seed'] - floor)})")


def demo_gains(stage: str):
    """Each Table 1 row's stage against its seed, in the table's order (table1.csv)."""
    return lambda src: ", ".join(_gain(r[stage] - r["seed"]) for r in _demo_table1(src).values())


def demo_sweep_peaks(src: Sources) -> str:
    """Where the CAM's and ReCAM's threshold sweeps peak (their maps' eval.json), an oracle choice."""
    peaks = {m: _demo_eval(src, m, "seed") for m in ("cam", "recam")}
    return " and ".join(f"{e['best_miou']:.1f} ({METHOD_NAMES[m]}) at {e['best_threshold']:.2f}"
                        for m, e in peaks.items())


def demo_gallery_scores(src: Sources) -> str:
    """The gallery's images (its worst-first PNGs): each row's mean per-image seed mIoU, and how often Mat-Label's
    beats D2CAM's."""
    shown = len(list(src.path(f"results/{DEMO}/gallery").glob("*.png")))  # scores.csv ranks every image
    rows = src.csv(f"results/{DEMO}/gallery/scores.csv")[:shown]
    keys = [k for k in rows[0] if k not in ("rank", "image", "score")]
    means = ", ".join(f"{sum(float(r[k]) for r in rows) / len(rows):.1f} ({_short(src, k)})" for k in keys)
    wins = sum(float(r["matlabel"]) > float(r["d2cam"]) for r in rows)
    return (f"the gallery's {len(rows)} worst images average a per-image seed mIoU of {means}; Mat-Label's seed "
            f"beats D2CAM's on {wins} of them")


def demo_matting_failures(src: Sources) -> str:
    """Table 1's matting_failures column in words."""
    rows = [r for r in src.csv(f"results/{DEMO}/table1.csv") if r.get("matting_failures", DASH) != DASH]
    values = {r["matting_failures"] for r in rows}
    if len(values) == 1:
        return f"{values.pop()} for {'both' if len(rows) == 2 else 'every one of the'} matting rows"
    return ", ".join(f"{r['matting_failures']} ({r['method']})" for r in rows)


def demo_table2(src: Sources) -> str:
    """Table 2 of the demo (results/synthetic/table2.csv), the not-run reasons shortened."""
    rows = src.csv(f"results/{DEMO}/table2.csv")
    seen: dict[str, set] = {"val": set(), "test": set()}
    return md_table(["method", "val (ours)", "val (paper)", "test", "test (paper)"],
                    [[r["method"], short_not_run(r["val"], seen["val"]), r["val_paper"],
                      short_not_run(r["test"], seen["test"]), r["test_paper"]] for r in rows])


def demo_table4(src: Sources) -> str:
    """Table 4 (the D2CAM loss ablation) of the demo (results/synthetic/table4.csv)."""
    rows = src.csv(f"results/{DEMO}/table4.csv")
    return md_table(["variant", "demo (ours)", "paper (VOC)"],
                    [[r["variant"], r["miou"], r["miou_paper"]] for r in rows])


def demo_table4_moves(src: Sources) -> str:
    """What L_ma against L_area and adding L_oe do to the seed, ours beside the paper's (table4.csv's last rows)."""
    rows = src.csv(f"results/{DEMO}/table4.csv")
    ours, paper = ([float(r[k]) for r in rows] for k in ("miou", "miou_paper"))
    area, ma, oe = ours[-3] - ours[-4], ours[-2] - ours[-4], ours[-1] - ours[-2]  # rows: ..., +L_area, +L_ma, +L_oe
    order = "the paper's order" if (ma > area) == (paper[-2] > paper[-3]) else "against the paper's order"
    return (f"L_ma scores {'above' if ma > area else 'below'} L_area ({_signed(ma - area)}), {order}; L_oe moves the "
            f"seed by {_signed(oe)} (the paper: {_signed(paper[-1] - paper[-2])})")


def demo_table4_background(src: Sources) -> str:
    """The background IoU of L_d2 alone against the full D2CAM's (their maps' eval.json)."""
    sys.path.insert(0, str(src.root))
    from matlabel.methods import TABLE4_METHODS
    alone, full = (_demo_eval(src, TABLE4_METHODS[v], "seed")["iou"]["background"] for v in ("d2", "d2_ma_oe"))
    return f"background IoU {alone:.1f} against {full:.1f} for the full D2CAM"


def demo_table5(src: Sources) -> str:
    """Table 5 (which matting method) of the demo: seed / w/ CRF, seconds per image, per label rule."""
    rows = src.csv(f"results/{DEMO}/table5.csv")
    rules = list(dict.fromkeys(r["label_rule"] for r in rows))
    cells = {(r["matting"], r["label_rule"]): f"{r['seed']} / {r['crf']}, {r['seconds_per_image']} s" for r in rows}
    return md_table(["matting", *rules], [[m, *(cells.get((m, rule), "") for rule in rules)]
                                          for m in dict.fromkeys(r["matting"] for r in rows)])


def demo_table5_facts(src: Sources) -> str:
    """The unknown share and the fallbacks of Table 5's cells, in words."""
    rows = src.csv(f"results/{DEMO}/table5.csv")
    shares = {float(r["unknown_share"]) for r in rows}
    failures = {r["failures"] for r in rows}
    share = pct(shares.pop(), 1) if len(shares) == 1 else f"{pct(min(shares), 1)}–{pct(max(shares), 1)}"
    fail = f"{failures.pop()} fell back" if len(failures) == 1 else "fell back: " + ", ".join(sorted(failures))
    return f"unknown share {share} of the pixels; every cell's `failures` column: {fail} to the threshold seed"


def demo_table5_spread(src: Sources) -> str:
    """How far apart Table 5's cells land (seed and CRF columns)."""
    rows = src.csv(f"results/{DEMO}/table5.csv")
    spread = max(max(float(r[c]) for r in rows) - min(float(r[c]) for r in rows) for c in ("seed", "crf"))
    return f"lands within {spread:.1f} points"


def demo_eps(src: Sources) -> str:
    """The ε grid's spread per map method (results/synthetic/eps_sensitivity.csv)."""
    rows = src.csv(f"results/{DEMO}/eps_sensitivity.csv")
    fg = sorted({float(r["eps_fg"]) for r in rows})
    bg = sorted({float(r["eps_bg"]) for r in rows})
    parts = []
    for method in dict.fromkeys(r["method"] for r in rows):
        m = [float(r["miou"]) for r in rows if r["method"] == method]
        parts.append(f"from {METHOD_NAMES.get(method, method)}'s maps by {max(m) - min(m):.1f} points "
                     f"({min(m):.1f}–{max(m):.1f})")
    return (f"over ε_fg {fg[0]:g}–{fg[-1]:g} × ε_bg {bg[0]:g}–{bg[-1]:g}, Mat-Label's seed moves "
            + ", ".join(parts))


def rule_runtime(src: Sources, rule: str) -> float:
    for r in src.csv(f"results/{DEMO}/runtimes.csv"):
        if r["rule"] == rule:
            return float(r["wall_s_max"])
    raise Missing(f"results/{DEMO}/runtimes.csv: rule {rule}")


def demo_gallery_time(src: Sources) -> str:
    """The gallery job's wall time on the demo (results/synthetic/runtimes.csv)."""
    return f"{rule_runtime(src, 'gallery'):.0f} s"


# ------------------------------------------------------------------------------------------- the configs (repository)

#: Each demo network's steps per the configs: (stage, section, images per step key, steps key or None for epochs).
STEP_STAGES = (("CAM", "cam"), ("D2CAM", "d2cam"), ("ReCAM", "recam"), ("IRN", "irn.train"),
               ("DeepLab-v2", "deeplab.train"))
VOC_TRAIN_AUG = 10582  # images in VOC 2012's train_aug (SBD + VOC train), what the paper's classifiers train on


def _section(cfg: dict, dotted: str) -> dict:
    for key in dotted.split("."):
        cfg = cfg[key]
    return cfg


def _steps(section: dict, n_images: int) -> int:
    if "iterations" in section:
        return int(section["iterations"])
    return int(section["epochs"]) * math.ceil(n_images / int(section["batch_size"]))


def demo_steps_rows(src: Sources) -> list[tuple[str, int, int]]:
    """(stage, demo steps, paper steps) of every network the demo trains, from config.yaml and config/demo.yaml."""
    paper = src.yaml("config.yaml")
    demo = src.config("config/demo.yaml")
    n_demo = int(demo["data"]["synthetic"]["n_train"])
    return [(name, _steps(_section(demo, key), n_demo), _steps(_section(paper, key), VOC_TRAIN_AUG))
            for name, key in STEP_STAGES]


def demo_steps(src: Sources) -> str:
    """The demo's training steps beside the paper's, per network."""
    return md_table(["network", "demo steps", "paper steps (VOC)", "share"],
                    [[name, f"{d:,}", f"{p:,}", f"{100 * d / p:.2g}%"] for name, d, p in demo_steps_rows(src)])


def demo_steps_share(src: Sources) -> str:
    """The range of the demo's share of the paper's steps, e.g. ``0.15–3.6%``."""
    shares = [d / p for _, d, p in demo_steps_rows(src)]
    return f"{100 * min(shares):.2g}–{100 * max(shares):.2g}%"


# ------------------------------------------------------------------ the readings (bench/results/demo_readings.csv)

READINGS = "bench/results/demo_readings.csv"
STAGES = ("seed", "crf", "irn")


def _readings(src: Sources) -> dict[str, dict]:
    """Each run of bench/demo_readings.py (``run``: ``default`` or a reading's name): what it read, its jobs and
    wall time, its Table 1 by row key and the floor's seed."""
    sys.path.insert(0, str(src.root))
    from matlabel.tables import FLOOR_ROW
    runs: dict[str, dict] = {}
    for r in src.csv(READINGS):
        run = runs.setdefault(r["run"], {"what": r["what"], "jobs": r["jobs"], "wall_s": float(r["wall_s"]),
                                         "commit": r["commit"], "rows": {}})
        run["rows"][r["method"]] = {s: float(r[s]) for s in STAGES}
    if "default" not in runs:
        raise KeyError(f"{READINGS} has no run 'default' (bench/demo_readings.py writes it first)")
    keys = {label: key for key, label in _table1_labels(src).items()}
    for run in runs.values():
        run["floor"] = run["rows"][FLOOR_ROW]["seed"]
        run["rows"] = {keys[m]: v for m, v in run["rows"].items() if m in keys}
    return runs


def _runs(src: Sources, *names: str) -> list[dict]:
    """The named runs of bench/demo_readings.py (as :func:`_readings`); :class:`Missing` when one was not measured."""
    runs = _readings(src)
    for name in names:
        if name not in runs:
            raise Missing(f"{READINGS}: run {name}")
    return [runs[name] for name in names]


def _moved(reading: dict, default: dict) -> str:
    """A row's seed / CRF / IRN under a reading against the defaults' (``0.0 / +1.2 / −0.4``); ``same`` if none
    moved."""
    moves = [reading[s] - default[s] for s in STAGES]
    return "same" if all(round(m, 1) == 0 for m in moves) else " / ".join(_gain(m) for m in moves)


def demo_readings(src: Sources) -> str:
    """Table 1 under each reading: the defaults' seed / CRF / IRN, each reading's move from them, the jobs it reran."""
    runs = _readings(src)
    default = runs["default"]
    rows = list(default["rows"])
    triple = lambda scores: " / ".join(f"{scores[s]:.1f}" for s in STAGES)  # noqa: E731
    out = [[f"**{default['what']}**", *(f"**{triple(default['rows'][r])}**" for r in rows),
            f"{default['jobs']} jobs, {duration(default['wall_s'])}"]]
    for name, run in runs.items():
        if name != "default":
            out.append([run["what"], *(_moved(run["rows"][r], default["rows"][r]) for r in rows),
                        f"{run['jobs']} jobs, {duration(run['wall_s'])}"])
    return md_table(["reading", *(_short(src, r) for r in rows), "jobs, wall time"], out)


def demo_readings_source(src: Sources) -> str:
    """The commit the readings ran at, and whether their defaults equal the demo's Table 1 (results/synthetic/; without
    it the region is left as it is)."""
    default = _readings(src)["default"]
    agree = ("its defaults equal the demo's Table 1 above" if default["rows"] == _demo_table1(src) else
             "its defaults differ from the demo's Table 1 above: a commit since changed the results, rerun the bench")
    return f"`bench/demo_readings.py` at {default['commit']}; {agree}"


# ------------------------------------------------------------- DeepLab's budget (bench/results/deeplab_budget_demo.csv)

DEEPLAB_BUDGET = "bench/results/deeplab_budget_demo.csv"


def demo_deeplab_budget(src: Sources) -> str:
    """DeepLab retrained on the demo's labels or masks at other budgets and learning rates (bench/deeplab_budget.py
    on a demo working directory), in the order run."""
    out = []
    for r in src.csv(DEEPLAB_BUDGET):
        labels = "ground-truth masks" if r["row"] == "gt" else f"{_short(src, r['row'])}'s {r['labels'].upper()} labels"
        out.append([labels, f"{int(r['steps']):,} × {r['batch']}", r["set"].replace(",", ", ") or DASH,
                    f"{float(r['loss_first10']):.2f} → {float(r['loss_last10']):.2f}", f"{float(r['val_miou']):.1f}",
                    duration(float(r["train_s"]))])
    return md_table(["trained on", "iterations × crops", "reading", "loss per output, first → last 10 iterations",
                     "val mIoU", "training time"], out)


def demo_n1_seeds(src: Sources) -> str:
    """D2CAM's and Mat-Label's seeds with N1 trained (the default) and frozen (demo_readings.csv)."""
    on, off = (run["rows"] for run in _runs(src, "default", "d2cam_n1_frozen"))
    return (f"D2CAM's seed {on['d2cam']['seed']:.1f} with `true`, {off['d2cam']['seed']:.1f} with `false` "
            f"(Mat-Label's {on['matlabel']['seed']:.1f} and {off['matlabel']['seed']:.1f})")


def demo_d2cam_from_imagenet(src: Sources) -> str:
    """D2CAM trained from ImageNet for the demo's steps against from the trained CAM, and the floor (demo_readings)."""
    default, imagenet_run = _runs(src, "default", "d2cam_from_imagenet")
    cam_start, imagenet, floor = default["rows"], imagenet_run["rows"], default["floor"]
    return (f"D2CAM's seed {imagenet['d2cam']['seed']:.1f} and Mat-Label's {imagenet['matlabel']['seed']:.1f} "
            f"against the floor's {floor:.1f} ({cam_start['d2cam']['seed']:.1f} and "
            f"{cam_start['matlabel']['seed']:.1f} from the trained CAM)")
