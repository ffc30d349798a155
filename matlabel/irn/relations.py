"""IRN's pixel pairs and their relation labels (Ahn, Cho, Kwak, CVPR 2019, Sec. 3.2; jiwoon-ahn/irn
misc/indexing.py ``PathIndex``, voc12/dataloader.py ``GetAffinityLabelFromIndices``).

A pair is a *source* pixel p and a *destination* p + (dy, dx) for every direction of the half-disc
``search_directions(radius)``: (0, dx) for dx = 1 … r−1 and (dy, dx) with dy = 1 … r−1, |dx| ≤ r−1,
dy² + dx² < r². Each unordered pair within the radius thus appears once. The sources are the pixels of
rows [0, h − r_f) and columns [r_f, w − r_f) with r_f = ceil(r) − 1, so every destination lies inside the
map (IRN's cropped source window). Pair tensors are laid out (…, D, n_src) with D directions in IRN's
order (grouped by path length, the order of its ``search_dst``) and n_src = (h − r_f)·(w − 2 r_f) sources
in raster order; the loss, the affinities and the displacement targets all share this layout.
"""
from __future__ import annotations

import numpy as np
import torch

IGNORE_INDEX = 255


def search_directions(radius: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The directions of IRN's pairs and the lattice path of each (IRN ``PathIndex.get_search_paths_dst``).

    Parameters
    ----------
    radius : pairs are closer than ``radius`` (IRN: 10 for training, 5 for the random walk).

    Returns
    -------
    directions : (D, 2) int64 (dy, dx), dy ≥ 0, in IRN's order (stable-sorted by path length).
    paths : D arrays (L_d, 2) int64 of the (dy, dx) lattice points whose distance to the segment from
        (0, 0) to the destination is below 1, destination first and (0, 0) last (both ends included).
    """
    if radius < 2:
        raise ValueError(f"radius must be at least 2 (one neighbour), got {radius}")
    r = int(radius)
    dirs = [(0, x) for x in range(1, r)]
    dirs += [(y, x) for y in range(1, r) for x in range(-r + 1, r) if x * x + y * y < r * r]
    paths = []
    for dy, dx in dirs:
        ys, xs = np.meshgrid(np.arange(min(0, dy), max(0, dy) + 1), np.arange(min(0, dx), max(0, dx) + 1),
                             indexing="ij")
        ys, xs = ys.ravel(), xs.ravel()
        # squared distance of each lattice point of the bounding box to the line through 0 and (dy, dx)
        near = (dy * xs - dx * ys) ** 2 < dy * dy + dx * dx
        coords = np.stack([ys[near], xs[near]], 1)
        # IRN sorts by -(|y| + |x|) with a stable sort: the destination comes first
        coords = coords[np.argsort(-(np.abs(coords[:, 0]) + np.abs(coords[:, 1])), kind="stable")]
        paths.append(coords.astype(np.int64))
    order = np.argsort([len(p) for p in paths], kind="stable")  # IRN groups the directions by path length
    directions = np.asarray(dirs, dtype=np.int64)[order]
    return directions, [paths[i] for i in order]


class PathIndex:
    """Pairs within ``radius`` on a map of any size (IRN misc/indexing.py ``PathIndex``).

    IRN precomputes flat index arrays for one map size; here the pairs are taken by slicing, so one
    object serves every size. ``source_window(h, w)`` and ``shifted(x, d)`` give the views; flat indices
    (for sparse matrices) come from ``flat_indices(h, w)``.
    """

    def __init__(self, radius: int):
        self.radius = int(radius)
        self.radius_floor = int(np.ceil(radius) - 1)
        self.directions, self.paths = search_directions(self.radius)

    def __len__(self) -> int:
        return len(self.directions)

    def source_window(self, h: int, w: int) -> tuple[int, int]:
        """(ch, cw): the source window's size on an (h, w) map, n_src = ch · cw; raises if it is empty."""
        rf = self.radius_floor
        ch, cw = h - rf, w - 2 * rf
        if ch <= 0 or cw <= 0:
            raise ValueError(f"a {h}x{w} map is too small for pairs of radius {self.radius}: it needs at least "
                             f"{rf + 1} rows and {2 * rf + 1} columns (at stride 4: a crop of at least "
                             f"{4 * (2 * rf + 1)} pixels)")
        return ch, cw

    def shifted(self, x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        """View of ``x`` (…, h, w) at the source window moved by (dy, dx): (…, ch, cw)."""
        h, w = x.shape[-2:]
        ch, cw = self.source_window(h, w)
        rf = self.radius_floor
        return x[..., dy:dy + ch, rf + dx:rf + dx + cw]

    def pair_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Source and destination values of every pair: x (…, h, w) → src (…, 1, n_src), dst (…, D, n_src)."""
        src = self.shifted(x, 0, 0).flatten(-2).unsqueeze(-2)
        dst = torch.stack([self.shifted(x, int(dy), int(dx)) for dy, dx in self.directions], -3).flatten(-2)
        return src, dst

    def flat_indices(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat (raster) indices into an (h, w) map: src (n_src,), dst (D, n_src) (IRN ``src_indices``,
        ``dst_indices``)."""
        idx = torch.arange(h * w, dtype=torch.int64).view(h, w)
        src, dst = self.pair_values(idx)
        return src[0].numpy(), dst.numpy()


def relation_labels(label, path_index: PathIndex, ignore_index: int = IGNORE_INDEX
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IRN's inter-pixel relation labels of a stride-4 label map (``GetAffinityLabelFromIndices``).

    Parameters
    ----------
    label : (…, h, w) integer array/tensor, 0 = background, 1 … N = classes, ``ignore_index`` = not
        confident. IRN builds it from the confident-region labels downsampled ×0.25 (nearest).
    path_index : the pairs (IRN training: radius 10).

    Returns
    -------
    bg_pos, fg_pos, neg : bool (…, D, n_src). bg_pos: both ends background; fg_pos: both ends the same
    foreground class; neg: both ends labelled, labels different. Pairs with an ignored end are in none.
    IRN marks an end valid when its label is < 21 (VOC); here every label but ``ignore_index`` is valid,
    the same on VOC and right for COCO's 81 labels.
    """
    if not torch.is_tensor(label):
        label = torch.from_numpy(np.array(label))  # a copy: PIL-backed arrays are read-only
    src, dst = path_index.pair_values(label)
    valid = (src != ignore_index) & (dst != ignore_index)
    equal = src == dst
    pos = equal & valid
    return pos & (src == 0), pos & (src > 0), ~equal & valid
