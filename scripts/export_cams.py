"""Rule export_cams: multi-scale (+flip) class activation maps of one image shard, one .npz per image."""
from tqdm import tqdm

from matlabel import jobs
from matlabel.cam import multiscale_cams
from matlabel.checkpoints import read_model_state
from matlabel.formats import MAPS_SUFFIX, write_maps
from matlabel.io import atomic_dir, read_image
from matlabel.models import build
from matlabel.train import resolve_device


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    device = resolve_device(p.device)
    labels = manifest.labels()
    model, _ = build(smk.wildcards.method, manifest.num_classes - 1, {**p.backbone, "weights": "none"})
    model.load_state_dict(read_model_state(smk.input.model))
    model.to(device).eval()
    log.info("exporting %d images of shard %s on %s (border_pad %d px)", len(ids), smk.wildcards.shard, device,
             p.border_pad)
    with atomic_dir(smk.output[0]) as tmp:
        for image_id in tqdm(ids, desc=f"shard {smk.wildcards.shard}", mininterval=5):
            classes = labels[image_id]
            image = read_image(manifest.image_path(image_id))
            cams = multiscale_cams(model, image, classes, p.scales, p.flip, device, amp=device.type == "cuda",
                                  border_pad=p.border_pad)
            write_maps(tmp / f"{image_id}{MAPS_SUFFIX}", cams, classes)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
