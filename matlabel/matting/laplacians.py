"""The matting Laplacians of Table 5: KNN's ``D - W`` assembled from the neighbour graph (:mod:`.graph`), random
walk's in its symmetric form, pymatting's closed-form and learning-based ones, and the symmetry check the
conjugate-gradient solvers need."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from matlabel.matting.graph import knn_edges
from matlabel.matting.inputs import as_image
from matlabel.matting.jit import jit


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
        jit(_edge_kernel)(query, nb, pos, counts, cols, False)
    indptr = np.zeros(m + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    cols = np.empty(indptr[-1], np.int32)
    fill = indptr[:-1].copy()
    for query, nb in passes:
        jit(_edge_kernel)(query, nb, pos, fill, cols, True)
    out_indptr = np.zeros(m + 1, np.int64)
    out_indices = np.empty(cols.size + m, np.int32)
    out_data = np.empty(cols.size + m, np.float64)
    nnz = jit(_laplacian_csr_kernel)(indptr, cols, row_idx, np.full(n, -1, np.int32), out_indptr,
                                     out_indices, out_data)
    return sp.csr_matrix((out_data[:nnz], out_indices[:nnz], out_indptr), shape=(m, n))



def knn_laplacian_rows(image: np.ndarray, rows: np.ndarray, n_neighbors: Sequence[int],
                       distance_weights: Sequence[float]) -> sp.csr_matrix:
    """Rows ``rows`` of the KNN Laplacian ``L = D - W`` of ``image``, exactly as in the full Laplacian: the edges
    that reach them (:func:`matlabel.matting.graph.knn_edges`, reverse edges included) assembled by
    :func:`_laplacian_from_edges`.

    image : (H, W, 3) float64 in [0, 1]; rows : (N,) bool.
    Returns (rows.sum(), N) CSR float64; row i is the row of pixel ``np.flatnonzero(rows)[i]``.
    """
    n = image.shape[0] * image.shape[1]
    passes = knn_edges(image, rows, n_neighbors, distance_weights)
    row_idx = np.flatnonzero(rows)
    pos = np.full(n, -1, np.int64)
    pos[row_idx] = np.arange(row_idx.size)
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
    image = as_image(image)
    n = image.shape[0] * image.shape[1]
    return knn_laplacian_rows(image, np.ones(n, bool), n_neighbors, distance_weights)


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
    hard-constrained solve (the unknown pixels' rows) has exactly the same solution. A soft solve (finite ``lam``)
    weighs ``lam`` against the degree ``D_i <= 9`` (radius 1), as with KNN's ``D - W``, not against pymatting's unit
    row sums.

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

    img = as_image(image)
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




#: The matting Laplacians of Table 5 (this workflow's ablation beyond the paper): KNN matting (Chen, Li, Tang, TPAMI
#: 2013; the paper's), closed-form matting (Levin, Lischinski, Weiss, TPAMI 2008), random-walk matting (Grady,
#: Schiwietz, Aharon, Westermann, VIIP 2005) and learning-based matting (Zheng, Kambhamettu, ICCV 2009).
LAPLACIANS = ("knn", "closed_form", "random_walk", "learning_based")


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

    img = as_image(image)
    builders = {"closed_form": pymatting.cf_laplacian, "learning_based": pymatting.lbdm_laplacian}
    if method not in builders:
        raise ValueError(f"matting method must be one of {LAPLACIANS}, got {method!r}")
    if method == "closed_form" and is_known is not None:
        params = {"is_known": np.asarray(is_known, bool), **params}
    return sp.csr_matrix(builders[method](img, **params))
