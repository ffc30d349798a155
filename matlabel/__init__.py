"""Mat-Label: weakly supervised semantic segmentation with pseudo-labels from image matting (ICCV 2023).

The library behind the Snakemake workflow; every stage is a plain function usable without Snakemake:
``datasets`` (VOC layout: synthetic, VOC 2012 + SBD, COCO 2014, a user's folder; downloads; content stamps),
``backbone`` (torchvision ResNets, timm's EfficientNet-Lite0), ``cam`` / ``d2cam`` / ``losses`` / ``recam`` (the map
methods, registered in ``methods`` and built by ``models``; trained by ``train``), ``trimap`` and ``matting`` (Eq. 9
and KNN matting), ``labels`` (each Table 1 row's seeds), ``crf`` (DenseCRF), ``irn`` (IRN and its random walk),
``deeplab`` (DeepLab-v2 and its data), ``saliency`` (I+S), ``evaluate`` / ``metrics`` (mIoU), ``tables`` /
``figures`` / ``runtimes`` (the outputs), ``formats`` / ``checkpoints`` / ``io`` (the files between rules),
``config`` and ``codehash`` (the workflow's checks and code versions).
"""

__version__ = "0.1.0"
