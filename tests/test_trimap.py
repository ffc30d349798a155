"""Trimap (paper Eq. 9): thresholds inclusive at both boundaries, per class, shapes and errors."""
import numpy as np
import pytest

from matlabel.trimap import make_trimaps, trimap_fractions


def test_boundaries_are_inclusive():
    maps = np.array([[[0.0, 0.2, 0.2001, 0.5, 0.7499, 0.75, 1.0]]], dtype=np.float32)
    t = make_trimaps(maps, eps_fg=0.75, eps_bg=0.2)
    np.testing.assert_array_equal(t[0, 0], [0, 0, 0.5, 0.5, 0.5, 1, 1])


def test_each_class_thresholded_on_its_own_map():
    maps = np.stack([np.full((2, 3), 0.9), np.full((2, 3), 0.1), np.full((2, 3), 0.4)]).astype(np.float32)
    t = make_trimaps(maps, 0.75, 0.2)
    assert t.shape == (3, 2, 3) and t.dtype == np.float32
    assert (t[0] == 1).all() and (t[1] == 0).all() and (t[2] == 0.5).all()


def test_other_thresholds_and_empty():
    maps = np.array([[[0.3, 0.6]]], dtype=np.float32)
    np.testing.assert_array_equal(make_trimaps(maps, 0.6, 0.3)[0, 0], [0, 1])
    assert make_trimaps(np.zeros((0, 4, 5)), 0.75, 0.2).shape == (0, 4, 5)


def test_fractions():
    t = make_trimaps(np.array([[[0.0, 0.5, 1.0, 1.0]]]), 0.75, 0.2)
    assert trimap_fractions(t) == {"fg": 0.5, "unknown": 0.25, "bg": 0.25}


@pytest.mark.parametrize("fg,bg", [(0.2, 0.75), (0.5, 0.5), (1.2, 0.1), (0.7, -0.1)])
def test_bad_thresholds(fg, bg):
    with pytest.raises(ValueError, match="eps_bg"):
        make_trimaps(np.zeros((1, 2, 2)), fg, bg)


def test_bad_shape():
    with pytest.raises(ValueError, match="k, H, W"):
        make_trimaps(np.zeros((2, 2)), 0.75, 0.2)
