"""Render the measured numbers of README.md, docs/*.md and bench/README.md from the files that hold them.

    python scripts/render_docs.py                  # rewrite every generated region (what `make docs` runs)
    python scripts/render_docs.py --check          # exit 1, naming each region, if a doc differs from its files
    python scripts/render_docs.py --results DIR    # the demo's results from DIR instead of results/

A generated region is the text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; the
renderer of NAME (:data:`REGIONS`) makes it from its source files, so a number is written in one file (a table of
the demo under ``results/``, a measurement under ``bench/results/``, a timing in ``bench/results/timings.csv``) and
every doc that shows it shows the same value. A region whose markers sit on one line is inline (a number in a
sentence); otherwise it is a block (a table). Sources under ``results/`` are the demo's (``make demo``; not in git):
a region whose source is absent is left as it is and listed, so ``--check`` on a clone without a demo run checks
the regions sourced from ``bench/results/`` and the configs only.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/*.md", "bench/README.md")
DEMO = "synthetic"  # the demo's dataset: its tables under results/synthetic/, whatever dataset ran last
REGION = re.compile(r"<!-- generated:(?P<name>[a-z0-9-]+) -->(?P<body>.*?)<!-- /generated:(?P=name) -->", re.S)
DASH = "—"


class Missing(Exception):
    """A region's source file is absent (the demo not run): the region is left as it is."""


@dataclass
class Sources:
    """Where the renderers read: the repository (configs, bench/results/) and the demo's results directory."""

    root: Path = ROOT
    results: Path | None = None

    def __post_init__(self):
        self.results = Path(self.results) if self.results is not None else self.root / "results"

    def path(self, rel: str) -> Path:
        """``results/...`` from the results directory, anything else from the repository; :class:`Missing` if absent."""
        p = self.results / rel[len("results/"):] if rel.startswith("results/") else self.root / rel
        if not p.exists():
            raise Missing(rel)
        return p

    def csv(self, rel: str) -> list[dict]:
        with open(self.path(rel), newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def json(self, rel: str):
        return json.loads(self.path(rel).read_text(encoding="utf-8"))

    def text(self, rel: str) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    def yaml(self, rel: str) -> dict:
        import yaml
        return yaml.safe_load(self.text(rel))


# ---------------------------------------------------------------------------------------------------- formatting

def md_table(header, rows) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """``13 min 19 s`` (``58 s`` under a minute, ``1 h 2 min`` from an hour)."""
    s = int(round(float(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def about_minutes(seconds: float) -> str:
    """``about 22 minutes`` / ``about 2 minutes`` / ``about 1 minute``."""
    m = max(1, int(round(float(seconds) / 60)))
    return f"about {m} minute{'s' if m != 1 else ''}"


def short_not_run(cell: str, seen: set) -> str:
    """A table's ``not run: why (how)`` cell without its parenthesis; ``not run (as above)`` once said in the column."""
    if not cell.startswith("not run"):
        return cell
    short = re.sub(r"\s*\(.*\)\s*$", "", cell)
    if short in seen:
        return "not run (as above)"
    seen.add(short)
    return short


def half_up(x: float) -> int:
    """``x`` rounded to an integer, halves up (a percentage printed to one decimal, 2.5, reads 3)."""
    return math.floor(x + 0.5)


def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f}%"


# ------------------------------------------------------------------------------------------------ the demo (results/)

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
    return " and ".join(f"{e['best_miou']:.1f} ({METHOD_NAMES[m]}) at {e['best_threshold']:.2f}" for m, e in peaks.items())


def demo_gallery_scores(src: Sources) -> str:
    """The gallery's images (its worst-first PNGs): each row's mean per-image seed mIoU, and how often Mat-Label's beats D2CAM's."""
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
    return md_table(["variant", "demo (ours)", "paper (VOC)"], [[r["variant"], r["miou"], r["miou_paper"]] for r in rows])


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


METHOD_NAMES = {"cam": "CAM", "recam": "ReCAM", "d2cam": "D2CAM"}


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


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = _merged(base.get(k) or {}, v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


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
    demo = _merged(paper, src.yaml("config/demo.yaml"))
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


# ------------------------------------------------------------------------------ timings (bench/results/timings.csv)

TIMINGS = "bench/results/timings.csv"


def timings(src: Sources, what: str) -> list[dict]:
    """The records of one measurement, newest first."""
    rows = [r for r in src.csv(TIMINGS) if r["what"] == what]
    if not rows:
        raise Missing(f"{TIMINGS}: {what}")
    return sorted(rows, key=lambda r: r["date"], reverse=True)


def _value(r: dict) -> str:
    return duration(r["value"]) if r["unit"] == "s" else f"{r['value']} {r['unit']}"


def _with_history(rows: list[dict], what: str) -> str:
    new, old = rows[0], rows[1:]
    text = f"{_value(new)} from a fresh clone of {new['commit']}, {new['date']} ({new['detail']})"
    if old:
        text += "; earlier: " + ", ".join(f"{_value(r)} from {r['commit']} ({r['detail']})" for r in old)
    return text


def timings_table(src: Sources) -> str:
    """README's table of the development machine's timings."""
    venv, size = timings(src, "make_venv")[0], timings(src, "venv_size")[0]
    return md_table(["what", "value"], [
        ["`make venv` (pip install of `requirements.txt` + numba warm-up)", about_minutes(venv["value"])],
        ["venv size", f"{_value(size)} ({size['detail']})"],
        ["`make demo` (96 train + 24 val synthetic images at 192×144, EfficientNet-Lite0 from ImageNet, CPU: the "
         "content stamps, CAM, ReCAM and D2CAM training and export, matting, CRF, five IRNs and random walks, three "
         "DeepLab-v2s, the floor, Tables 1–3, Figures 2 and 5, the gallery, run summary, then the report; the goal "
         "is 10 min)", _with_history(timings(src, "make_demo"), "make_demo")],
        ["`make test` (`bash .ci/run`)", _with_history(timings(src, "make_test"), "make_test")],
        ["`make check`", _with_history(timings(src, "make_check"), "make_check")],
        ["Table 5 + the ε grid after `make demo`", _with_history(timings(src, "table5_eps"), "table5_eps")],
    ])


def timing_about(what: str):
    def render(src: Sources) -> str:
        return about_minutes(float(timings(src, what)[0]["value"]))
    render.__doc__ = f"``about N minutes`` of the newest {what} record."
    return render


def timing_exact(what: str):
    def render(src: Sources) -> str:
        r = timings(src, what)[0]
        return f"{_value(r)} from a fresh clone of {r['commit']}"
    render.__doc__ = f"The newest {what} record and its commit."
    return render


# ------------------------------------------------------------------------ real photos (bench/results/real_photos_*)

PHOTOS = "bench/results/real_photos_voc330"
MAP_METHOD = {"CAM": "cam", "ReCAM": "recam", "D2CAM only": "d2cam"}


def _oracle(src: Sources) -> dict[str, tuple[float, float]]:
    best: dict[str, tuple[float, float]] = {}
    for r in src.csv(f"{PHOTOS}/sweeps.csv"):
        m, t = float(r["miou"]), float(r["bg_threshold"])
        if r["method"] not in best or m > best[r["method"]][0]:
            best[r["method"]] = (m, t)
    return best


def _photos_table(src: Sources, with_threshold: bool) -> str:
    rows = src.csv(f"{PHOTOS}/table1.csv")
    oracle = _oracle(src)
    best = {col: max(float(r[col]) for r in rows) for col in ("seed", "crf", "irn")}

    def cell(r, col):
        return f"**{r[col]}**" if float(r[col]) == best[col] else r[col]

    out = []
    for r in rows:
        o = oracle.get(MAP_METHOD.get(r["method"], ""))
        ocell = DASH if o is None else (f"{o[0]:.1f} at {o[1]:.2f}" if with_threshold else f"{o[0]:.1f}")
        paper = DASH if r["seed_paper"] == DASH else f"{r['seed_paper']} / {r['crf_paper']} / {r['irn_paper']}"
        out.append([r["method"], cell(r, "seed"), ocell, cell(r, "crf"), cell(r, "irn"), paper])
    return md_table(["method", "seed", "oracle seed", "w/ CRF", "w/ IRN", "paper (VOC train: seed / CRF / IRN)"], out)


def photos_table1(src: Sources) -> str:
    """Table 1 on the 248 VOC photos, with each map method's oracle seed (bench/results/real_photos_voc330)."""
    return _photos_table(src, with_threshold=False)


def photos_table1_thresholds(src: Sources) -> str:
    """As :func:`photos_table1`, the oracle's threshold beside it."""
    return _photos_table(src, with_threshold=True)


def photos_wall(src: Sources) -> str:
    """The real-photo run's wall time (summary.json)."""
    return f"{src.json(f'{PHOTOS}/summary.json')['wall_min']} min"


def photos_run(src: Sources) -> str:
    """The real-photo run's jobs, wall time, script and commit."""
    s = src.json(f"{PHOTOS}/summary.json")
    return f"{s['wall_min']} min ({s['jobs']} jobs, `bench/real_photos.py`, commit {s['commit']}, {s['finished'][:10]})"


def photos_check(src: Sources) -> str:
    """The folder check's time before the real-photo run (summary.json)."""
    return f"{src.json(f'{PHOTOS}/summary.json')['check_s']:.0f} s"


def photos_source(src: Sources) -> str:
    """The real-photo run's commit and date."""
    s = src.json(f"{PHOTOS}/summary.json")
    return f"commit {s['commit']}, {s['finished'][:10]}"


def photos_jobs(src: Sources) -> str:
    """The real-photo run's job count and how many ran side by side on average (summary.json)."""
    s = src.json(f"{PHOTOS}/summary.json")
    return f"{s['jobs']} jobs, {s['jobs_side_by_side']:.1f} at a time on average"


def _signed(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")


def _table1_rows(src: Sources, rel: str) -> dict[str, dict]:
    """The rows of a table CSV written by the workflow that are Table 1 rows, by their key (``matlabel.tables``'s
    TABLE1_ROWS: ``cam``, ``matlabel_cam``, ...); the floor and I+S rows left out."""
    keys = {label: key for key, label in _table1_labels(src).items()}
    return {keys[r["method"]]: r for r in src.csv(rel) if r["method"] in keys}


def _table1_labels(src: Sources) -> dict[str, str]:
    sys.path.insert(0, str(src.root))
    from matlabel.tables import TABLE1_ROWS
    return TABLE1_ROWS


def _short(src: Sources, row: str) -> str:
    """A Table 1 row's label without its parenthesis (``Mat-Label w/ CAM``)."""
    return _table1_labels(src)[row].split(" (")[0]


def photos_findings(src: Sources) -> str:
    """What the real-photo Table 1 shows, each number from its files: matting on each map method's maps against that
    method's own seed, the order of the map methods, CRF's and IRN's moves, IRN's displacement loss."""
    sys.path.insert(0, str(src.root))
    from matlabel.tables import TABLE1_PAPER

    table = _table1_rows(src, f"{PHOTOS}/table1.csv")
    t = {row: {c: float(r[c]) for c in ("seed", "crf", "irn")} for row, r in table.items()}
    oracle = _oracle(src)
    stats = {r["method"]: r for r in src.csv(f"{PHOTOS}/map_stats.csv")}
    matting = {"cam": "matlabel_cam", "recam": "matlabel_recam", "d2cam": "matlabel"}
    label = {"cam": "the CAM's", "recam": "ReCAM's", "d2cam": "D2CAM's"}
    moves = []
    for m, row in matting.items():
        if m in t and row in t:
            a, b = t[m]["seed"], t[row]["seed"]
            moves.append(f"on {label[m]} maps {_signed(b - a)} ({a:.1f} → {b:.1f}"
                         + (f"; that method's oracle threshold: {oracle[m][0]:.1f}" if m in oracle else "") + ")")
    off = {m: 100 * (1 - float(stats[m]["fg_precision"])) for m in stats}
    lines = ["- **Eq. 9 + KNN matting against each map method's own seed**, at the paper's ε and without choosing a "
             "threshold: " + "; ".join(moves) + ". Share of the trimap's foreground lying off the object (first "
             + f"{stats['cam']['images']} photos): " + ", ".join(f"{METHOD_NAMES[m]} {off[m]:.0f} %"
                                                             for m in ("cam", "recam", "d2cam") if m in off) + "."]
    failures = {row: r["matting_failures"] for row, r in table.items() if r["matting_failures"] != DASH}
    lines.append("- **Images whose matting failed** (their seed falls back to the threshold label): "
                 + ", ".join(f"{_short(src, m)} {v}" for m, v in failures.items()) + ".")
    map_methods = [m for m in ("cam", "recam", "d2cam") if m in t]
    order = sorted(map_methods, key=lambda m: -t[m]["seed"])
    paper = sorted(map_methods, key=lambda m: -TABLE1_PAPER[m]["seed"])
    paper_seeds = " / ".join(f"{TABLE1_PAPER[m]['seed']:.1f}" for m in paper)
    lines.append("- **Order of the map methods' seeds**: "
                 + " > ".join(f"{_table1_labels(src)[m]} {t[m]['seed']:.1f}" for m in order) + "; the paper's: "
                 + " > ".join(METHOD_NAMES[m] for m in paper) + f" ({paper_seeds}).")
    crf = {m: v["crf"] - v["seed"] for m, v in t.items()}
    irn = {m: v["irn"] - v["seed"] for m, v in t.items()}
    lines.append(f"- **Refinement**: CRF moves every row by at most {max(abs(x) for x in crf.values()):.1f} points ("
                 + ", ".join(f"{_short(src, m)} {_signed(x)}" for m, x in crf.items()) + "). IRN, "
                 "retrained per row on its own labels for ~100 steps: "
                 + ", ".join(f"{_short(src, m)} {_signed(x)}" for m, x in irn.items()) + ".")
    dp: dict[str, list[float]] = {}
    for r in src.csv(f"{PHOTOS}/curves.csv"):
        if r["model"].endswith("/irn") and r["term"] == "dp_fg":
            dp.setdefault(r["model"].split("/")[1], []).append(float(r["value"]))
    if dp:
        flat = [m for m, v in dp.items() if abs(v[-1] - v[0]) < 0.1]
        lines.append(f"- **IRN's foreground displacement loss** (`dp_fg`, first → last of {len(next(iter(dp.values())))} "
                     "epochs; `curves.png`): " + ", ".join(f"{_short(src, m)} {v[0]:.2f} → {v[-1]:.2f}"
                                                           for m, v in dp.items())
                     + f". It barely moves for {len(flat)} of the {len(dp)} rows: at ~100 steps the displacement field "
                     "hardly trains, so the walk's instance cues are weak (a budget question, not measured further).")
    return "\n".join(lines)


def photos_map_stats(src: Sources) -> str:
    """D2CAM's mean map on its object and elsewhere (map_stats.csv)."""
    r = next(r for r in src.csv(f"{PHOTOS}/map_stats.csv") if r["method"] == "d2cam")
    return f"mean map {float(r['on_object']):.2f} on the object, {float(r['elsewhere']):.2f} elsewhere"


PHOTOS_T2 = "bench/results/real_photos_voc330_table2"


def photos_table2(src: Sources) -> str:
    """Table 2 on the 82 val photos: DeepLab-v2 trained on each row's labels of the 248 train photos, the mean of its
    loss per MSC output (the total over the outputs, x1, the extra scales and max, / their number) over the first and
    the last 10 iterations (table2.csv, curves.csv)."""
    terms: dict[tuple[str, str], dict[str, float]] = {}
    for r in src.csv(f"{PHOTOS_T2}/curves.csv"):
        if r["model"].endswith("/deeplab"):
            terms.setdefault((r["model"].split("/")[1], r["iteration"]), {})[r["term"]] = float(r["value"])
    loss: dict[str, list[float]] = {}
    for (row, _), t in sorted(terms.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
        outputs = [k for k in t if k != "total"]
        loss.setdefault(row, []).append(t["total"] / len(outputs))
    keys = {label: key for key, label in _table1_labels(src).items()}
    out, seen = [], set()
    for r in src.csv(f"{PHOTOS_T2}/table2.csv"):
        v = loss.get(keys.get(r["method"], ""))
        out.append([r["method"], short_not_run(r["val"], seen), r["val_paper"],
                    DASH if not v else f"{sum(v[:10]) / 10:.1f} → {sum(v[-10:]) / 10:.1f}"])
    return md_table(["method", "val mIoU", "paper (VOC val)", "DeepLab loss per output, first → last 10 iterations"],
                    out)


def photos_table2_run(src: Sources) -> str:
    """The Table 2 run: its wall time on top of Table 1's, its jobs, commit and date (summary.json)."""
    s = src.json(f"{PHOTOS_T2}/summary.json")
    return (f"{s['wall_min']} min for the {s['jobs']} jobs on top of Table 1's (`bench/real_photos.py --table2 --resume`,"
            f" commit {s['commit']}, {s['finished'][:10]})")


BUDGET = "bench/results/classifier_budget_photos.csv"
#: What each run of bench/classifier_budget.py on the photos tried (its ``run`` key), in the order shown.
D2CAM_READINGS = {
    "d2cam/cam/176": "176 steps (the preset's budget, ~11 epochs)",
    "d2cam/cam/528": "528 steps",
    "d2cam/cam/176/d2cam.head_lr_mult=1": "176 steps, φ and the classifier at 1× lr (`d2cam.head_lr_mult: 1`; the "
                                          "preset: 10×, IRN's new layers)",
    "d2cam/cam/176/d2cam.train_n1=false": "176 steps, N1 frozen (`d2cam.train_n1: false`: only L_cls's, L_ma's and "
                                          "L_oe's gradient into N1 removed)",
    "d2cam/cam/176/_split=layer3": "176 steps, F taken after `layer3` (stride 16, 112 channels) instead of `layer2` "
                                   "(stride 8, 40)",
    "d2cam/cam/176/d2cam.head_lr_mult=1,_split=layer3": "176 steps, F after `layer3`, 1× lr",
    "d2cam/cam/176/d2cam.train_n1=false,_split=layer3": "176 steps, F after `layer3`, N1 frozen",
    "d2cam/cam/176/_fill=mean": "176 steps, masked cells of F at its per-channel mean, not 0 (`--fill mean`, below)",
}
RECAM_READINGS = {
    "recam/cam/176/recam.lr=5.0e-5,recam.momentum=1.0e-4": "the reference's lr (5e-5, predictor 5e-4, momentum 1e-4)",
    "recam/cam/176": "the old preset (2e-3, momentum 0.9)",
    "recam/cam/176/recam.lr=7.5e-4": "7.5e-4, momentum 0.9",
    "recam/cam/128/recam.lr=1.0e-3,recam.momentum=1.0e-4": "**the preset: reference lr × (2,648 / 128) = 1.0e-3, "
                                                           "momentum 1e-4**",
}


def _r(x, digits: int = 1) -> str:
    """``x`` rounded half up to ``digits`` decimals, as the hand-written tables were (0.125 -> 0.13)."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(str(x)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _budget_rows(src: Sources, readings: dict) -> list[dict]:
    rows = {r["run"]: r for r in src.csv(BUDGET)}
    missing = [k for k in readings if k not in rows]
    if missing:
        raise KeyError(f"{BUDGET} has no run {missing} (scripts/render_docs.py names it)")
    return [rows[k] for k in readings]


def d2cam_readings(src: Sources) -> str:
    """The D2CAM readings retrained on the photos (bench/results/classifier_budget_photos.csv)."""
    out = []
    for r in _budget_rows(src, D2CAM_READINGS):
        out.append([D2CAM_READINGS[r["run"]], _r(r['miou']),
                    f"{_r(r['best_miou'], 1)} at {_r(r['best_t'], 2)}",
                    f"{_r(r['on_object'], 2)} / {_r(r['elsewhere'], 2)}",
                    f"{_r(r['fg_share'], 2)} / {_r(r['fg_precision'], 2)}",
                    f"{_r(r['loss_d2'], 2)} / {_r(r['loss_ma'], 2)}"])
    return md_table(["D2CAM (from the trained CAM)", "seed", "oracle threshold", "on object / elsewhere",
                     "fg share / precision", "L_d2 / L_ma (last epoch)"], out)


def d2cam_readings_range(src: Sources) -> str:
    """The lowest and highest seed of the D2CAM readings."""
    seeds = [float(r["miou"]) for r in _budget_rows(src, D2CAM_READINGS)]
    return f"{_r(min(seeds))}–{_r(max(seeds))}"


def d2cam_readings_gap(src: Sources) -> str:
    """How far the best D2CAM reading stays below the CAM's seed on the photos, and which reading it is."""
    rows = _budget_rows(src, D2CAM_READINGS)
    best = max(rows, key=lambda r: float(r["miou"]))
    cam = float(_table1_rows(src, f"{PHOTOS}/table1.csv")["cam"]["seed"])
    gap = math.floor(cam - float(best["miou"]))
    return (f"stays {gap} or more points below the CAM's {cam:.1f} (the best: "
            f"{D2CAM_READINGS[best['run']]}, {_r(best['miou'])})")


def d2cam_readings_best(src: Sources) -> str:
    return _r(max(float(r["miou"]) for r in _budget_rows(src, D2CAM_READINGS)))


def d2cam_layer3_move(src: Sources) -> str:
    """F one stage deeper against the paper's F, both 176 steps from the CAM."""
    rows = {r["run"]: r for r in _budget_rows(src, D2CAM_READINGS)}
    a, b = rows["d2cam/cam/176"], rows["d2cam/cam/176/_split=layer3"]
    return (f"raises the precision of the foreground from {_r(a['fg_precision'], 2)} to {_r(b['fg_precision'], 2)} "
            f"and lowers L_d2 from {_r(a['loss_d2'], 2)} to {_r(b['loss_d2'], 2)}, but the foreground shrinks to "
            f"{pct(float(b['fg_share']))} of the pixels and the seed goes from {_r(a['miou'])} to {_r(b['miou'])}")


def d2cam_fill_mean_seed(src: Sources) -> str:
    r = {r["run"]: r for r in _budget_rows(src, D2CAM_READINGS)}["d2cam/cam/176/_fill=mean"]
    return f"{r['steps']} steps, the seed is {_r(r['miou'])}"


def recam_readings(src: Sources) -> str:
    """The ReCAM recipes retrained on the photos (bench/results/classifier_budget_photos.csv)."""
    out = []
    for r in _budget_rows(src, RECAM_READINGS):
        out.append([RECAM_READINGS[r["run"]], r["steps"], _r(r['miou']),
                    f"{_r(r['best_miou'], 1)} at {_r(r['best_t'], 2)}",
                    f"{_r(r['on_object'], 2)} / {_r(r['elsewhere'], 2)}", f"{_r(r['bg_share'], 2)}",
                    f"{_r(r['loss_ce'], 2)}"])
    return md_table(["ReCAM", "steps", "seed (at 0.21)", "oracle", "on object / elsewhere", "bg share",
                     "predictor's CE (chance 3.0)"], out)


PHI = "bench/results/phi_capacity_photos.csv"


def phi_capacity(src: Sources) -> str:
    """φ fitted to the masks on each stage's features against the CAM, on held-out photos (bench/phi_capacity.py)."""
    rows = src.csv(PHI)
    train = {(r["maps"], r["stage"]): r for r in rows if r["split"] == "train"}
    out = []
    for r in (r for r in rows if r["split"] == "val"):
        f = DASH if not r["channels"] else (f"`{r['stage']}`: stride {r['stride']}, {int(r['channels']):,} channels"
                                            + (" (the paper's F)" if r["stage"] == "layer2" else ""))
        out.append([r["maps"].replace("phi", "φ"), f, _r(r['miou']), _r(r['best_miou']),
                    f"{_r(train[(r['maps'], r['stage'])]['miou'], 1)}"])
    return md_table(["maps on held-out val photos (seed at 0.15)", "F", "seed", "oracle",
                     "on the train photos it fitted"], out)


def phi_vs_cam(src: Sources) -> str:
    """φ on the paper's F (layer2) against the CAM, on held-out photos."""
    val = {(r["maps"].startswith("phi"), r["stage"]): float(r["miou"]) for r in src.csv(PHI) if r["split"] == "val"}
    return f"{_r(val[(True, 'layer2')])} against the CAM's {_r(val[(False, 'layer4')])}"


LANDSCAPE = "bench/results/d2_landscape_photos.csv"
LANDSCAPE_MAPS = {"all ones": "all ones", "uniform 0.5": "uniform 0.5", "uniform 0.2": "uniform 0.2",
                  "object (hard)": "the true object (hard)", "object (0.1 / 0.9)": "the true object, 0.1 / 0.9",
                  "complement of the object": "complement of the object"}


def _landscape(src: Sources, fill: str) -> dict[str, dict]:
    return {r["quantity"]: r for r in src.csv(LANDSCAPE) if r["fill"] == fill}


def d2_landscape(src: Sources) -> str:
    """Eq. 5 for hand-made maps, the paper's zero fill, lowest first (bench/d2_landscape.py --out)."""
    rows = _landscape(src, "zero")
    maps = sorted((q for q in LANDSCAPE_MAPS if q in rows), key=lambda q: float(rows[q]["value"]))
    return md_table(["maps M_fg^c", "L_d2 (Eq. 5)"], [[LANDSCAPE_MAPS[q], f"{float(rows[q]['value']):.2f}"] for q in maps])


def d2_landscape_photos(src: Sources) -> str:
    return f"{_landscape(src, 'zero')['all ones']['n']} photos"


def d2_landscape_minimum(src: Sources) -> str:
    rows = _landscape(src, "zero")
    return f"a map of ones scores {float(rows['all ones']['value']):.2f}, the true object {float(rows['object (hard)']['value']):.2f}"


def d2_landscape_area(src: Sources) -> str:
    rows = _landscape(src, "zero")
    return f"{float(rows['object (hard)']['value']):.2f} vs {float(rows['uniform 0.2']['value']):.2f} at ~0.2"


def d2_landscape_gradient(src: Sources) -> str:
    rows = _landscape(src, "zero")
    on, off = (float(rows[f"grad {w} object"]["value"]) for w in ("on", "off"))
    share = rows["share larger on object"]
    return (f"−∂L_d2/∂M at M = 0.5 is {on / off:.0f}× larger on the object than off it ({on:.1e} vs {off:.1e} per "
            f"cell), larger on the object for {pct(float(share['value']))} of {share['n']} (image, class) pairs")


def d2_landscape_fill_mean(src: Sources) -> str:
    """The true object and the uniform 0.5 map under --fill mean against the zero fill."""
    zero, mean = _landscape(src, "zero"), _landscape(src, "mean")
    obj0, obj1 = (float(d["object (hard)"]["value"]) for d in (zero, mean))
    uni0, uni1 = (float(d["uniform 0.5"]["value"]) for d in (zero, mean))
    side = "below" if obj1 < uni1 else "still above"
    return (f"the true object's L_d2 moves from {obj0:.2f} to {obj1:.2f}, {side} the uniform 0.5 map's {uni1:.2f} "
            f"(with the paper's zero fill {uni0:.2f}, {'ahead of' if uni0 < obj0 else 'behind'} the object)")


def d2_landscape_vs_lma(src: Sources) -> str:
    """L_ma's per-cell gradient as a sum (γ2 (1 + λ)) against L_d2's on the object (γ1 × the landscape's gradient)."""
    loss = src.yaml("config.yaml")["d2cam"]["loss"]
    lma = loss["gamma_ma"] * (1 + loss["lam"])
    on = float(_landscape(src, "zero")["grad on object"]["value"])
    return (f"L_ma's gradient (γ2 (1 + λ) = {lma:.1f} per cell) outweighs L_d2's (γ1 × {on:.2g} ≈ "
            f"{loss['gamma_d2'] * on:.2g} per cell on the object, above) by {lma / (loss['gamma_d2'] * on):.0f}×")


def _phi(src: Sources, split: str, stage: str) -> str:
    return next(_r(r["miou"]) for r in src.csv(PHI) if r["split"] == split and r["stage"] == stage
                and r["maps"].startswith("phi"))


def phi_memorised(src: Sources) -> str:
    """φ on the paper's F scored on the photos it was fitted to."""
    return _phi(src, "train", "layer2")


def phi_layer3(src: Sources) -> str:
    """φ one stage deeper, on held-out photos."""
    return _phi(src, "val", "layer3")


def photos_matting_gain(src: Sources) -> str:
    """Mat-Label on the CAM's maps against the CAM's seed (table1.csv)."""
    rows = _table1_rows(src, f"{PHOTOS}/table1.csv")
    return f"{float(rows['matlabel_cam']['seed']) - float(rows['cam']['seed']):.1f}"


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
    rows.append(["**total**", "", *(x for run in runs.values() for x in ("", f"**{run['projected_minutes']:.1f} min**"))])
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


CRITICAL_JOBS = {"train_classifier": "D2CAM training", "export_cams": "export", "matting_labels": "matting of one shard",
                 "ir_labels": "its confident regions", "train_irn": "IRN", "random_walk": "walk",
                 "train_deeplab": "DeepLab-v2", "evaluate_deeplab": "evaluation with its CRFs"}
WORK_RULES = {"ir_labels": "the confident regions", "matting_labels": "the matting", "crf_labels": "Table 1's CRF column",
              "train_deeplab": "DeepLab-v2 training", "evaluate_deeplab": "DeepLab-v2's evaluation", "random_walk": "the walks",
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
            f"{c['voc_scale_projected_minutes']:.1f} min spread the evaluation's CRFs over {one['cores']} cores; a test "
            f"recomputes it with the job's workers). List-scheduled as the jobs run: {acc['minutes']:.1f} min with one "
            f"CRF per confident image as `voc_scale.py` counts it, {one['minutes']:.1f} min with the code's two; its "
            f"critical path is {c['critical_path_minutes']:.1f} min")


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


# -------------------------------------------------------------------------------------------------------- the regions

REGIONS = {
    "demo-table1": demo_table1,
    "demo-matting-failures": demo_matting_failures,
    "demo-class-iou": demo_class_iou,
    "demo-seeds-vs-floor": demo_seeds_vs_floor,
    "demo-crf-gains": demo_gains("crf"),
    "demo-irn-gains": demo_gains("irn"),
    "demo-sweep-peaks": demo_sweep_peaks,
    "demo-gallery-scores": demo_gallery_scores,
    "demo-table2": demo_table2,
    "demo-table4": demo_table4,
    "demo-table4-moves": demo_table4_moves,
    "demo-table5": demo_table5,
    "demo-table5-facts": demo_table5_facts,
    "demo-table5-spread": demo_table5_spread,
    "demo-eps": demo_eps,
    "demo-gallery-time": demo_gallery_time,
    "demo-steps": demo_steps,
    "demo-steps-share": demo_steps_share,
    "timings": timings_table,
    "make-test-about": timing_about("make_test"),
    "make-check-about": timing_about("make_check"),
    "make-demo": timing_exact("make_demo"),
    "table5-eps-time": timing_exact("table5_eps"),
    "folder-example-time": lambda src: duration(timings(src, "folder_example")[0]["value"]),
    "photos-table1": photos_table1,
    "photos-table1-thresholds": photos_table1_thresholds,
    "photos-wall": photos_wall,
    "photos-run": photos_run,
    "photos-jobs": photos_jobs,
    "photos-source": photos_source,
    "photos-check": photos_check,
    "photos-findings": photos_findings,
    "photos-matting-gain": photos_matting_gain,
    "photos-table2": photos_table2,
    "photos-table2-run": photos_table2_run,
    "d2cam-readings": d2cam_readings,
    "d2cam-readings-range": d2cam_readings_range,
    "recam-readings": recam_readings,
    "d2cam-readings-gap": d2cam_readings_gap,
    "d2cam-readings-best": d2cam_readings_best,
    "d2cam-layer3-move": d2cam_layer3_move,
    "d2cam-fill-mean-seed": d2cam_fill_mean_seed,
    "phi-memorised": phi_memorised,
    "phi-layer3": phi_layer3,
    "phi-capacity": phi_capacity,
    "phi-vs-cam": phi_vs_cam,
    "d2-landscape": d2_landscape,
    "d2-landscape-photos": d2_landscape_photos,
    "d2-landscape-minimum": d2_landscape_minimum,
    "d2-landscape-area": d2_landscape_area,
    "d2-landscape-gradient": d2_landscape_gradient,
    "d2-landscape-fill-mean": d2_landscape_fill_mean,
    "d2-landscape-vs-lma": d2_landscape_vs_lma,
    "photos-map-stats": photos_map_stats,
    "matting-sweep": matting_sweep,
    "matting-speed": matting_speed,
    "voc-scale": voc_scale,
    "d2cam-step-ratio": d2cam_step_ratio,
    "crf-deeplab-per-image": crf_deeplab_per_image,
    "crf-presets": crf_presets,
    "node-projection": node_projection,
    "node-projection-summary": node_projection_summary,
    "node-projection-row": node_projection_row,
    "node-projection-work": node_projection_work,
    "node-projection-one-gpu": node_projection_one_gpu,
    "node-projection-shards64": node_projection_shards64,
}


def render_text(text: str, src: Sources, regions=REGIONS, skipped: list | None = None) -> str:
    """``text`` with every generated region re-rendered; a region whose source is missing keeps its text (its name
    and the missing file are appended to ``skipped``). An unknown region name is an error."""
    def replace(m: re.Match) -> str:
        name, body = m.group("name"), m.group("body")
        if name not in regions:
            raise KeyError(f"unknown generated region {name!r} (scripts/render_docs.py REGIONS)")
        try:
            new = regions[name](src).strip("\n")
        except Missing as e:
            if skipped is not None:
                skipped.append((name, str(e)))
            return m.group(0)
        inline = "\n" not in body
        if inline and "\n" in new:
            raise ValueError(f"region {name!r} is inline but renders several lines")
        new = new if inline else f"\n{new}\n"
        return f"<!-- generated:{name} -->{new}<!-- /generated:{name} -->"
    return REGION.sub(replace, text)


def doc_files(root: Path = ROOT) -> list[Path]:
    return sorted({p for pattern in DOCS for p in root.glob(pattern)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a doc differs from its sources")
    ap.add_argument("--results", type=Path, help="the demo's results directory (default: results/)")
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    src = Sources(root=args.root, results=args.results)
    skipped: list = []
    stale = []
    for path in doc_files(args.root):
        old = path.read_text(encoding="utf-8")
        new = render_text(old, src, skipped=skipped)
        if new != old:
            rel = path.relative_to(args.root)
            names = [m.group("name") for m, n in zip(REGION.finditer(old), REGION.finditer(new)) if m.group(0) != n.group(0)]
            stale.append(f"{rel}: {', '.join(dict.fromkeys(names))}")
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for name, missing in dict.fromkeys(skipped):
        print(f"left as it is: {name} ({missing} not found)", file=sys.stderr)
    if args.check and stale:
        print("docs differ from their sources (make docs re-renders them):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print("\n".join(f"rendered {s}" for s in stale) or "every generated region is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
