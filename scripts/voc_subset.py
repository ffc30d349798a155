"""Rule voc_subset: the folder of dataset: folder built from PASCAL VOC 2012 trainval, the images and masks of the
ids listed in config data.folder.voc_ids (matlabel/datasets/voc_subset.py)."""
from matlabel import jobs
from matlabel.datasets.voc_subset import build_voc_subset


def main(smk):
    log = jobs.start(smk).log
    folder = smk.config["data"]["folder"]  # voc_ids and voc_dir: where they are reruns nothing (params: content)
    voc_tar = smk.input.get("voc")
    voc_dir = None if voc_tar else folder["voc_dir"]
    log.info("copying the images and masks of the ids listed in %s from %s", folder["voc_ids"], voc_tar or voc_dir)
    lists = build_voc_subset(folder["voc_ids"], smk.output[0], voc_tar=voc_tar, voc_dir=voc_dir)
    log.info("wrote %s: %s", smk.output[0], {split: len(ids) for split, ids in lists.items()})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
