"""Rules figure2 / figure5: the paper's Figure 2 (Mat-Label pipeline per image) and Figure 5 (segmentations).

Figure 2's images are params ``ids``, else the first 4 of ``split`` with a class; Figure 5's likewise from the
segmentation split (val), whose predictions rule evaluate_deeplab keeps.
"""
from matlabel import jobs
from matlabel.figures import figure2, figure5, figure_ids, load_pipeline_row, load_segmentation_row


def main(smk):
    log, p, manifest, _ = jobs.start(smk)
    ids = figure_ids(manifest, p.ids, p.split, "figures.ids" if smk.rule == "figure2" else "figures.fig5_ids")
    if smk.rule == "figure2":
        rows = [load_pipeline_row(manifest, i, smk.input.cam, smk.input.d2cam, smk.input.matlabel, p.eps_fg,
                                  p.eps_bg) for i in ids]
        figure2(rows, smk.output[0])
    else:
        figure5([load_segmentation_row(manifest, i, [smk.input.predictions]) for i in ids], smk.output[0])
    log.info("%s of %d images %s -> %s", smk.rule, len(ids), ids, smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
