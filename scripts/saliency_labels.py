"""Rule saliency_labels: one shard of a row's pseudo-labels combined with the user's saliency maps (I+S)."""
from pathlib import Path

from tqdm import tqdm

from matlabel import jobs
from matlabel.io import atomic_dir, read_label_png, write_json, write_label_png
from matlabel.saliency import IGNORE, merge_saliency, read_saliency


def main(smk):
    log = jobs.start(smk).log
    p = smk.params
    src = Path(smk.input.labels)
    pngs = sorted(src.glob("*.png"))
    ignored = 0
    with atomic_dir(smk.output[0]) as tmp:
        for path in tqdm(pngs, desc=f"I+S shard {smk.wildcards.shard}", mininterval=5):
            labels = read_label_png(path)
            merged = merge_saliency(labels, read_saliency(Path(p.dir) / path.name, labels.shape), p.threshold)
            ignored += int((merged == IGNORE).sum())
            write_label_png(tmp / path.name, merged)
        write_json(tmp / "shard.json", {"images": len(pngs), "saliency_dir": str(p.dir), "threshold": p.threshold,
                                        "ignored_pixels": ignored})
    log.info("combined %d pseudo-labels of %s with the saliency maps of %s", len(pngs), src, p.dir)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
