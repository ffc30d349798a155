"""Rules table1 / table4: collect the eval JSONs of the enabled rows into one of the paper's tables."""
from matlabel import runlog
from matlabel.io import atomic_path, read_json, write_text
from matlabel.tables import build_table1, build_table4, to_markdown


def main(smk):
    log = runlog.start(smk)
    results = [read_json(path) for path in smk.input.evals]
    dataset = smk.wildcards.dataset
    if smk.rule == "table1":
        measured = {(r["method"], r["stage"]): r["miou"] for r in results}
        df = build_table1(measured, smk.params.methods, smk.params.stages, dataset)
    else:  # table4: the inputs are in the order of params.variants
        measured = {v: r["miou"] for v, r in zip(smk.params.variants, results)}
        df = build_table4(measured, smk.params.variants, dataset)
    with atomic_path(smk.output.csv) as tmp:
        df.to_csv(tmp, index=False)
    write_text(smk.output.md, to_markdown(df))
    log.info("\n%s", df.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
