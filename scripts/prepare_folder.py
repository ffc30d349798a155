"""Rule prepare_folder: check a user's folder in VOC layout (config data.folder) and write its manifest and
cls_labels.json under resources/folder/ (the folder itself is only read)."""
import logging
import sys
from pathlib import Path

from matlabel import jobs
from matlabel.datasets.folder import prepare_folder


def main(smk):
    log = jobs.start(smk).log
    # the folder's warnings (training images without an object, EXIF rotation) also go to the terminal: runlog
    # sends stderr to the rule's log, which no one opens when the job succeeds
    terminal = logging.StreamHandler(sys.__stderr__)
    terminal.addFilter(lambda record: record.levelno == logging.WARNING)  # errors: the message Snakemake prints
    log_file = str(smk.log[0]).replace("%", "%%")
    terminal.setFormatter(logging.Formatter(f"[prepare_folder] warning: %(message)s (also in {log_file})"))
    logging.getLogger("matlabel.datasets.folder").addHandler(terminal)
    p = smk.params
    folder = smk.config["data"]["folder"]  # root and max_errors: not params, so neither reruns anything
    log.info("checking %s for the splits %s", folder["root"], dict(p.splits))
    manifest = prepare_folder(folder["root"], Path(smk.output.manifest).parent, splits=dict(p.splits),
                              classes=p.classes, max_errors=folder.get("max_errors", 20), max_side=p.max_side)
    log.info("wrote %s", manifest)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
