"""IRN's semantic-segmentation pseudo-labels: class maps propagated by a random walk on the boundary map
(Ahn, Cho, Kwak, CVPR 2019, Sec. 4.1; jiwoon-ahn/irn step/make_sem_seg_labels.py, misc/indexing.py
``propagate_to_edge``, net/resnet50_irn.py ``EdgeDisplacement``).

Per image: boundary map B at stride 4 (image and its flip, logits averaged); affinities a_ij = 1 − max B on
the path for pairs within radius 5, a_ii = 1; transition T = a^β column-normalised (β = 10); the stride-4
class maps, multiplied by (1 − B), are propagated 2^exp_times steps (exp_times = 8); the result is
upsampled ×4 (bilinear), cropped to the image, divided by its global maximum, a constant background plane
at ``bg_threshold`` (0.25) is put in front and the argmax is the label.

Memory: the reference builds the dense (hw)² matrix and squares it exp_times times (O((hw)³) time,
> 11 GB for large images, ReCAM#13). ``method="sparse"`` (default) keeps T sparse (≈ 69 non-zeros per row
at radius 5) and applies it 2^exp_times times to the maps: x·T^(2^k) is the same product, in O(2^k · nnz)
time and O(nnz) memory. ``method="dense"`` is the reference's computation, for checking.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from matlabel.cam import normalize
from matlabel.irn.model import edge_to_affinity
from matlabel.irn.relations import PathIndex


@torch.no_grad()
def edge_map(model: nn.Module, image: np.ndarray, pad_to: int = 512, flip: bool = True,
             device: str | torch.device = "cpu") -> torch.Tensor:
    """Class-boundary probability of one image at stride 4 (IRN ``EdgeDisplacement.forward``).

    Parameters
    ----------
    model : ``IRNet`` already on ``device`` (eval mode is set here).
    image : (H, W, 3) uint8 RGB.
    pad_to : the normalised image is zero-padded at the bottom/right to at least pad_to × pad_to, as IRN
        pads to its training crop (512) so the GroupNorm statistics see the training layout. Larger images
        are padded to a multiple of 16 (the reference would crop them: ``F.pad`` with a negative size).
    flip : average the logits of the image and its horizontal flip (IRN).

    Returns
    -------
    (ceil(H/4), ceil(W/4)) float32 tensor in [0, 1] on ``device``.
    """
    model.eval()
    h, w = image.shape[:2]
    fh, fw = (h - 1) // 4 + 1, (w - 1) // 4 + 1  # IRN get_strided_size(size, 4)
    x = normalize(image).unsqueeze(0).to(device)
    if flip:
        x = torch.cat([x, x.flip(-1)], 0)
    ph, pw = max(pad_to, -(-h // 16) * 16), max(pad_to, -(-w // 16) * 16)
    x = F.pad(x, (0, pw - w, 0, ph - h))
    logits = model(x)[0][:, 0, :fh, :fw].float()
    if flip:  # IRN crops first, then flips the cropped map of the flipped image back
        return torch.sigmoid(logits[0] / 2 + logits[1].flip(-1) / 2)
    return torch.sigmoid(logits[0])


def affinity_pairs(edge: torch.Tensor, radius: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All pairs within ``radius`` inside an (h, w) boundary map and their affinities (1 − max on the path).

    IRN ``propagate_to_edge`` pads the map with boundary 1 (left/right by radius, bottom by radius), takes
    its pairs there and then crops the padding away: the pairs kept are exactly those with both ends inside
    the image. Returns (src, dst, affinity), each (P,), src/dst raster indices into h·w, each unordered
    pair once.
    """
    h, w = edge.shape
    pi = PathIndex(radius)
    r = radius
    padded = F.pad(edge[None, None], (r, r, 0, r), value=1.0)[0]  # (1, h + r, w + 2r)
    hp, wp = h + r, w + 2 * r
    aff = edge_to_affinity(padded, pi)[0]  # (D, n_src)
    src, dst = (torch.as_tensor(a, device=edge.device) for a in pi.flat_indices(hp, wp))
    src = src.unsqueeze(0).expand_as(dst)

    def unpad(idx):  # padded raster index → (inside?, image raster index)
        y, x = idx // wp, idx % wp - r
        return (y < h) & (x >= 0) & (x < w), y * w + x

    ins, s = unpad(src)
    ind, d = unpad(dst)
    keep = ins & ind
    return s[keep], d[keep], aff[keep]


def transition_matrix(edge: torch.Tensor, radius: int = 5, beta: float = 10.0) -> torch.Tensor:
    """Sparse transposed transition matrix Tᵀ (hw × hw), rows summing to 1.

    IRN ``to_transition_matrix``: T = A^β / Σ_i A^β (columns normalised), A symmetric with A_ii = 1.
    Propagation is x·T = (Tᵀ xᵀ)ᵀ, so Tᵀ_ji = A_ij^β / Σ_i' A_i'j^β is returned, in CSR layout.
    """
    h, w = edge.shape
    n = h * w
    s, d, a = affinity_pairs(edge, radius)
    diag = torch.arange(n, device=edge.device)
    rows = torch.cat([s, d, diag])
    cols = torch.cat([d, s, diag])
    vals = torch.cat([a, a, torch.ones(n, device=edge.device, dtype=a.dtype)]).pow(beta)
    colsum = torch.zeros(n, device=edge.device, dtype=vals.dtype).index_add_(0, cols, vals)
    # entry (row i, col j) of A^β / colsum_j goes to (j, i) of Tᵀ
    t = torch.sparse_coo_tensor(torch.stack([cols, rows]), vals / colsum[cols], (n, n),
                                check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the products used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return t.to_sparse_csr()


def dense_transition_matrix(edge: torch.Tensor, radius: int = 5, beta: float = 10.0, exp_times: int = 8
                            ) -> torch.Tensor:
    """The reference's dense T^(2^exp_times) (hw × hw), built as IRN does (for checking; O((hw)²) memory)."""
    h, w = edge.shape
    n = h * w
    s, d, a = affinity_pairs(edge, radius)
    aff = torch.eye(n, device=edge.device, dtype=a.dtype)
    aff[s, d] = a
    aff[d, s] = a
    t = aff.pow(beta)
    t = t / t.sum(0, keepdim=True)
    for _ in range(exp_times):
        t = t @ t
    return t


def propagate(cams: torch.Tensor, edge: torch.Tensor, radius: int = 5, beta: float = 10.0, exp_times: int = 8,
              method: str = "sparse") -> torch.Tensor:
    """Random walk of stride-4 class maps on the boundary map (IRN ``propagate_to_edge``).

    Parameters
    ----------
    cams : (k, h, w) non-negative class maps at the boundary map's resolution.
    edge : (h, w) boundary probability in [0, 1].
    radius, beta, exp_times : IRN make_sem_seg_labels: 5, 10, 8 (2^8 = 256 steps).
    method : ``"sparse"`` (256 sparse products) or ``"dense"`` (the reference's squared dense matrix).

    Returns
    -------
    (k, h, w) propagated maps; each value is a weighted average of the (1 − edge)-masked input maps.
    """
    k, h, w = cams.shape
    if edge.shape != (h, w):
        raise ValueError(f"maps are {h}x{w} but the boundary map is {tuple(edge.shape)}")
    x = (cams * (1 - edge)).reshape(k, h * w).float()  # IRN: x * (1 - edge) before the walk
    if method == "dense":
        return (x @ dense_transition_matrix(edge.float(), radius, beta, exp_times)).view(k, h, w)
    if method != "sparse":
        raise ValueError(f"method must be 'sparse' or 'dense', got {method!r}")
    tt = transition_matrix(edge.float(), radius, beta)
    y = x.t().contiguous()  # (hw, k)
    for _ in range(2 ** exp_times):
        y = tt @ y
    return y.t().reshape(k, h, w)


def downsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Full-size maps (k, H, W) → stride-4 maps (k, h, w), h = ceil(H/4), each divided by its max (+1e-5).

    The workflow exports maps at image size; IRN propagates the stride-4 maps of make_cam (``strided_cam``,
    per-class max-normalised). Cell (i, j) of the boundary map covers pixels [4i, 4i+4) × [4j, 4j+4), so the
    maps are edge-padded to 4h × 4w and averaged over each 4×4 cell, then max-normalised again as IRN.
    """
    _, hh, ww = maps.shape
    h, w = size
    x = maps.float().unsqueeze(0)
    if (4 * h, 4 * w) != (hh, ww):
        x = F.pad(x, (0, 4 * w - ww, 0, 4 * h - hh), mode="replicate")
    x = F.avg_pool2d(x, 4)[0]
    return x / (x.flatten(1).amax(1).view(-1, 1, 1) + 1e-5)


@torch.no_grad()
def sem_seg_labels(model_or_edge, image: np.ndarray, cams, classes, beta: float = 10.0, exp_times: int = 8,
                   radius: int = 5, bg_threshold: float = 0.25, pad_to: int = 512,
                   device: str | torch.device = "cpu", method: str = "sparse") -> np.ndarray:
    """IRN's semantic-segmentation pseudo-label of one image (step/make_sem_seg_labels.py ``_work``).

    Parameters
    ----------
    model_or_edge : ``IRNet`` on ``device`` (the boundary map is computed with ``edge_map``), or a boundary
        map (ceil(H/4), ceil(W/4)) in [0, 1].
    image : (H, W, 3) uint8 RGB.
    cams : (k, H, W) class maps of the present classes at image size in [0, 1] (``multiscale_cams``);
        downsampled to stride 4 with ``downsample_maps``.
    classes : the k class indices (1-based).
    beta, exp_times, radius : the walk (IRN: 10, 8, 5).
    bg_threshold : background plane after dividing by the global max (IRN ``sem_seg_bg_thres`` 0.25).

    Returns
    -------
    (H, W) uint8 labels over {0} ∪ classes.
    """
    h, w = image.shape[:2]
    fh, fw = (h - 1) // 4 + 1, (w - 1) // 4 + 1
    if len(classes) == 0:
        return np.zeros((h, w), dtype=np.uint8)
    if isinstance(model_or_edge, nn.Module):
        edge = edge_map(model_or_edge, image, pad_to=pad_to, device=device)
    else:
        edge = torch.as_tensor(np.asarray(model_or_edge) if not torch.is_tensor(model_or_edge) else model_or_edge,
                               dtype=torch.float32, device=device)
    if tuple(edge.shape) != (fh, fw):
        raise ValueError(f"boundary map is {tuple(edge.shape)}, expected {(fh, fw)} for a {h}x{w} image")
    cams = torch.as_tensor(cams, dtype=torch.float32, device=device)
    if cams.shape != (len(classes), h, w):
        raise ValueError(f"maps are {tuple(cams.shape)}, expected {(len(classes), h, w)}")
    rw = propagate(downsample_maps(cams, (fh, fw)), edge, radius, beta, exp_times, method)
    up = F.interpolate(rw.unsqueeze(1), scale_factor=4, mode="bilinear", align_corners=False)[:, 0, :h, :w]
    peak = up.max()
    up = up / peak if peak > 0 else up  # IRN divides by the max unguarded; all-zero maps → all background
    scores = F.pad(up, (0, 0, 0, 0, 1, 0), value=bg_threshold)
    keys = np.asarray([0, *classes], dtype=np.uint8)
    return keys[scores.argmax(0).cpu().numpy()]
