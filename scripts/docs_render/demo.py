"""The synthetic demo's regions: its tables under results/synthetic/ (``make demo``; not in git) and its training
steps against the paper's (config.yaml, config/demo.yaml)."""
from __future__ import annotations

import math
import sys

from docs_render.formatting import DASH, METHOD_NAMES, _signed, md_table, pct, short_not_run
from docs_render.sources import DEMO, Missing, Sources, _short, _table1_rows


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
