"""Rule eps_cell: Mat-Label's seed mIoU at one (eps_fg, eps_bg) of the sensitivity grid, from a method's maps."""
from tqdm import tqdm

from matlabel import jobs
from matlabel.io import write_json
from matlabel.labels import MattingConfig
from matlabel.sensitivity import eps_cell


def main(smk):
    log, p, manifest, ids = jobs.start(smk)
    wc = smk.wildcards
    cfg = MattingConfig.from_config({"eps_fg": float(wc.eps_fg), "eps_bg": float(wc.eps_bg)}, p.matting)
    if not cfg.eps_bg < cfg.eps_fg:
        raise ValueError(f"eps_sensitivity grid cell eps_fg={cfg.eps_fg}, eps_bg={cfg.eps_bg}: eps_bg must be below "
                         "eps_fg (paper Eq. 9); fix config eps_sensitivity")
    log.info("%s maps, eps_fg %s, eps_bg %s: %d images of %s", wc.method, wc.eps_fg, wc.eps_bg, len(ids), p.split)
    result = eps_cell(manifest, ids, smk.input.shards, cfg, p.bg_threshold,
                      progress=lambda x: tqdm(x, desc=f"{wc.method} {wc.eps_fg}/{wc.eps_bg}", mininterval=5))
    result.update(method=wc.method, split=p.split, dataset=manifest.name)
    log.info("seed mIoU %.2f (unknown share %s, %d matting failures)", result["miou"], result["mean_unknown_share"],
             result["failures"])
    write_json(smk.output[0], result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
