"""A per-image gallery of the evaluated split: where each Table 1 row's pseudo-labels go wrong.

One page (PNG) per image: the photo and its ground-truth mask, then one line per Table 1 row with its maps (the
exported class activation maps, max over the image's classes, on the photo), its trimap (Eq. 9 on those maps; matting
rows), its matting alpha (max over classes; matting rows) and its labels at each stage, each titled with its
per-image mIoU. The images are ranked worst first by the mean over rows of their per-image mIoU at one stage
(``rank_worst_first``), and only the first N are drawn: ranking reads one label PNG per image and row, drawing reads
the maps and alphas of the N images shown. Trimaps are not stored; they are recomputed from the maps (a pure
function of the maps and ε), and the alphas are the matting rows' stored ``<id>_alpha.npz``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from matlabel.datasets.layout import IGNORE_INDEX, Manifest
from matlabel.figures import draw_panel, panel_rgb
from matlabel.formats import ALPHAS_SUFFIX, MAPS_SUFFIX, read_alphas, read_maps
from matlabel.io import atomic_dir, read_image, read_json, read_label_png, voc_palette
from matlabel.metrics import confusion, miou
from matlabel.shards import find_in_shards
from matlabel.tables import STAGE_NAMES, TABLE1_ROWS
from matlabel.trimap import make_trimaps

NOT_USED = "—"  # a panel the row has no use for (a threshold row's trimap and alpha)
SCORES_CSV = "scores.csv"


@dataclass(frozen=True)
class RowFiles:
    """Where one Table 1 row's files are: the shard folders of its maps (``<id>.npz``) and of its labels per stage
    (``<id>.png``; a matting row's seed also holds ``<id>_alpha.npz`` and ``shard.json``)."""

    row: str
    labeler: str  # "threshold" | "matting" (matlabel.labels.SOURCES)
    maps: Sequence[str] = ()
    stages: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return TABLE1_ROWS.get(self.row, self.row)


def image_miou(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> float:
    """Per-image mIoU (%) of ``pred`` against ``gt``: the mean IoU over the classes in either (pixels whose ground
    truth is 255 left out, as in the tables' mIoU); NaN when every pixel is ignored."""
    conf = confusion(gt, pred, num_classes)
    return 100.0 * miou(conf) if conf.sum() else math.nan


def _find(shard_dirs, image_id: str, suffix: str) -> Path | None:
    try:
        return find_in_shards(list(shard_dirs), image_id, suffix)
    except FileNotFoundError:
        return None


def score_images(manifest: Manifest, ids, rows: Sequence[RowFiles], stage: str) -> dict[str, dict[str, float]]:
    """{row: {image id: per-image mIoU %}} of each row's labels at ``stage``. A row without that stage, or an image
    without its label PNG, has no score (it does not count in the ranking and its panel says so)."""
    scores: dict[str, dict[str, float]] = {r.row: {} for r in rows}
    for image_id in ids:
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        for r in rows:
            path = _find(r.stages.get(stage, ()), image_id, ".png")
            if path is not None:
                pred = read_label_png(path, manifest.num_classes)
                scores[r.row][image_id] = image_miou(gt, pred, manifest.num_classes)
    return scores


def rank_worst_first(scores: Mapping[str, Mapping[str, float]], ids,
                     rank_by: Sequence[str] = ()) -> list[tuple[str, float]]:
    """(image id, score) of every id, worst first. An image's score is the mean of its per-image mIoU over the rows
    ``rank_by`` (empty: every row of ``scores``) that have one; an image with none (NaN) comes last; ties in id
    order."""
    rows = list(rank_by) or list(scores)
    ranked = []
    for image_id in ids:
        values = [scores[r][image_id] for r in rows if not math.isnan(scores.get(r, {}).get(image_id, math.nan))]
        ranked.append((image_id, float(np.mean(values)) if values else math.nan))
    return sorted(ranked, key=lambda item: (math.isnan(item[1]), 0.0 if math.isnan(item[1]) else item[1], item[0]))


def _matting_failure(seed_dirs, image_id: str) -> str | None:
    """The error recorded in a matting row's seed ``shard.json`` for an image that took its threshold seed."""
    for d in seed_dirs:
        summary = Path(d) / "shard.json"
        failures = read_json(summary).get("failures", {}) if summary.is_file() else {}
        if image_id in failures:
            return failures[image_id]
    return None


def load_row(r: RowFiles, image_id: str, gt: np.ndarray, num_classes: int, stages: Sequence[str],
             eps_fg: float, eps_bg: float) -> dict:
    """One row's panels of an image: ``maps``, ``trimap``, ``alpha`` ((k, H, W) or None) and ``<stage>`` label maps,
    ``notes`` {key: why a panel is empty}, ``miou`` {stage: per-image mIoU %}."""
    out: dict = {"row": r.row, "title": r.title, "notes": {}, "miou": {}}
    maps_path = _find(r.maps, image_id, MAPS_SUFFIX)
    maps = read_maps(maps_path)[0] if maps_path is not None else None
    out["maps"] = maps
    if maps is None:
        out["notes"]["maps"] = "maps missing"
    if r.labeler == "matting":
        out["trimap"] = make_trimaps(maps, eps_fg, eps_bg) if maps is not None else None
        alpha_path = _find(r.stages.get("seed", ()), image_id, ALPHAS_SUFFIX)
        out["alpha"] = read_alphas(alpha_path)[0] if alpha_path is not None else None
        if alpha_path is None:
            failed = _matting_failure(r.stages.get("seed", ()), image_id)
            out["notes"]["alpha"] = "matting failed:\nthreshold seed" if failed else "alpha missing"
        if maps is None:
            out["notes"]["trimap"] = "maps missing"
    else:
        out["trimap"] = out["alpha"] = None
        out["notes"]["trimap"] = out["notes"]["alpha"] = NOT_USED
    for stage in stages:
        path = _find(r.stages.get(stage, ()), image_id, ".png")
        out[stage] = read_label_png(path, num_classes) if path is not None else None
        if path is None:
            out["notes"][stage] = "labels missing"
        else:
            out["miou"][stage] = image_miou(gt, out[stage], num_classes)
    return out


def load_entry(manifest: Manifest, image_id: str, rows: Sequence[RowFiles], stages: Sequence[str],
               eps_fg: float, eps_bg: float) -> dict:
    """Everything one gallery page shows: ``id``, ``image``, ``gt``, ``classes`` (the class names in the mask) and
    ``rows`` (``load_row`` of each row)."""
    gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
    present = [int(v) for v in np.unique(gt) if 0 < v < manifest.num_classes]
    return {
        "id": image_id,
        "image": read_image(manifest.image_path(image_id)),
        "gt": gt,
        "classes": [manifest.class_names[c] for c in present],
        "class_names": list(manifest.class_names),
        "rows": [load_row(r, image_id, gt, manifest.num_classes, stages, eps_fg, eps_bg) for r in rows],
    }


def legend_patches(entry: dict) -> list[Patch]:
    """A colour patch (VOC palette) for background and for each class in the ground truth or any row's labels (the
    ignored pixels, white, left out), named by ``entry["class_names"]``."""
    names = entry.get("class_names") or []
    labels = [entry["gt"], *(row[stage] for row in entry["rows"] for stage in row.get("miou", {}))]
    present = sorted(set().union({0}, *(np.unique(lab).tolist() for lab in labels)) - {IGNORE_INDEX})
    palette = voc_palette()
    return [Patch(facecolor=palette[c] / 255.0, edgecolor="0.5", linewidth=0.3,
                  label=names[c] if c < len(names) else str(c)) for c in present]


# the columns of a row: (key, title); the stage columns follow
ROW_COLUMNS = (("maps", "maps (max over classes)"), ("trimap", "trimap (Eq. 9)"), ("alpha", "matting alpha"))


def gallery_page(entry: dict, stages: Sequence[str], out_path: str | os.PathLike, heading: str = "",
                 dpi: int = 100, panel_in: float = 1.5) -> Figure:
    """Draw one image's page and save it (PNG) to ``out_path``.

    Layout: a first line with the photo, the ground truth and a text box (``heading``, the image id and its
    classes); then one line per row of ``entry["rows"]``: maps, trimap, alpha, then its labels at each of ``stages``
    titled with their per-image mIoU. A row's missing array is a grey box saying why (``notes``). The page is
    ``panel_in`` × (3 + len(stages)) inches wide at ``dpi``, a palette PNG of 256 colours; returns the figure (Agg
    canvas, no pyplot).
    """
    h, w = np.asarray(entry["image"]).shape[:2]
    columns = [*ROW_COLUMNS, *((s, STAGE_NAMES.get(s, s)) for s in stages)]
    n_cols, n_rows = len(columns), 1 + len(entry["rows"])
    panel_h = panel_in * h / w
    fig = Figure(figsize=(panel_in * n_cols, (panel_h + 0.32) * n_rows + 0.1), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(n_rows, n_cols)
    for c, (key, title) in enumerate((("image", "image"), ("gt", "ground truth"))):
        ax = fig.add_subplot(grid[0, c])
        draw_panel(ax, *panel_rgb(key, entry))
        ax.set_title(title, fontsize=7)
    text = fig.add_subplot(grid[0, 2:])
    text.axis("off")
    classes = ", ".join(entry["classes"]) or "background only"
    text.text(0.02, 0.5, "\n".join(line for line in (heading, entry["id"], f"ground truth: {classes}") if line),
              ha="left", va="center", fontsize=8, transform=text.transAxes)
    legend = legend_patches(entry)
    if legend:
        text.legend(handles=legend, loc="center right", fontsize=6, ncol=1 + (len(legend) - 1) // 6, frameon=False,
                    title="label colours", title_fontsize=6)
    for i, row in enumerate(entry["rows"], start=1):
        cells = {**row, "image": entry["image"]}
        for c, (key, title) in enumerate(columns):
            ax = fig.add_subplot(grid[i, c])
            draw_panel(ax, *panel_rgb(key, cells), missing=row["notes"].get(key, "n/a"))
            score = row["miou"].get(key)
            ax.set_title(title if score is None else f"{title}: {score:.1f}", fontsize=6, pad=2)
            if c == 0:
                ax.set_ylabel(row["title"], fontsize=7)
    fig.subplots_adjust(left=0.04, right=0.995, top=0.97, bottom=0.01, wspace=0.05, hspace=0.3)
    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    # in 256 colours (median cut, no dithering): a third of the bytes of the full-colour page, the same to the eye
    rgb.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out_path, format="PNG",
                                                                                        optimize=True)
    return fig


def page_name(rank: int, n: int, image_id: str) -> str:
    """``<rank>_<id>.png``, the rank zero-padded to the width of ``n`` so that the names sort worst first."""
    return f"{rank:0{len(str(max(n, 1)))}d}_{image_id}.png"


def make_gallery(manifest: Manifest, ids, rows: Sequence[RowFiles], stages: Sequence[str], rank_stage: str,
                 n_images: int, out_dir: str | os.PathLike, rank_by: Sequence[str] = (), *, eps_fg: float,
                 eps_bg: float, dpi: int = 100) -> pd.DataFrame:
    """Rank ``ids`` worst first (``score_images`` at ``rank_stage``, ``rank_worst_first`` over ``rank_by``) and
    write into ``out_dir`` (atomically, as a whole) one page per image for the first ``n_images``
    (``page_name``) and ``scores.csv``: every image's rank, score and per-row per-image mIoU. Returns that table."""
    scores = score_images(manifest, ids, rows, rank_stage)
    ranked = rank_worst_first(scores, ids, rank_by)
    table = pd.DataFrame({"rank": range(1, len(ranked) + 1), "image": [i for i, _ in ranked],
                          "score": [round(s, 2) for _, s in ranked]})
    for r in rows:
        table[r.row] = [round(scores[r.row].get(i, math.nan), 2) for i, _ in ranked]
    what = ", ".join(TABLE1_ROWS.get(r, r) for r in rank_by) if rank_by else "the rows"
    shown = ranked[:n_images]
    with atomic_dir(out_dir) as tmp:
        for rank, (image_id, score) in enumerate(shown, start=1):
            heading = (f"#{rank} of {len(ranked)}: per-image mIoU of the {rank_stage} labels, mean over {what}: "
                       f"{score:.1f}")
            entry = load_entry(manifest, image_id, rows, stages, eps_fg, eps_bg)
            gallery_page(entry, stages, tmp / page_name(rank, len(shown), image_id), heading, dpi=dpi)
        table.to_csv(tmp / SCORES_CSV, index=False)
    return table
