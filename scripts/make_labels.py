"""Rules threshold_labels / matting_labels: one shard of a Table 1 row's seed pseudo-labels.

Writes ``{id}.png`` (palette label map) per image, ``{id}_alpha.npz`` (uint8 alphas of the present classes)
for the matting labeler, and ``shard.json`` (counts, trimap shares, failures, the solver's CG steps per image:
mean and largest). The log ends with the matting's seconds per image. An image whose matting fails
(matting.MattingFailure: solver not converged, non-finite alphas) falls back to its threshold seed and is listed
under "failures" in shard.json, so one bad image never takes down a shard; but a shard in which every image with a
class failed stops (labels.require_matting_results), as does any other error (a matting.device torch cannot use is
refused before the first image). Classes whose trimap has no foreground or no background pixel are listed under
"degenerate_trimaps" (their alphas are defined, see matting.knn_matting).
"""
import time

import numpy as np
from tqdm import tqdm

from matlabel import jobs
from matlabel.formats import ALPHAS_SUFFIX, MAPS_SUFFIX, read_maps, write_alphas
from matlabel.io import atomic_dir, read_image, write_json, write_label_png
from matlabel.labels import MattingConfig, matting_seed, require_matting_results, threshold_labels
from matlabel.shards import find_in_shards

def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    matting = MattingConfig.from_config(p.trimap, p.matting) if p.labeler == "matting" else None
    summary = {"labeler": p.labeler, "n_images": len(ids), "failures": {}, "degenerate_trimaps": {},
               "unknown_share": []}
    if matting is not None:
        matting.check_device()
    cg_steps, seconds, n_matted = [], 0.0, 0
    log.info("%s labels of %d images (shard %s) from %s", p.labeler, len(ids), smk.wildcards.shard, smk.input.cams)
    with atomic_dir(smk.output[0]) as tmp:
        for image_id in tqdm(ids, desc=f"{p.labeler} shard {smk.wildcards.shard}", mininterval=5):
            cams, classes = read_maps(find_in_shards([smk.input.cams], image_id, MAPS_SUFFIX))
            if matting is None:
                labels = threshold_labels(cams, classes, p.bg_threshold)
            else:
                image = read_image(manifest.image_path(image_id))
                n_matted += len(classes) > 0
                start = time.perf_counter()
                labels, alphas, info, error = matting_seed(image, cams, classes, matting, p.bg_threshold)
                seconds += time.perf_counter() - start
                if error:
                    log.warning("%s: matting failed (%s); using its threshold seed", image_id, error)
                    summary["failures"][image_id] = error
                else:  # a failed write (a full disk) stops the shard: it is no matting failure
                    summary["unknown_share"].append(info["unknown"])
                    cg_steps.append(info["cg_iterations"])
                    if info["degenerate"]:
                        summary["degenerate_trimaps"][image_id] = info["degenerate"]
                    write_alphas(tmp / f"{image_id}{ALPHAS_SUFFIX}", alphas, classes)
            write_label_png(tmp / f"{image_id}.png", labels)
        require_matting_results(summary["failures"], n_matted, f"shard {smk.output[0]}")
        shares = summary.pop("unknown_share")
        if shares:
            summary["mean_unknown_share"] = float(np.mean(shares))
        if cg_steps:  # the step counts are deterministic; the seconds go to the log only
            summary["cg_iterations"] = {"mean": round(float(np.mean(cg_steps)), 1), "max": int(max(cg_steps))}
        write_json(tmp / "shard.json", summary)
    log.info("done: %s", summary | {k: len(summary[k]) for k in ("failures", "degenerate_trimaps")})
    if matting is not None and ids:
        log.info("matting: %.3f s per image (trimaps, Laplacian, solve, labels)", seconds / len(ids))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
