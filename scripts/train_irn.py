"""Rule train_irn: IRN's boundary/displacement branches on one row's confident-region labels."""
import torch

from matlabel import jobs
from matlabel.checkpoints import load_trunk
from matlabel.backbone import build_backbone
from matlabel.irn import AffinityAugment, IRNDataset, IRNet, irn_loss
from matlabel.train import TrainConfig, input_stamps, resolve_device, train


def main(smk):
    log, p, manifest, _ = jobs.start(smk)
    device = resolve_device(p.device)
    t = dict(p.train)
    augment = AffinityAugment(t.pop("rescale", (0.5, 1.5)), t.pop("crop"), t.pop("hflip", True), seed=p.seed)
    radius = t.pop("radius")
    dataset = IRNDataset(manifest, p.split, list(smk.input.labels), augment, radius=radius)
    # a trained trunk (backbone_from), else the staged ImageNet file (rule imagenet_weights), else the config's
    weights = "none" if smk.input.get("backbone") else smk.input.get("weights") or p.backbone["weights"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.seed)
        model = IRNet(build_backbone(**{**p.backbone, "weights": weights}), radius=radius)
    if smk.input.get("backbone"):
        load_trunk(model.backbone, smk.input.backbone)
        log.info("backbone from %s", smk.input.backbone)
    cfg = TrainConfig(**t, seed=p.seed, num_workers=min(4, max(0, smk.threads - 1)))
    log.info("training IRN for row %s on %d images of '%s' on %s: %s", smk.wildcards.row, len(dataset), p.split,
             device, cfg)
    history = train(model, dataset, cfg, device, smk.output.model, loss_fn=irn_loss, speed=p.speed,
                    extra={"backbone": dict(p.backbone), "radius": radius, "row": smk.wildcards.row, "code": p.code,
                           "inputs": input_stamps(list(smk.input))})
    log.info("done: %s", history[-1])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
