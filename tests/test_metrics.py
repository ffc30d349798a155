import numpy as np
import pytest

from matlabel.metrics import ConfusionMeter, confusion, iou_per_class, miou


def test_confusion_and_miou_hand_computed():
    # 3 classes, one ignored pixel (255).
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    conf = confusion(gt, pred, 3)
    # rows = gt, cols = pred
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    # class 0: TP 1, FP 0, FN 1 -> 1/2 ; class 1: TP 2, FP 1, FN 0 -> 2/3 ; class 2: 1/1
    np.testing.assert_allclose(iou_per_class(conf), [0.5, 2 / 3, 1.0])
    assert miou(conf) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)


def test_absent_class_is_skipped_not_zero():
    gt = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1])
    conf = confusion(gt, pred, 21)
    iou = iou_per_class(conf)
    assert np.isnan(iou[2:]).all()
    assert miou(conf) == 1.0


def test_false_positive_class_counts_as_zero():
    gt = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 0, 5])
    conf = confusion(gt, pred, 21)
    assert iou_per_class(conf)[5] == 0.0
    assert miou(conf) == pytest.approx((3 / 4 + 0.0) / 2)


def test_meter_accumulates_81_classes():
    meter = ConfusionMeter(81)
    meter.add(np.array([80, 80]), np.array([80, 0]))
    meter.add(np.array([0]), np.array([0]))
    assert meter.matrix.sum() == 3
    assert meter.iou()[80] == pytest.approx(0.5)


def test_out_of_range_labels_raise():
    with pytest.raises(ValueError, match="outside"):
        confusion(np.array([0, 21]), np.array([0, 0]), 21)
    with pytest.raises(ValueError, match="prediction"):
        confusion(np.array([0, 1]), np.array([0, 30]), 21)
