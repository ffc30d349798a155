"""Rule evaluate_cams: mIoU of a method's seed labels (maps + background threshold) on the eval split."""
from matlabel import jobs
from matlabel.evaluate import evaluate_cams
from matlabel.io import write_json


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    result = evaluate_cams(manifest, ids, list(smk.input.shards), p.bg_threshold, p.sweep)
    result.update(method=smk.wildcards.method, stage="seed", split=p.split, dataset=manifest.name)
    log.info("%s seed mIoU %.2f at bg %.2f (best %.2f at %.2f)", smk.wildcards.method, result["miou"],
             result["bg_threshold"], result["best_miou"], result["best_threshold"])
    write_json(smk.output[0], result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
