"""Rule ir_labels: confident-region labels of one shard of a row, what its IRN learns relations from."""
import numpy as np
from tqdm import tqdm

from matlabel import jobs
from matlabel.crf import CRFParams
from matlabel.io import atomic_dir, read_image, write_label_png
from matlabel.labels import confident_labels, load_row_maps


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    crf = CRFParams.from_mapping(p.crf)
    log.info("confident regions (fg > %s, bg < %s) of %d images from the %s maps", p.confident["fg"],
             p.confident["bg"], len(ids), p.labeler)
    counts = np.zeros(3, np.int64)  # confident foreground, confident background, ignored (255) pixels
    with atomic_dir(smk.output[0]) as tmp:
        for image_id in tqdm(ids, desc=f"ir_labels shard {smk.wildcards.shard}", mininterval=5):
            maps, classes = load_row_maps(p.labeler, image_id, smk.input.cams, smk.input.get("seed"))
            image = read_image(manifest.image_path(image_id))
            labels = confident_labels(image, maps, classes, p.confident["fg"], p.confident["bg"], crf)
            counts += [((labels > 0) & (labels < 255)).sum(), (labels == 0).sum(), (labels == 255).sum()]
            write_label_png(tmp / f"{image_id}.png", labels)
    share = 100 * counts / max(1, counts.sum())
    # IRN learns boundaries between confident foreground and background: a row with ~no background has none
    log.info("pixels: %.1f%% confident foreground, %.1f%% confident background, %.1f%% ignored", *share)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
