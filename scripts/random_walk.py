"""Rule random_walk: IRN's random walk of one shard of a row's maps (or alphas) -> the "w/ IRN" labels."""
from tqdm import tqdm

from matlabel import jobs
from matlabel.backbone import build_backbone
from matlabel.checkpoints import read_model_state
from matlabel.io import atomic_dir, read_image, write_label_png
from matlabel.irn import IRNet, sem_seg_labels
from matlabel.labels import load_row_maps
from matlabel.train import resolve_device


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    device = resolve_device(p.device)
    model = IRNet(build_backbone(**{**p.backbone, "weights": "none"}), radius=p.radius)
    model.load_state_dict(read_model_state(smk.input.model))
    model.to(device).eval()
    walk = dict(p.walk)
    log.info("random walk of %d images (shard %s, row %s) on %s: %s", len(ids), smk.wildcards.shard,
             smk.wildcards.row, device, walk)
    with atomic_dir(smk.output[0]) as tmp:
        for image_id in tqdm(ids, desc=f"random walk shard {smk.wildcards.shard}", mininterval=5):
            maps, classes = load_row_maps(p.labeler, image_id, smk.input.cams, smk.input.get("seed"))
            image = read_image(manifest.image_path(image_id))
            labels = sem_seg_labels(model, image, maps, [int(c) for c in classes], device=device, **walk)
            write_label_png(tmp / f"{image_id}.png", labels)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
