"""Rules evaluate_deeplab / export_voc_test: a trained DeepLab-v2 on the segmentation split (mIoU, and its predictions
as <id>.png), or the VOC test predictions as the evaluation server's archive (the test masks are not public)."""
import dataclasses

from matlabel import jobs
from matlabel.checkpoints import read_model_state
from matlabel.deeplab import DEEPLAB_CRF, DeepLabV2, evaluate_segmentation, export_voc_test
from matlabel.io import atomic_dir, write_json
from matlabel.train import resolve_device


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    device = resolve_device(p.device)
    model = DeepLabV2(manifest.num_classes, **{**p.model, "weights": "none"})
    model.load_state_dict(read_model_state(smk.input.model))
    model.eval()
    test = dict(p.test)
    crf = dataclasses.replace(DEEPLAB_CRF, **(test.get("crf_params") or {})) if test["crf"] else None
    kwargs = dict(scales=test["scales"], flip=test["flip"], crf_params=crf, workers=smk.threads)  # CRF processes
    if smk.rule == "export_voc_test":
        members = export_voc_test(model, manifest, ids, device, smk.output[0], **kwargs)
        log.info("wrote %d predictions to %s: submit it to the VOC evaluation server", len(members), smk.output[0])
        return
    with atomic_dir(smk.output.predictions) as tmp:  # the predictions (Figure 5 reads them) appear whole
        result = evaluate_segmentation(model, manifest, ids, device, save_dir=tmp, **kwargs)
    result.update(method=smk.wildcards.row, split=p.split, dataset=manifest.name)
    log.info("%s DeepLab-v2 mIoU %.2f on %d images of %s", smk.wildcards.row, result["miou"], len(ids), p.split)
    write_json(smk.output.eval, result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
