"""Rule train_classifier: train a map-producing classifier ({method}) on the image-level labels."""

from matlabel import jobs
from matlabel.cam import border_response
from matlabel.checkpoints import read_checkpoint
from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset
from matlabel.models import build, load_init, trunk_for_training
from matlabel.train import TrainConfig, input_stamps, resolve_device, train


def main(smk):
    log, p, manifest, _ = jobs.start(smk)
    device = resolve_device(p.device)
    augment = ClassifierAugment(p.augment["resize_long"], p.augment["crop"], p.augment["hflip"], seed=p.seed)
    dataset = VOCLayoutDataset(manifest, p.split, transform=augment, unlabeled="skip")
    if dataset.skipped:
        log.warning("skipping %d image(s) of '%s' without any object label (nothing to learn), e.g. %s",
                    len(dataset.skipped), p.split, dataset.skipped[:5])
    if len(dataset) == 0:
        raise ValueError(f"split '{p.split}' (config splits.train_classifier) has no image with an object label "
                         f"({len(dataset.skipped)} without one): check {manifest.labels_path} and the split list")
    train_cfg = dict(p.train)
    loss = train_cfg.pop("loss", None)  # D2CAM's loss weights (paper Sec. 3.2.1 / 4.2)
    init_from = train_cfg.pop("init_from", None)
    backbone = trunk_for_training(p.backbone, train_cfg.pop("train_n1", None))
    if smk.input.get("weights"):  # the staged ImageNet file (rule imagenet_weights)
        backbone["weights"] = smk.input.weights
    model, loss_fn = build(smk.wildcards.method, manifest.num_classes - 1, backbone, seed=p.seed, loss=loss)
    if init_from:
        fresh = load_init(model, read_checkpoint(smk.input.init))
        log.info("initialised from %s (%s); left at their init: %s", init_from, smk.input.init, fresh)
    cfg = TrainConfig(**train_cfg, seed=p.seed, num_workers=min(4, max(0, smk.threads - 1)))
    log.info("training %s on %d images of '%s' on %s: %s", smk.wildcards.method, len(dataset), p.split, device, cfg)
    history = train(model, dataset, cfg, device, smk.output.model, loss_fn=loss_fn, speed=p.speed,
                    extra={"backbone": backbone, "augment": dict(p.augment), "method": smk.wildcards.method,
                           "loss": loss, "init_from": init_from,
                           "code": p.code, "inputs": input_stamps(list(smk.input))})
    log.info("done: %s", history[-1])
    side = max(p.augment["crop"], 96)  # the training crop, and at least 6x6 cells at stride 16 (a ring with an inside)
    log.info("plain maps (export.border_pad not applied) on object-free %dx%d images (border = outer ring of cells; "
             "excess = border minus interior of the max-normalised maps, mean over classes): %s",
             side, side, border_response(model, (side, side), device))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
