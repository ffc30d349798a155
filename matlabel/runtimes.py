"""Runtimes of a run from Snakemake's ``benchmark:`` files, one row per rule (for the report and README).

Each heavy rule writes ``benchmarks/<dataset>/<rule>/<wildcards>.tsv`` (or ``benchmarks/<dataset>/<rule>.tsv``):
one line of Snakemake's benchmark columns (``s`` wall seconds, ``max_rss`` MB, ``cpu_time`` s, ...).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

COLUMNS = ["rule", "jobs", "wall_s_total", "wall_s_max", "cpu_s_total", "max_rss_mb"]


def rule_of(path: Path, root: Path) -> str:
    """The rule a benchmark file belongs to: the first folder under ``root``, or the file's stem at top level."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else path.stem


def benchmark_summary(root: str | os.PathLike) -> pd.DataFrame:
    """Per rule: number of jobs, total and longest wall time, total CPU time and peak RSS, over the ``*.tsv``
    benchmark files under ``root``; sorted by total wall time (longest first), then by rule name.

    A file that is not a Snakemake benchmark table (no ``s`` column) raises ValueError naming it.
    """
    root = Path(root)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        df = pd.read_csv(path, sep="\t")
        if "s" not in df.columns:
            raise ValueError(f"{path}: not a Snakemake benchmark file (no column 's')")
        for rec in df.to_dict("records"):
            rows.append({"rule": rule_of(path, root), "s": float(rec["s"]),
                         "cpu_time": float(rec.get("cpu_time", float("nan"))),
                         "max_rss": float(rec.get("max_rss", float("nan")))})
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    jobs = pd.DataFrame(rows)
    out = jobs.groupby("rule", sort=True).agg(jobs=("s", "size"), wall_s_total=("s", "sum"), wall_s_max=("s", "max"),
                                              cpu_s_total=("cpu_time", "sum"), max_rss_mb=("max_rss", "max"))
    out = out.reset_index().sort_values(["wall_s_total", "rule"], ascending=[False, True], kind="stable")
    return out.round(2)[COLUMNS].reset_index(drop=True)
