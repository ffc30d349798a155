"""Rule table5_cell: Mat-Label's seed (and w/ CRF) with one matting Laplacian and one label rule (Table 5)."""
from tqdm import tqdm

from matlabel import jobs
from matlabel.crf import CRFParams
from matlabel.io import write_json
from matlabel.labels import MattingConfig
from matlabel.sensitivity import seed_cell


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    wc = smk.wildcards
    cfg = MattingConfig.from_config(p.trimap, {**p.matting, "method": wc.matting, "label_rule": wc.label_rule})
    crf = CRFParams.from_mapping(dict(p.crf))
    log.info("%s matting, %s labels, on %s maps: %d images of %s", wc.matting, wc.label_rule, p.maps, len(ids), p.split)
    result = seed_cell(manifest, ids, smk.input.shards, cfg, p.bg_threshold, crf_params=crf,
                       progress=lambda x: tqdm(x, desc=f"{wc.matting} {wc.label_rule}", mininterval=5))
    result.update(maps=p.maps, split=p.split, dataset=manifest.name)
    log.info("seed %.2f, w/ CRF %.2f, %.3f s per image, unknown share %s, %d failures", result["miou"],
             result["miou_crf"], result["seconds_per_image"], result["mean_unknown_share"], result["failures"])
    write_json(smk.output[0], result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
