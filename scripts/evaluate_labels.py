"""Rule evaluate_labels: mIoU of a Table 1 row's pseudo-labels at one stage on the eval split."""
from matlabel import jobs
from matlabel.evaluate import evaluate_labels
from matlabel.io import write_json


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    result = evaluate_labels(manifest, ids, list(smk.input.shards))
    result.update(method=smk.wildcards.row, stage=smk.wildcards.stage, split=p.split, dataset=manifest.name)
    log.info("%s %s mIoU %.2f on %d images", smk.wildcards.row, smk.wildcards.stage, result["miou"],
             result["n_images"])
    write_json(smk.output[0], result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
