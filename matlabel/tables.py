"""The paper's tables with our measured numbers beside the paper's.

Each table is a registry of rows (our method keys → the paper's row names) and the paper's numbers;
``build_table1`` fills the cells we measured and says why a cell is empty instead of inventing a value.
"""
from __future__ import annotations

import pandas as pd

STAGES = ("seed", "crf", "irn")
STAGE_NAMES = {"seed": "Seed", "crf": "w/ CRF", "irn": "w/ IRN"}

# Table 1: rows of the paper that this workflow computes, in the paper's order.
TABLE1_ROWS = {
    "cam": "CAM",
    "recam": "ReCAM",
    "d2cam": "D2CAM only",
    "matlabel_recam": "Mat-Label w/ ReCAM",
    "matlabel": "Mat-Label",
    "matlabel_cam": "Mat-Label w/ CAM (not in the paper)",
}
# Paper Table 1 (PASCAL VOC 2012 train, mIoU %); None where the paper prints "—".
TABLE1_PAPER = {
    "cam": {"seed": 48.0, "crf": None, "irn": None},
    "recam": {"seed": 54.8, "crf": 60.4, "irn": 69.7},
    "d2cam": {"seed": 58.0, "crf": 63.9, "irn": 71.4},
    "matlabel_recam": {"seed": 56.3, "crf": 63.1, "irn": 71.0},
    "matlabel": {"seed": 62.3, "crf": 65.8, "irn": 72.9},
    "matlabel_cam": {"seed": None, "crf": None, "irn": None},
}


# Table 4 (D2CAM ablation, PASCAL VOC 2012 train, seed mIoU %): rows in the paper's order.
TABLE4_ROWS = {
    "cam": "CAM",
    "d2": "L_d2",
    "d2_area": "L_d2 + L_area",
    "d2_ma": "L_d2 + L_ma",
    "d2_ma_oe": "L_d2 + L_ma + L_oe",
}
TABLE4_PAPER = {"cam": 48.0, "d2": 53.7, "d2_area": 50.4, "d2_ma": 56.8, "d2_ma_oe": 58.0}


FLOOR_ROW = "All background (floor)"  # every pixel background: the trivial answer each row is read against


def not_run(reason: str) -> str:
    return f"not run: {reason}"


def build_table1(measured: dict[tuple[str, str], float], methods, stages, dataset: str,
                 floor: float | None = None, failures: dict[str, tuple[int, int]] | None = None) -> pd.DataFrame:
    """One row per method in ``methods``; for each stage a measured column and the paper's column.

    measured : {(method, stage): mIoU %} for the cells the workflow computed.
    stages : the stages enabled in the config; cells of other stages say they were not run.
    The paper's numbers are for PASCAL VOC 2012 train; a non-VOC run shows them for reference only
    (column ``paper_dataset``).
    floor : mIoU % of labelling every pixel background on the same split; given, it is the first row, in
    every stage column (refinement cannot change an answer with no foreground), the paper's cells "—".
    failures : {matting row: (images whose matting failed and took the threshold seed, images labelled)}, as
    recorded in its seed shards (``labels.count_fallbacks``); given, column ``matting_failures`` says "k of n
    images" for those rows and "—" for the others (no matting).
    """
    rows = []
    if floor is not None:
        row = {"method": FLOOR_ROW, "dataset": dataset, "paper_dataset": "voc12 train", "matting_failures": "—"}
        for stage in STAGES:
            row[stage], row[f"{stage}_paper"] = f"{floor:.1f}", "—"
        rows.append(row)
    for method in methods:
        row = {"method": TABLE1_ROWS[method], "dataset": dataset}
        for stage in STAGES:
            if (method, stage) in measured:
                row[stage] = f"{measured[(method, stage)]:.1f}"
            elif stage in stages:
                row[stage] = not_run("evaluation missing")
            else:
                row[stage] = not_run(f"stage '{stage}' not enabled (config table1.stages)")
            paper = TABLE1_PAPER[method][stage]
            row[f"{stage}_paper"] = "—" if paper is None else f"{paper:.1f}"
        row["paper_dataset"] = "voc12 train"
        failed, labelled = (failures or {}).get(method, (None, None))
        row["matting_failures"] = "—" if failed is None else f"{failed} of {labelled} images"
        rows.append(row)
    cols = ["method", "dataset"] + [c for s in STAGES for c in (s, f"{s}_paper")] + ["paper_dataset"]
    return pd.DataFrame(rows, columns=cols + (["matting_failures"] if failures is not None else []))


def build_table4(measured: dict[str, float], variants, dataset: str) -> pd.DataFrame:
    """One row per ablation variant: our seed mIoU (%) beside the paper's.

    measured : {variant: mIoU %}; a variant without a number says why.
    """
    rows = [{"variant": TABLE4_ROWS[v], "dataset": dataset,
             "miou": f"{measured[v]:.1f}" if v in measured else not_run("evaluation missing"),
             "miou_paper": f"{TABLE4_PAPER[v]:.1f}", "paper_dataset": "voc12 train"} for v in variants]
    return pd.DataFrame(rows, columns=["variant", "dataset", "miou", "miou_paper", "paper_dataset"])


# Table 5 (beyond the paper: which matting method): matting Laplacian x label rule (matlabel/sensitivity.py)
TABLE5_METHODS = {"knn": "KNN (the paper)", "closed_form": "closed-form", "random_walk": "random walk",
                  "learning_based": "learning-based"}
TABLE5_RULES = {"threshold": "per-class alphas, fg threshold", "bg_layer": "background as a layer"}


def build_table5(cells, methods, rules, dataset: str, maps: str) -> pd.DataFrame:
    """One row per matting Laplacian x label rule, in the given orders: seed mIoU, w/ CRF (%), seconds of matting
    per image, mean unknown share of the trimaps, and the images whose matting failed and took the threshold seed
    (``failures``, of ``n_images``); a pair without a cell says why. ``cells``: the table5_cell JSONs."""
    by_key = {(c["method"], c["label_rule"]): c for c in cells}
    rows = []
    for method in methods:
        for rule in rules:
            c = by_key.get((method, rule))
            missing = not_run("cell missing")
            rows.append({"matting": TABLE5_METHODS[method], "label_rule": TABLE5_RULES[rule], "dataset": dataset,
                         "maps": maps, "seed": f"{c['miou']:.1f}" if c else missing,
                         "crf": f"{c['miou_crf']:.1f}" if c else missing,
                         "seconds_per_image": f"{c['seconds_per_image']:.3f}" if c else missing,
                         "unknown_share": f"{c['mean_unknown_share']:.3f}" if c and c["mean_unknown_share"] is not None
                         else missing,
                         "failures": f"{c['failures']} of {c['n_images']} images" if c else missing})
    return pd.DataFrame(rows, columns=["matting", "label_rule", "dataset", "maps", "seed", "crf", "seconds_per_image",
                                       "unknown_share", "failures"])


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (no tabulate dependency)."""
    header = "| " + " | ".join(df.columns) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, sep, *body]) + "\n"


# Table 2 (DeepLab-v2 on the pseudo-labels, PASCAL VOC 2012 val / test mIoU %) and Table 3 (MS COCO 2014 val).
TABLE2_ROWS = {
    "d2cam": "D2CAM only",
    "matlabel_recam": "Mat-Label w/ ReCAM",
    "matlabel": "Mat-Label",
    "matlabel_is": "Mat-Label I+S",
}
TABLE2_PAPER = {"d2cam": (71.2, 70.7), "matlabel_recam": (70.3, 70.0), "matlabel": (73.0, 72.7),
                "matlabel_is": (73.3, 74.0)}
TABLE3_ROWS = {k: TABLE2_ROWS[k] for k in ("d2cam", "matlabel_recam", "matlabel")}
TABLE3_PAPER = {"d2cam": 44.0, "matlabel_recam": 43.8, "matlabel": 45.6}
# I+S row -> the row whose labels it combines with saliency maps (not shipped)
SALIENCY_ROWS = {"matlabel_is": "matlabel"}


def build_table2(measured: dict[str, float], rows, dataset: str, test_archives: dict[str, str] | None = None,
                 floor: float | None = None) -> pd.DataFrame:
    """One row per method: DeepLab-v2 mIoU (%) on the segmentation split ("val") beside the paper's VOC val,
    and the VOC test cell, which only the evaluation server can score: it names the archive to submit.

    measured : {row: val mIoU %}; test_archives : {row: path of the server archive} (VOC runs only).
    floor : mIoU % of every pixel background on the segmentation split; given, it is the first row.
    """
    test_archives = test_archives or {}
    out = []
    if floor is not None:
        out.append({"method": FLOOR_ROW, "dataset": dataset, "val": f"{floor:.1f}", "val_paper": "—",
                    "test": not_run("the test masks are the evaluation server's"), "test_paper": "—",
                    "paper_dataset": "voc12"})
    for row in rows:
        if row in SALIENCY_ROWS and row not in measured:
            val = test = not_run("needs saliency maps (I+S, NSROM's maps combined by ESOL's rule)")
        else:
            val = f"{measured[row]:.1f}" if row in measured else not_run("evaluation missing")
            if row in test_archives:
                test = f"submit {test_archives[row]} to the VOC evaluation server"
            else:
                test = not_run("needs the VOC 2012 test images and the evaluation server (on VOC: put the test "
                               "images in the split 'test' and set deeplab.voc_test: true)")
        paper_val, paper_test = TABLE2_PAPER[row]
        out.append({"method": TABLE2_ROWS[row], "dataset": dataset, "val": val, "val_paper": f"{paper_val:.1f}",
                    "test": test, "test_paper": f"{paper_test:.1f}", "paper_dataset": "voc12"})
    return pd.DataFrame(out, columns=["method", "dataset", "val", "val_paper", "test", "test_paper", "paper_dataset"])


def build_table3(measured: dict[str, float], rows, dataset: str) -> pd.DataFrame:
    """MS COCO 2014 val mIoU (%) of DeepLab-v2 per method beside the paper's; other datasets say so."""
    out = []
    for row in rows:
        if dataset != "coco14":
            val = not_run(f"needs MS COCO 2014 (this run: {dataset}; --configfile config/coco14.yaml)")
        else:
            val = f"{measured[row]:.1f}" if row in measured else not_run("evaluation missing")
        out.append({"method": TABLE3_ROWS[row], "dataset": dataset, "val": val,
                    "val_paper": f"{TABLE3_PAPER[row]:.1f}", "paper_dataset": "coco14"})
    return pd.DataFrame(out, columns=["method", "dataset", "val", "val_paper", "paper_dataset"])
