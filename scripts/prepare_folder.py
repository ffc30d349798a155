"""Rule prepare_folder: check a user's folder in VOC layout (config data.folder) and write its manifest and
cls_labels.json under resources/folder/ (the folder itself is only read)."""
from pathlib import Path

from matlabel import runlog
from matlabel.datasets.folder import prepare_folder


def main(smk):
    log = runlog.start(smk)
    p = smk.params
    max_errors = smk.config.get("data", {}).get("folder", {}).get("max_errors", 20)
    log.info("checking %s for the splits %s", p.root, dict(p.splits))
    manifest = prepare_folder(p.root, Path(smk.output.manifest).parent, splits=dict(p.splits), classes=p.classes,
                              max_errors=max_errors, max_side=p.max_side)
    log.info("wrote %s", manifest)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
