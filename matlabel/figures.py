"""The paper's qualitative figures: Figure 2 (the Mat-Label pipeline per image) and Figure 5 (segmentations).

Figure 2 shows, for one image, (a) the image, (b) vanilla CAM, (c) D2CAM, (d) the trimap (white foreground,
black background, grey unknown), then the alpha matte, the pseudo-label and the ground truth. The caption
fixes the letters of (b)-(d) only; the remaining columns follow in pipeline order. Figure 5 shows the
image, its ground truth and our final segmentation.

Pure plotting helpers on arrays (``figure2``, ``figure5``) plus the loaders that gather those arrays from
the workflow's files (``load_pipeline_row``, ``load_segmentation_row``). Rendering uses matplotlib's
object API with the Agg canvas, never pyplot, so no global figure state or display backend is touched.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from matlabel.datasets.layout import IGNORE_INDEX, Manifest, split_path
from matlabel.formats import ALPHAS_SUFFIX, MAPS_SUFFIX, read_alphas, read_maps
from matlabel.io import atomic_path, read_image, read_label_png, voc_palette
from matlabel.shards import find_in_shards
from matlabel.trimap import BG, FG, UNKNOWN, make_trimaps

# (row key, column title); Figure 2's caption names (b) CAM, (c) D2CAM and (d) the trimap.
FIG2_COLUMNS = (
    ("image", "(a) image"),
    ("cam", "(b) CAM"),
    ("d2cam", "(c) D2CAM"),
    ("trimap", "(d) trimap"),
    ("alpha", "(e) alpha matte"),
    ("pseudo_label", "(f) pseudo-label"),
    ("gt", "(g) ground truth"),
)
FIG5_COLUMNS = (("image", "image"), ("gt", "ground truth"), ("prediction", "ours"))

TRIMAP_GREY = {BG: 0, UNKNOWN: 128, FG: 255}  # black / grey / white, as the paper's Figure 2 (d)
WHITE = np.array([255, 255, 255], dtype=np.uint8)


# --------------------------------------------------------------------------------------------------------
# Array -> RGB panels
# --------------------------------------------------------------------------------------------------------

def colorize(label: np.ndarray, ignore_white: bool = True) -> np.ndarray:
    """Colour a label map with the PASCAL VOC palette.

    Parameters
    ----------
    label : (H, W) integer class indices in 0..255 (255 = ignore).
    ignore_white : paint 255 white (default, reads better on paper) instead of the palette's (224, 224, 192).

    Returns
    -------
    (H, W, 3) uint8 RGB.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError("label values must be in 0..255")
    rgb = voc_palette()[label.astype(np.uint8)]
    if ignore_white:
        rgb[label == IGNORE_INDEX] = WHITE
    return rgb


def heatmap_overlay(image: np.ndarray, heat: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """Blend a jet-coloured map onto an image (the usual CAM visualisation).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    heat : (H, W) float map; values are clipped to [0, 1] (0 blue, 1 red).
    weight : share of the heat map colour in the blend, in [0, 1].

    Returns
    -------
    (H, W, 3) uint8 RGB, ``(1 - weight) * image + weight * jet(heat)``.
    """
    image, heat = np.asarray(image), np.asarray(heat, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or heat.shape != image.shape[:2]:
        raise ValueError(f"need image (H, W, 3) and map (H, W) of one size, got {image.shape} and {heat.shape}")
    colour = colormaps["jet"](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    out = (1.0 - weight) * image.astype(np.float32) + weight * colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def trimap_rgb(trimap: np.ndarray) -> np.ndarray:
    """A trimap (Eq. 9 values {0, 0.5, 1}) as black background, grey unknown, white foreground.

    Returns (H, W, 3) uint8 with 0 / 128 / 255 in every channel; other values raise ``ValueError``.
    """
    trimap = np.asarray(trimap)
    if trimap.ndim != 2:
        raise ValueError(f"trimap must be 2-D, got shape {trimap.shape}")
    grey = np.zeros(trimap.shape, dtype=np.uint8)
    known = np.zeros(trimap.shape, dtype=bool)
    for value, level in TRIMAP_GREY.items():
        hit = trimap == value
        grey[hit] = level
        known |= hit
    if not known.all():
        raise ValueError(f"trimap values must be in {sorted(TRIMAP_GREY)}, got {np.unique(trimap[~known])[:5]}")
    return np.repeat(grey[..., None], 3, axis=2)


def union_map(maps: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Per-pixel max over the classes of a multi-class image: (k, H, W) -> (H, W) float32.

    A 2-D map is returned as is; k = 0 (an image without classes) gives zeros, of ``shape`` if given.
    For trimaps the max is the union of foregrounds, and unknown wins over background.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 2:
        return maps
    if maps.ndim != 3:
        raise ValueError(f"maps must be (H, W) or (k, H, W), got shape {maps.shape}")
    if maps.shape[0] == 0:
        return np.zeros(shape or maps.shape[1:], dtype=np.float32)
    return maps.max(axis=0)


# --------------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------------

def panel_rgb(key: str, row: dict) -> tuple[np.ndarray | None, dict]:
    """The RGB (or grey) array and imshow keywords of one cell (Figures 2 and 5, the gallery) by its key: "image";
    "cam", "d2cam", "maps" (k, H, W) maps on the image; "trimap"; "alpha" (grey); any other key a label map. None
    for a missing array."""
    value = row.get(key)
    if value is None:
        return None, {}
    image = np.asarray(row["image"])
    hw = image.shape[:2]
    if key == "image":
        return image, {}
    if key in ("cam", "d2cam", "maps"):
        return heatmap_overlay(image, union_map(value, hw)), {}
    if key == "trimap":
        return trimap_rgb(union_map(value, hw)), {}
    if key == "alpha":  # alpha mattes are shown in grey, as in the matting literature
        return union_map(value, hw), {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
    return colorize(value), {}  # label maps: pseudo_label, gt, prediction


def draw_panel(ax, rgb: np.ndarray | None, kwargs: dict | None = None, missing: str = "n/a") -> None:
    """One cell of a figure: ``rgb`` drawn pixel for pixel, or (None) a light grey box saying ``missing``; no ticks,
    no frame."""
    if rgb is None:
        ax.set_facecolor("0.9")
        ax.text(0.5, 0.5, missing, ha="center", va="center", transform=ax.transAxes, fontsize=7, wrap=True)
    else:
        ax.imshow(rgb, interpolation="nearest", **(kwargs or {}))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def render_grid(rows: list[dict], columns, out_path, dpi: int = 150, panel_in: float = 1.6) -> Figure:
    """Draw ``rows`` × ``columns`` panels and save them atomically to ``out_path``.

    Parameters
    ----------
    rows : one dict per image with the arrays named by ``columns`` (and ``"image"``), plus an optional
        ``"label"`` written left of the row. A missing or None array gives an empty "n/a" panel.
    columns : sequence of (row key, column title).
    out_path : the file to write (format from its suffix, e.g. ``.png`` / ``.pdf``).
    dpi, panel_in : resolution and panel width in inches; the height follows the first image's aspect.

    Returns
    -------
    The (closed-over, Agg-backed) ``Figure``; ``fig.axes`` holds the panels row by row.
    """
    if not rows:
        raise ValueError("a figure needs at least one row")
    h, w = np.asarray(rows[0]["image"]).shape[:2]
    n_rows, n_cols = len(rows), len(columns)
    fig = Figure(figsize=(panel_in * n_cols, panel_in * h / w * n_rows + 0.3), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c, (key, title) in enumerate(columns):
            ax = axes[r, c]
            draw_panel(ax, *panel_rgb(key, row))
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0 and row.get("label"):
                ax.set_ylabel(row["label"], fontsize=6)
    fig.tight_layout(pad=0.3)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=out_path.suffix.lstrip(".") or "png", dpi=dpi)
    return fig


def figure2(rows: list[dict], out_path: str | os.PathLike, dpi: int = 150) -> Figure:
    """Paper Figure 2, one row per image: image, CAM, D2CAM, trimap, alpha matte, pseudo-label, ground truth.

    Each row dict holds ``image`` (H, W, 3) uint8; ``cam``, ``d2cam`` (k, H, W) maps in [0, 1];
    ``trimap`` (k, H, W) in {0, 0.5, 1}; ``alpha`` (k, H, W) in [0, 1] (None if matting failed);
    ``pseudo_label``, ``gt`` (H, W) uint8 label maps; optional ``label`` (row text). Multi-class images
    show the union over classes (per-pixel max, see ``union_map``). Returns the Figure (7 columns).
    """
    return render_grid(rows, FIG2_COLUMNS, out_path, dpi=dpi)


def figure5(rows: list[dict], out_path: str | os.PathLike, dpi: int = 150) -> Figure:
    """Paper Figure 5, one row per image: image, ground truth, our segmentation.

    Each row dict holds ``image`` (H, W, 3) uint8 and ``gt``, ``prediction`` (H, W) uint8 label maps,
    optional ``label``. Returns the Figure (3 columns).
    """
    return render_grid(rows, FIG5_COLUMNS, out_path, dpi=dpi)


# --------------------------------------------------------------------------------------------------------
# Loading the arrays from the workflow's files
# --------------------------------------------------------------------------------------------------------

def _load_maps(shard_dirs, image_id: str) -> tuple[np.ndarray, np.ndarray]:
    return read_maps(find_in_shards(list(shard_dirs), image_id, MAPS_SUFFIX))


def _row_label(manifest: Manifest, image_id: str, classes) -> str:
    names = [manifest.class_names[int(c)] for c in classes if 0 <= int(c) < manifest.num_classes]
    return image_id + ("\n" + ", ".join(names) if names else "")


def load_pipeline_row(manifest: Manifest, image_id: str, cam_dirs, d2cam_dirs, matlabel_dirs,
                      eps_fg: float, eps_bg: float) -> dict:
    """Gather one Figure 2 row from the workflow's files.

    Parameters
    ----------
    manifest : the dataset (image and ground truth).
    cam_dirs, d2cam_dirs : shard directories of the exported maps (``<id>.npz``) of CAM and D2CAM.
    matlabel_dirs : shard directories of the Mat-Label seed (``<id>.png``, ``<id>_alpha.npz``).
    eps_fg, eps_bg : Eq. 9 thresholds; the trimap is recomputed from the D2CAM maps (the maps the
        "matlabel" row mattes with; trimaps are not stored).

    Returns
    -------
    dict with the keys ``figure2`` reads; ``alpha`` is None when the image's matting failed (its seed then
    fell back to a threshold label, recorded in the shard's ``shard.json``).
    """
    cam, _ = _load_maps(cam_dirs, image_id)
    d2cam, classes = _load_maps(d2cam_dirs, image_id)
    alpha = None
    try:
        alpha, _ = read_alphas(find_in_shards(list(matlabel_dirs), image_id, ALPHAS_SUFFIX))
    except FileNotFoundError:
        pass
    return {
        "id": image_id,
        "label": _row_label(manifest, image_id, classes),
        "image": read_image(manifest.image_path(image_id)),
        "cam": cam,
        "d2cam": d2cam,
        "trimap": make_trimaps(d2cam, eps_fg, eps_bg),
        "alpha": alpha,
        "pseudo_label": read_label_png(find_in_shards(list(matlabel_dirs), image_id, ".png")),
        "gt": read_label_png(manifest.mask_path(image_id)),
    }


def load_segmentation_row(manifest: Manifest, image_id: str, segmentation_dirs) -> dict:
    """Gather one Figure 5 row: the image, its ground truth and the predicted ``<id>.png`` from the shards."""
    gt = read_label_png(manifest.mask_path(image_id))
    present = [int(v) for v in np.unique(gt) if 0 < v < manifest.num_classes]
    return {
        "id": image_id,
        "label": _row_label(manifest, image_id, present),
        "image": read_image(manifest.image_path(image_id)),
        "gt": gt,
        "prediction": read_label_png(find_in_shards(list(segmentation_dirs), image_id, ".png")),
    }


def default_figure_ids(manifest: Manifest, split: str, n: int = 4) -> list[str]:
    """The first ``n`` ids of ``split`` (file order) that have at least one foreground class."""
    labels = manifest.labels()
    return [i for i in manifest.split_ids(split) if labels.get(i)][:n]


def figure_ids(manifest: Manifest, ids, split: str, key: str = "figures.ids") -> list[str]:
    """The images of a figure: config ``ids`` (each must be an image of ``split``, the split whose maps or
    predictions the figure reads) or, when empty, ``default_figure_ids``. Errors name the config key."""
    ids = list(ids or [])
    if not ids:
        ids = default_figure_ids(manifest, split)
        if not ids:
            raise ValueError(f"no image of split '{split}' has a foreground class; set {key} in config")
        return ids
    known = set(manifest.split_ids(split))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"config {key}: {unknown} not in split '{split}' (the figure draws from it); choose ids "
                         f"listed in {split_path(manifest.root, split)}")
    return ids


# --------------------------------------------------------------------------------------------------------
# The ε grid (paper Sec. 3.2.2's claim, matlabel/sensitivity.py)
# --------------------------------------------------------------------------------------------------------

def eps_sensitivity_figure(df, out_path: str | os.PathLike, labels: Mapping[str, str] | None = None,
                           marked: tuple[float, float] | None = None, dpi: int = 150):
    """Heat maps of seed mIoU over ε_fg × ε_bg, one panel per method, on one colour scale; ``marked`` (ε_fg, ε_bg),
    the configured trimap's (the paper's 0.75, 0.2 in config.yaml), boxed where it is on the grid; a panel whose cells
    had matting failures (column ``failures``: images that took the threshold seed) gives their sum over its cells in
    its title. Writes ``out_path`` (PNG) atomically and returns the figure."""
    methods = list(dict.fromkeys(df["method"]))
    fgs, bgs = sorted(set(df["eps_fg"])), sorted(set(df["eps_bg"]))
    lo, hi = float(df["miou"].min()), float(df["miou"].max())
    fig = Figure(figsize=(3.4 * len(methods) + 1.0, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods):
        grid = np.full((len(fgs), len(bgs)), np.nan)
        for _, r in df[df["method"] == method].iterrows():
            grid[fgs.index(r["eps_fg"]), bgs.index(r["eps_bg"])] = r["miou"]
        im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
        for i in range(len(fgs)):
            for j in range(len(bgs)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[i, j] < (lo + hi) / 2 else "black")
        if marked is not None and marked[0] in fgs and marked[1] in bgs:
            ax.add_patch(_marked_box(fgs.index(marked[0]), bgs.index(marked[1])))
        spread = np.nanmax(grid) - np.nanmin(grid)
        failed = int(df.loc[df["method"] == method, "failures"].sum()) if "failures" in df else 0
        ax.set_title(f"{(labels or {}).get(method, method)}: spread {spread:.1f}"
                     + (f"\n{failed} threshold-seed fallback(s) over its cells" if failed else ""), fontsize=9)
        ax.set_xticks(range(len(bgs)), [f"{b:g}" for b in bgs], fontsize=7)
        ax.set_yticks(range(len(fgs)), [f"{f:g}" for f in fgs], fontsize=7)
        ax.set_xlabel("ε_bg", fontsize=8)
        ax.set_ylabel("ε_fg", fontsize=8)
    fig.colorbar(im, ax=list(axes), label="seed mIoU (%)", shrink=0.85)
    with atomic_path(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return fig


def _marked_box(i: int, j: int):
    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5)
