"""The CPU solver of the matting systems, SSOR-preconditioned conjugate gradients compiled with numba, its settings
(:class:`SolverConfig`; tolerances per Laplacian), and the checks that end a solve on either solver
(:func:`check_solve`)."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from matlabel.matting.jit import jit


class NotConvergedWarning(RuntimeWarning):
    """:func:`knn_matting`'s CG stopped at ``max_iter`` above its tolerance (callers may turn it into an error)."""


class MattingFailure(RuntimeError):
    """The matting of one image gave no usable alpha (a solve that did not converge, non-finite alphas or residuals,
    a Laplacian with non-finite entries): a failure of that image alone, which a caller may replace by another seed
    (``labels.matting_seed``). Anything else (a device torch cannot use, a bad setting, a missing module) is not one:
    it would fail every image alike and must stop the job."""


#: Largest alpha error (max abs) that :func:`knn_matting` leaves against a direct solve of the same system, with
#: each Laplacian's ``LAPLACIAN_SOLVER`` settings, on both solvers (SSOR-PCG on the CPU, Jacobi-PCG in torch).
#: The largest alpha difference a solve may leave against a direct solve of the same system, for every Laplacian
#: (tests/test_matting.py checks it at 60 px; the errors measured at larger sizes: bench/README.md).
ALPHA_ATOL = 1e-3

#: :func:`knn_matting`'s CG settings per Laplacian (the rest: its defaults) that keep it within ``ALPHA_ATOL``: the
#: residual rule does not bound the alpha error of an ill-conditioned system (random walk's weights
#: exp(-900 |I_i - I_j|^2) join regions by tiny weights). The errors at the default rtol and the steps at these
#: settings: bench/README.md.
LAPLACIAN_SOLVER = {"knn": {}, "closed_form": {"rtol": 1e-7, "max_iter": 20000},
                    "random_walk": {"rtol": 1e-9, "max_iter": 20000},
                    "learning_based": {"rtol": 1e-7, "max_iter": 20000}}


#: Default CG tolerance of :func:`knn_matting` (relative residual). SSOR-PCG's last residual is smoother than
#: Jacobi-PCG's, so at the same tolerance it leaves a larger alpha error; 5e-6 keeps the largest error at or below
#: the Jacobi solver's at 1e-5 (measured: bench/README.md). Table 5's other Laplacians need tighter ones
#: (``LAPLACIAN_SOLVER``).
DEFAULT_RTOL = 5e-6

#: SSOR relaxation of :func:`_ssor_pcg_kernel` (0 < omega < 2; 1 is symmetric Gauss-Seidel): the value of a grid
#: over 1.0-1.7 past which the steps barely fall and the alphas drift from the Jacobi-PCG solver's (bench/README.md).
SSOR_OMEGA = 1.4


@dataclass(frozen=True)
class SolverConfig:
    """The settings of one matting solve, on either solver: :func:`matlabel.matting.knn_matting`'s keyword arguments
    (see there) less the data (``laplacian``) and the form of the result (``return_info``). Checked when made:
    ``lam > 0`` (``math.inf``: hard constraints), ``eps`` finite and >= 0 (ValueError otherwise)."""

    lam: float = math.inf
    eps: float = 1e-6
    rtol: float = DEFAULT_RTOL
    max_iter: int = 2000
    n_neighbors: Sequence[int] = (20, 10)
    distance_weights: Sequence[float] = (2.0, 0.1)
    device: str = "cpu"

    def __post_init__(self):
        if not (self.lam > 0):
            raise ValueError(f"lam must be > 0 (math.inf for hard constraints), got {self.lam}")
        if not (self.eps >= 0 and math.isfinite(self.eps)):
            raise ValueError(f"eps must be finite and >= 0, got {self.eps}")


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


def solve_classes(off: sp.csr_matrix, diag: np.ndarray, masks: np.ndarray, B: np.ndarray, X0: np.ndarray,
                  rtol: float, max_iter: int, columns: np.ndarray, omega: float = SSOR_OMEGA
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solves, for each class c in ``columns``, ``(off + diag(diag[:, c]))[m, m] x = B[m, c]`` over the rows
    ``m = masks[:, c]`` by SSOR-PCG (:func:`_ssor_pcg_kernel`), started from ``X0[:, c]`` (other rows keep X0).
    off: (n, n) CSR without diagonal entries, symmetric; diag, B, X0: (n, C) float64; masks: (n, C) bool.
    Returns X (n, C), iterations (C,), relative residuals (C,) (0 where the class's b = 0)."""
    off = sp.csr_matrix(off)
    # float32 entries where that is exact (KNN matting's weights are small integers): the sweeps read a third fewer
    # bytes per entry (faster: bench/README.md); other Laplacians keep float64.
    exact32 = np.array_equal(off.data.astype(np.float32), off.data)
    indices = np.empty(off.nnz, np.int32)
    data = np.empty(off.nnz, np.float32 if exact32 else np.float64)
    mid = np.empty(off.shape[0], np.int64)
    jit(_split_triangles_kernel)(off.indptr, off.indices, off.data, indices, data, mid)
    X = np.array(X0, np.float64)
    iters = np.zeros(B.shape[1], np.int64)
    relres = np.zeros(B.shape[1])
    kernel = jit(_ssor_pcg_kernel)
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
    """The end of a solve (this module's and :mod:`.torch_solver`'s): raises :class:`MattingFailure` for the
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
