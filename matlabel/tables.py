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
}
# Paper Table 1 (PASCAL VOC 2012 train, mIoU %); None where the paper prints "—".
TABLE1_PAPER = {
    "cam": {"seed": 48.0, "crf": None, "irn": None},
    "recam": {"seed": 54.8, "crf": 60.4, "irn": 69.7},
    "d2cam": {"seed": 58.0, "crf": 63.9, "irn": 71.4},
    "matlabel_recam": {"seed": 56.3, "crf": 63.1, "irn": 71.0},
    "matlabel": {"seed": 62.3, "crf": 65.8, "irn": 72.9},
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


def not_run(reason: str) -> str:
    return f"not run: {reason}"


def build_table1(measured: dict[tuple[str, str], float], methods, stages, dataset: str) -> pd.DataFrame:
    """One row per method in ``methods``; for each stage a measured column and the paper's column.

    measured : {(method, stage): mIoU %} for the cells the workflow computed.
    stages : the stages enabled in the config; cells of other stages say they were not run.
    The paper's numbers are for PASCAL VOC 2012 train; a non-VOC run shows them for reference only
    (column ``paper_dataset``).
    """
    rows = []
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
        rows.append(row)
    cols = ["method", "dataset"] + [c for s in STAGES for c in (s, f"{s}_paper")] + ["paper_dataset"]
    return pd.DataFrame(rows, columns=cols)


def build_table4(measured: dict[str, float], variants, dataset: str) -> pd.DataFrame:
    """One row per ablation variant: our seed mIoU (%) beside the paper's.

    measured : {variant: mIoU %}; a variant without a number says why.
    """
    rows = [{"variant": TABLE4_ROWS[v], "dataset": dataset,
             "miou": f"{measured[v]:.1f}" if v in measured else not_run("evaluation missing"),
             "miou_paper": f"{TABLE4_PAPER[v]:.1f}", "paper_dataset": "voc12 train"} for v in variants]
    return pd.DataFrame(rows, columns=["variant", "dataset", "miou", "miou_paper", "paper_dataset"])


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (no tabulate dependency)."""
    header = "| " + " | ".join(df.columns) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, sep, *body]) + "\n"
