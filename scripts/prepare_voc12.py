"""Rule prepare_voc12: VOC 2012 trainval + SBD → VOC layout with SegmentationClassAug and train_aug."""
from pathlib import Path

from matlabel import jobs
from matlabel.datasets.voc12 import prepare_voc12


def main(smk):
    log = jobs.start(smk).log
    manifest = prepare_voc12(smk.input.voc, smk.input.sbd, Path(smk.output.manifest).parent)
    log.info("wrote %s", manifest)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
