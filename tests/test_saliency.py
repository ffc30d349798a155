"""I+S: pseudo-labels combined with saliency maps (matlabel/saliency.py)."""
import numpy as np
import pytest
from PIL import Image

from matlabel.saliency import merge_saliency, read_saliency


def test_merge_by_hand():
    labels = np.array([[0, 0, 3, 3],
                       [0, 255, 3, 7]], dtype=np.uint8)
    saliency = np.array([[0.1, 0.9, 0.9, 0.2],
                         [0.5, 0.9, 0.49, 0.6]], dtype=np.float32)
    # non-salient -> background (the class 3 at 0.2 and 0.49 too); salient background -> 255; 255 stays 255
    expected = np.array([[0, 255, 3, 0],
                         [255, 255, 0, 7]], dtype=np.uint8)
    assert np.array_equal(merge_saliency(labels, saliency, 0.5), expected)


def test_merge_checks_shape_and_threshold():
    with pytest.raises(ValueError, match="saliency map is"):
        merge_saliency(np.zeros((2, 2), np.uint8), np.zeros((2, 3)), 0.5)
    with pytest.raises(ValueError, match="threshold"):
        merge_saliency(np.zeros((2, 2), np.uint8), np.zeros((2, 2)), 0.0)


def test_read_saliency_scales_and_names_the_file(tmp_path):
    Image.fromarray(np.array([[0, 255], [51, 102]], dtype=np.uint8)).save(tmp_path / "a.png")
    assert np.allclose(read_saliency(tmp_path / "a.png"), [[0, 1], [0.2, 0.4]])
    with pytest.raises(ValueError, match="a.png: saliency map is 2x2, its image is 3x2"):
        read_saliency(tmp_path / "a.png", (2, 3))
    with pytest.raises(FileNotFoundError, match="b.png: no saliency map"):
        read_saliency(tmp_path / "b.png")
