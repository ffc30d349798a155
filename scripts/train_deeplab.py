"""Rule train_deeplab: DeepLab-v2 on one row's pseudo-labels (every image of the export split)."""
from matlabel import jobs
from matlabel.checkpoints import load_trunk
from matlabel.deeplab import DeepLabV2, SegConfig, train_deeplab
from matlabel.deeplab.data import SegDataset
from matlabel.train import input_stamps, resolve_device


def main(smk):
    log, p, manifest, _ = jobs.start(smk)
    device = resolve_device(p.device)
    cfg = SegConfig.from_mapping({**p.train, "seed": p.seed, "num_workers": min(4, max(0, smk.threads - 1))})
    trunk = smk.input.get("backbone")
    weights = "none" if trunk else smk.input.get("weights") or p.model["weights"]  # staged ImageNet file, if any
    model = DeepLabV2(manifest.num_classes, seed=p.seed, **{**p.model, "weights": weights})
    if trunk:
        load_trunk(model.backbone, trunk)
        log.info("backbone from %s", trunk)
    dataset = SegDataset(manifest, p.split, list(smk.input.labels), crop=cfg.crop, scales=cfg.scales, hflip=cfg.hflip,
                         seed=p.seed, pad_rgb=model.mean_rgb)
    log.info("training DeepLab-v2 (%s) on %d pseudo-labels of row %s on %s: %s", p.model, len(dataset),
             smk.wildcards.row, device, cfg)
    history = train_deeplab(model, dataset, cfg, device, smk.output.model, speed=p.speed,
                            extra={"model": dict(p.model), "row": smk.wildcards.row, "code": p.code,
                                   "inputs": input_stamps(list(smk.input))})
    log.info("done: %s", history[-1] if history else "nothing to train")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
