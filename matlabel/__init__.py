"""Mat-Label: weakly supervised semantic segmentation with pseudo-labels from image matting (ICCV 2023).

The library behind the Snakemake workflow. Every stage is a plain function on numpy arrays / tensors:
``datasets`` (VOC-layout data: synthetic, VOC 2012 + SBD, COCO 2014), ``backbone`` and ``cam`` (the CAM
baseline, Sec. 4.3), ``metrics`` (mIoU), ``tables`` (the paper's tables with our numbers beside them).
"""

__version__ = "0.1.0"
