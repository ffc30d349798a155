"""Rule download_archive: fetch one archive of the registry (mirrors tried in turn, resumable, md5-verified)."""
from pathlib import Path

from matlabel import jobs
from matlabel.datasets.download import fetch_archive


def main(smk):
    log = jobs.start(smk).log
    log.info("downloading %s (%s)", smk.params.name, smk.params.url or "registry URLs")
    fetch_archive(smk.params.name, Path(smk.output[0]).parent, url=smk.params.url)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
