"""The KNN neighbour graph of the KNN Laplacian: each pixel's k nearest pixels in feature space
(:func:`matlabel.matting.inputs.knn_features`), found with pymatting's kd-tree and a bounded, early-exit query of our
own, for only the pixels whose edges reach the Laplacian rows asked for (:func:`knn_edges`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from matlabel.matting.inputs import knn_features
from matlabel.matting.jit import jit


def _window_offsets(k_max: int) -> list[tuple[int, int]]:
    """Offsets (dy, dx) != (0, 0) of the smallest square window holding at least ``k_max - 1`` other pixels."""
    rad = 1
    while (2 * rad + 1) ** 2 - 1 < k_max - 1:
        rad += 1
    return [(dy, dx) for dy in range(-rad, rad + 1) for dx in range(-rad, rad + 1) if (dy, dx) != (0, 0)]


def _window_colour_d2(image: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
    """(len(offsets), H, W) float32 squared colour distance from each pixel to the pixel at each offset;
    +inf where that pixel lies outside the image. Colours as in :func:`knn_features` (float32)."""
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
    abandoned = jit(_bounded_knn_kernel)(tree.i0_inds, tree.i1_inds, tree.less_inds, tree.more_inds,
                                         tree.split_dims, tree.bounds, tree.shuffled_data_points,
                                         tree.split_values, tree.shuffled_indices, np.ascontiguousarray(f[query]),
                                         bound2, stop2, out, dist2, k)
    missing = (out[:, -1] < 0) & ~abandoned  # sorted by distance: the last is -1 when any is
    if missing.any():  # bound too small (rounding; not seen): redo those with pymatting's unbounded query
        out[missing] = tree.query(np.ascontiguousarray(f[query[missing]]), k)[1]
    return out, abandoned



def knn_edges(image: np.ndarray, rows: np.ndarray, n_neighbors: Sequence[int],
              distance_weights: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The KNN graph's edges that reach the pixels ``rows``: per pass p (features ``[r, g, b, w_p x, w_p y]``,
    ``n_neighbors[p]`` neighbours, pymatting's), (query pixels (Q,), their neighbours (Q, k)), the pixel itself
    included as pymatting's query lists it. Every edge (q, j) with q or j in ``rows`` is among them, so the rows'
    part of ``W = A + A^T`` is exact.

    Row u of W needs u's own neighbours and every pixel j that has u among its neighbours (reverse edges). A pixel
    j outside ``rows`` is queried only if it may have one: its feature distance to any pixel of ``rows`` is at
    least ``lower_j = distance_weight * (x, y distance to rows)`` (the x, y part of the features alone), while its
    k-th neighbour is no farther than the window bound ``upper_j``; j is skipped when ``lower_j > upper_j``,
    and its query is abandoned once it holds k neighbours closer than ``lower_j``. With the unknown region as
    ``rows`` the first pass (distance weight 2) skips nearly all known pixels; the second (weight 0.1:
    colour-dominated, far-reaching neighbours) skips few on textured images, and the early exit roughly
    halves the cost of those queries instead.

    image : (H, W, 3) float64 in [0, 1]; rows : (N,) bool.
    """
    from pymatting.util.kdtree import KDTree  # pymatting's numba kd-tree; imported lazily (JIT cache load)

    h, w = image.shape[:2]
    n = h * w
    if len(n_neighbors) != len(distance_weights) or len(n_neighbors) == 0:
        raise ValueError("n_neighbors and distance_weights must be non-empty and of equal length")
    if min(int(k) for k in n_neighbors) < 1 or min(float(d) for d in distance_weights) <= 0:
        raise ValueError(f"n_neighbors must be >= 1 and distance_weights > 0, got {n_neighbors}, "
                         f"{distance_weights}")
    m = int(np.count_nonzero(rows))
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
            f = knn_features(image, float(dw))
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
    return passes
