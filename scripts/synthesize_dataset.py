"""Rule synthesize_dataset: write the synthetic dataset in VOC layout and its manifest (written last)."""
from pathlib import Path

from matlabel import jobs
from matlabel.datasets.layout import VOC_CLASSES, write_manifest
from matlabel.datasets.synthetic import SyntheticConfig, generate


def main(smk):
    log = jobs.start(smk).log
    cfg = SyntheticConfig.from_mapping(smk.params.synthetic)
    root = Path(smk.output.manifest).parent / "VOC2012"
    log.info("synthesising %s into %s", cfg, root)
    splits = generate(root, cfg)
    write_manifest(smk.output.manifest, smk.wildcards.dataset, root, VOC_CLASSES, "SegmentationClass", splits)
    log.info("done: %s", splits)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
