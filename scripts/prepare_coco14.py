"""Rule prepare_coco14: COCO 2014 images + instances → VOC layout with 81-class semantic masks."""
from pathlib import Path

from matlabel import jobs
from matlabel.datasets.coco14 import prepare_coco14


def main(smk):
    log = jobs.start(smk).log
    manifest = prepare_coco14(smk.input.train, smk.input.val, smk.input.annotations, Path(smk.output.manifest).parent)
    log.info("wrote %s", manifest)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
