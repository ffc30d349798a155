"""KNN matting in torch, for the GPU (config ``matting.device: cuda``): the same graph and the same solve as
``matlabel.matting.knn_matting`` with hard constraints, which hands it the solve's settings (``SolverConfig``).

* The neighbours: pymatting's two passes over the features ``[r, g, b, w_p x, w_p y]`` (``inputs.knn_features``), by
  an exact brute-force search in float64 in blocks of query pixels (a GPU has the arithmetic to spare; the CPU path
  uses pymatting's kd-tree). Neighbour sets equal the kd-tree's except among exactly equidistant pixels, where the
  two may pick different ones of a tie (flat synthetic colours; rare on photos).
* The graph: binary kernel, ``W = A + A^T`` summed over the passes, self-loops dropped, ``L = D - W``
  (``laplacians.knn_laplacian``); or any given (N, N) Laplacian (Table 5's).
* The solve: for each class, the unknown pixels' block of ``L + eps I`` against the known pixels' alphas, by
  Jacobi-preconditioned CG on all classes at once, each class keeping its own step sizes and stopping at its own
  tolerance (the same stopping rule as the CPU path's SSOR-PCG, ``solvers._ssor_pcg_kernel``, whose triangular
  sweeps are sequential: Jacobi's product is what a GPU runs in parallel).
Written here rather than taken from a library: no maintained torch package builds KNN matting's graph.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from matlabel.matting.inputs import as_image, as_trimaps, knn_features
from matlabel.matting.laplacians import check_symmetric
from matlabel.matting.solvers import SolverConfig, check_solve
from matlabel.trimap import FG, UNKNOWN

#: distances computed per block of query pixels: block size x N entries (float64), 2^25 = 256 MB
BLOCK_ENTRIES = 1 << 25


def knn_indices(features: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k) indices of each pixel's ``k`` nearest pixels (itself included, as pymatting queries), exact."""
    n = features.shape[0]
    f = features.to(torch.float64)
    norms = (f * f).sum(1)
    block = max(1, BLOCK_ENTRIES // max(n, 1))
    out = torch.empty((n, k), dtype=torch.int64, device=features.device)
    for start in range(0, n, block):
        q = f[start:start + block]
        d2 = norms[start:start + block, None] + norms[None, :] - 2.0 * (q @ f.T)
        out[start:start + block] = torch.topk(d2, k, dim=1, largest=False, sorted=True).indices
    return out


def knn_laplacian_torch(image: np.ndarray, n_neighbors: Sequence[int] = (20, 10),
                        distance_weights: Sequence[float] = (2.0, 0.1), device="cpu") -> torch.Tensor:
    """``laplacians.knn_laplacian`` on ``device``: (N, N) sparse COO float64 ``L = D - W``."""
    img = as_image(image)
    n = img.shape[0] * img.shape[1]
    rows, cols = [], []
    for k, weight in zip(n_neighbors, distance_weights):
        f = torch.from_numpy(knn_features(img, weight)).to(device)
        nbr = knn_indices(f, k)
        i = torch.arange(n, device=device).repeat_interleave(k)
        j = nbr.reshape(-1)
        rows += [i, j]
        cols += [j, i]
    i, j = torch.cat(rows), torch.cat(cols)
    keep = i != j
    w = torch.sparse_coo_tensor(torch.stack([i[keep], j[keep]]), torch.ones(int(keep.sum()), dtype=torch.float64,
                                                                           device=device), (n, n),
                                check_invariants=False).coalesce()
    degree = torch.sparse.sum(w, dim=1).to_dense()
    diag = torch.arange(n, device=device)
    idx = torch.cat([w.indices(), torch.stack([diag, diag])], dim=1)
    val = torch.cat([-w.values(), degree])
    return torch.sparse_coo_tensor(idx, val, (n, n), check_invariants=False).coalesce()


def _to_torch_sparse(laplacian, device) -> torch.Tensor:
    coo = laplacian.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data.astype(np.float64)), coo.shape,
                                   check_invariants=False).coalesce().to(device)


def batched_pcg(matmat, B: torch.Tensor, diag: torch.Tensor, rtol: float, max_iter: int):
    """Jacobi-PCG in torch for all classes at once, from X0 = 0, on the C columns of B, a converged column
    frozen (its step set to 0) so that every column follows its own single-system iterates. Returns X, iterations
    (C,), relative residuals (C,)."""
    n_cols = B.shape[1]
    X = torch.zeros_like(B)
    iters = torch.zeros(n_cols, dtype=torch.int64, device=B.device)
    bnorm = torch.linalg.vector_norm(B, dim=0)
    R = B.clone()
    active = bnorm > 0  # b = 0: x = 0 exactly
    relres = torch.zeros(n_cols, dtype=B.dtype, device=B.device)
    if not bool(active.any()):
        return X, iters, relres
    inv_diag = torch.where(diag > 0, 1.0 / diag, torch.ones_like(diag))
    Z = R * inv_diag
    P = Z.clone()
    rz = (R * Z).sum(0)
    safe_b = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))
    for it in range(1, max_iter + 1):
        Q = matmat(P)
        pq = (P * Q).sum(0)
        step = torch.where(active & (pq > 0), rz / torch.where(pq > 0, pq, torch.ones_like(pq)),
                           torch.zeros_like(pq))
        X += step * P
        R -= step * Q
        rnorm = torch.linalg.vector_norm(R, dim=0)
        relres = torch.where(active, rnorm / safe_b, relres)
        iters = torch.where(active, torch.full_like(iters, it), iters)
        active = active & (rnorm > rtol * bnorm) & (pq > 0)
        if not bool(active.any()):
            break
        Z = R * inv_diag
        rz_new = (R * Z).sum(0)
        beta = torch.where(active, rz_new / torch.where(rz != 0, rz, torch.ones_like(rz)), torch.zeros_like(rz))
        P = torch.where(active, Z + beta * P, P)
        rz = torch.where(active, rz_new, rz)
    return X, iters, relres


def check_device(device) -> torch.device:
    """The torch device of config ``matting.device``, refused when torch cannot use it: that is a setting to change,
    not a failure of one image (every image would fail alike), so it raises RuntimeError naming the key and the
    fix instead of ``solvers.MattingFailure``. The matting rules call it once before their first image."""
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise RuntimeError(f"config matting.device: {device!r} is not a torch device ({err}); set matting.device: "
                           "cpu or cuda") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"config matting.device: {device}, but no CUDA device is visible to PyTorch; set "
                               "matting.device: cpu (or run on a GPU node)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"config matting.device: {device}, but PyTorch sees {torch.cuda.device_count()} CUDA "
                               "device(s) (a GPU job sees only its own card, as cuda:0); set matting.device: cuda")
    elif dev.type != "cpu":
        raise RuntimeError(f"config matting.device: {device}: the matting solve runs on cpu or cuda only; set "
                           "matting.device: cpu or cuda")
    return dev


def knn_matting_torch(image: np.ndarray, trimaps: np.ndarray, config: SolverConfig | None = None, laplacian=None,
                      return_info: bool = False):
    """``matting.knn_matting`` (hard constraints) on ``config.device``; same inputs and result (float32 numpy
    alphas), the settings in ``config`` (default: ``SolverConfig(device="cuda")``).

    ``laplacian``: an (N, N) scipy Laplacian to use instead of KNN's (Table 5's methods)."""
    config = SolverConfig(device="cuda") if config is None else config
    if not math.isinf(config.lam):
        raise ValueError("the torch path solves the hard-constrained system only (matting.lam: .inf)")
    device = check_device(config.device)
    img = as_image(image)
    h, w = img.shape[:2]
    n = h * w
    trimaps, single = as_trimaps(trimaps, (h, w))
    n_cls = trimaps.shape[0]
    T = torch.from_numpy(trimaps.reshape(n_cls, n).astype(np.float64)).to(device)
    unknown = (T == UNKNOWN).T.to(torch.float64)  # (N, C)
    fg = (T == FG).T.to(torch.float64)
    alphas = T.T.clone()
    info = {"iterations": np.zeros(n_cls, np.int64), "relres": np.zeros(n_cls), "n_system": 0}
    if n_cls and bool(unknown.any()):
        if laplacian is not None:
            check_symmetric(laplacian)  # Jacobi-PCG needs it, as the CPU path's SSOR-PCG
        L = knn_laplacian_torch(img, config.n_neighbors, config.distance_weights, device) if laplacian is None \
            else _to_torch_sparse(laplacian, device)
        L_diag = _diagonal(L, n)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            L = L.to_sparse_csr()
        B = -unknown * (L @ fg)
        diag = torch.where(unknown > 0, (L_diag + config.eps)[:, None].expand_as(unknown), torch.ones_like(unknown))

        def matmat(X):
            Y = unknown * X
            return unknown * (L @ Y + config.eps * Y)

        X, it, rr = batched_pcg(matmat, B, diag, config.rtol, config.max_iter)
        alphas = torch.where(unknown > 0, X, alphas)
        info.update(iterations=it.cpu().numpy(), relres=rr.cpu().numpy(),
                    n_system=int((unknown > 0).any(dim=1).sum()))
        check_solve(info["relres"], torch.isfinite(alphas).all(dim=0).cpu().numpy(), range(n_cls), config.rtol,
                    config.max_iter, "knn_matting (torch)")
    out = alphas.T.clamp(0.0, 1.0).to(torch.float32).cpu().numpy().reshape(n_cls, h, w)
    if single:
        out = out[0]
    return (out, info) if return_info else out


def _diagonal(coo: torch.Tensor, n: int) -> torch.Tensor:
    """The diagonal of a coalesced sparse COO (N, N) matrix."""
    i, j = coo.indices()
    d = torch.zeros(n, dtype=coo.values().dtype, device=coo.values().device)
    on = i == j
    d.index_add_(0, i[on], coo.values()[on])
    return d
