"""Rule figures: the paper's Figure 2 (Mat-Label pipeline per image) and, once segmentations exist, Figure 5.

Figure 5 is drawn only when the rule declares an output ``fig5`` and an input ``segmentation`` (shard
directories of predicted ``<id>.png``); until the segmentation stage exists the rule declares neither. Its
images are params ``seg_ids``, else the first 4 with a class of ``seg_split`` (default ``split``): the
segmentation is evaluated on another split (val) than the one pseudo-labels are made for (train_aug).
"""
from matlabel import runlog
from matlabel.datasets.layout import load_manifest
from matlabel.figures import default_figure_ids, figure2, figure5, load_pipeline_row, load_segmentation_row


def main(smk):
    log = runlog.start(smk)
    p = smk.params
    manifest = load_manifest(smk.input.manifest)
    ids = list(p.ids or []) or default_figure_ids(manifest, p.split)
    if not ids:
        raise ValueError(f"no image of split '{p.split}' has a foreground class; set params ids")
    rows = [load_pipeline_row(manifest, i, smk.input.cam, smk.input.d2cam, smk.input.matlabel, p.eps_fg, p.eps_bg)
            for i in ids]
    figure2(rows, smk.output.fig2)
    log.info("Figure 2 of %d images %s -> %s", len(ids), ids, smk.output.fig2)
    if hasattr(smk.output, "fig5") and hasattr(smk.input, "segmentation"):
        seg_ids = list(getattr(p, "seg_ids", None) or []) or default_figure_ids(manifest,
                                                                                 getattr(p, "seg_split", p.split))
        figure5([load_segmentation_row(manifest, i, smk.input.segmentation) for i in seg_ids], smk.output.fig5)
        log.info("Figure 5 of %d images %s -> %s", len(seg_ids), seg_ids, smk.output.fig5)
    else:
        log.info("Figure 5 skipped (needs output fig5 and input segmentation)")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
