"""Pseudo-label producers: the Table 1 rows' sources, the threshold labeler, Mat-Label's matting labeler."""
import numpy as np
import pytest

from matlabel.cam import cams_to_labels
from helpers import paper_matting
from matlabel.labels import SOURCES, MattingConfig, matting_labels, rows_for, threshold_labels
from matlabel.tables import TABLE1_ROWS


def test_every_table1_row_has_a_source_and_rows_follow_the_trainable_methods():
    assert set(SOURCES) == set(TABLE1_ROWS)
    assert SOURCES["matlabel"] == ("d2cam", "matting") and SOURCES["d2cam"] == ("d2cam", "threshold")
    assert SOURCES["matlabel_cam"] == ("cam", "matting")  # beyond the paper: Mat-Label on the CAM's maps
    assert rows_for(["cam", "d2cam"]) == ["cam", "d2cam", "matlabel", "matlabel_cam"]
    assert rows_for(["d2cam"], "matting") == ["matlabel"]
    assert rows_for(["recam"], "matting") == ["matlabel_recam"]


def test_threshold_labels_are_the_cam_seed():
    rng = np.random.default_rng(0)
    cams = rng.random((2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(threshold_labels(cams, [4, 9], 0.3), cams_to_labels(cams, [4, 9], 0.3))


def test_matting_config_from_the_config_sections():
    cfg = MattingConfig.from_config({"eps_fg": 0.7, "eps_bg": 0.1},
                                    {"lam": 50.0, "fg_threshold": 0.4, "method": "knn", "label_rule": "threshold"})
    assert (cfg.eps_fg, cfg.eps_bg, cfg.fg_threshold) == (0.7, 0.1, 0.4)
    assert cfg.solver == {"lam": 50.0}  # the solver's keywords (the rule's threads live in config threads)
    with pytest.raises(KeyError):  # every field from the config: the library holds none of the paper's numbers
        MattingConfig.from_config({"eps_fg": 0.7, "eps_bg": 0.1}, {"lam": 50.0, "fg_threshold": 0.4})
    paper = paper_matting()
    assert (paper.eps_fg, paper.eps_bg, paper.fg_threshold, paper.method) == (0.75, 0.2, 0.5, "knn")  # Sec. 3.2.2


def scene(h=40, w=56):
    """A two-object image: a red square (class 3) and a blue disc (class 8) on grey, with their masks."""
    yy, xx = np.mgrid[:h, :w]
    square = (yy > 8) & (yy < 30) & (xx > 5) & (xx < 24)
    disc = (yy - 20) ** 2 + (xx - 40) ** 2 < 81
    image = np.full((h, w, 3), 128, np.uint8)
    image[square] = (220, 30, 30)
    image[disc] = (30, 30, 220)
    gt = np.zeros((h, w), np.uint8)
    gt[square], gt[disc] = 3, 8
    return image, gt, square, disc


def blurry_map(mask, sigma=4.0):
    """A CAM-like map: the mask smeared beyond its edges, peak-normalised."""
    from scipy.ndimage import gaussian_filter

    m = gaussian_filter(mask.astype(np.float32), sigma)
    return m / m.max()


def test_matting_labels_recover_objects_that_the_maps_blur():
    image, gt, square, disc = scene()
    cams = np.stack([blurry_map(square), blurry_map(disc)])
    labels, alphas, info = matting_labels(image, cams, [3, 8], paper_matting())
    assert labels.shape == gt.shape and labels.dtype == np.uint8 and alphas.shape == (2, *gt.shape)
    assert set(np.unique(labels)) <= {0, 3, 8}
    assert 0 < info["unknown"] < 1
    seed_acc = (threshold_labels(cams, [3, 8], 0.15) == gt).mean()
    mat_acc = (labels == gt).mean()
    assert mat_acc > 0.97 and mat_acc > seed_acc  # matting snaps the blurred maps to the colour edges


def test_matting_labels_of_an_image_without_classes_is_background():
    image, *_ = scene()
    labels, alphas, _ = matting_labels(image, np.zeros((0, 40, 56), np.float32), [], paper_matting())
    assert (labels == 0).all() and alphas.shape == (0, 40, 56)


@pytest.mark.parametrize("bad", [{"eps_fg": 0.2, "eps_bg": 0.75}])
def test_matting_labels_reject_bad_thresholds(bad):
    image, _, square, _ = scene()
    with pytest.raises(ValueError):
        matting_labels(image, blurry_map(square)[None], [3], paper_matting(**bad))


def test_confident_labels_keep_the_sure_regions_and_ignore_the_rest():
    from matlabel.labels import confident_labels

    image = np.zeros((1, 5, 3), np.uint8)
    maps = np.array([[[0.9, 0.5, 0.2, 0.04, 0.01]], [[0.1, 0.6, 0.1, 0.0, 0.02]]], np.float32)
    conf = confident_labels(image, maps, [2, 7], fg_threshold=0.3, bg_threshold=0.05)
    # 0.9 -> class 2; 0.6 beats 0.5 -> class 7; 0.2 is neither sure fg nor sure bg -> 255; all below 0.05 -> 0
    np.testing.assert_array_equal(conf[0], [2, 7, 255, 0, 0])
    assert (confident_labels(image, maps[:0], [], 0.3, 0.05) == 0).all()


def test_confident_labels_with_crf_stay_within_present_labels():
    from matlabel.crf import CRFParams
    from matlabel.labels import confident_labels

    image, gt, square, disc = scene()
    cams = np.stack([blurry_map(square), blurry_map(disc)])
    raw = confident_labels(image, cams, [3, 8], 0.3, 0.05)
    assert (raw == 255).any()  # the blurred maps leave a band of unsure pixels around each object
    conf = confident_labels(image, cams, [3, 8], 0.3, 0.05, CRFParams(bilateral_sxy=50, bilateral_srgb=5))
    assert set(np.unique(conf)) <= {0, 3, 8, 255}
    sure = conf != 255
    assert (conf[sure] == gt[sure]).mean() > 0.99 and (raw[raw != 255] == gt[raw != 255]).mean() < 0.99


def test_row_maps_are_the_alphas_for_matting_rows_and_the_maps_otherwise(tmp_path):
    from matlabel.labels import load_row_maps

    cams = np.random.default_rng(0).random((2, 3, 4)).astype(np.float16)
    np.savez(tmp_path / "a.npz", cams=cams, classes=np.array([2, 5], np.int16))
    np.savez(tmp_path / "b.npz", cams=cams, classes=np.array([2, 5], np.int16))
    alphas = np.array([[[0, 255, 128, 0]] * 3, [[255, 0, 0, 0]] * 3], np.uint8)
    np.savez(tmp_path / "a_alpha.npz", alphas=alphas, classes=np.array([2, 5], np.int16))
    maps, classes = load_row_maps("matting", "a", tmp_path, tmp_path)
    np.testing.assert_allclose(maps, alphas / 255.0) and np.testing.assert_array_equal(classes, [2, 5])
    maps, _ = load_row_maps("threshold", "a", tmp_path)
    np.testing.assert_array_equal(maps, cams.astype(np.float32))
    maps, _ = load_row_maps("matting", "b", tmp_path, tmp_path)  # its matting failed: the maps stand in
    np.testing.assert_array_equal(maps, cams.astype(np.float32))
    # the kind the CRF's score unary needs: alphas only where the matting succeeded
    from matlabel.labels import load_row_maps_and_kind

    kinds = [load_row_maps_and_kind(labeler, i, tmp_path, tmp_path)[2]
             for labeler, i in [("matting", "a"), ("matting", "b"), ("threshold", "a")]]
    assert kinds == [True, False, False]


def test_background_trimap_is_sure_where_every_class_says_background_and_not_where_any_is_sure():
    from matlabel.labels import background_trimap

    t = np.array([[[0.0, 0.0, 0.5, 1.0]],   # class a
                  [[0.0, 0.5, 0.0, 0.0]]])  # class b
    np.testing.assert_array_equal(background_trimap(t), [[1.0, 0.5, 0.5, 0.0]])


@pytest.mark.parametrize("method", ["knn", "closed_form", "random_walk", "learning_based"])
@pytest.mark.parametrize("rule", ["threshold", "bg_layer"])
def test_every_matting_method_and_label_rule_snaps_blurred_maps_to_the_objects(method, rule):
    """Table 5's axes: each Laplacian, each label rule, through the labels rule's own function."""
    image, gt, square, disc = scene()
    cams = np.stack([blurry_map(square), blurry_map(disc)])
    labels, alphas, info = matting_labels(image, cams, [3, 8], paper_matting(method=method, label_rule=rule))
    assert labels.dtype == np.uint8 and alphas.shape == (2, *gt.shape) and set(np.unique(labels)) <= {0, 3, 8}
    assert (labels == gt).mean() > 0.95, (method, rule, (labels == gt).mean())


def test_matting_config_reads_method_and_label_rule_and_refuses_unknown_rules():
    cfg = MattingConfig.from_config({"eps_fg": 0.75, "eps_bg": 0.2}, {"method": "closed_form", "label_rule": "bg_layer",
                                                                      "lam": float("inf"), "fg_threshold": 0.5})
    assert (cfg.method, cfg.label_rule, cfg.solver) == ("closed_form", "bg_layer", {"lam": float("inf")})
    with pytest.raises(ValueError, match="label_rule must be one of"):
        paper_matting(label_rule="argmax")


def test_matting_seed_falls_back_to_the_threshold_seed_and_says_why():
    from matlabel.labels import matting_seed

    image, gt, square, disc = scene()
    cams = np.stack([blurry_map(square), blurry_map(disc)])
    labels, alphas, info, error = matting_seed(image, cams, [3, 8], paper_matting(), 0.15)
    assert error is None and alphas.shape == (2, *gt.shape) and 0 < info["unknown"] < 1
    stuck = paper_matting(solver={"max_iter": 1})  # the solver stops above its tolerance: no pseudo-label
    labels, alphas, info, error = matting_seed(image, cams, [3, 8], stuck, 0.15)
    assert error.startswith("MattingFailure: knn_matting: CG did not reach") and alphas is None and info is None
    np.testing.assert_array_equal(labels, threshold_labels(cams, [3, 8], 0.15))


def test_matting_seed_stops_on_a_matting_device_torch_cannot_use(monkeypatch):
    """matting.device: cuda without a usable GPU fails every image alike: an error naming the key and the fix, never
    the threshold seed (which turned every Mat-Label row into a threshold row with the job succeeding)."""
    import torch

    from matlabel.labels import matting_seed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    image, _, square, disc = scene()
    cams = np.stack([blurry_map(square), blurry_map(disc)])
    cfg = paper_matting(solver={"device": "cuda"})
    fix = "config matting.device: cuda, but no CUDA device is visible to PyTorch; set matting.device: cpu"
    with pytest.raises(RuntimeError, match=fix):
        matting_seed(image, cams, [3, 8], cfg, 0.15)
    with pytest.raises(RuntimeError, match=fix):
        cfg.check_device()  # what the rules run before their first image
    paper_matting().check_device()  # cpu: nothing to check
    with pytest.raises(RuntimeError, match="set matting.device: cpu or cuda"):
        paper_matting(solver={"device": "mps"}).check_device()


@pytest.mark.parametrize("error", [RuntimeError("CUDA error: an illegal memory access was encountered"),
                                   ImportError("No module named 'pymatting'"), ValueError("lam must be > 0")])
def test_matting_seed_falls_back_on_matting_failures_only(monkeypatch, error):
    """A device, import or configuration error propagates; only ``MattingFailure`` (one image's) falls back."""
    from matlabel import matting
    from matlabel.labels import matting_seed

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(matting, "knn_matting", broken)
    image, _, square, _ = scene()
    with pytest.raises(type(error), match=str(error)):
        matting_seed(image, blurry_map(square)[None], [3], paper_matting(), 0.15)


def test_matting_labels_refuse_maps_with_nan():
    """A NaN map is neither >= eps_fg nor <= eps_bg: it used to become unknown pixels silently."""
    from matlabel.labels import matting_seed

    image, _, square, _ = scene()
    cams = blurry_map(square)[None].copy()
    cams[0, 3, 5] = np.nan
    with pytest.raises(ValueError, match=r"maps have 1 non-finite values \(NaN or inf\), the first in map 0 at row 3, "
                                         "column 5"):
        matting_seed(image, cams, [3], paper_matting(), 0.15)


def test_a_job_whose_every_matting_failed_stops_naming_it_and_the_first_errors():
    from matlabel.labels import require_matting_results

    require_matting_results({"a": "MattingFailure: x"}, 2, "shard s")  # one of two failed: counted, not fatal
    require_matting_results({}, 0, "shard s")  # no image with a class: nothing was matted
    with pytest.raises(RuntimeError, match=r"shard s: the matting failed on all 2 image\(s\) with a class, .* first "
                                           r"errors: a: MattingFailure: x; b: MattingFailure: y\. Fix the cause"):
        require_matting_results({"a": "MattingFailure: x", "b": "MattingFailure: y"}, 2, "shard s")
