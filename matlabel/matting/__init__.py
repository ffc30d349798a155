"""KNN matting of per-class trimaps into alpha mattes and pseudo-labels (paper Sec. 3.2.2).

Mat-Label turns each class's activation map into a trimap (Eq. 9: 1 foreground, 0 background, 0.5 unknown),
solves KNN matting [Chen, Li, Tang, "KNN Matting", TPAMI 2013] on it and uses the alpha matte as the
pseudo-label. The composition is ``laplacian -> linear system -> solve -> clip`` as in pymatting's
``estimate_alpha_knn``, with three departures (tested in ``tests/test_matting.py``; their measurements are in
bench/README.md's performance diary):

* ``L = D - W`` (the original's graph Laplacian) instead of pymatting's ``I - D^-1 W``: it is symmetric, so
  conjugate gradients applies; pymatting's non-symmetric system can fail to converge (it did on VOC photos,
  bench/README.md; the original's Laplacian: dingzeyuli/knn-matting src/knn_matting.m, pymatting's:
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
``graph.knn_edges``). The rows are assembled and restricted to the system by numba kernels of our own
(``laplacians._laplacian_from_edges``, ``restrict.restrict_columns``) instead of scipy's COO -> CSR conversion,
duplicate sum and column indexing, and the CG runs in one compiled loop, preconditioned by SSOR with Eisenstat's
trick (``solvers._ssor_pcg_kernel``: fewer steps than Jacobi-PCG, each one pass over the system's entries as a
Jacobi step's product is). Timings against the implementation before that and against pymatting's per-class
``estimate_alpha_knn``: ``bench/matting.py``, docs/reproducing.md (its matting section) and bench/README.md.

The package keeps one idea per module, after pymatting's layout (each imports only the modules above it in this
list, never this ``__init__``; ``tests/test_imports.py`` checks it):

* ``jit``: the numba kernels compiled lazily, on first use;
* ``inputs``: the image and trimaps checked and normalised, the KNN feature space;
* ``graph``: the KNN neighbour graph (pymatting's kd-tree, our bounded query), the edges that reach given rows;
* ``laplacians``: the Laplacians of Table 5 (KNN's ``D - W`` assembled from the graph, random walk, closed form,
  learning based) and the symmetry check;
* ``restrict``: Laplacian rows restricted to a system's square block (off-diagonal part and diagonal);
* ``solvers``: the CPU solver (SSOR-PCG), the solve's settings (``SolverConfig``, ``LAPLACIAN_SOLVER``) and the
  checks that end a solve (``check_solve``, ``MattingFailure``);
* ``torch_solver``: the same graph and hard-constrained solve in torch, for the GPU (imports torch; not
  re-exported here, so that importing this package never loads torch);
* ``labels``: alpha mattes to a pseudo-label map;
* this ``__init__``: :func:`knn_matting`, which checks the inputs and solves on the CPU or hands the solve to
  ``torch_solver``, and the public names of the modules above.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from matlabel.matting.inputs import as_image, as_trimaps
from matlabel.matting.labels import alphas_to_labels
from matlabel.matting.laplacians import (
    LAPLACIANS,
    check_symmetric,
    knn_laplacian,
    knn_laplacian_rows,
    matting_laplacian,
    random_walk_laplacian,
)
from matlabel.matting.restrict import restrict_columns
from matlabel.matting.solvers import (
    ALPHA_ATOL,
    DEFAULT_RTOL,
    LAPLACIAN_SOLVER,
    SSOR_OMEGA,
    MattingFailure,
    NotConvergedWarning,
    SolverConfig,
    check_solve,
    solve_classes,
)
from matlabel.trimap import FG, UNKNOWN  # trimap values of paper Eq. 9

__all__ = ["ALPHA_ATOL", "DEFAULT_RTOL", "LAPLACIANS", "LAPLACIAN_SOLVER", "SSOR_OMEGA", "MattingFailure",
           "NotConvergedWarning", "SolverConfig", "alphas_to_labels", "check_solve", "check_symmetric",
           "knn_laplacian", "knn_matting", "matting_laplacian", "random_walk_laplacian"]


def knn_matting(image: np.ndarray, trimaps: np.ndarray, lam: float = SolverConfig.lam, eps: float = SolverConfig.eps,
                rtol: float = SolverConfig.rtol, max_iter: int = SolverConfig.max_iter,
                laplacian: sp.spmatrix | None = None, n_neighbors: Sequence[int] = SolverConfig.n_neighbors,
                distance_weights: Sequence[float] = SolverConfig.distance_weights, return_info: bool = False,
                device: str = SolverConfig.device):
    """Alpha mattes of the C trimaps of one image by KNN matting [Chen, Li, Tang, TPAMI 2013].

    Per class c, with ``L = D - W`` (:func:`knn_laplacian`), ``C_c = diag(known_c)`` and ``fg_c`` the
    foreground indicator:

    * ``lam = inf`` (default, hard constraints): known pixels keep their trimap value and the unknown ones
      solve ``(L_UU + eps I) alpha_U = -L_UK fg_K``, the ``lam -> inf`` limit of the soft system. The
      Laplacian rows are built only for pixels unknown in some class (exactly the full Laplacian's rows:
      see ``laplacians.knn_laplacian_rows``), and the system is only over those pixels. Row-scaling does not change
      this solution, so it is also the hard limit of pymatting's ``I - D^-1 W`` system.
    * finite ``lam`` (soft constraints, the original's form, its ``lam = 100``):
      ``(L + lam C_c + eps I) alpha_c = lam fg_c`` over all N pixels.

    One Laplacian serves all classes; each class's system (over its own unknown pixels) is then solved by
    SSOR-preconditioned CG (:func:`solvers._ssor_pcg_kernel`; so the result equals per-class calls).
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
    rtol : per-class stopping rule ``||b - A x||_2 <= rtol ||b||_2``. The default (``DEFAULT_RTOL``) is for
        the KNN Laplacian (its alpha error against a tight solve and its steps: bench/README.md). Table 5's other
        Laplacians need their ``LAPLACIAN_SOLVER`` settings to stay within ``ALPHA_ATOL`` of a direct solve.
    max_iter : CG iteration cap (the original: 2000).
    laplacian : optional precomputed (N, N) :func:`knn_laplacian` of ``image``, or another symmetric Laplacian
        (:func:`matting_laplacian`; a non-symmetric one raises ValueError, :func:`check_symmetric`); built here
        when None (then ``n_neighbors``, ``distance_weights`` are passed to it).
    return_info : also return a dict with ``iterations`` (C,), ``relres`` (C,), ``n_system`` (unknowns).
    device : ``cpu`` (this function, scipy) or a torch device such as ``cuda``: the same graph and solve in torch
        (:func:`matlabel.matting.torch_solver.knn_matting_torch`, hard constraints only), alphas within 1e-3 of the
        CPU path's.

    The settings (``lam`` to ``device`` but ``laplacian`` and ``return_info``) are those of :class:`SolverConfig`,
    which carries them to the torch path.

    Returns
    -------
    alphas : (C, H, W) float32 in [0, 1] ((H, W) for an (H, W) trimap); or ``(alphas, info)``.
    """
    image = as_image(image)
    h, w = image.shape[:2]
    n = h * w
    trimaps, single = as_trimaps(trimaps, (h, w))
    config = SolverConfig(lam=lam, eps=eps, rtol=rtol, max_iter=max_iter, n_neighbors=n_neighbors,
                          distance_weights=distance_weights, device=device)  # ValueError on a bad lam or eps
    if laplacian is not None and laplacian.shape != (n, n):
        raise ValueError(f"laplacian must have shape (N, N) = ({n}, {n}), got {laplacian.shape}")
    if laplacian is not None and not np.isfinite(sp.csr_matrix(laplacian).data).all():
        raise ValueError("laplacian has non-finite entries (NaN or inf)")
    if str(config.device) != "cpu":  # the same checks above, then the same solve in torch
        from matlabel.matting.torch_solver import knn_matting_torch  # torch is imported by this path only

        return knn_matting_torch(image, trimaps, config, laplacian=laplacian, return_info=return_info)
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
                L_U = knn_laplacian_rows(image, rows, n_neighbors, distance_weights)
            else:
                L_U = sp.csr_matrix(laplacian)[U]
            off, diag = restrict_columns(L_U, U, n)
            masks = np.ascontiguousarray(unknown[:, U].T)  # (|U|, C): pixel unknown for that class
            # Known pixels (including those unknown only for other classes) move to the right-hand side.
            B = -(L_U @ FGm)
            X, it, rr = solve_classes(off, np.repeat((diag + eps)[:, None], n_cls, axis=1), masks, B,
                                      np.zeros(B.shape), rtol, max_iter, todo)
            for c in todo:
                alphas[c, U[unknown[c, U]]] = X[unknown[c, U], c]
            info["n_system"] = int(U.size)
        else:
            L = knn_laplacian(image, n_neighbors, distance_weights) if laplacian is None \
                else sp.csr_matrix(laplacian)
            Dg = lam * (~unknown).T.astype(np.float64) + eps  # (N, C) per-class constraint diagonal
            # Warm start at fg (0 on unknown pixels): exact on components without known pixels, see above.
            off, diag = restrict_columns(L, np.arange(n), n)  # every column: the off-diagonal part + diagonal
            X, it, rr = solve_classes(off, diag[:, None] + Dg, np.ones((n, n_cls), bool), lam * FGm, FGm, rtol,
                                      max_iter, todo)
            alphas[todo] = X[:, todo].T
            info["n_system"] = n
        info["iterations"], info["relres"] = it, rr
        check_solve(rr, np.isfinite(alphas).all(axis=1), todo, rtol, max_iter, "knn_matting")
    alphas = np.clip(alphas, 0.0, 1.0).astype(np.float32).reshape(n_cls, h, w)
    if single:
        alphas = alphas[0]
    return (alphas, info) if return_info else alphas
