"""The workflow's path scheme, written once: every file or folder a rule writes under ``results/`` and the prepared
dataset's under ``resources/<dataset>/``, as a Snakemake pattern beside what it holds.

One vocabulary per path segment: ``{dataset}`` the dataset, ``{method}`` a map method (``cam``, ``recam``, ``d2cam``,
``d2cam_<variant>``), ``{row}`` a Table 1/2 row, ``{stage}`` ``seed``, ``crf`` or ``irn``, ``{shard}`` a shard of
the images. The rules take their inputs and outputs from :func:`pattern` (rules/common_paths.smk), and
``scripts/render_paths.py`` writes the table of results/README.md from :data:`SCHEME` (tests/test_paths.py keeps the
two equal). No script imports this module: a rule's outputs reach its script through Snakemake, so the scheme is in
no rule's code version.
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Entry(NamedTuple):
    pattern: str  # a Snakemake pattern: {name} is a wildcard
    what: str  # what the file or folder holds (Markdown, one line of the table)


SCHEME = {
    "manifest": Entry("resources/{dataset}/dataset.json",
                      "the prepared dataset's manifest (classes, splits, where the images and masks are); every "
                      "stage declares it, so its presence means the dataset is complete"),
    "content": Entry("resources/{dataset}/content/{split}.{part}.json",
                     "the content stamp of a split's `images` or `masks`: a rule that reads them reruns when one of "
                     "their files changes (`matlabel/datasets/content.py`)"),
    "results": Entry("results/{dataset}/{name}",
                     "a dataset's results (the rows below); `results/<name>` is a copy of `results/<dataset>/<name>` "
                     "for the configured dataset (tables, figures, gallery, runtimes, config)"),
    "model": Entry("results/{dataset}/maps/{method}/model.pt",
                   "a trained classifier (`{\"model\", \"meta\", \"history\"}`, `matlabel/checkpoints.py`)"),
    "maps": Entry("results/{dataset}/maps/{method}/shard{shard}",
                  "its exported maps `<id>.npz` (`matlabel/formats.py`: `cams` (k, H, W) float16 in [0, 1], "
                  "`classes` (k,) the class of each map)"),
    "maps_eval": Entry("results/{dataset}/maps/{method}/eval.json",
                       "the maps' threshold seed scored: mIoU, per-class IoU and the threshold sweep (the seed cell "
                       "of the threshold rows `cam`, `recam`, `d2cam` in Table 1, and Table 4's cells)"),
    "labels": Entry("results/{dataset}/rows/{row}/{stage}/shard{shard}",
                    "a row's pseudo-labels `<id>.png` at a stage (matting rows' seeds also `<id>_alpha.npz`, "
                    "`formats.py`)"),
    "labels_eval": Entry("results/{dataset}/rows/{row}/{stage}/eval.json", "their score on `splits.eval_seed`"),
    "ir_label": Entry("results/{dataset}/rows/{row}/ir_label/shard{shard}",
                      "the confident regions the row's IRN learns from"),
    "irn_model": Entry("results/{dataset}/rows/{row}/irn/model.pt", "the row's IRN"),
    "deeplab_model": Entry("results/{dataset}/rows/{row}/deeplab/model.pt",
                           "DeepLab-v2 trained on the row's labels (`deeplab.labels_stage`)"),
    "deeplab_eval": Entry("results/{dataset}/rows/{row}/deeplab/eval.json", "its score on `splits.eval_seg`"),
    "deeplab_predictions": Entry("results/{dataset}/rows/{row}/deeplab/predictions", "its predictions there"),
    "voc_test": Entry("results/{dataset}/rows/{row}/deeplab/voc12_test.tar",
                      "its predictions of VOC's test split in the evaluation server's format (`deeplab.voc_test`)"),
    "floor": Entry("results/{dataset}/floor/{split}/eval.json",
                   "every pixel labelled background, scored: the floor of Tables 1 and 2"),
    "table5_cell": Entry("results/{dataset}/table5/{matting}_{label_rule}.json",
                         "a cell of Table 5 (a matting Laplacian and a label rule on `table5.maps`' maps)"),
    "eps_cell": Entry("results/{dataset}/eps_sensitivity/{method}/fg{eps_fg}_bg{eps_bg}.json",
                      "a cell of the ε grid (`eps_sensitivity`): Mat-Label's seed on a method's maps at one "
                      "(ε_fg, ε_bg)"),
    "table": Entry("results/{dataset}/{table}.csv",
                   "a table: `table1` … `table5` (our numbers beside the paper's), `eps_sensitivity` (the ε grid), "
                   "`runtimes` (wall time per rule)"),
    "table_md": Entry("results/{dataset}/{table}.md", "the same table in Markdown"),
    "figure": Entry("results/{dataset}/figures/{figure}.png",
                    "`fig2`, `fig5`: the paper's Figures 2 and 5 on this run; `eps_sensitivity`: the ε grid"),
    "gallery": Entry("results/{dataset}/gallery",
                     "the eval split's images, worst first: a page `<rank>_<id>.png` each, and `scores.csv`"),
    "run_config": Entry("results/{dataset}/config.yaml", "the config the run used"),
}
WILDCARD = re.compile(r"\{(\w+)\}")


def pattern(name: str, /, **values) -> str:
    """The pattern of ``name`` with the wildcards of ``values`` filled in and the others kept (``{shard}``).

    A value may itself hold a wildcard (``pattern("labels", stage="{stage}")``). Raises KeyError for an unknown name
    or a value the pattern has no wildcard for.
    """
    text = SCHEME[name].pattern
    unknown = set(values) - set(WILDCARD.findall(text))
    if unknown:
        raise KeyError(f"{name} ({text}) has no wildcard {sorted(unknown)}")
    return WILDCARD.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def configured(target: str) -> str:
    """Where a pattern under ``results/{dataset}/`` is copied for the configured dataset: under ``results/``."""
    prefix = pattern("results", name="")
    if not target.startswith(prefix):
        raise ValueError(f"{target} is not under {prefix}")
    return "results/" + target[len(prefix):]


def table_markdown() -> str:
    """The scheme as the Markdown table of results/README.md (wildcards written <name>)."""
    def shown(pattern):
        return WILDCARD.sub(r"<\1>", pattern)

    lines = ["| path | what it holds |", "| --- | --- |"]
    lines += [f"| `{shown(entry.pattern)}` | {entry.what} |" for entry in SCHEME.values()]
    return "\n".join(lines) + "\n"
