"""The ε sensitivity grid (matlabel/sensitivity.py): a cell's seed mIoU, the table's spread, the figure."""
import numpy as np
import pytest

from matlabel.formats import write_maps
from matlabel.io import read_label_png
from helpers import paper_matting
from matlabel.figures import eps_sensitivity_figure
from matlabel.sensitivity import eps_cell, grid_table


def ground_truth_maps(manifest, ids, out, blur=False):
    """Maps of each image's present classes made from its mask: exact one-hot, or one-hot softened at the edges."""
    out.mkdir(parents=True, exist_ok=True)
    labels = manifest.labels()
    for image_id in ids:
        gt = read_label_png(manifest.mask_path(image_id), manifest.num_classes)
        classes = labels[image_id]
        maps = np.stack([(gt == c).astype(np.float32) for c in classes]) if classes else np.zeros((0, *gt.shape))
        if blur and classes:
            from scipy import ndimage
            maps = np.stack([ndimage.uniform_filter(m, 7) for m in maps])
            maps /= np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-6)
        write_maps(out / f"{image_id}.npz", maps, classes)
    return out


def test_exact_maps_score_100_at_every_eps(tiny_synthetic, tmp_path):
    """Maps equal to the masks leave no pixel unknown at any 0 < ε_bg < ε_fg < 1: the seed is the mask itself."""
    ids = tiny_synthetic.split_ids("train")[:4]
    shard = ground_truth_maps(tiny_synthetic, ids, tmp_path / "shard0")
    for eps_fg, eps_bg in [(0.75, 0.2), (0.5, 0.05), (0.9, 0.35)]:
        cell = eps_cell(tiny_synthetic, ids, [shard], paper_matting(eps_fg=eps_fg, eps_bg=eps_bg), 0.15)
        assert cell["miou"] == 100.0 and cell["failures"] == 0 and cell["n_images"] == 4
        assert cell["mean_unknown_share"] == 0.0 and (cell["eps_fg"], cell["eps_bg"]) == (eps_fg, eps_bg)


def test_soft_maps_leave_unknown_pixels_that_grow_with_the_band(tiny_synthetic, tmp_path):
    ids = tiny_synthetic.split_ids("train")[:4]
    shard = ground_truth_maps(tiny_synthetic, ids, tmp_path / "shard0", blur=True)
    narrow = eps_cell(tiny_synthetic, ids, [shard], paper_matting(eps_fg=0.6, eps_bg=0.4), 0.15)
    wide = eps_cell(tiny_synthetic, ids, [shard], paper_matting(eps_fg=0.9, eps_bg=0.1), 0.15)
    assert 0 < narrow["mean_unknown_share"] < wide["mean_unknown_share"] < 1
    assert narrow["miou"] > 50 and wide["miou"] > 50  # matting fills the band from the image's colours


def test_grid_table_spread_and_figure(tmp_path):
    cells = {"d2cam": [{"eps_fg": f, "eps_bg": b, "miou": m, "mean_unknown_share": 0.1, "failures": 0}
                       for (f, b), m in {(0.75, 0.2): 40.0, (0.75, 0.05): 38.5, (0.5, 0.2): 41.0,
                                         (0.5, 0.05): 39.0}.items()],
             "cam": [{"eps_fg": f, "eps_bg": b, "miou": m, "mean_unknown_share": 0.3, "failures": 1}
                     for (f, b), m in {(0.75, 0.2): 30.0, (0.75, 0.05): 20.0, (0.5, 0.2): 35.0,
                                       (0.5, 0.05): 22.5}.items()]}
    df = grid_table(cells)
    assert list(df.columns) == ["method", "eps_fg", "eps_bg", "miou", "mean_unknown_share", "failures", "grid_spread"]
    assert df.groupby("method", sort=False)["grid_spread"].first().to_dict() == {"d2cam": 2.5, "cam": 15.0}
    assert list(dict.fromkeys(df["method"])) == ["d2cam", "cam"]
    assert df[df["method"] == "d2cam"][["eps_fg", "eps_bg"]].values.tolist() == [[0.5, 0.05], [0.5, 0.2],
                                                                                 [0.75, 0.05], [0.75, 0.2]]
    fig = eps_sensitivity_figure(df, tmp_path / "eps.png", labels={"d2cam": "D2CAM maps"}, marked=(0.75, 0.05))
    assert (tmp_path / "eps.png").stat().st_size > 5_000 and len(fig.axes) == 3  # two panels and a colour bar
    (box,) = fig.axes[0].patches  # the marked cell: row eps_fg 0.75 (index 1), column eps_bg 0.05 (index 0)
    assert box.get_xy() == (-0.5, 0.5)
    assert not eps_sensitivity_figure(df, tmp_path / "eps.png", marked=(0.6, 0.2)).axes[0].patches  # not on the grid
    assert fig.axes[0].get_title() == "D2CAM maps: spread 2.5"
    assert fig.axes[1].get_title() == "cam: spread 15.0\n4 threshold-seed fallback(s) over its cells"  # 1 per cell


def test_seed_cell_with_crf_and_another_laplacian(tiny_synthetic, tmp_path):
    """Table 5's cell: exact maps stay exact through any Laplacian, label rule and the label CRF."""
    from matlabel.crf import CRFParams
    from matlabel.sensitivity import seed_cell

    ids = tiny_synthetic.split_ids("train")[:3]
    shard = ground_truth_maps(tiny_synthetic, ids, tmp_path / "shard0")
    cell = seed_cell(tiny_synthetic, ids, [shard], paper_matting(method="closed_form", label_rule="bg_layer"), 0.15,
                     crf_params=CRFParams())
    assert (cell["method"], cell["label_rule"], cell["miou"], cell["failures"]) == ("closed_form", "bg_layer", 100.0, 0)
    assert 50 < cell["miou_crf"] <= 100 and cell["seconds_per_image"] >= 0  # the CRF smooths 64x48 images a little


def test_a_cell_whose_every_matting_failed_stops_and_a_partial_one_counts(tiny_synthetic, tmp_path):
    """A cell of threshold seeds under a matting method's name would be a wrong number: it stops, naming the cell;
    with some images solved, the failed ones are counted (column ``failures`` of the grid and of Table 5)."""
    ids = tiny_synthetic.split_ids("train")[:3]
    shard = ground_truth_maps(tiny_synthetic, ids, tmp_path / "shard0", blur=True)
    stuck = paper_matting(solver={"max_iter": 1, "rtol": 1e-14})  # one CG step at an unreachable tolerance
    with pytest.raises(RuntimeError, match=r"knn matting cell \(eps_fg 0.75, eps_bg 0.2, label rule threshold\): the "
                                           r"matting failed on all \d image\(s\) with a class"):
        eps_cell(tiny_synthetic, ids, [shard], stuck, 0.15)
    exact = ground_truth_maps(tiny_synthetic, ids[:1], tmp_path / "shard1")  # nothing unknown: nothing to solve
    cell = eps_cell(tiny_synthetic, ids, [exact, shard], stuck, 0.15)
    assert cell["failures"] == sum(len(tiny_synthetic.labels()[i]) > 0 for i in ids[1:]) > 0
