"""Rule eps_sensitivity: the grid of seed mIoU over (eps_fg, eps_bg) per map method, as a table and a figure."""
from matlabel import jobs
from matlabel.io import atomic_path, read_json, write_text
from matlabel.figures import eps_sensitivity_figure
from matlabel.sensitivity import grid_table
from matlabel.tables import to_markdown

LABELS = {"cam": "CAM maps", "d2cam": "D2CAM maps", "recam": "ReCAM maps"}


def main(smk):
    job = jobs.start(smk)
    log, p = job.log, job.params
    cells = {}
    for path in smk.input:
        cell = read_json(path)
        cells.setdefault(cell["method"], []).append(cell)
    df = grid_table(cells)
    with atomic_path(smk.output.csv) as tmp:
        df.to_csv(tmp, index=False)
    write_text(smk.output.md, to_markdown(df))
    eps_sensitivity_figure(df, smk.output.png, labels=LABELS, marked=(p.trimap["eps_fg"], p.trimap["eps_bg"]))
    log.info("\n%s", df.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
