"""The torch (GPU) path of KNN matting (matlabel/matting/torch_solver.py) equals the CPU path, run here on CPU
tensors."""
import warnings

import numpy as np
import pytest

from matlabel.matting import SolverConfig, knn_laplacian, knn_matting, matting_laplacian
from matlabel.matting.torch_solver import knn_laplacian_torch, knn_matting_torch

CPU = SolverConfig(device="cpu")  # the torch path on CPU tensors


def textured(h=24, w=32, seed=0):
    """A photo-like image without exact distance ties: smooth colour regions plus noise, two objects."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([0.3 + 0.3 * xx, 0.4 + 0.2 * yy, 0.5 - 0.2 * xx], axis=-1)
    square = (slice(4, 14), slice(4, 14))
    disc = (yy * max(h, w) - 15) ** 2 + (xx * max(h, w) - 22) ** 2 < 36
    image[square] = (0.9, 0.2, 0.1)
    image[disc] = (0.1, 0.3, 0.9)
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1)
    trimaps = np.full((2, h, w), 0.0)
    trimaps[0][2:16, 2:16] = 0.5
    trimaps[0][6:12, 6:12] = 1.0
    from scipy import ndimage
    trimaps[1][ndimage.binary_dilation(disc, iterations=2)] = 0.5
    trimaps[1][ndimage.binary_erosion(disc, iterations=1)] = 1.0
    return image, trimaps


def test_the_torch_graph_is_the_cpu_graph():
    image, _ = textured()
    ours = knn_laplacian(image).toarray()
    theirs = knn_laplacian_torch(image, device="cpu").to_dense().numpy()
    np.testing.assert_array_equal(theirs, ours)


def test_the_torch_solve_equals_the_cpu_solve():
    image, trimaps = textured()
    cpu, cpu_info = knn_matting(image, trimaps, return_info=True)
    gpu_path, info = knn_matting_torch(image, trimaps, CPU, return_info=True)
    assert gpu_path.dtype == np.float32 and gpu_path.shape == cpu.shape
    assert np.abs(gpu_path - cpu).max() < 1e-3
    # Each converged by its own solver (the CPU path's SSOR-PCG takes fewer steps than the torch path's Jacobi-PCG).
    assert np.all(info["relres"] <= 1e-5) and np.all(cpu_info["relres"] <= 1e-5)
    assert np.all(cpu_info["iterations"] <= info["iterations"]) and info["n_system"] == cpu_info["n_system"]


def test_the_torch_solve_takes_another_laplacian_and_single_trimaps():
    image, trimaps = textured()
    L = matting_laplacian(image, "closed_form")
    cpu = knn_matting(image, trimaps[0], laplacian=L)
    torch_path = knn_matting_torch(image, trimaps[0], CPU, laplacian=L)
    assert torch_path.shape == trimaps[0].shape and np.abs(torch_path - cpu).max() < 1e-3


def test_degenerate_trimaps_and_the_soft_system():
    image, trimaps = textured()
    known = np.zeros_like(trimaps)
    known[0, :, :5] = 1.0  # no unknown pixel: the trimap comes back
    np.testing.assert_array_equal(knn_matting_torch(image, known, CPU), known.astype(np.float32))
    no_fg = np.where(trimaps == 1.0, 0.5, trimaps)  # no foreground: alpha 0 on the unknown pixels
    assert np.abs(knn_matting_torch(image, no_fg, CPU)).max() == 0.0
    assert knn_matting_torch(image, np.zeros((0, 24, 32)), CPU).shape == (0, 24, 32)
    with pytest.raises(ValueError, match="hard-constrained"):
        knn_matting_torch(image, trimaps, SolverConfig(lam=100.0, device="cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        knn_matting_torch(image, trimaps, SolverConfig(max_iter=2, device="cpu"))
    assert any("did not reach" in str(w.message) for w in caught)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_torch_solve_that_ends_in_nan_is_a_matting_failure():
    """As the CPU path (tests/test_matting.py): an overflowing system gives NaN residuals, which ``rnorm > rtol`` let
    through as converged; now a ``MattingFailure``."""
    from matlabel.matting import MattingFailure

    image, trimaps = textured()
    with pytest.raises(MattingFailure, match=r"knn_matting \(torch\): the solve gave non-finite alphas or residuals"):
        knn_matting_torch(image, trimaps, CPU, laplacian=knn_laplacian(image) * 1e305)


def test_knn_matting_hands_its_settings_to_the_torch_path(monkeypatch):
    """A device other than cpu: ``knn_matting`` checks the inputs, then calls the torch path with one
    ``SolverConfig`` of its settings (no longer eleven positional arguments), the Laplacian and ``return_info``."""
    from matlabel.matting import torch_solver

    calls = []
    monkeypatch.setattr(torch_solver, "knn_matting_torch", lambda *args, **kwargs: calls.append((args, kwargs)))
    image, trimaps = textured()
    L = knn_laplacian(image)
    knn_matting(image, trimaps, eps=1e-5, rtol=1e-7, max_iter=9, laplacian=L, n_neighbors=(8,),
                distance_weights=(1.0,), return_info=True, device="cuda:1")
    (args, kwargs), = calls
    assert args[2] == SolverConfig(eps=1e-5, rtol=1e-7, max_iter=9, n_neighbors=(8,), distance_weights=(1.0,),
                                   device="cuda:1")
    assert kwargs["laplacian"] is L and kwargs["return_info"] is True
    with pytest.raises(ValueError, match="lam must be > 0"):  # checked before any solver is chosen
        knn_matting(image, trimaps, lam=0.0, device="cuda")
