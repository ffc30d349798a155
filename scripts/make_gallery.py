"""Rule gallery: one page per image of the evaluated split, worst first (matlabel/gallery.py).

Ranks every image of ``split`` by the mean over rows of its per-image mIoU at ``rank_stage`` and draws the first
``images``: the photo, the ground truth, and per Table 1 row its maps, trimap, alpha and labels at each stage. The
input names ``maps_<row>`` and ``<row>_<stage>`` list that row's shard folders (rules/report.smk gallery_inputs).
"""
from matlabel import jobs
from matlabel.gallery import RowFiles, make_gallery
from matlabel.labels import SOURCES


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    rows = [RowFiles(row, SOURCES[row][1], list(getattr(smk.input, f"maps_{row}")),
                     {stage: list(getattr(smk.input, f"{row}_{stage}")) for stage in p.stages}) for row in p.rows]
    table = make_gallery(manifest, ids, rows, p.stages, p.rank_stage, p.images, smk.output[0], p.rank_by,
                         eps_fg=p.eps_fg, eps_bg=p.eps_bg)
    shown = table.head(p.images)
    log.info("gallery of %d of %d images of %s, ranked by %s mIoU; worst: %s", len(shown), len(table), p.split,
             p.rank_stage, ", ".join(f"{i} ({s:.1f})" for i, s in zip(shown["image"][:5], shown["score"][:5])))
    log.info("-> %s", smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
