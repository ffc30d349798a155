"""Rule dataset_content: the content stamp of one part (images or masks) of one split of the prepared dataset
(matlabel/datasets/content.py), an input of every rule that reads those files."""
from matlabel import jobs
from matlabel.datasets.content import write_stamp
from matlabel.io import read_json


def main(smk):
    log = jobs.start(smk).log
    write_stamp(smk.input.manifest, smk.output[0])
    stamp = read_json(smk.output[0])
    log.info("%s of split %s: %d ids, sha256 %s", stamp["part"], stamp["split"], stamp["count"], stamp["sha256"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
