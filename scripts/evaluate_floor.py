"""Rule evaluate_floor: mIoU of labelling every pixel background on a split, the floor row of Tables 1 and 2."""
from matlabel import jobs
from matlabel.evaluate import evaluate_floor
from matlabel.io import write_json


def main(smk):
    log, _, manifest, ids = jobs.start(smk)
    split = smk.wildcards.split
    result = evaluate_floor(manifest, ids)
    result.update(method="floor", stage="floor", split=split, dataset=manifest.name)
    log.info("all background: mIoU %.2f on %d images of %s", result["miou"], result["n_images"], split)
    write_json(smk.output[0], result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
