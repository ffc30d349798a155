"""Rule imagenet_weights: download one torchvision ImageNet weights file into resources/weights/ (checked)."""
from matlabel import jobs
from matlabel.datasets.download import download
from matlabel.weights import file_by_name


def main(smk):
    log = jobs.start(smk).log
    entry = file_by_name(smk.wildcards.file)
    url = smk.params.url or entry.url
    log.info("%s ImageNet weights: %s -> %s (sha256 %s...)", entry.arch, url, smk.output[0], entry.sha256_prefix)
    download(url, smk.output[0], sha256_prefix=entry.sha256_prefix)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
