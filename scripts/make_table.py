"""Rule table1: collect the eval JSONs of the enabled methods and stages into the paper's Table 1."""
from matlabel import runlog
from matlabel.io import atomic_path, read_json, write_text
from matlabel.tables import build_table1, to_markdown


def main(smk):
    log = runlog.start(smk)
    measured = {}
    for path in smk.input.evals:
        r = read_json(path)
        measured[(r["method"], r["stage"])] = r["miou"]
    df = build_table1(measured, smk.params.methods, smk.params.stages, smk.wildcards.dataset)
    with atomic_path(smk.output.csv) as tmp:
        df.to_csv(tmp, index=False)
    write_text(smk.output.md, to_markdown(df))
    log.info("\n%s", df.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
