"""DeepLab-v2 (dilated ResNet + ASPP) trained on pseudo-labels: the paper's final segmentation stage.

Behaviour and numbers follow kazuto1011/deeplab-pytorch, the implementation the WSSS papers (IRN, AdvCAM, ReCAM,
Mat-Label's baselines) train on; each module names the reference's file/function a line comes from, and its
differences from the reference where they happen:

* :mod:`matlabel.deeplab.model`: the network (``libs/models/deeplabv2.py``) and its multi-scale inputs
  (``libs/models/msc.py``);
* :mod:`matlabel.deeplab.train`: the recipe, the MSC loss and the training (``main.py`` ``train``), run by the loop
  all models share (``matlabel.train.fit``);
* :mod:`matlabel.deeplab.data`: the training data (``SegDataset``: images and pseudo-labels) and its augmentation
  (``libs/datasets/base.py``), imported from there (the inference rules do not need it);
* :mod:`matlabel.deeplab.infer`: multi-scale inference, DenseCRF and the mIoU (``main.py`` ``test`` and ``crf``);
* :mod:`matlabel.deeplab.export`: the VOC test predictions in the evaluation server's format.

Images enter the model as (B, 3, H, W) float RGB in 0..255; the model normalises them itself, so datasets,
``predict`` and checkpoints cannot disagree about the normalisation.
"""
from matlabel.deeplab.export import VOC_RESULT_PATH, export_voc_test
from matlabel.deeplab.infer import (DEEPLAB_CRF, TEST_SCALES, evaluate_segmentation, predict, segment,
                                   segment_all)
from matlabel.deeplab.model import ASPP, CAFFE_MEAN_RGB, INPUT_NORMS, MSC, MSC_SCALES, DeepLabV2
from matlabel.deeplab.train import SegConfig, deeplab_step, msc_loss, resize_labels, train_deeplab

__all__ = [
    "ASPP", "CAFFE_MEAN_RGB", "DEEPLAB_CRF", "DeepLabV2", "INPUT_NORMS", "MSC", "MSC_SCALES", "SegConfig",
    "TEST_SCALES", "VOC_RESULT_PATH", "deeplab_step", "evaluate_segmentation", "export_voc_test", "msc_loss",
    "predict", "resize_labels", "segment", "segment_all", "train_deeplab",
]
