"""IRN (matlabel.irn): relation labels, network, loss, dataset and random walk on tiny hand-made data.

Recorded numbers marked "reference" were produced by jiwoon-ahn/irn's own misc/indexing.py (CPU copy)
on the same inputs; the rest are counted by hand in the comments.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from matlabel.backbone import ResNetBackbone
from matlabel.cam import normalize
from matlabel.datasets.layout import (
    VOC_CLASSES,
    load_manifest,
    write_manifest,
    write_split,
)
from matlabel.io import write_label_png
from matlabel.irn import (
    AffinityAugment,
    IRNDataset,
    IRNet,
    PathIndex,
    downsample_label,
    edge_to_affinity,
    irn_loss,
    propagate,
    relation_labels,
    sem_seg_labels,
)
from matlabel.train import TrainConfig, train

torch.set_num_threads(min(2, torch.get_num_threads()))


# --- relation labels ---------------------------------------------------------------------------------

def test_directions_and_paths_follow_irn():
    # reference: PathIndex(3).search_dst, grouped by path length (2, 3, 4, 6, 7 lattice points)
    assert PathIndex(3).directions.tolist() == [[0, 1], [1, 0], [0, 2], [2, 0], [1, -1], [1, 1], [1, -2], [1, 2],
                                                [2, -1], [2, 1], [2, -2], [2, 2]]
    assert PathIndex(3).paths[-1].tolist() == [[2, 2], [1, 2], [2, 1], [1, 1], [0, 1], [1, 0], [0, 0]]
    assert len(PathIndex(5)) == 34 and len(PathIndex(10)) == 152  # reference counts


def test_relation_labels_hand_counted():
    # radius 2: directions (0,1), (1,0), (1,-1), (1,1); sources = rows 0-1, columns 1-2 (r_f = 1)
    label = np.array([[0, 0, 1, 1],
                      [0, 255, 1, 1],
                      [2, 2, 2, 1]], dtype=np.uint8)
    bg, fg, neg = relation_labels(label, PathIndex(2))
    # columns: sources (0,1)=0, (0,2)=1, (1,1)=255, (1,2)=1; rows: directions
    assert bg.int().tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert fg.int().tolist() == [[0, 1, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1]]
    assert neg.int().tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [1, 0, 0, 0]]
    ignored = ~(bg | fg | neg)
    assert ignored.sum() == 6  # the 255 source in all 4 directions + (0,1)->(1,1) + (0,2)->(1,1)
    assert not (bg & fg).any() and not (fg & neg).any() and not (bg & neg).any()


def test_a_map_too_small_for_the_radius_is_a_clear_error():
    with pytest.raises(ValueError, match="too small"):
        relation_labels(np.zeros((8, 8), np.uint8), PathIndex(10))


# --- network and affinities ----------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_irnet_output_shapes_and_frozen_backbone(arch):
    model = IRNet(ResNetBackbone(arch, "none", 16, True, "layer3"), radius=5)
    edge, disp = model(torch.randn(2, 3, 72, 56))  # not a multiple of 16: the upsampled maps are cropped
    assert edge.shape == (2, 1, 18, 14) and disp.shape == (2, 2, 18, 14)
    assert model.edge(torch.randn(1, 3, 64, 64)).shape == (1, 1, 16, 16)
    edge_params, dp_params = model.param_groups()
    assert len(edge_params) + len(dp_params) == sum(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert model.edge_layers.training and not model.backbone.training


def test_affinity_is_one_minus_the_largest_edge_on_the_path():
    edge = torch.zeros(1, 6, 10)
    edge[0, :, 5] = 1.0  # a wall of boundary in column 5
    edge[0, 1, 2] = 0.3  # a weak boundary pixel left of it
    pi = PathIndex(3)
    aff = edge_to_affinity(edge, pi)[0]  # (12, n_src)
    src, dst = pi.flat_indices(6, 10)
    sx, dx = src % 10, dst % 10
    crosses = (np.minimum(sx, dx) <= 5) & (np.maximum(sx, dx) >= 5)
    assert (aff.numpy()[crosses] == 0).all()  # nothing connects across (or onto) the wall
    # pairs on the left of the wall: 0.7 if their path goes through (1, 2), else 1
    for d, path in enumerate(pi.paths):
        for k in np.flatnonzero(~crosses[d]):
            y0, x0 = divmod(int(src[k]), 10)
            through = any((y0 + py, x0 + px) == (1, 2) for py, px in path)
            assert aff[d, k].item() == pytest.approx(0.7 if through else 1.0)


# --- loss ----------------------------------------------------------------------------------------------

class _FixedOutputs(torch.nn.Module):
    """Stands in for IRNet: fixed (edge logits, displacement), radius 2."""

    def __init__(self, edge_logits, disp):
        super().__init__()
        self.path_index = PathIndex(2)
        self.edge_logits, self.disp = edge_logits, disp

    def forward(self, x):
        return self.edge_logits, self.disp


def test_irn_loss_terms_and_total_by_hand():
    label = np.array([[0, 0, 1, 1], [0, 255, 1, 1], [2, 2, 2, 1]], dtype=np.uint8)
    bg, fg, neg = relation_labels(label, PathIndex(2))
    batch = {"image": torch.zeros(1, 3, 12, 16), "bg_pos": bg[None], "fg_pos": fg[None], "neg": neg[None]}
    # boundary 0 everywhere but 0.5 at pixel (1, 1); displacement D(p) = (row of p, 0)
    logits = torch.full((1, 1, 3, 4), -100.0)
    logits[0, 0, 1, 1] = 0.0
    disp = torch.zeros(1, 2, 3, 4)
    disp[0, 0] = torch.arange(3.0).view(3, 1)
    out = irn_loss(_FixedOutputs(logits, disp), batch)
    f32 = np.float32
    half = -np.log(0.5 + 1e-5)                       # a pair whose path crosses (1, 1): a = 0.5
    full_neg = -np.log(f32(1) + f32(1e-5) - f32(1))  # -log(1 + 1e-5 - a) for a = 1, in fp32
    # the bg pair (0,1)->(1,0) passes (1,1); no fg pair does; 2 of the 4 negatives do ((0,1)->(1,2), (1,2)->(2,1))
    assert out["pos_aff_bg"].item() == pytest.approx(half, rel=1e-4)
    assert out["pos_aff_fg"].item() == pytest.approx(0.0, abs=1e-4)
    assert out["neg_aff"].item() == pytest.approx((2 * full_neg + 2 * half) / 4, rel=1e-4)
    # δ = D(src) − D(dst) = (−dy, 0); fg: Σ|δ − (dy, dx)|₁ = Σ 2|dy| + |dx| over (0,1)x2, (1,0), (1,1)x2 = 2 + 2 + 6
    assert out["dp_fg"].item() == pytest.approx(10 / (2 * 5), rel=1e-4)
    assert out["dp_bg"].item() == pytest.approx(1 / (2 * 1), rel=1e-4)  # the bg pair: |δ|₁ = 1
    expected = (half / 2 + 0 / 2 + (2 * full_neg + 2 * half) / 4) / 2 + (1.0 + 0.5) / 2
    assert out["total"].item() == pytest.approx(expected, rel=1e-4)


def test_irn_loss_rejects_labels_of_another_size():
    model = _FixedOutputs(torch.zeros(1, 1, 5, 6), torch.zeros(1, 2, 5, 6))
    bg, fg, neg = relation_labels(np.zeros((3, 4), np.uint8), PathIndex(2))
    with pytest.raises(ValueError, match="crop"):
        irn_loss(model, {"image": None, "bg_pos": bg[None], "fg_pos": fg[None], "neg": neg[None]})


# --- dataset --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes_dataset(tmp_path_factory):
    """4 noisy 48x48 images with one rectangle each; labels with a 255 band on the boundary, in 2 shards."""
    root = tmp_path_factory.mktemp("irn") / "VOC"
    (root / "JPEGImages").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"img{i}" for i in range(4)]
    for i, image_id in enumerate(ids):
        img = rng.integers(0, 80, (48, 48, 3)).astype(np.uint8)
        label = np.zeros((48, 48), np.uint8)
        y0, x0 = rng.integers(4, 20, 2)
        img[y0:y0 + 22, x0:x0 + 20] = (200, 60 + 40 * i, 40)
        label[y0 - 1:y0 + 23, x0 - 1:x0 + 21] = 255
        label[y0 + 1:y0 + 21, x0 + 1:x0 + 19] = 1 + i % 2
        Image.fromarray(img).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        write_label_png(root.parent / f"shard{i % 2}" / f"{image_id}.png", label)
    write_split(root, "train", ids)
    write_manifest(root.parent / "dataset.json", "shapes", root, VOC_CLASSES, "SegmentationClass", {"train": 4})
    return load_manifest(root.parent / "dataset.json"), [root.parent / "shard0", root.parent / "shard1"]


def test_downsample_label_takes_the_cell_centres():
    label = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert downsample_label(label).tolist() == [[18, 22], [50, 54]]  # rows/columns 2 and 6, as PIL nearest


def test_augment_without_rescale_or_flip_places_image_and_label_together():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 48, 3)).astype(np.uint8)
    label = rng.integers(0, 3, (40, 48)).astype(np.uint8)
    x, y = AffinityAugment((1.0, 1.0), 64, hflip=False)(img, label, np.random.default_rng(5))
    rows, cols = np.nonzero(y != 255)
    dy, dx = rows.min(), cols.min()
    assert y.shape == (64, 64) and (y[dy:dy + 40, dx:dx + 48] == label).all() and (y != 255).sum() == label.size
    assert torch.allclose(x[:, dy:dy + 40, dx:dx + 48], normalize(img))
    assert x.abs().sum() == pytest.approx(x[:, dy:dy + 40, dx:dx + 48].abs().sum().item())  # zero padding


def test_augment_rescales_the_label_with_nearest_neighbour():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (40, 48, 3)).astype(np.uint8)
    label = np.kron(rng.choice(np.array([0, 3, 255], np.uint8), (10, 12)), np.ones((4, 4), np.uint8))
    _, y = AffinityAugment((0.5, 0.5), 32, hflip=True)(img, label, np.random.default_rng(2))
    rows, cols = np.nonzero((y != 255).any(1))[0], np.nonzero((y != 255).any(0))[0]
    assert rows.max() - rows.min() < 20 and cols.max() - cols.min() < 24  # 40 x 48 at scale 0.5
    assert set(np.unique(y)) <= {0, 3, 255}  # no blended labels


def test_dataset_items_are_deterministic_per_seed_epoch_index(shapes_dataset):
    manifest, shards = shapes_dataset
    make = lambda: IRNDataset(manifest, "train", shards, AffinityAugment((0.5, 1.5), 64, True, seed=3), radius=5)
    a, b = make(), make()
    item = a[2]
    assert item["image"].shape == (3, 64, 64) and item["bg_pos"].shape == (34, 12 * 8)
    assert item["bg_pos"].dtype == torch.bool and item["fg_pos"].any() and item["neg"].any()
    _ = b[0], b[1]  # another access order
    again = b[2]
    for k in ("image", "bg_pos", "fg_pos", "neg"):
        assert torch.equal(item[k], again[k])
    b.set_epoch(1)
    assert not torch.equal(b[2]["image"], item["image"])
    # the relation labels are those of the augmented label map downsampled ×0.25
    _, y = a.augment(*_raw(manifest, shards, "img2"), np.random.default_rng([3, 0, 2]))
    assert all(torch.equal(u, v) for u, v in zip(relation_labels(downsample_label(y), PathIndex(5)),
                                                 (item["bg_pos"], item["fg_pos"], item["neg"])))


def _raw(manifest, shards, image_id):
    from matlabel.io import read_image, read_label_png
    shard = next(d for d in shards if (d / f"{image_id}.png").exists())
    return read_image(manifest.image_path(image_id)), read_label_png(shard / f"{image_id}.png")


def test_dataset_names_missing_labels(shapes_dataset):
    manifest, shards = shapes_dataset
    with pytest.raises(FileNotFoundError, match="no label PNG"):
        IRNDataset(manifest, "train", shards[:1], AffinityAugment(crop=64), radius=5)


def test_short_training_lowers_the_loss(shapes_dataset, tmp_path):
    manifest, shards = shapes_dataset
    # no rescale/flip: every epoch sees the same crops, so the epoch means are comparable
    ds = IRNDataset(manifest, "train", shards, AffinityAugment((1.0, 1.0), 48, hflip=False, seed=0), radius=5)
    torch.manual_seed(0)
    model = IRNet(ResNetBackbone("resnet18", "none", 16, True, "layer3"), radius=5)
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    cfg = TrainConfig(epochs=4, batch_size=2, lr=0.01, head_lr_mult=10, momentum=0.9,
                      weight_decay=1e-4, poly_power=0.9, seed=0)
    history = train(model, ds, cfg, torch.device("cpu"), tmp_path / "irn.pt", irn_loss)
    assert set(history[0]) >= {"total", "pos_aff_bg", "pos_aff_fg", "neg_aff", "dp_fg", "dp_bg"}
    assert history[-1]["total"] < 0.9 * history[0]["total"]
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in frozen.items())  # IRN: backbone fixed


def test_every_branch_parameter_gets_a_gradient(shapes_dataset):
    manifest, shards = shapes_dataset
    ds = IRNDataset(manifest, "train", shards, AffinityAugment((1.0, 1.0), 48, hflip=False), radius=5)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    model = IRNet(ResNetBackbone("resnet18", "none", 16, True, "layer3"), radius=5).train()
    out = irn_loss(model, batch)
    for name in ("pos_aff_bg", "pos_aff_fg", "neg_aff", "dp_fg", "dp_bg"):
        assert out[name].item() > 0, name
    out["total"].backward()
    edge_params, dp_params = model.param_groups()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in edge_params + dp_params)


# --- random walk ----------------------------------------------------------------------------------------

def _closed_form_inputs(h=9, w=11):
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    edge = torch.tensor(((i * 7 + j * 3) % 10) / 10.0, dtype=torch.float32)
    cams = torch.tensor(np.stack([((i + 2 * j) % 5) / 4.0, ((3 * i + j) % 7) / 6.0]), dtype=torch.float32)
    return edge, cams


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_propagation_matches_the_reference(method):
    edge, cams = _closed_form_inputs()
    rw = propagate(cams, edge, radius=5, beta=10, exp_times=8, method=method)
    # reference: irn misc/indexing.py propagate_to_edge(cams, edge[None], radius=5, beta=10, exp_times=8)
    assert rw[0, 0, :4].tolist() == pytest.approx([0.3297522, 0.3365822, 0.3903589, 0.0250003], abs=1e-4)
    assert rw[1, 8, -4:].tolist() == pytest.approx([0.1550221, 0.3891782, 0.3906979, 0.4009947], abs=1e-4)
    assert rw[0, 4, 5].item() == pytest.approx(0.40698767, abs=1e-4)


def _walled(h=12, w=16, wall=8):
    edge = torch.zeros(h, w)
    edge[:, wall] = 1.0
    return edge


def test_random_walk_spreads_a_seed_within_its_region_only():
    edge = _walled()
    cams = torch.zeros(1, 12, 16)
    cams[0, 5, 2] = 1.0
    rw = propagate(cams, edge, radius=5, beta=10, exp_times=8)[0]
    left, right = rw[:, :8], rw[:, 8:]
    assert (right == 0).all()  # the wall (boundary 1 → affinity 0) blocks it
    assert left.min() > 0.98 * left.max()  # converged: uniform over the connected region
    longer = propagate(cams, edge, radius=5, beta=10, exp_times=9)[0]
    assert torch.allclose(longer, rw, rtol=1e-3, atol=1e-7)


def test_sem_seg_labels_fill_the_region_of_a_seed_and_stop_at_the_wall():
    h, w = 48, 64  # stride-4 maps 12 x 16, wall in column 8 (pixels 32-35)
    edge = _walled()
    cams = np.zeros((1, h, w), np.float32)
    cams[0, 16:24, 8:16] = 1.0  # a small blob in the left region
    image = np.zeros((h, w, 3), np.uint8)
    label = sem_seg_labels(edge, image, cams, [7], beta=10, exp_times=8, radius=5, bg_threshold=0.25)
    assert label.shape == (h, w) and label.dtype == np.uint8
    assert (label[:, :28] == 7).all()  # the whole left region, far beyond the blob (8 x 8 of 48 x 32 pixels)
    assert (label[:, 40:] == 0).all()  # nothing across the wall
    assert (sem_seg_labels(edge, image, cams[:0], []) == 0).all()


def test_sem_seg_labels_from_a_model_run_end_to_end():
    model = IRNet(ResNetBackbone("resnet18", "none", 16, True, "layer3"), radius=5)
    image = np.random.default_rng(0).integers(0, 255, (30, 42, 3)).astype(np.uint8)
    cams = np.zeros((2, 30, 42), np.float32)
    cams[0, :, :20], cams[1, :, 22:] = 0.9, 0.6
    label = sem_seg_labels(model, image, cams, [3, 5], exp_times=4, pad_to=64)
    assert label.shape == (30, 42) and set(np.unique(label)) <= {0, 3, 5}
