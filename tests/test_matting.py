"""KNN matting (matlabel.matting): recovery of a known alpha, batched = per-class, fast paths = reference
(full Laplacian, direct sparse solve, pymatting's graph and solver), degenerate trimaps, input validation and
the alpha -> label rule. Tiny images only; tolerances are stated where they are asserted."""
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import ndimage
from scipy.sparse.linalg import spsolve

from matlabel import matting
from matlabel.matting import alphas_to_labels, graph, knn_laplacian, knn_matting, restrict, solvers
from matlabel.matting.jit import jit
from matlabel.matting.laplacians import _laplacian_from_edges, knn_laplacian_rows

H, W = 40, 60


def ramp_composite(seed=0, noise=0.005):
    """A fg colour over a bg colour with a horizontal linear alpha ramp (0 left, 1 right) and its trimap
    (ramp = unknown). Returns image (H, W, 3) float in [0, 1], alpha (H, W), trimap (H, W)."""
    rng = np.random.default_rng(seed)
    alpha = np.tile(np.clip((np.linspace(0, 1, W) - 0.3) / 0.4, 0, 1), (H, 1))
    fg, bg = np.array([0.9, 0.3, 0.2]), np.array([0.1, 0.4, 0.8])
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    image = np.clip(image + rng.normal(0, noise, image.shape), 0, 1)
    trimap = np.where(alpha >= 1, 1.0, np.where(alpha <= 0, 0.0, 0.5))
    return image, alpha, trimap


def blob_trimap(cy, cx, ry, rx, band=3):
    yy, xx = np.mgrid[:H, :W]
    blob = (yy - cy) ** 2 / ry ** 2 + (xx - cx) ** 2 / rx ** 2 < 1
    t = np.full((H, W), 0.5)
    t[ndimage.binary_erosion(blob, iterations=band)] = 1.0
    t[~ndimage.binary_dilation(blob, iterations=band)] = 0.0
    return t


@pytest.fixture(scope="module")
def textured():
    """A smooth random colour image (textured enough for far-reaching KNN edges) and three class trimaps:
    two blobs and one with no unknown pixel."""
    rng = np.random.default_rng(1)
    img = ndimage.gaussian_filter(rng.random((H, W, 3)), (3, 3, 0))
    img = (img - img.min()) / (img.max() - img.min())
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
    t1 = blob_trimap(20, 30, 10, 14)
    t2 = blob_trimap(12, 12, 7, 8)
    t3 = np.where(blob_trimap(30, 45, 6, 8) == 1.0, 1.0, 0.0)  # no unknown pixel
    return img, np.stack([t1, t2, t3])


# ------------------------------------------------------------------------------------------- Laplacian

def two_colour_image():
    """Flat red left half, flat blue right half: exact distance ties everywhere."""
    img = np.zeros((H, W, 3))
    img[:, : W // 2] = [1.0, 0.0, 0.0]
    img[:, W // 2:] = [0.0, 0.0, 1.0]
    return img


@pytest.mark.parametrize("kind", ["textured", "two_colour", "ramp_8bit"])
def test_laplacian_is_pymatting_graph_as_d_minus_w(textured, kind):
    """Our L = D - W has exactly pymatting's neighbour graph W (pymatting: L = I - D^-1 W, self-loops
    of weight 2 per pass, i.e. 4); recover pymatting's W from its L and compare entry by entry. The flat and
    8-bit images have many equidistant neighbours: our kd-tree query must break ties as pymatting's does."""
    from pymatting import knn_laplacian as pym_knn_laplacian

    img = {"textured": lambda: textured[0], "two_colour": two_colour_image,
           "ramp_8bit": lambda: np.round(ramp_composite()[0] * 255) / 255}[kind]()
    L = knn_laplacian(img).tocsr()
    n = H * W
    assert L.shape == (n, n)
    assert abs(L - L.T).max() == 0                      # symmetric
    assert np.abs(L @ np.ones(n)).max() < 1e-9          # L 1 = 0
    Lp = pym_knn_laplacian(img).tocsr()
    d_p = 4.0 / (1.0 - Lp.diagonal())                   # pymatting's degree, self-loops included
    W_p = -(sp.diags(d_p) @ Lp)
    W_p.setdiag(0)
    W_p.eliminate_zeros()
    W_ours = -L.copy()
    W_ours.setdiag(0)
    W_ours.eliminate_zeros()
    assert (W_ours != 0).sum() == (W_p != 0).sum()
    assert abs(W_ours - W_p).max() < 1e-6              # weights are integers 1..4
    assert set(np.unique(W_ours.data)) <= {1.0, 2.0, 3.0, 4.0}


@pytest.mark.parametrize("band", [1, 3, 6])
def test_laplacian_rows_of_unknown_region_are_exact(textured, band):
    """The fast path queries neighbours only for the unknown pixels and the known pixels that may reach
    them; its rows must equal the full Laplacian's rows exactly (a too-aggressive prune drops edges)."""
    img = textured[0]
    rows = (blob_trimap(20, 30, 10, 14, band=band) == 0.5).ravel()
    L = knn_laplacian(img).tocsr()
    L_rows = knn_laplacian_rows(img, rows, (20, 10), (2.0, 0.1))
    assert L_rows.shape == (rows.sum(), H * W)
    diff = L_rows - L[np.flatnonzero(rows)]
    assert diff.nnz == 0 or abs(diff).max() == 0


def test_neighbour_search_falls_back_when_window_bound_fails(textured, monkeypatch):
    """If the window bound on the k-th neighbour distance were ever too small, the bounded kd-tree query
    finds < k points; those queries must be redone unbounded, giving the same Laplacian."""
    img = textured[0]
    ref = knn_laplacian(img)
    monkeypatch.setattr(graph, "_kth_distance_bound", lambda *args: np.full(H * W, 1e-9))
    assert abs(knn_laplacian(img) - ref).max() == 0


def test_laplacian_assembly_kernel_equals_scipy_coo():
    """Our numba assembly of the rows of L = D - W from neighbour lists (self-loops, duplicates and reverse
    edges included) equals the COO construction it replaced, on random neighbour lists."""
    rng = np.random.default_rng(3)
    n = 50
    rows = np.sort(rng.choice(n, 20, replace=False))
    pos = np.full(n, -1, np.int64)
    pos[rows] = np.arange(rows.size)
    passes = [(np.sort(rng.choice(n, 30, replace=False)), rng.integers(0, n, (30, 6))),
              (np.arange(n), rng.integers(0, n, (n, 3)))]
    passes[1][1][:, 0] = np.arange(n)  # the kd-tree lists each pixel first: a self-loop, dropped
    dense = np.zeros((n, n))
    for query, nb in passes:
        for q, row in zip(query, nb):
            for p in row:
                if p != q:
                    dense[q, p] += 1
                    dense[p, q] += 1
    ref = np.diag(dense.sum(1)) - dense
    got = _laplacian_from_edges(passes, rows, pos, n)
    assert got.shape == (rows.size, n)
    np.testing.assert_array_equal(got.toarray(), ref[rows])
    got.sum_duplicates()  # no duplicate entries were written: summing changes nothing
    np.testing.assert_array_equal(got.toarray(), ref[rows])


def test_restrict_columns_splits_the_square_block():
    """``restrict_columns`` = the (rows x rows) block of the rows' Laplacian, as off-diagonal part + diagonal."""
    rng = np.random.default_rng(4)
    n = 30
    full = sp.random(n, n, density=0.3, random_state=5, format="csr")
    full = full + full.T + sp.diags(rng.uniform(1, 2, n))
    cols = np.sort(rng.choice(n, 12, replace=False))
    off, diag = restrict.restrict_columns(full.tocsr()[cols], cols, n)
    block = full.toarray()[np.ix_(cols, cols)]
    np.testing.assert_array_equal(diag, np.diag(block))
    np.testing.assert_array_equal(off.toarray(), block - np.diag(np.diag(block)))


def test_pcg_solves_each_class_on_its_own_rows():
    """``solve_classes`` on a hand-made 3 x 3 SPD system: class 0 over all rows, class 1 over rows {0, 2} only
    (row 1 is known for it and keeps X0), class 2 with b = 0 (x = 0 exactly), class 3 not asked for."""
    off = sp.csr_matrix(np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, -1.0], [0.0, -1.0, 0.0]]))
    diag = np.tile(np.array([[2.0], [3.0], [2.0]]), (1, 4))
    B = np.array([[1.0, 1.0, 0.0, 5.0], [0.0, 9.0, 0.0, 5.0], [1.0, 3.0, 0.0, 5.0]])
    masks = np.array([[1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 1, 1]], bool)
    X0 = np.full((3, 4), 0.25)
    X, it, rr = solvers.solve_classes(off, diag, masks, B, X0, 1e-12, 50, np.array([0, 1, 2]))
    A = off.toarray() + np.diag(diag[:, 0])
    np.testing.assert_allclose(X[:, 0], np.linalg.solve(A, B[:, 0]), atol=1e-12)
    sub = A[np.ix_([0, 2], [0, 2])]  # rows {0, 2}: the block without row/column 1
    np.testing.assert_allclose(X[[0, 2], 1], np.linalg.solve(sub, B[[0, 2], 1]), atol=1e-12)
    assert X[1, 1] == 0.25 and np.all(X[:, 2] == 0.0) and np.all(X[:, 3] == 0.25)
    assert it[2] == 0 and rr[2] == 0.0 and it[3] == 0 and np.all(rr[:2] <= 1e-12)
    # Stopped early: the iteration cap is honoured and the residual reported.
    _, it, rr = solvers.solve_classes(off, diag, masks, B, np.zeros((3, 4)), 1e-15, 1, np.array([0]))
    assert it[0] == 1 and rr[0] > 1e-15


def test_split_triangles_puts_the_left_entries_first():
    """Each row of the reordered off-diagonal part: its entries left of the diagonal, then those right of it (``mid``
    between), the same matrix."""
    off = sp.random(9, 9, density=0.5, random_state=2, format="csr")
    off.setdiag(0.0)
    off.eliminate_zeros()
    indices, data, mid = np.empty(off.nnz, np.int32), np.empty(off.nnz), np.empty(9, np.int64)
    jit(solvers._split_triangles_kernel)(off.indptr, off.indices, off.data, indices, data, mid)
    for r in range(9):
        assert np.all(indices[off.indptr[r]:mid[r]] < r) and np.all(indices[mid[r]:off.indptr[r + 1]] > r)
    np.testing.assert_array_equal(sp.csr_matrix((data, indices, off.indptr), shape=(9, 9)).toarray(), off.toarray())


@pytest.mark.parametrize("omega", [1.0, 1.4, 1.9])
def test_ssor_pcg_solves_a_graph_laplacian_block(omega):
    """SSOR-PCG (Eisenstat's form) on a random graph's Laplacian + a positive diagonal, over a random subset of rows,
    from a non-zero start: the dense solve of that block to the tolerance; a second class with b = 0 returns 0."""
    rng = np.random.default_rng(7)
    n = 60
    W = sp.triu(sp.random(n, n, density=0.15, random_state=3), 1)
    W = (W + W.T).toarray()
    off = sp.csr_matrix(-W)
    diag = W.sum(1) + rng.uniform(0.01, 0.5, n)  # the degree + known neighbours' weight: SPD
    masks = np.stack([rng.random(n) < 0.7, np.ones(n, bool)], axis=1)
    B = np.stack([rng.normal(size=n), np.zeros(n)], axis=1)
    X0 = rng.uniform(0, 1, (n, 2))
    X, it, rr = solvers.solve_classes(off, np.stack([diag, diag], 1), masks, B, X0, 1e-11, 500, np.array([0, 1]),
                                      omega=omega)
    m = masks[:, 0]
    A = np.diag(diag) - W
    np.testing.assert_allclose(X[m, 0], np.linalg.solve(A[np.ix_(m, m)], B[m, 0]), atol=1e-8)
    np.testing.assert_array_equal(X[~m, 0], X0[~m, 0])  # rows outside the class keep their start
    assert rr[0] <= 1e-11 and 0 < it[0] < 500
    assert np.all(X[:, 1] == 0.0) and it[1] == 0


# ------------------------------------------------------------------------------------------- accuracy

def test_recovers_known_alpha_ramp():
    """Linear ramp between two flat colours (small noise): mean |alpha - alpha_gt| over the unknown ramp is
    0.014 (max 0.031) with hard constraints; asserted < 0.03 (mean) and < 0.08 (max). A solver that
    leaves 0.5 there scores 0.25."""
    image, alpha, trimap = ramp_composite()
    out = knn_matting(image, trimap)
    u = trimap == 0.5
    err = np.abs(out - alpha)[u]
    print(f"ramp: mean {err.mean():.4f} max {err.max():.4f}")
    assert err.mean() < 0.03 and err.max() < 0.08
    assert np.array_equal(out[~u], trimap[~u])          # hard constraints: known pixels exact
    soft = knn_matting(image, trimap, lam=100.0)
    assert np.abs(soft - alpha)[u].mean() < 0.03


def test_hard_equals_direct_sparse_solve(textured):
    """Batched CG (rtol 1e-8) against scipy's direct solve of (L_UU + eps I) a_U = -L_UK fg_K: atol 1e-5."""
    img, tri = textured
    L = knn_laplacian(img).tocsr()
    out = knn_matting(img, tri, rtol=1e-8, laplacian=L)
    for c in range(2):
        t = tri[c].ravel()
        U = np.flatnonzero(t == 0.5)
        K = np.flatnonzero(t != 0.5)
        A = (L[U][:, U] + 1e-6 * sp.identity(U.size)).tocsc()
        a_U = spsolve(A, -(L[U][:, K] @ (t[K] == 1.0)))
        ref = t.copy()
        ref[U] = np.clip(a_U, 0, 1)
        assert np.abs(out[c].ravel() - ref).max() < 1e-5


def test_soft_equals_direct_sparse_solve(textured):
    """Soft constraints (lam = 100): (L + lam C + eps I) a = lam fg over all pixels; atol 1e-5."""
    img, tri = textured
    L = knn_laplacian(img).tocsr()
    out = knn_matting(img, tri[:1], lam=100.0, rtol=1e-9)
    t = tri[0].ravel()
    A = (L + sp.diags(100.0 * (t != 0.5) + 1e-6)).tocsc()
    ref = np.clip(spsolve(A, 100.0 * (t == 1.0)), 0, 1)
    assert np.abs(out[0].ravel() - ref).max() < 1e-5
    assert np.abs(out[0].ravel() - t)[t != 0.5].max() > 1e-4  # soft: known pixels do move a little


def test_multiclass_equals_one_by_one(textured):
    """All classes from one Laplacian and one batched CG = each class alone (atol 1e-6, float32 output)."""
    img, tri = textured
    together = knn_matting(img, tri)
    assert together.shape == (3, H, W) and together.dtype == np.float32
    for c in range(3):
        alone = knn_matting(img, tri[c])
        assert alone.shape == (H, W)
        assert np.abs(together[c] - alone).max() < 1e-6
    assert np.array_equal(together[2], tri[2])          # no unknown pixel: the trimap itself
    # the soft path too
    soft = knn_matting(img, tri[:2], lam=100.0)
    assert np.abs(soft[1] - knn_matting(img, tri[1], lam=100.0)).max() < 1e-6


def test_precomputed_laplacian_gives_same_result(textured):
    img, tri = textured
    assert np.abs(knn_matting(img, tri, laplacian=knn_laplacian(img)) - knn_matting(img, tri)).max() < 1e-6


def test_against_pymatting(textured):
    """pymatting.estimate_alpha_knn (L = I - D^-1 W, lam = 100, its CG) on the same input. Our hard-constraint
    solve is the lam -> inf limit of both its system and ours (row scaling by D does not change it), so they
    differ only by pymatting's finite lam and the tolerances: measured max 0.0015, mean 0.0004 here;
    asserted max < 0.02, mean < 0.003."""
    from pymatting import estimate_alpha_knn

    img, tri = textured
    ours = knn_matting(img, tri[0])
    ref = estimate_alpha_knn(img, tri[0])
    u = tri[0] == 0.5
    d = np.abs(ours - ref)[u]
    print(f"ours vs pymatting on unknown pixels: max {d.max():.5f} mean {d.mean():.5f}")
    assert d.max() < 0.02 and d.mean() < 0.003
    image, alpha, trimap = ramp_composite()
    d2 = np.abs(knn_matting(image, trimap) - estimate_alpha_knn(image, trimap))[trimap == 0.5]
    print(f"ramp: max {d2.max():.5f} mean {d2.mean():.5f}")
    assert d2.max() < 0.02 and d2.mean() < 0.003


def test_uint8_image_equals_float_image(textured):
    img, tri = textured
    img8 = np.round(img * 255).astype(np.uint8)
    assert np.abs(knn_matting(img8, tri) - knn_matting(img8 / 255.0, tri)).max() < 1e-6


# ------------------------------------------------------------------------------------------- degenerate

@pytest.mark.parametrize("lam", [math.inf, 100.0])
def test_degenerate_trimaps(textured, lam):
    img, _ = textured
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # none of these may warn or raise
        # no unknown pixel: alpha = trimap exactly
        t = np.zeros((H, W))
        t[5:20, 5:30] = 1.0
        assert np.array_equal(knn_matting(img, t), t)
        # no foreground pixel: alpha 0 everywhere
        t_nofg = np.where(blob_trimap(20, 30, 10, 14) == 1.0, 0.5, blob_trimap(20, 30, 10, 14))
        assert np.array_equal(knn_matting(img, t_nofg, lam=lam), np.zeros((H, W), np.float32))
        # no background pixel: alpha ~1 on the unknown pixels (all connected to the foreground here)
        t_nobg = np.where(blob_trimap(20, 30, 10, 14) == 0.0, 0.5, blob_trimap(20, 30, 10, 14))
        a = knn_matting(img, t_nobg, lam=lam)
        assert a.min() > 1 - 1e-3
        # all unknown: no constraint at all -> the eps I limit, alpha 0
        assert np.array_equal(knn_matting(img, np.full((H, W), 0.5), lam=lam), np.zeros((H, W), np.float32))
        # C = 0
        out = knn_matting(img, np.zeros((0, H, W)), lam=lam)
        assert out.shape == (0, H, W) and out.dtype == np.float32


def test_component_without_known_pixel_is_background():
    """Left half red and all unknown, right half blue: no KNN edge joins the two colours, so the red
    component holds no known pixel (singular without eps I). It gets alpha 0, without warning, in both modes,
    while the blue half (bg | unknown band | fg) is solved normally in the same column, and another class of
    the same image is unaffected."""
    img = two_colour_image()
    red = np.zeros((H, W), bool)
    red[:, : W // 2] = True
    L = knn_laplacian(img).tocsr()
    assert abs(L[np.flatnonzero(red.ravel())][:, np.flatnonzero(~red.ravel())]).max() == 0
    t = np.full((H, W), 0.5)
    t[:, W // 2: W // 2 + 5] = 0.0
    t[:, W - 10:] = 1.0
    t2 = np.full((H, W), 0.5)
    t2[:, : W // 2 - 5] = 1.0
    t2[:, W // 2 + 5:] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for lam in (math.inf, 100.0):
            a = knn_matting(img, np.stack([t, t2]), lam=lam)
            assert np.array_equal(a[0][red], np.zeros(red.sum(), np.float32))
            band = t == 0.5
            band[red] = False
            # flat blue between bg (left) and fg (right): a harmonic ramp, rising from ~0 to ~1
            cols = a[0][:, W // 2 + 5: W - 10].mean(axis=0)
            assert a[0][band].min() > 0.01 and a[0][band].max() < 0.99 and np.all(np.diff(cols) > 0)
            assert a[1][:, : W // 2].min() > 0.99 and a[1][:, W // 2:].max() < 0.01


def test_not_converged_warns_and_returns_valid_alpha(textured):
    img, tri = textured
    with pytest.warns(RuntimeWarning, match="did not reach"):
        a = knn_matting(img, tri, max_iter=2)
    assert a.shape == (3, H, W) and np.all((a >= 0) & (a <= 1))


def test_tiny_image_does_not_raise():
    """Fewer pixels than neighbours (k is capped at N)."""
    img = np.random.default_rng(0).random((3, 3, 3))
    t = np.full((3, 3), 0.5)
    t[0, 0], t[2, 2] = 1.0, 0.0
    a = knn_matting(img, t)
    assert a.shape == (3, 3) and a[0, 0] == 1 and a[2, 2] == 0 and np.all((a >= 0) & (a <= 1))


# ------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("image", [np.zeros((H, W)), np.zeros((H, W, 4)), np.full((H, W, 3), 1.5),
                                   np.full((H, W, 3), np.nan), np.zeros((H, W, 3), np.int32),
                                   np.zeros((0, W, 3))])
def test_bad_image_raises(image):
    with pytest.raises(ValueError, match="image"):
        knn_matting(image, np.zeros((H, W)))


@pytest.mark.parametrize("trimaps", [np.zeros((H, W + 1)), np.zeros((2, H, W, 1)), np.zeros(W),
                                     np.full((H, W), 0.3), np.full((H, W), 255.0), np.full((H, W), np.nan)])
def test_bad_trimap_raises(trimaps):
    with pytest.raises(ValueError, match="trimap"):
        knn_matting(np.zeros((H, W, 3)), trimaps)


def test_non_finite_inputs_raise_naming_what_is_non_finite():
    image = np.random.default_rng(0).random((H, W, 3))
    t = np.full((H, W), 0.5)
    t[:, 0], t[:, -1] = 0.0, 1.0
    nan_image = image.copy()
    nan_image[4, 7, 1] = np.nan
    with pytest.raises(ValueError, match=r"image has 1 non-finite values \(NaN or inf\), the first at row 4, column 7"):
        knn_matting(nan_image, t)
    inf_trimap = t.copy()
    inf_trimap[3, 3] = np.inf
    with pytest.raises(ValueError, match=r"trimaps have 1 non-finite values \(NaN or inf\)"):
        knn_matting(image, inf_trimap)
    laplacian = knn_laplacian(image)
    laplacian.data[0] = np.nan  # it used to come back as NaN alphas, clipped, without a word
    with pytest.raises(ValueError, match=r"laplacian has non-finite entries \(NaN or inf\)"):
        knn_matting(image, t, laplacian=laplacian)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_solve_that_ends_in_nan_is_a_matting_failure(textured):
    """NaN > rtol is False: the tolerance test alone passed a NaN solve as converged. A Laplacian of finite entries
    whose products overflow makes the CG's residual NaN; that is a ``MattingFailure`` naming the classes."""
    img, tri = textured
    huge = knn_laplacian(img) * 1e305
    with pytest.raises(matting.MattingFailure, match=r"non-finite alphas or residuals \(NaN or inf\) for classes "
                                                     r"\[0, 1\] \(relative residuals \[nan, nan\]\)"):
        knn_matting(img, tri, laplacian=huge)


def test_check_solve_fails_on_non_finite_and_warns_above_the_tolerance():
    with pytest.raises(matting.MattingFailure, match=r"for classes \[1\]"):  # NaN residual, or NaN alphas
        matting.check_solve(np.array([1e-9, np.nan]), np.array([True, True]), [0, 1], 1e-6, 10, "solver")
    with pytest.raises(matting.MattingFailure, match=r"for classes \[0\]"):
        matting.check_solve(np.array([1e-9, 1e-9]), np.array([False, True]), [0, 1], 1e-6, 10, "solver")
    with pytest.warns(matting.NotConvergedWarning, match=r"solver: CG did not reach rtol=1e-06 in 10 iterations for "
                                                         r"classes \[1\]"):
        matting.check_solve(np.array([1e-9, 1e-3]), np.array([True, True]), [0, 1], 1e-6, 10, "solver")


def test_bad_parameters_raise():
    img, t = np.zeros((H, W, 3)), np.full((H, W), 0.5)
    with pytest.raises(ValueError, match="lam"):
        knn_matting(img, t, lam=0.0)
    with pytest.raises(ValueError, match="eps"):
        knn_matting(img, t, eps=-1.0)
    with pytest.raises(ValueError, match="laplacian"):
        knn_matting(img, t, laplacian=sp.identity(10, format="csr"))
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_laplacian(img, n_neighbors=(20,), distance_weights=(2.0, 0.1))


# ------------------------------------------------------------------------------------------- labels

def test_labels_threshold_is_strict_and_background_default():
    alphas = np.array([[[0.5, 0.5000001, 0.2, 0.0]]], np.float32)
    lab = alphas_to_labels(alphas, [7], fg_threshold=0.5)
    assert lab.dtype == np.uint8
    assert lab.tolist() == [[0, 7, 0, 0]]


def test_labels_argmax_and_ties_go_to_first_class():
    alphas = np.array([[[0.9, 0.6, 0.7, 0.1]],
                       [[0.9, 0.8, 0.3, 0.2]]], np.float32)
    assert alphas_to_labels(alphas, [3, 15], 0.5).tolist() == [[3, 15, 3, 0]]
    assert alphas_to_labels(alphas[::-1], [15, 3], 0.5).tolist() == [[15, 15, 3, 0]]


def test_labels_no_class_is_background():
    assert np.array_equal(alphas_to_labels(np.zeros((0, 4, 5)), [], 0.5), np.zeros((4, 5), np.uint8))


def test_labels_validation():
    a = np.zeros((2, 3, 3))
    with pytest.raises(ValueError):
        alphas_to_labels(a, [3], 0.5)                   # one label per matte
    with pytest.raises(ValueError):
        alphas_to_labels(a, [0, 3], 0.5)                # 0 is background
    with pytest.raises(ValueError):
        alphas_to_labels(a, [3, 255], 0.5)              # 255 is void
    with pytest.raises(ValueError):
        alphas_to_labels(a[0], [3], 0.5)                # not (C, H, W)
    with pytest.raises(ValueError):
        alphas_to_labels(np.full((1, 2, 2), np.nan), [3], 0.5)


def test_matting_then_labels_end_to_end():
    """Ramp composite: the label boundary lands where the true alpha crosses 0.5 (within 1 px)."""
    image, alpha, trimap = ramp_composite()
    lab = alphas_to_labels(knn_matting(image, trimap)[None], [15], 0.5)
    truth = np.where(alpha > 0.5, 15, 0)
    assert np.mean(lab != truth) <= 1.0 / W


def _two_colour_case(h=12, w=16):
    """Red left of column 8, blue right of it, a little noise; trimap sure in the outer 5 columns on each side."""
    rng = np.random.default_rng(3)
    image = np.zeros((h, w, 3))
    image[:, :8] = (0.9, 0.1, 0.1)
    image[:, 8:] = (0.1, 0.2, 0.9)
    image = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
    trimap = np.full((h, w), 0.5)
    trimap[:, :5], trimap[:, -5:] = 1.0, 0.0
    truth = np.zeros((h, w))
    truth[:, :8] = 1.0
    return image, trimap, truth


@pytest.mark.parametrize("method", ["knn", "closed_form", "random_walk", "learning_based"])
def test_every_laplacian_recovers_a_known_alpha_with_the_hard_constrained_solver(method):
    from matlabel.matting import knn_matting, matting_laplacian

    image, trimap, truth = _two_colour_case()
    L = matting_laplacian(image, method)
    assert L.shape == (image.shape[0] * image.shape[1],) * 2
    alpha = knn_matting(image, trimap, laplacian=L)
    assert np.abs(alpha - truth).max() < 0.1, (method, np.abs(alpha - truth).max())


def test_laplacians_are_pymattings():
    """The Table 5 Laplacians are pymatting's builders (KNN's graph is pymatting's, as D - W: tested above); random
    walk's is pymatting's row-normalised one with each row i multiplied by the degree D_i, hence symmetric."""
    import pymatting

    from matlabel.matting import matting_laplacian

    image, _, _ = _two_colour_case()
    for method, theirs in [("closed_form", pymatting.cf_laplacian(image)),
                           ("learning_based", pymatting.lbdm_laplacian(image))]:
        assert abs(matting_laplacian(image, method) - theirs).max() < 1e-9, method
    ours, theirs = matting_laplacian(image, "random_walk"), sp.csr_matrix(pymatting.rw_laplacian(image))
    degree = ours.diagonal() / theirs.diagonal()
    assert degree.min() >= 1.0 - 1e-9 and degree.max() <= 9.0 + 1e-9  # self-loop weight 1 + eight neighbours
    assert abs(sp.diags(degree) @ theirs - ours).max() < 1e-9
    assert abs(ours - ours.T).max() == 0.0 and abs(theirs - theirs.T).max() > 0.1
    with pytest.raises(ValueError, match="matting method must be one of"):
        matting_laplacian(image, "poisson")


def _astronaut_case(size=60):
    """scikit-image's astronaut downscaled to size x size and its paper Eq. 9 trimap (eps_fg 0.75, eps_bg 0.2) of a
    CAM-like Gaussian bump on the head and torso: about 9 % foreground, 39 % unknown, 52 % background."""
    import skimage.data
    from skimage.transform import resize

    from matlabel.trimap import make_trimaps

    image = np.clip(resize(skimage.data.astronaut(), (size, size), anti_aliasing=True), 0, 1)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    bump = np.exp(-((yy - 0.45) ** 2 + (xx - 0.42) ** 2) / (2 * 0.22 ** 2))
    return image, make_trimaps(bump[None], 0.75, 0.2)[0].astype(np.float64)


@pytest.mark.parametrize("solver", ["ssor", "torch"])
@pytest.mark.parametrize("method", matting.LAPLACIANS)
def test_every_table5_laplacian_reaches_a_direct_solve(method, solver):
    """Each Laplacian of Table 5, with its ``LAPLACIAN_SOLVER`` settings, gives alphas within ``ALPHA_ATOL`` of
    scipy's direct solve of the same hard-constrained system, on a photo, on both solvers (torch on CPU tensors).
    On pymatting's non-symmetric random-walk Laplacian the CG stopped 0.067 (SSOR) / 0.036 (Jacobi) off."""
    image, trimap = _astronaut_case()
    L = matting.matting_laplacian(image, method)
    t = trimap.ravel()
    U, K = np.flatnonzero(t == 0.5), np.flatnonzero(t != 0.5)
    eps = 1e-6  # knn_matting's default ridge
    direct = spsolve(sp.csc_matrix(L[U][:, U] + eps * sp.identity(U.size)), -(L[U][:, K] @ (t[K] == 1.0)))
    settings = matting.LAPLACIAN_SOLVER[method]
    if solver == "ssor":
        alpha = knn_matting(image, trimap, laplacian=L, eps=eps, **settings)
    else:
        from matlabel.matting.torch_solver import knn_matting_torch

        alpha = knn_matting_torch(image, trimap, matting.SolverConfig(eps=eps, device="cpu", **settings), laplacian=L)
    err = np.abs(alpha.ravel()[U] - np.clip(direct, 0.0, 1.0)).max()
    assert err <= matting.ALPHA_ATOL, (method, solver, err)


def test_a_non_symmetric_laplacian_is_refused_by_both_solvers():
    """Both solvers are conjugate gradients: pymatting's row-normalised random-walk Laplacian (I - D^-1 W) is
    refused with the fix named, rather than solved wrong."""
    import pymatting

    from matlabel.matting.torch_solver import knn_matting_torch

    image, trimap = _astronaut_case(20)
    L = pymatting.rw_laplacian(image)
    with pytest.raises(ValueError, match="not symmetric.*D - W"):
        knn_matting(image, trimap, laplacian=L)
    with pytest.raises(ValueError, match="not symmetric.*D - W"):
        knn_matting_torch(image, trimap, matting.SolverConfig(device="cpu"), laplacian=L)
    matting.check_symmetric(matting.matting_laplacian(image, "random_walk"))  # its symmetric form passes
