"""KNN matting of per-class trimaps into alpha mattes and pseudo-labels (paper Sec. 3.2.2).

Mat-Label turns each class's activation map into a trimap (Eq. 9: 1 foreground, 0 background, 0.5 unknown),
solves KNN matting [Chen, Li, Tang, "KNN Matting", TPAMI 2013] on it and uses the alpha matte as the
pseudo-label. The composition is ``laplacian -> linear system -> solve -> clip`` as in pymatting's
``estimate_alpha_knn``, with three departures, each measured (``bench/matting.py``, ``tests/test_matting.py``):

* ``L = D - W`` (the original's graph Laplacian) instead of pymatting's ``I - D^-1 W``: it is symmetric, so
  conjugate gradients applies; pymatting's non-symmetric system failed to converge on some VOC photos
  (measured; the original's Laplacian: dingzeyuli/knn-matting src/knn_matting.m, pymatting's:
  pymatting/laplacian/knn_laplacian.py). The neighbour graph ``W`` is pymatting's (same features,
  neighbour counts and distance weights, binary kernel), so the two Laplacians share their rows up to a
  per-row scale, and a hard-constrained solve of either gives the same alpha.
* By default the known pixels are hard constraints (``lam=inf``): they are eliminated and the system is over
  the unknown pixels only. This is the ``lam -> inf`` limit of ``(L + lam C) alpha = lam fg``; pymatting's
  ``lam = 100`` on its row-normalised Laplacian is close to it, while ``lam = 100`` on ``D - W`` (row sums
  ~55) lets the known pixels drift. A finite ``lam`` solves the soft system over all pixels instead.
* All classes of an image share the image and hence the Laplacian: it is built once, then each class's system
  (the block of its own unknown pixels) is solved by an SSOR-preconditioned CG compiled with numba.

Speed (the kd-tree neighbour search dominates): with hard constraints only the Laplacian rows of the pixels
unknown in some class are built, exactly (reverse neighbour edges included), by querying only the known
pixels that can reach them, with pymatting's kd-tree and a bounded, early-exit query of our own (see
``_laplacian_rows``). The rows are assembled and restricted to the system by numba kernels of our own
(``_laplacian_from_edges``, ``_restrict_columns``) instead of scipy's COO -> CSR conversion, duplicate sum and
column indexing, and the CG runs in one compiled loop, preconditioned by SSOR with Eisenstat's trick
(``_ssor_pcg_kernel``: 2.5-3 times fewer steps than Jacobi-PCG, each one pass over the system's entries as a
Jacobi step's product is, about 1.4 times dearer). Timings against the implementation before that and against
pymatting's per-class ``estimate_alpha_knn``: ``bench/matting.py`` and docs/reproducing.md (its matting section).
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from matlabel.trimap import BG, FG, UNKNOWN  # trimap values of paper Eq. 9


class NotConvergedWarning(RuntimeWarning):
    """:func:`knn_matting`'s CG stopped at ``max_iter`` above its tolerance (callers may turn it into an error)."""


class MattingFailure(RuntimeError):
    """The matting of one image gave no usable alpha (a solve that did not converge, non-finite alphas or residuals,
    a Laplacian with non-finite entries): a failure of that image alone, which a caller may replace by another seed
    (``labels.matting_seed``). Anything else (a device torch cannot use, a bad setting, a missing module) is not one:
    it would fail every image alike and must stop the job."""


# --------------------------------------------------------------------------------------------------- inputs

def _as_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 1] -> (H, W, 3) float64 in [0, 1]; ValueError otherwise."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must have shape (H, W, 3) with H, W > 0, got {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {image.dtype}")
    image = image.astype(np.float64)
    finite = np.isfinite(image)
    if not finite.all():
        y, x = np.argwhere(~finite.all(axis=2))[0]
        raise ValueError(f"image has {int((~finite).sum())} non-finite values (NaN or inf), the first at row {y}, "
                         f"column {x}; a float image must be finite and in [0, 1]")
    if image.min() < 0.0 or image.max() > 1.0:
        raise ValueError(f"float image values must be in [0, 1], got [{image.min():g}, {image.max():g}]")
    return image


def _as_trimaps(trimaps: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """(H, W) or (C, H, W) trimaps -> ((C, H, W) float64, was_2d); ValueError on shape or values."""
    trimaps = np.asarray(trimaps)
    single = trimaps.ndim == 2
    if single:
        trimaps = trimaps[None]
    if trimaps.ndim != 3 or trimaps.shape[1:] != tuple(hw):
        raise ValueError(f"trimaps must have shape (H, W) or (C, H, W) with (H, W) = {tuple(hw)}, "
                         f"got {trimaps.shape}")
    if not (np.issubdtype(trimaps.dtype, np.floating) or np.issubdtype(trimaps.dtype, np.integer)
            or trimaps.dtype == bool):
        raise ValueError(f"trimaps must be numeric, got dtype {trimaps.dtype}")
    trimaps = trimaps.astype(np.float64)
    if not np.isfinite(trimaps).all():
        raise ValueError(f"trimaps have {int((~np.isfinite(trimaps)).sum())} non-finite values (NaN or inf); trimap "
                         "values must be 1 (foreground), 0 (background) or 0.5 (unknown) as in paper Eq. 9")
    valid = (trimaps == FG) | (trimaps == BG) | (trimaps == UNKNOWN)
    if not valid.all():
        bad = trimaps[~valid]
        raise ValueError(f"trimap values must be 1 (foreground), 0 (background) or 0.5 (unknown) as in paper "
                         f"Eq. 9; found {bad.size} other values, e.g. {bad[:3].tolist()}")
    return trimaps, single


def _features(image: np.ndarray, distance_weight: float) -> np.ndarray:
    """(N, 5) float32 KNN features [r, g, b, w*x, w*y], x, y in [0, 1]: exactly pymatting's ``knn_laplacian``
    (so both find the same neighbours); the original scales x, y by the image diagonal instead."""
    h, w = image.shape[:2]
    r, g, b = image.reshape(-1, 3).T
    x = np.tile(np.linspace(0, 1, w), h)
    y = np.repeat(np.linspace(0, 1, h), w)
    return np.stack([r, g, b, distance_weight * x, distance_weight * y], axis=1,
                    out=np.zeros((h * w, 5), dtype=np.float32))


# ------------------------------------------------------------------------------------------- the Laplacian

def _window_offsets(k_max: int) -> list[tuple[int, int]]:
    """Offsets (dy, dx) != (0, 0) of the smallest square window holding at least ``k_max - 1`` other pixels."""
    rad = 1
    while (2 * rad + 1) ** 2 - 1 < k_max - 1:
        rad += 1
    return [(dy, dx) for dy in range(-rad, rad + 1) for dx in range(-rad, rad + 1) if (dy, dx) != (0, 0)]


def _window_colour_d2(image: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
    """(len(offsets), H, W) float32 squared colour distance from each pixel to the pixel at each offset;
    +inf where that pixel lies outside the image. Colours as in :func:`_features` (float32)."""
    h, w = image.shape[:2]
    rad = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    rgb = np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1))  # planar: contiguous slices
    pad = np.pad(rgb, ((0, 0), (rad, rad), (rad, rad)), constant_values=np.inf)
    d2 = np.zeros((len(offsets), h, w), np.float32)
    tmp = np.empty((h, w), np.float32)
    for i, (dy, dx) in enumerate(offsets):
        for ch in range(3):
            np.subtract(pad[ch, rad + dy:rad + dy + h, rad + dx:rad + dx + w], rgb[ch], out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            d2[i] += tmp
    return d2


def _kth_distance_bound(colour_d2: np.ndarray, offsets: list[tuple[int, int]], h: int, w: int, k: int,
                        distance_weight: float) -> np.ndarray:
    """(N,) float64 upper bound on each pixel's k-th nearest-neighbour feature distance (itself counted
    first, as the kd-tree query counts it): the distance to the (k-1)-th nearest other pixel of the window.
    Any k pixels within radius r prove that the k-th neighbour is no farther than r. +inf at the border
    where the window holds fewer than k - 1 pixels."""
    sy = distance_weight / (h - 1) if h > 1 else 0.0
    sx = distance_weight / (w - 1) if w > 1 else 0.0
    spatial = np.array([(sy * dy) ** 2 + (sx * dx) ** 2 for dy, dx in offsets], np.float32)
    d2 = colour_d2 + spatial[:, None, None]
    return np.sqrt(np.partition(d2, k - 2, axis=0)[k - 2].ravel().astype(np.float64))


def _bounded_knn_kernel(i0_inds, i1_inds, less_inds, more_inds, split_dims, bounds, points, split_values,
                        point_ids, query_points, bound2, stop2, out_indices, out_distances, k):
    """pymatting's ``_find_knn`` (same tree, same visiting order, same tie rule: an equally distant point
    found later does not displace an earlier one, so the neighbours are identical) with two additions that
    pymatting's query lacks, hence our own kernel:

    * ``bound2[q]``: a squared radius known to hold the k nearest neighbours (the window bound) prunes the
      tree from the first node instead of from the k-th point found;
    * ``stop2[q]``: the query is abandoned (returns True) as soon as k points closer than ``sqrt(stop2[q])``
      are found: then none of the pixels at least that far (the rows we build) can be among its neighbours.

    ``out_indices`` receives ``point_ids`` of the tree's points (pymatting's ``shuffled_indices``: the pixel
    indices), -1 where fewer than k points lie within the bound. Returns (n_query,) bool, True where abandoned
    (its out_indices are then meaningless).
    """
    dimension = points.shape[1]
    stack = np.empty(1000, np.int64)
    abandoned = np.zeros(query_points.shape[0], np.bool_)
    for i_query in range(query_points.shape[0]):
        query_point = query_points[i_query]
        distances = out_distances[i_query]
        indices = out_indices[i_query]
        for j in range(k):
            distances[j] = bound2[i_query]
            indices[j] = -1
        s2 = stop2[i_query]
        stack[0] = 0
        stack_size = 1
        while stack_size > 0:
            stack_size -= 1
            i_node = stack[stack_size]
            dist = 0.0
            for d in range(dimension):
                p = query_point[d]
                dp = p - max(bounds[i_node, 0, d], min(bounds[i_node, 1, d], p))
                dist += dp * dp
            if dist > distances[k - 1]:
                continue
            if split_dims[i_node] == -1:
                for i in range(i0_inds[i_node], i1_inds[i_node]):
                    distance = 0.0
                    for d in range(dimension):
                        dd = query_point[d] - points[i, d]
                        distance += dd * dd
                    if distance >= distances[k - 1]:
                        continue
                    pos = k - 1
                    while pos > 0 and distances[pos - 1] > distance:
                        distances[pos] = distances[pos - 1]
                        indices[pos] = indices[pos - 1]
                        pos -= 1
                    distances[pos] = distance
                    indices[pos] = point_ids[i]
                if distances[k - 1] < s2:
                    abandoned[i_query] = True
                    break
            else:
                less = less_inds[i_node]
                more = more_inds[i_node]
                if query_point[split_dims[i_node]] < split_values[i_node]:
                    stack[stack_size] = more
                    stack[stack_size + 1] = less
                else:
                    stack[stack_size] = less
                    stack[stack_size + 1] = more
                stack_size += 2
    return abandoned


def _edge_kernel(query, nb, pos, fill, cols, write):
    """Walks the edges (query[i], nb[i, j]) (self-loops dropped) of W = A + A^T: each puts an entry in row u = pos[q]
    (column p) and in row pos[p] (column q), for the rows with pos >= 0. ``write`` False: counts them
    (``fill[row] += 1``); True: writes each entry's column at ``cols[fill[row]]`` and advances ``fill[row]``."""
    for i in range(query.shape[0]):
        q = query[i]
        pq = pos[q]
        for j in range(nb.shape[1]):
            p = np.int64(nb[i, j])  # nb may be int32, query int64: one type for the pair below
            if p == q:
                continue
            for row, col in ((pq, p), (pos[p], q)):
                if row >= 0:
                    if write:
                        cols[fill[row]] = col
                    fill[row] += 1


def _laplacian_csr_kernel(indptr, cols, row_idx, seen, out_indptr, out_indices, out_data):
    """Rows of L = D - W in CSR without duplicates from W's entries per row (``cols[indptr[r]:indptr[r + 1]]``,
    each of weight 1, in any order): a column seen c times becomes one entry -c (in order of first sight),
    then the degree (entry count) on the diagonal column ``row_idx[r]``. ``seen`` (N,) int32, all -1: scratch
    mapping a column to its slot in the current row (a slot below the row's start is a stale mark, so it is
    never reset). Returns the number of entries written."""
    nnz = 0
    for r in range(indptr.shape[0] - 1):
        start = nnz
        for e in range(indptr[r], indptr[r + 1]):
            c = cols[e]
            slot = seen[c]
            if slot >= start:
                out_data[slot] -= 1.0
            else:
                seen[c] = nnz
                out_indices[nnz] = c
                out_data[nnz] = -1.0
                nnz += 1
        out_indices[nnz] = row_idx[r]
        out_data[nnz] = indptr[r + 1] - indptr[r]
        nnz += 1
        out_indptr[r + 1] = nnz
    return nnz


_JITTED: dict = {}


def _jit(kernel):
    """``kernel`` compiled by numba on first use (and cached on disk by numba), so that importing this module
    stays cheap and the kernels stay plain Python functions that tests can read."""
    if kernel not in _JITTED:
        import numba
        _JITTED[kernel] = numba.njit(cache=True, nogil=True)(kernel)
    return _JITTED[kernel]


def _laplacian_from_edges(passes, row_idx: np.ndarray, pos: np.ndarray, n: int) -> sp.csr_matrix:
    """Rows ``row_idx`` of ``L = D - W``, W = sum over passes of A + A^T with A_{q, nb} = 1 for each pass's
    (query pixels (Q,), their neighbours (Q, k)); self-loops dropped (W_ii cancels in D - W). ``pos`` maps a
    pixel to its row (-1: not a row). (len(row_idx), n) CSR float64 without duplicate entries (columns
    unsorted). Assembled by our own numba kernels: scipy's COO -> CSR, duplicate sum and column sort took a fifth
    of a matting call."""
    m = row_idx.size
    counts = np.zeros(m, np.int64)
    cols = np.empty(0, np.int32)
    for query, nb in passes:
        _jit(_edge_kernel)(query, nb, pos, counts, cols, False)
    indptr = np.zeros(m + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    cols = np.empty(indptr[-1], np.int32)
    fill = indptr[:-1].copy()
    for query, nb in passes:
        _jit(_edge_kernel)(query, nb, pos, fill, cols, True)
    out_indptr = np.zeros(m + 1, np.int64)
    out_indices = np.empty(cols.size + m, np.int32)
    out_data = np.empty(cols.size + m, np.float64)
    nnz = _jit(_laplacian_csr_kernel)(indptr, cols, row_idx, np.full(n, -1, np.int32), out_indptr,
                                      out_indices, out_data)
    return sp.csr_matrix((out_data[:nnz], out_indices[:nnz], out_indptr), shape=(m, n))


def _bounded_knn(tree, f: np.ndarray, query: np.ndarray, k: int, bound: np.ndarray, stop: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours (pymatting's, exactly) of the pixels ``query`` in pymatting's ``KDTree`` ``tree``
    of the features ``f``, within ``bound`` (must hold them), abandoning those that find k closer than
    ``stop``. Returns (len(query), k) int32 pixel indices and (len(query),) bool abandoned."""
    n = query.size
    dist2 = np.empty((n, k), np.float32)
    out = np.empty((n, k), np.int32)  # int32 and written by the kernel: these arrays are the pass's largest
    # Margins: the bounds are computed in another float order than the tree's float32 distances.
    bound2 = np.square(bound * (1.0 + 1e-4) + 1e-6).astype(np.float32)
    stop2 = np.square(np.maximum(stop * (1.0 - 1e-4) - 1e-6, 0.0)).astype(np.float32)
    abandoned = _jit(_bounded_knn_kernel)(tree.i0_inds, tree.i1_inds, tree.less_inds, tree.more_inds,
                                          tree.split_dims, tree.bounds, tree.shuffled_data_points,
                                          tree.split_values, tree.shuffled_indices, np.ascontiguousarray(f[query]),
                                          bound2, stop2, out, dist2, k)
    missing = (out[:, -1] < 0) & ~abandoned  # sorted by distance: the last is -1 when any is
    if missing.any():  # bound too small (rounding; not seen): redo those with pymatting's unbounded query
        out[missing] = tree.query(np.ascontiguousarray(f[query[missing]]), k)[1]
    return out, abandoned


def _restrict_columns_kernel(indptr, indices, data, pos, out_indptr, out_indices, out_data, out_diag):
    """Keeps the entries whose column c has ``pos[c] >= 0``, renumbered to ``pos[c]``; the entry on the new
    diagonal (column = row) goes to ``out_diag`` instead. Returns the number of entries written."""
    nnz = 0
    for r in range(indptr.shape[0] - 1):
        for e in range(indptr[r], indptr[r + 1]):
            c = pos[indices[e]]
            if c == r:
                out_diag[r] += data[e]
            elif c >= 0:
                out_indices[nnz] = c
                out_data[nnz] = data[e]
                nnz += 1
        out_indptr[r + 1] = nnz
    return nnz


def _restrict_columns(L_rows: sp.csr_matrix, cols: np.ndarray, n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``L_rows[:, cols]`` for the rows of the pixels ``cols`` (a square block), split into its off-diagonal
    part (CSR, int32 indices) and its diagonal, in one pass (scipy's column indexing sorts and copies: a
    tenth of a call)."""
    pos = np.full(n, -1, np.int64)
    pos[cols] = np.arange(cols.size)
    out_indptr = np.zeros(cols.size + 1, np.int64)
    out_indices = np.empty(L_rows.nnz, np.int32)
    out_data = np.empty(L_rows.nnz, np.float64)
    diag = np.zeros(cols.size)
    L_rows = sp.csr_matrix(L_rows)
    nnz = _jit(_restrict_columns_kernel)(L_rows.indptr, L_rows.indices, np.asarray(L_rows.data, np.float64), pos,
                                         out_indptr, out_indices, out_data, diag)
    off = sp.csr_matrix((out_data[:nnz], out_indices[:nnz], out_indptr), shape=(cols.size, cols.size))
    return off, diag


def _laplacian_rows(image: np.ndarray, rows: np.ndarray, n_neighbors: Sequence[int],
                    distance_weights: Sequence[float]) -> sp.csr_matrix:
    """Rows ``rows`` of the KNN Laplacian ``L = D - W`` of ``image``, exactly as in the full Laplacian.

    W = A + A^T with A_ij = 1 when j is among i's k nearest neighbours, so row u of W needs u's own
    neighbours and every pixel j that has u among its neighbours (reverse edges). A pixel j outside ``rows``
    is queried only if it may have one: its feature distance to any pixel of ``rows`` is at least
    ``lower_j = distance_weight * (x, y distance to rows)`` (the x, y part of the features alone), while its
    k-th neighbour is no farther than the window bound ``upper_j``; j is skipped when ``lower_j > upper_j``,
    and its query is abandoned once it holds k neighbours closer than ``lower_j``. With the unknown region as
    ``rows`` the first pass (distance weight 2) skips nearly all known pixels; the second (weight 0.1:
    colour-dominated, far-reaching neighbours) skips few on textured images, and the early exit roughly
    halves the cost of those queries instead.

    image : (H, W, 3) float64 in [0, 1]; rows : (N,) bool.
    Returns (rows.sum(), N) CSR float64; row i is the row of pixel ``np.flatnonzero(rows)[i]``.
    """
    from pymatting.util.kdtree import KDTree  # pymatting's numba kd-tree; imported lazily (JIT cache load)

    h, w = image.shape[:2]
    n = h * w
    if len(n_neighbors) != len(distance_weights) or len(n_neighbors) == 0:
        raise ValueError("n_neighbors and distance_weights must be non-empty and of equal length")
    if min(int(k) for k in n_neighbors) < 1 or min(float(d) for d in distance_weights) <= 0:
        raise ValueError(f"n_neighbors must be >= 1 and distance_weights > 0, got {n_neighbors}, "
                         f"{distance_weights}")
    row_idx = np.flatnonzero(rows)
    m = row_idx.size
    pos = np.full(n, -1, np.int64)
    pos[row_idx] = np.arange(m)
    ks = [min(int(k), n) for k in n_neighbors]  # tiny images: pymatting's query raises when k > N
    passes = []  # (query pixels, their k neighbours) per pass
    if m and max(ks) > 1:
        offsets = _window_offsets(max(ks))
        colour_d2 = _window_colour_d2(image, offsets)  # shared by the passes: only the x, y weight differs
        partial = m < n
        if partial:
            sy = 1.0 / (h - 1) if h > 1 else 1.0
            sx = 1.0 / (w - 1) if w > 1 else 1.0
            row_distance = ndimage.distance_transform_edt(~rows.reshape(h, w), sampling=(sy, sx)).ravel()
        for k, dw in zip(ks, distance_weights):
            if k <= 1:  # the only neighbour is the pixel itself: no edge
                continue
            f = _features(image, float(dw))
            upper = _kth_distance_bound(colour_d2, offsets, h, w, k, float(dw))
            if partial:
                lower = float(dw) * row_distance
                query = np.flatnonzero(rows | (lower <= upper * (1.0 + 1e-4) + 1e-6))
                stop = np.where(rows[query], 0.0, lower[query])
            else:
                query = np.arange(n)
                stop = np.zeros(n)
            nb, abandoned = _bounded_knn(KDTree(f), f, query, k, upper[query], stop)
            passes.append((query[~abandoned], nb[~abandoned]))
    return _laplacian_from_edges(passes, row_idx, pos, n)


def knn_laplacian(image: np.ndarray, n_neighbors: Sequence[int] = (20, 10),
                  distance_weights: Sequence[float] = (2.0, 0.1)) -> sp.csr_matrix:
    """KNN matting Laplacian ``L = D - W`` [Chen, Li, Tang, TPAMI 2013].

    The graph is pymatting's ``knn_laplacian``: for each pass p, features ``[r, g, b, w_p x, w_p y]``
    (x, y in [0, 1]), the ``n_neighbors[p]`` nearest neighbours by pymatting's numba kd-tree, binary kernel;
    ``W = A + A^T`` summed over passes (so W_ij in {0, ..., 4}), self-loops dropped. Unlike pymatting's
    ``I - D^-1 W`` this is the original's ``D - W`` (D = diag of W's row sums): symmetric positive
    semi-definite with ``L 1 = 0``; ``L + lam C`` (or the unknown-unknown block) is SPD on every graph component
    that holds a known pixel, so conjugate gradients converges (dingzeyuli/knn-matting src/knn_matting.m).

    Parameters
    ----------
    image : (H, W, 3) uint8, or float in [0, 1].
    n_neighbors : neighbours per pass, default pymatting's (20, 10) (the original: 10 and 2).
    distance_weights : weight of x, y in the features per pass, default pymatting's (2.0, 0.1).

    Returns
    -------
    (N, N) scipy.sparse.csr_matrix float64, N = H * W, pixels in row-major order; diagonal = degree
    (about 55 with the defaults), off-diagonal = -W_ij.
    """
    image = _as_image(image)
    n = image.shape[0] * image.shape[1]
    return _laplacian_rows(image, np.ones(n, bool), n_neighbors, distance_weights)


def random_walk_laplacian(image: np.ndarray, sigma: float = 0.033, radius: int = 1,
                          regularization: float = 1e-8) -> sp.csr_matrix:
    """Random-walk matting Laplacian [Grady, Schiwietz, Aharon, Westermann, VIIP 2005] in its symmetric form
    ``L = (1 + regularization) D - W`` (Grady's random walker, TPAMI 2006: the graph Laplacian ``D - W``).

    ``W`` is pymatting's (pymatting/pymatting, pymatting/laplacian/rw_laplacian.py, its ``_rw_laplacian`` kernel):
    ``W_ij = exp(-900 ||I_i - I_j||^2)`` over each pixel's ``(2 radius + 1)^2`` window, neighbours clamped to the
    image (so a border pixel has self-loops and repeated edges; ``W`` stays symmetric), ``D`` its row sums (self-loops
    included). pymatting returns the row-normalised ``(1 + regularization) I - D^-1 W`` instead, which is not
    symmetric (``max |L - L^T|`` about 0.25 on a photo), while both solvers of :func:`knn_matting` are conjugate
    gradients, which needs a symmetric system: on it they stopped 0.14 (SSOR) / 0.11 (Jacobi) off a direct solve's
    alphas (scikit-image's astronaut, 150 px). This is pymatting's matrix with row i multiplied by ``D_i > 0``, so a
    hard-constrained solve (the unknown pixels' rows) has exactly the same solution. A soft solve (finite ``lam``) weighs ``lam`` against the degree ``D_i <= 9``
    (radius 1), as with KNN's ``D - W``, not against pymatting's unit row sums.

    Parameters
    ----------
    image : (H, W, 3) uint8, or float in [0, 1].
    sigma : pymatting's argument, unused by its kernel (the weight's scale is its constant 900 ~ 1 / 0.033^2).
    radius : window radius (pymatting's default 1: the 8-neighbourhood).
    regularization : ``regularization * D`` on the diagonal (pymatting's ``regularization * I``, row-scaled).

    Returns
    -------
    (N, N) scipy.sparse.csr_matrix float64, symmetric, N = H * W in row-major order.
    """
    from pymatting.laplacian.rw_laplacian import _rw_laplacian  # the exact weights of the pinned pymatting

    img = _as_image(image)
    n = img.shape[0] * img.shape[1]
    values, i_inds, j_inds = _rw_laplacian(np.ascontiguousarray(img), float(sigma), int(radius))
    W = sp.csr_matrix((values, (i_inds, j_inds)), shape=(n, n))  # repeated (clamped) edges summed, as pymatting's
    degree = np.asarray(W.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags((1.0 + regularization) * degree) - W)


def check_symmetric(laplacian: sp.spmatrix, rtol: float = 1e-9) -> None:
    """ValueError unless ``max |L - L^T| <= rtol max |L|``: both solvers of :func:`knn_matting` (SSOR-PCG on the CPU,
    Jacobi-PCG in torch) are conjugate gradients, which on a non-symmetric system stops with a wrong answer
    rather than failing. ``rtol`` absorbs rounding (closed-form's windows summed in another order: about 1e-11)."""
    L = sp.csr_matrix(laplacian)
    diff = (L - L.T).data
    gap = float(np.abs(diff).max()) if diff.size else 0.0
    scale = float(np.abs(L.data).max()) if L.nnz else 0.0
    if not gap <= rtol * scale:
        raise ValueError(f"laplacian is not symmetric (max |L - L^T| = {gap:.3g}, max |L| = {scale:.3g}): the "
                         f"conjugate-gradient solvers need a symmetric system; pass its symmetric form (for a "
                         f"row-normalised I - D^-1 W, the graph Laplacian D - W, as random_walk_laplacian builds)")


# ---------------------------------------------------------------------------------------------- the solver

#: The matting Laplacians of Table 5 (this workflow's ablation beyond the paper): KNN matting (Chen, Li, Tang, TPAMI
#: 2013; the paper's), closed-form matting (Levin, Lischinski, Weiss, TPAMI 2008), random-walk matting (Grady,
#: Schiwietz, Aharon, Westermann, VIIP 2005) and learning-based matting (Zheng, Kambhamettu, ICCV 2009).
LAPLACIANS = ("knn", "closed_form", "random_walk", "learning_based")

#: Largest alpha error (max abs) that :func:`knn_matting` leaves against a direct solve of the same system, with
#: each Laplacian's ``LAPLACIAN_SOLVER`` settings, on both solvers (SSOR-PCG on the CPU, Jacobi-PCG in torch).
#: Measured on scikit-image's astronaut, chelsea and coffee at 150-600 px (torch: 150 px) with Eq. 9 trimaps of a
#: centred bump (40 % unknown): at most 3.0e-4 (closed-form, 600 px); tests/test_matting.py checks it at 60 px.
ALPHA_ATOL = 1e-3

#: :func:`knn_matting`'s CG settings per Laplacian (the rest: its defaults) that keep it within ``ALPHA_ATOL``: the
#: residual rule does not bound the alpha error of an ill-conditioned system. At the default rtol (5e-6) KNN's
#: systems left 6.4e-5 or less, the others up to 0.0097 (closed-form), 0.082 (learning-based) and 0.25 (random
#: walk, whose weights exp(-900 |I_i - I_j|^2) join regions by weights of 1e-4 and less); the steps at the rtol here,
#: 300-600 px: 630-1170 (closed-form), 660-1270 (learning-based), 2770-3050 (random walk), all SSOR.
LAPLACIAN_SOLVER = {"knn": {}, "closed_form": {"rtol": 1e-7, "max_iter": 20000},
                    "random_walk": {"rtol": 1e-9, "max_iter": 20000},
                    "learning_based": {"rtol": 1e-7, "max_iter": 20000}}


def matting_laplacian(image: np.ndarray, method: str = "knn", is_known: np.ndarray | None = None,
                      **params) -> sp.csr_matrix:
    """The (N, N) matting Laplacian of ``method`` (``LAPLACIANS``) for ``image``, N = H * W in row-major order.

    ``knn`` is this module's :func:`knn_laplacian` (pymatting's graph as ``D - W``), ``random_walk`` its
    :func:`random_walk_laplacian` (pymatting's weights as ``(1 + reg) D - W``); ``closed_form`` and
    ``learning_based`` are pymatting's ``cf_laplacian`` and ``lbdm_laplacian`` (symmetric as built). Each has its
    builder's defaults, overridden by ``params``; each is symmetric, as the solvers need (:func:`check_symmetric`).
    ``is_known`` ((H, W) bool, pixels known in every trimap) lets the closed-form builder skip windows that hold
    no unknown pixel (pymatting's option; the solve only reads the unknown pixels' rows)."""
    if method == "knn":
        return knn_laplacian(image, **params)
    if method == "random_walk":
        return random_walk_laplacian(image, **params)
    import pymatting  # numba kernels, compiled once per environment

    img = _as_image(image)
    builders = {"closed_form": pymatting.cf_laplacian, "learning_based": pymatting.lbdm_laplacian}
    if method not in builders:
        raise ValueError(f"matting method must be one of {LAPLACIANS}, got {method!r}")
    if method == "closed_form" and is_known is not None:
        params = {"is_known": np.asarray(is_known, bool), **params}
    return sp.csr_matrix(builders[method](img, **params))


def _split_triangles_kernel(indptr, indices, data, out_indices, out_data, out_mid):
    """Reorders each CSR row of a square matrix's off-diagonal part so that its entries left of the diagonal
    (column < row) come first; ``out_mid[r]`` is where row r's entries right of it begin."""
    nnz = 0
    for r in range(indptr.shape[0] - 1):
        for lower in (True, False):
            if not lower:
                out_mid[r] = nnz
            for e in range(indptr[r], indptr[r + 1]):
                if (indices[e] < r) == lower:
                    out_indices[nnz] = indices[e]
                    out_data[nnz] = data[e]
                    nnz += 1


def _ssor_pcg_kernel(indptr, mid, indices, data, diag, rows, b, x, omega, rtol, max_iter):
    """SSOR-preconditioned CG on the principal subsystem ``(A + D)[rows, rows] x = b[rows]``, D = diag(diag), by
    Eisenstat's trick (S. C. Eisenstat, "Efficient implementation of a class of preconditioned conjugate gradient
    methods", SIAM J. Sci. Stat. Comput. 2(1), 1981). A = L + U is the off-diagonal part in CSR, each row's
    entries left of the diagonal first (:func:`_split_triangles_kernel`; ``mid``: where U begins). With
    ``Dt = D / omega`` and ``B = Dt + L``, plain CG runs on ``S B^-1 (A + D) B^-T S`` (S = Dt^1/2), the SSOR-
    preconditioned system; since ``A + D = B + B^T - (2 Dt - D)``, its product is one backward and one forward
    triangular sweep, a single pass over the entries like Jacobi-PCG's product. On the KNN matting systems it
    takes 2.5-3 times fewer steps than Jacobi-PCG (the solver before it), each about 1.4 times dearer
    (``bench/matting.py``); we write it ourselves because scipy has no SSOR or triangular-sweep preconditioner
    and its products would allocate per step.

    ``b``, ``x`` are full-length and zero outside ``rows``; ``x`` holds the start and is updated in place. Stops
    when the true residual ``||b - (A + D) x|| <= rtol ||b||`` (computed whenever the transformed residual,
    scaled by the last measured ratio of the two, says it may be) or after ``max_iter`` steps. b = 0 gives
    x = 0 exactly, and a graph component of ``rows`` where b and the start are 0 stays 0 (the sweeps never
    leave a component). Returns (iterations, relative residual)."""
    n = b.shape[0]

    # Inner functions with no free variables (numba inlines them; it cannot compile closures over cells).
    def sweep(indptr, mid, indices, data, dt, rows, v, out, forward):
        # out = B^-1 v (forward: L, rows in increasing order) or B^-T v (backward: U, decreasing order), on rows;
        # out is zero outside rows.
        m = rows.shape[0]
        for j in range(m):
            i = rows[j] if forward else rows[m - 1 - j]
            acc = v[i]
            lo, hi = (indptr[i], mid[i]) if forward else (mid[i], indptr[i + 1])
            for e in range(lo, hi):
                acc -= data[e] * out[indices[e]]
            out[i] = acc / dt[i]

    def true_residual(indptr, mid, indices, data, dt, s, rows, r):
        # ||B S^-1 r||: the true residual of the transformed residual r (the diagonal and L).
        total = 0.0
        for i in rows:
            acc = dt[i] * r[i] / s[i]
            for e in range(indptr[i], mid[i]):
                acc += data[e] * r[indices[e]] / s[indices[e]]
            total += acc * acc
        return math.sqrt(total)

    dt = np.ones(n)
    s = np.ones(n)
    for i in rows:
        if diag[i] > 0:  # an isolated pixel with eps = 0 (no entries, diagonal 0) keeps Dt = 1; it stays 0
            dt[i] = diag[i] / omega
            s[i] = math.sqrt(dt[i])
    bnorm = 0.0
    for i in rows:
        bnorm += b[i] * b[i]
    bnorm = math.sqrt(bnorm)
    if bnorm == 0.0:
        for i in rows:
            x[i] = 0.0
        return 0, 0.0
    # CG solves for the correction d of the start: (A + D) d = r0 = b - (A + D) x, in the variable y = S^-1 B^T d.
    w = np.zeros(n)
    rnorm = 0.0
    for i in rows:
        acc = diag[i] * x[i]
        for e in range(indptr[i], indptr[i + 1]):
            acc += data[e] * x[indices[e]]
        w[i] = b[i] - acc
        rnorm += w[i] * w[i]
    rnorm = math.sqrt(rnorm)
    if rnorm <= rtol * bnorm:
        return 0, rnorm / bnorm
    r = np.zeros(n)
    sweep(indptr, mid, indices, data, dt, rows, w, r, True)
    rr = 0.0
    for i in rows:
        r[i] *= s[i]
        rr += r[i] * r[i]
    ratio = rnorm / math.sqrt(rr)  # ||true residual|| / ||transformed residual||, re-measured at each check
    y = np.zeros(n)
    p = r.copy()
    t = np.zeros(n)
    q = np.zeros(n)
    it = 0
    checked = False
    while it < max_iter:
        it += 1
        for i in rows:
            w[i] = s[i] * p[i]
        sweep(indptr, mid, indices, data, dt, rows, w, t, False)  # t = B^-T S p
        for i in rows:
            w[i] -= (2.0 * dt[i] - diag[i]) * t[i]
        sweep(indptr, mid, indices, data, dt, rows, w, q, True)  # q = B^-1 (S p - (2 Dt - D) t)
        pq = 0.0
        for i in rows:
            q[i] = s[i] * (t[i] + q[i])  # q = S B^-1 (A + D) B^-T S p
            pq += p[i] * q[i]
        if pq <= 0.0:  # p = 0: solved exactly
            break
        step = rr / pq
        rr_new = 0.0
        for i in rows:
            y[i] += step * p[i]
            r[i] -= step * q[i]
            rr_new += r[i] * r[i]
        checked = math.sqrt(rr_new) * ratio <= rtol * bnorm
        if checked:
            rnorm = true_residual(indptr, mid, indices, data, dt, s, rows, r)
            if rr_new > 0.0:
                ratio = rnorm / math.sqrt(rr_new)
            if rnorm <= rtol * bnorm:
                break
        beta = rr_new / rr
        rr = rr_new
        for i in rows:
            p[i] = r[i] + beta * p[i]
    if not checked:
        rnorm = true_residual(indptr, mid, indices, data, dt, s, rows, r)
    for i in rows:                        # x += d = B^-T S y
        w[i] = s[i] * y[i]
    sweep(indptr, mid, indices, data, dt, rows, w, t, False)
    for i in rows:
        x[i] += t[i]
    return it, rnorm / bnorm


#: Default CG tolerance of :func:`knn_matting` (relative residual). SSOR-PCG's last residual is smoother than
#: Jacobi-PCG's, so at the same tolerance it leaves a larger alpha error (at 1e-5 up to 7.4e-4 against the Jacobi
#: solver's 4.1e-4 on the demo's ReCAM trimaps); 5e-6 keeps the largest error at or below the Jacobi solver's at 1e-5
#: on every set measured (the demo's CAM, ReCAM and D2CAM trimaps with the KNN Laplacian, the bench's images) for
#: about 4 % more steps. Table 5's other Laplacians need tighter ones (``LAPLACIAN_SOLVER``).
DEFAULT_RTOL = 5e-6

#: SSOR relaxation of :func:`_ssor_pcg_kernel` (0 < omega < 2; 1 is symmetric Gauss-Seidel). Measured on the KNN
#: matting systems of eight 500 x 375 ``bench/matting.py`` images (11-59 % unknown), all steps at rtol 1e-5: omega
#: 1.0: 473, 1.2: 401, 1.4: 351, 1.5: 335, 1.6: 332, 1.7: 339; the alphas' largest difference to the Jacobi-PCG
#: solver before it (same rtol) grows past 1.4 (2.7e-4; 1.5: 6.2e-4; 1.6: 7.5e-4), so 1.4.
SSOR_OMEGA = 1.4


def _solve_classes(off: sp.csr_matrix, diag: np.ndarray, masks: np.ndarray, B: np.ndarray, X0: np.ndarray,
                   rtol: float, max_iter: int, columns: np.ndarray, omega: float = SSOR_OMEGA
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solves, for each class c in ``columns``, ``(off + diag(diag[:, c]))[m, m] x = B[m, c]`` over the rows
    ``m = masks[:, c]`` by SSOR-PCG (:func:`_ssor_pcg_kernel`), started from ``X0[:, c]`` (other rows keep X0).
    off: (n, n) CSR without diagonal entries, symmetric; diag, B, X0: (n, C) float64; masks: (n, C) bool.
    Returns X (n, C), iterations (C,), relative residuals (C,) (0 where the class's b = 0)."""
    off = sp.csr_matrix(off)
    # float32 entries where that is exact (KNN matting's weights are small integers): the sweeps read a third fewer
    # bytes per entry, about a tenth faster; other Laplacians keep float64.
    exact32 = np.array_equal(off.data.astype(np.float32), off.data)
    indices = np.empty(off.nnz, np.int32)
    data = np.empty(off.nnz, np.float32 if exact32 else np.float64)
    mid = np.empty(off.shape[0], np.int64)
    _jit(_split_triangles_kernel)(off.indptr, off.indices, off.data, indices, data, mid)
    X = np.array(X0, np.float64)
    iters = np.zeros(B.shape[1], np.int64)
    relres = np.zeros(B.shape[1])
    kernel = _jit(_ssor_pcg_kernel)
    for c in columns:
        rows = np.flatnonzero(masks[:, c])
        b = np.where(masks[:, c], B[:, c], 0.0)
        x = np.where(masks[:, c], X[:, c], 0.0)
        iters[c], relres[c] = kernel(off.indptr, mid, indices, data, np.ascontiguousarray(diag[:, c]), rows, b, x,
                                     float(omega), float(rtol), int(max_iter))
        X[rows, c] = x[rows]
    return X, iters, relres


def check_solve(relres: np.ndarray, finite: np.ndarray, classes: Sequence[int], rtol: float, max_iter: int,
                where: str) -> None:
    """The end of a solve (this module's and ``matting_torch``'s): raises :class:`MattingFailure` for the
    ``classes`` whose relative residual or alphas (``finite``: (C,) bool, all alphas of that class finite) are NaN
    or inf, then warns :class:`NotConvergedWarning` for those above ``rtol``. The finiteness comes first because
    ``NaN > rtol`` is False: the tolerance test alone passes a NaN solve as converged."""
    bad = [int(c) for c in classes if not (math.isfinite(float(relres[c])) and finite[c])]
    if bad:
        raise MattingFailure(f"{where}: the solve gave non-finite alphas or residuals (NaN or inf) for classes {bad} "
                             f"(relative residuals {[float(relres[c]) for c in bad]}); the system of this image "
                             "is singular or overflowed")
    slow = [int(c) for c in classes if relres[c] > rtol]
    if slow:
        warnings.warn(f"{where}: CG did not reach rtol={rtol} in {max_iter} iterations for classes {slow} (relative "
                      f"residuals {[float(relres[c]) for c in slow]}); returning the last iterate", NotConvergedWarning,
                      stacklevel=3)


def knn_matting(image: np.ndarray, trimaps: np.ndarray, lam: float = math.inf, eps: float = 1e-6,
                rtol: float = DEFAULT_RTOL, max_iter: int = 2000, laplacian: sp.spmatrix | None = None,
                n_neighbors: Sequence[int] = (20, 10), distance_weights: Sequence[float] = (2.0, 0.1),
                return_info: bool = False, device: str = "cpu"):
    """Alpha mattes of the C trimaps of one image by KNN matting [Chen, Li, Tang, TPAMI 2013].

    Per class c, with ``L = D - W`` (:func:`knn_laplacian`), ``C_c = diag(known_c)`` and ``fg_c`` the
    foreground indicator:

    * ``lam = inf`` (default, hard constraints): known pixels keep their trimap value and the unknown ones
      solve ``(L_UU + eps I) alpha_U = -L_UK fg_K``, the ``lam -> inf`` limit of the soft system. The
      Laplacian rows are built only for pixels unknown in some class (exactly the full Laplacian's rows:
      see ``_laplacian_rows``), and the system is only over those pixels. Row-scaling does not change this solution, so it is also the hard
      limit of pymatting's ``I - D^-1 W`` system.
    * finite ``lam`` (soft constraints, the original's form, its ``lam = 100``):
      ``(L + lam C_c + eps I) alpha_c = lam fg_c`` over all N pixels.

    One Laplacian serves all classes; each class's system (over its own unknown pixels) is then solved by
    SSOR-preconditioned CG (:func:`_ssor_pcg_kernel`; so the result equals per-class calls).
    ``eps I`` makes every system SPD: a KNN-graph component holding no known pixel (singular without it) gets
    alpha = 0 there (background). With CG started from 0 on the unknown pixels such a component is never
    touched, so this holds exactly rather than up to the tolerance.

    Degenerate trimaps never raise: a class with no unknown pixel returns its trimap; no foreground pixel
    gives alpha = 0 on the unknown pixels (x = 0 solves b = 0 exactly); no background pixel gives alpha = 1
    on every unknown component connected to a foreground pixel (0 on floating ones, as above); C = 0 gives
    shape (0, H, W). A CG that reaches ``max_iter`` warns (:class:`NotConvergedWarning`, a RuntimeWarning)
    and returns its last iterate; non-finite alphas or residuals raise :class:`MattingFailure`
    (:func:`check_solve`), and a NaN or inf in the image or a given ``laplacian`` raises ValueError.

    Parameters
    ----------
    image : (H, W, 3) uint8, or float in [0, 1].
    trimaps : (C, H, W) or (H, W), values 1 (foreground), 0 (background), 0.5 (unknown) (paper Eq. 9).
    lam : constraint weight; ``math.inf`` eliminates the known pixels.
    eps : ridge ``eps I`` added to the system (>= 0).
    rtol : per-class stopping rule ``||b - A x||_2 <= rtol ||b||_2``. The default (``DEFAULT_RTOL``, 5e-6) is for
        the KNN Laplacian: alpha within 2.9e-4 (max abs) of an rtol 1e-12 solve on the demo's and the bench's images,
        17-90 steps on 500 x 375 bench images with 4-65 % unknown pixels. Table 5's other Laplacians need their
        ``LAPLACIAN_SOLVER`` settings to stay within ``ALPHA_ATOL`` of a direct solve.
    max_iter : CG iteration cap (the original: 2000).
    laplacian : optional precomputed (N, N) :func:`knn_laplacian` of ``image``, or another symmetric Laplacian
        (:func:`matting_laplacian`; a non-symmetric one raises ValueError, :func:`check_symmetric`); built here
        when None (then ``n_neighbors``, ``distance_weights`` are passed to it).
    return_info : also return a dict with ``iterations`` (C,), ``relres`` (C,), ``n_system`` (unknowns).
    device : ``cpu`` (this function, scipy) or a torch device such as ``cuda``: the same graph and solve in torch
        (``matlabel.matting_torch``, hard constraints only), alphas within 1e-3 of the CPU path's.

    Returns
    -------
    alphas : (C, H, W) float32 in [0, 1] ((H, W) for an (H, W) trimap); or ``(alphas, info)``.
    """
    image = _as_image(image)
    h, w = image.shape[:2]
    n = h * w
    trimaps, single = _as_trimaps(trimaps, (h, w))
    if not (lam > 0):
        raise ValueError(f"lam must be > 0 (math.inf for hard constraints), got {lam}")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    if laplacian is not None and laplacian.shape != (n, n):
        raise ValueError(f"laplacian must have shape (N, N) = ({n}, {n}), got {laplacian.shape}")
    if laplacian is not None and not np.isfinite(sp.csr_matrix(laplacian).data).all():
        raise ValueError("laplacian has non-finite entries (NaN or inf)")
    if str(device) != "cpu":  # the same checks above, then the same solve in torch
        from matlabel.matting_torch import knn_matting_torch

        return knn_matting_torch(image, trimaps, n_neighbors, distance_weights, eps, rtol, max_iter, laplacian,
                                 device, return_info, lam)
    if laplacian is not None:
        check_symmetric(laplacian)  # the SSOR-PCG below needs it (knn_laplacian's D - W is symmetric by construction)
    n_cls = trimaps.shape[0]
    T = trimaps.reshape(n_cls, n)
    unknown = T == UNKNOWN                       # (C, N)
    FGm = (T == FG).T.astype(np.float64)          # (N, C)
    alphas = T.copy()
    info = {"iterations": np.zeros(n_cls, np.int64), "relres": np.zeros(n_cls), "n_system": 0}
    todo = np.flatnonzero(unknown.any(axis=1))   # classes with unknown pixels; the rest keep their trimap
    if todo.size:
        if math.isinf(lam):
            rows = unknown.any(axis=0)
            U = np.flatnonzero(rows)
            if laplacian is None:
                L_U = _laplacian_rows(image, rows, n_neighbors, distance_weights)
            else:
                L_U = sp.csr_matrix(laplacian)[U]
            off, diag = _restrict_columns(L_U, U, n)
            masks = np.ascontiguousarray(unknown[:, U].T)  # (|U|, C): pixel unknown for that class
            # Known pixels (including those unknown only for other classes) move to the right-hand side.
            B = -(L_U @ FGm)
            X, it, rr = _solve_classes(off, np.repeat((diag + eps)[:, None], n_cls, axis=1), masks, B,
                                       np.zeros(B.shape), rtol, max_iter, todo)
            for c in todo:
                alphas[c, U[unknown[c, U]]] = X[unknown[c, U], c]
            info["n_system"] = int(U.size)
        else:
            L = knn_laplacian(image, n_neighbors, distance_weights) if laplacian is None \
                else sp.csr_matrix(laplacian)
            Dg = lam * (~unknown).T.astype(np.float64) + eps  # (N, C) per-class constraint diagonal
            # Warm start at fg (0 on unknown pixels): exact on components without known pixels, see above.
            off, diag = _restrict_columns(L, np.arange(n), n)  # every column: the off-diagonal part + diagonal
            X, it, rr = _solve_classes(off, diag[:, None] + Dg, np.ones((n, n_cls), bool), lam * FGm, FGm, rtol,
                                       max_iter, todo)
            alphas[todo] = X[:, todo].T
            info["n_system"] = n
        info["iterations"], info["relres"] = it, rr
        check_solve(rr, np.isfinite(alphas).all(axis=1), todo, rtol, max_iter, "knn_matting")
    alphas = np.clip(alphas, 0.0, 1.0).astype(np.float32).reshape(n_cls, h, w)
    if single:
        alphas = alphas[0]
    return (alphas, info) if return_info else alphas


# ------------------------------------------------------------------------------------------ pseudo-labels

def alphas_to_labels(alphas: np.ndarray, classes: Sequence[int], fg_threshold: float) -> np.ndarray:
    """Pseudo-label map from per-class alpha mattes (paper Sec. 3.2.2: "use alpha matte alpha as the
    pseudo-label").

    Each class's matte is solved one-vs-rest (its trimap counts the other classes as background), so the
    mattes need not sum to 1; a pixel takes the class whose alpha is largest (the most opaque layer, as the
    original's multi-layer matting takes the argmax over layers), and background where no alpha is strictly
    greater than ``fg_threshold`` (0.5: more foreground than background). Ties go to the first class.

    Parameters
    ----------
    alphas : (C, H, W) float in [0, 1] (finite).
    classes : C label values in 1..254 (e.g. VOC indices [3, 15]); 0 is background, 255 void.
    fg_threshold : float.

    Returns
    -------
    (H, W) uint8 label map; all 0 when C = 0.
    """
    alphas = np.asarray(alphas)
    classes = np.asarray(classes)
    if alphas.ndim != 3:
        raise ValueError(f"alphas must have shape (C, H, W), got {alphas.shape}")
    if classes.ndim != 1 or classes.size != alphas.shape[0]:
        raise ValueError(f"classes must list one label per alpha matte ({alphas.shape[0]}), got {classes.tolist()}")
    if classes.size and (not np.issubdtype(classes.dtype, np.integer) or classes.min() < 1 or classes.max() > 254):
        raise ValueError(f"classes must be integers in 1..254 (0 is background, 255 void), got {classes.tolist()}")
    if not math.isfinite(fg_threshold):
        raise ValueError(f"fg_threshold must be finite, got {fg_threshold}")
    labels = np.zeros(alphas.shape[1:], np.uint8)
    if alphas.shape[0] == 0:
        return labels
    if not np.all(np.isfinite(alphas)):
        raise ValueError("alphas must be finite")
    best = np.argmax(alphas, axis=0)  # first maximum on ties
    top = np.take_along_axis(alphas, best[None], axis=0)[0]
    fg = top > fg_threshold
    labels[fg] = classes.astype(np.uint8)[best[fg]]
    return labels
