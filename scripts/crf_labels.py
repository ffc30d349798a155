"""Rule crf_labels: DenseCRF on one shard of a row's seed labels (Table 1 "w/ CRF"), with the unary of config
crf.unary: the seed labels (IRN's crf_inference_label) or the row's maps / alphas as probabilities (PSA's)."""
from pathlib import Path

from tqdm import tqdm

from matlabel import jobs
from matlabel.crf import CRFParams, refine, refine_probs, row_unary
from matlabel.io import atomic_dir, read_image, read_label_png, write_label_png
from matlabel.labels import load_row_maps_and_kind


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    labels_of = manifest.labels()
    params = CRFParams.from_mapping(dict(p.crf))
    log.info("DenseCRF on %d seed label maps of shard %s (%s row): %s", len(ids), smk.wildcards.shard, p.labeler,
             params)
    with atomic_dir(smk.output[0]) as tmp:
        for image_id in tqdm(ids, desc=f"crf shard {smk.wildcards.shard}", mininterval=5):
            image = read_image(manifest.image_path(image_id))
            if params.unary == "label":
                seed = read_label_png(Path(smk.input.seed) / f"{image_id}.png")
                present = [0, *labels_of[image_id]]  # background + the image-level labels
                labels = refine(image, seed, present, params)
            else:
                maps, classes, alphas = load_row_maps_and_kind(p.labeler, image_id, smk.input.cams, smk.input.seed)
                probs, present = row_unary(maps, classes, alphas, params.bg_power)
                labels = refine_probs(image, probs, present, params)
            write_label_png(tmp / f"{image_id}.png", labels)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
