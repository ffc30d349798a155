"""The real-photo regions: Tables 1 and 2 on the VOC photos (bench/results/real_photos_voc330*), the classifiers
retrained on them (classifier_budget_photos.csv), φ's capacity and Eq. 5's landscape."""
from __future__ import annotations

import math
import sys

from docs_render.formatting import DASH, METHOD_NAMES, _signed, md_table, pct, short_not_run
from docs_render.sources import Sources, _short, _table1_labels, _table1_rows


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


#: The rules of a Table 1 run as the docs name them (a rule not named here is shown by its own name).
RULE_NAMES = {"train_irn": "IRN training", "train_classifier": "classifier training (CAM, ReCAM, D2CAM)",
              "random_walk": "random walk", "export_cams": "map export", "matting_labels": "matting",
              "ir_labels": "IRN's confident regions", "crf_labels": "CRF", "evaluate_labels": "label evaluation",
              "evaluate_cams": "map evaluation", "prepare_folder": "folder check", "evaluate_floor": "the floor"}


def photos_job_seconds(src: Sources) -> str:
    """The real-photo run's job time per rule, summed over its jobs, the largest first (summary.json)."""
    s = src.json(f"{PHOTOS}/summary.json")
    return ", ".join(f"{RULE_NAMES.get(rule, rule)} {secs:.0f} s" for rule, secs in s["job_s_by_rule"].items()
                     if secs >= 1)


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
        lines.append("- **IRN's foreground displacement loss** (`dp_fg`, first → last of "
                     f"{len(next(iter(dp.values())))} epochs; `curves.png`): "
                     + ", ".join(f"{_short(src, m)} {v[0]:.2f} → {v[-1]:.2f}" for m, v in dp.items())
                     + f". It barely moves for {len(flat)} of the {len(dp)} rows: at ~100 steps the displacement field "
                     "hardly trains, so the walk's instance cues are weak (a budget question, not measured further).")
    return "\n".join(lines)


def photos_map_stats(src: Sources) -> str:
    """D2CAM's mean map on its object and elsewhere (map_stats.csv)."""
    r = next(r for r in src.csv(f"{PHOTOS}/map_stats.csv") if r["method"] == "d2cam")
    return f"mean map {float(r['on_object']):.2f} on the object, {float(r['elsewhere']):.2f} elsewhere"


PHOTOS_T2 = "bench/results/real_photos_voc330_table2"


STAGE_COLUMNS = {"seed": "seed", "crf": "w/ CRF", "irn": "w/ IRN"}


def photos_table2(src: Sources) -> str:
    """Table 2 on the 82 val photos: DeepLab-v2 trained on each row's labels of the 248 train photos, the mean of its
    loss per MSC output (the total over the outputs, x1, the extra scales and max, / their number) over the first and
    the last 10 iterations (table2.csv, curves.csv), beside the mIoU of the labels it trained on (the
    ``deeplab.labels_stage`` column of the same run's Table 1, that stage as config.yaml and the run's presets set it)
    and its background IoU (deeplab_iou.csv)."""
    terms: dict[tuple[str, str], dict[str, float]] = {}
    for r in src.csv(f"{PHOTOS_T2}/curves.csv"):
        if r["model"].endswith("/deeplab"):
            terms.setdefault((r["model"].split("/")[1], r["iteration"]), {})[r["term"]] = float(r["value"])
    loss: dict[str, list[float]] = {}
    for (row, _), t in sorted(terms.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
        outputs = [k for k in t if k != "total"]
        loss.setdefault(row, []).append(t["total"] / len(outputs))
    keys = {label: key for key, label in _table1_labels(src).items()}
    stage = src.config(*src.json(f"{PHOTOS_T2}/summary.json")["presets"])["deeplab"]["labels_stage"]
    labels = {key: r[stage] for key, r in _table1_rows(src, f"{PHOTOS_T2}/table1.csv").items()}
    background = {r["row"]: float(r["iou"]) for r in src.csv(f"{PHOTOS_T2}/deeplab_iou.csv")
                  if r["class"] == "background"}
    out, seen = [], set()
    for r in src.csv(f"{PHOTOS_T2}/table2.csv"):
        key = keys.get(r["method"], "")
        v = loss.get(key)
        out.append([r["method"], short_not_run(r["val"], seen), r["val_paper"], labels.get(key, DASH),
                    f"{background[key]:.1f}" if key in background else DASH,
                    DASH if not v else f"{sum(v[:10]) / 10:.1f} → {sum(v[-10:]) / 10:.1f}"])
    return md_table(["method", "val mIoU", "paper (VOC val)", f"its labels (Table 1, {STAGE_COLUMNS[stage]})",
                     "background IoU", "DeepLab loss per output, first → last 10 iterations"], out)


def photos_table2_rows(src: Sources) -> str:
    """The Table 2 rows that ran, best val mIoU first, against the floor's (table2.csv)."""
    rows = [r for r in src.csv(f"{PHOTOS_T2}/table2.csv") if not r["val"].startswith("not run")]
    floor = next(r for r in rows if r["method"].startswith("All background"))
    ran = sorted((r for r in rows if r is not floor), key=lambda r: -float(r["val"]))
    return (", ".join(f"{r['method']} {r['val']}" for r in ran) + f" against the floor's {floor['val']}")


def photos_deeplab_minutes(src: Sources) -> str:
    """One DeepLab training's mean wall time in the Table 2 run (summary.json's job seconds of train_deeplab over the
    rows that trained one)."""
    s = src.json(f"{PHOTOS_T2}/summary.json")
    rows = {r["row"] for r in src.csv(f"{PHOTOS_T2}/deeplab_iou.csv")}
    return f"{s['job_s_by_rule']['train_deeplab'] / len(rows) / 60:.0f} min"


DEEPLAB_BUDGET = "bench/results/deeplab_budget_photos.csv"


def _msc_runs(src: Sources) -> tuple[dict, dict]:
    """bench/deeplab_budget.py's two runs on the preset's row: without MSC's extra scales (the preset) and with them."""
    runs = src.csv(DEEPLAB_BUDGET)
    plain = next(r for r in runs if not r["set"] and not r["msc_scales"])
    msc = next(r for r in runs if r["msc_scales"] and r["row"] == plain["row"] and r["steps"] == plain["steps"])
    return plain, msc


def deeplab_msc(src: Sources) -> str:
    """DeepLab on a row's labels with and without MSC's extra input scales in training (deeplab_budget_photos.csv)."""
    rows = [[r["msc_scales"] or "none (the preset)", r["outputs"], f"{float(r['loss_first10']):.2f}",
             f"{float(r['loss_last10']):.2f}", f"{float(r['val_miou']):.1f}", r["s_per_step"]] for r in _msc_runs(src)]
    return md_table(["extra input scales in training", "outputs", "loss per output, first 10 iterations",
                     "last 10", "val mIoU", "s per step (one thread)"], rows)


def deeplab_msc_facts(src: Sources) -> str:
    """The MSC comparison in a sentence: the row, steps and batch, and the cost per step with MSC over without."""
    plain, msc = _msc_runs(src)
    return (f"{plain['steps']} iterations of {plain['batch']} crops on {_short(src, plain['row'])}'s "
            f"{plain['labels'].upper()} labels; a step with MSC costs "
            f"{float(msc['s_per_step']) / float(plain['s_per_step']):.1f}× one without")


def photos_table2_run(src: Sources) -> str:
    """The Table 2 run: its wall time, its jobs (on top of Table 1's when it resumed that run's directory), commit and
    date (summary.json)."""
    s = src.json(f"{PHOTOS_T2}/summary.json")
    jobs, flags = ("jobs on top of Table 1's", " --resume") if s["resumed"] else ("jobs of Tables 1 and 2", "")
    return (f"{s['wall_min']} min for the {s['jobs']} {jobs} "
            f"(`bench/real_photos.py --table2{flags}`, commit {s['commit']}, {s['finished'][:10]})")


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
        raise KeyError(f"{BUDGET} has no run {missing} (scripts/docs_render/photos.py names it)")
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


def _d2cam_pair(src: Sources, first: str, second: str) -> tuple[dict, dict]:
    """Two of the D2CAM readings' rows by their runs."""
    rows = {r["run"]: r for r in _budget_rows(src, D2CAM_READINGS)}
    return rows[first], rows[second]


def d2cam_layer3_move(src: Sources) -> str:
    """F one stage deeper against the paper's F, both 176 steps from the CAM."""
    a, b = _d2cam_pair(src, "d2cam/cam/176", "d2cam/cam/176/_split=layer3")
    return (f"raises the precision of the foreground from {_r(a['fg_precision'], 2)} to {_r(b['fg_precision'], 2)} "
            f"and lowers L_d2 from {_r(a['loss_d2'], 2)} to {_r(b['loss_d2'], 2)}, but the foreground shrinks to "
            f"{pct(float(b['fg_share']))} of the pixels and the seed goes from {_r(a['miou'])} to {_r(b['miou'])}")


def d2cam_budget_growth(src: Sources) -> str:
    """D2CAM at the preset's budget against three times it: L_ma and the mean map on and off the object."""
    a, b = _d2cam_pair(src, "d2cam/cam/176", "d2cam/cam/528")
    return (f"L_ma {_r(a['loss_ma'], 2)} → {_r(b['loss_ma'], 2)} from {a['steps']} to {b['steps']} steps, the mean map "
            f"{_r(a['on_object'], 2)} → {_r(b['on_object'], 2)} on the object and {_r(a['elsewhere'], 2)} → "
            f"{_r(b['elsewhere'], 2)} elsewhere")


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


def d2cam_trained_ld2(src: Sources) -> str:
    """The range of L_d2 at the end of the readings that train the paper's D2CAM (F after layer2, N1 trained)."""
    runs = ("d2cam/cam/176", "d2cam/cam/528", "d2cam/cam/176/d2cam.head_lr_mult=1")
    values = [float(r["loss_d2"]) for r in _budget_rows(src, D2CAM_READINGS) if r["run"] in runs]
    return f"L_d2 {_r(min(values))}–{_r(max(values))}"


def recam_trained_spread(src: Sources) -> str:
    """How far apart the seeds of the ReCAM recipes whose class predictor trained are (all but the reference's lr,
    at chance after 176 steps), as the table shows them."""
    seeds = [float(_r(r["miou"])) for r in _budget_rows(src, RECAM_READINGS)[1:]]
    return f"the {len(seeds)} trained settings are within {max(seeds) - min(seeds):.1f} points"


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
    return md_table(["maps M_fg^c", "L_d2 (Eq. 5)"],
                    [[LANDSCAPE_MAPS[q], f"{float(rows[q]['value']):.2f}"] for q in maps])


def d2_landscape_photos(src: Sources) -> str:
    return f"{_landscape(src, 'zero')['all ones']['n']} photos"


def d2_landscape_minimum(src: Sources) -> str:
    rows = _landscape(src, "zero")
    return (f"a map of ones scores {float(rows['all ones']['value']):.2f}, "
            f"the true object {float(rows['object (hard)']['value']):.2f}")


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
