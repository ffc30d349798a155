"""Where the real datasets come from: an explicit registry of archives with their checksums.

Every entry names the public URL, the md5 of the archive, its size in bytes and the file name it is
stored under; ``manual_hint`` says what to do when the URL is unreachable (the downloader puts it in
its error message). Checksums are copied from reference code that verifies them, never guessed; an
archive with ``md5=None`` would be downloaded unverified, with a warning.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Archive:
    """One downloadable archive.

    Parameters
    ----------
    url : str
        Primary download URL.
    md5 : str or None
        Expected md5 hex digest of the whole archive; ``None`` = unverified (a warning is logged).
    size_bytes : int or None
        Expected size in bytes (used to resume a partial download and to reject an oversized one).
    filename : str
        Name of the archive on disk (in the download folder).
    manual_hint : str
        What to do when the URL cannot be reached.
    mirrors : tuple of str
        Further URLs serving the same bytes, tried in order after ``url``.
    """

    url: str
    md5: str | None
    size_bytes: int | None
    filename: str
    manual_hint: str
    mirrors: tuple[str, ...] = ()


ARCHIVES: dict[str, Archive] = {
    # PASCAL VOC 2012 trainval (Everingham et al., IJCV 2010). URL/md5/size from the VOC site; torchvision's
    # VOCSegmentation (torchvision/datasets/voc.py, DATASET_YEAR_DICT["2012"]) has the same md5 and serves
    # it from the thor.robots.ox.ac.uk mirror.
    "voc2012_trainval": Archive(
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        md5="6cd6e144f989b92b3379bac3b3de84fd",
        size_bytes=1_999_639_040,
        filename="VOCtrainval_11-May-2012.tar",
        manual_hint="Get VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ "
                    "(or a mirror such as https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/).",
        mirrors=("https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",),
    ),
    # Semantic Boundaries Dataset (Hariharan et al., ICCV 2011): the extra masks of "train_aug".
    # URL and md5 as in torchvision's SBDataset (torchvision/datasets/sbd.py: SBDataset.url, .md5);
    # size as reported by torchvision's downloader for that URL (1,419,539,633 bytes).
    "sbd": Archive(
        url="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",
        md5="82b4d87ceb2ed10f6038a1cba92111cb",
        size_bytes=1_419_539_633,
        filename="benchmark.tgz",
        manual_hint="Get benchmark.tgz from http://home.bharathh.info/pubs/codes/SBD/download.html.",
    ),
    # MS COCO 2014 (Lin et al., ECCV 2014). md5s of the image zips: salesforce/LAVIS
    # lavis/datasets/download_scripts/download_coco.py (DATA_URL comments), the train md5 also passed to
    # torchvision's download_and_extract_archive in pystiche/papers
    # replication/johnson_alahi_li_2016/download_images.py. md5 of the annotation zip:
    # PaddlePaddle/PaddleNLP paddlenlp/datasets/coco_captions.py (COCOCaptions.MD5_ANNO), equal to the
    # S3 ETag of the object. Sizes: the Content-Length the server reports (wget logs in public notebooks).
    "coco2014_train": Archive(
        url="http://images.cocodataset.org/zips/train2014.zip",
        md5="0da8c0bd3d6becc4dcb32757491aca88",
        size_bytes=13_510_573_713,
        filename="train2014.zip",
        manual_hint="Get train2014.zip from https://cocodataset.org/#download.",
    ),
    "coco2014_val": Archive(
        url="http://images.cocodataset.org/zips/val2014.zip",
        md5="a3d79f5ed8d289b7a7554ce06a5782b3",
        size_bytes=6_645_013_297,
        filename="val2014.zip",
        manual_hint="Get val2014.zip from https://cocodataset.org/#download.",
    ),
    "coco2014_annotations": Archive(
        url="http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
        md5="0a379cfc70b0e71301e0f377548639bd",
        size_bytes=252_872_794,
        filename="annotations_trainval2014.zip",
        manual_hint="Get annotations_trainval2014.zip from https://cocodataset.org/#download.",
    ),
}

# The archives each prepared dataset is built from, in the argument order of its prepare_* function.
DATASET_ARCHIVES: dict[str, list[str]] = {
    "voc12": ["voc2012_trainval", "sbd"],
    "coco14": ["coco2014_train", "coco2014_val", "coco2014_annotations"],
}
