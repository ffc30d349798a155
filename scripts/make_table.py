"""Rules table1 ... table5: collect the eval JSONs of the enabled rows into one of the tables."""
from matlabel import jobs
from matlabel.io import atomic_path, read_json, write_text
from matlabel.labels import count_fallbacks
from matlabel.methods import TABLE4_METHODS
from matlabel.tables import build_table1, build_table2, build_table3, build_table4, build_table5, to_markdown


def main(smk):
    log = jobs.start(smk).log
    results = [read_json(path) for path in smk.input.evals]
    dataset = smk.wildcards.dataset
    floor = read_json(smk.input.floor)["miou"] if "floor" in smk.input.keys() else None
    if smk.rule == "table1":
        measured = {(r["method"], r["stage"]): r["miou"] for r in results}
        seeds = {}  # results/<ds>/rows/<row>/seed/shard<k> of the matting rows
        for path in smk.input.seeds:
            seeds.setdefault(path.split("/")[-3], []).append(path)
        df = build_table1(measured, smk.params.methods, smk.params.stages, dataset, floor,
                          failures={row: count_fallbacks(dirs) for row, dirs in seeds.items()})
    elif smk.rule == "table2":
        # results/<ds>/rows/<row>/deeplab/voc12_test.tar
        archives = {path.split("/")[-3]: path for path in smk.input.get("test", [])}
        df = build_table2({r["method"]: r["miou"] for r in results}, smk.params.methods, dataset, archives,
                          floor)
    elif smk.rule == "table3":
        df = build_table3({r["method"]: r["miou"] for r in results}, smk.params.methods, dataset)
    elif smk.rule == "table5":
        df = build_table5(results, smk.params.methods, smk.params.label_rules, dataset, smk.params.maps)
    else:  # table4: each variant's row is the seed evaluation of the method that trains it
        by_method = {r["method"]: r["miou"] for r in results}
        measured = {v: by_method[TABLE4_METHODS[v]] for v in smk.params.variants if TABLE4_METHODS[v] in by_method}
        df = build_table4(measured, smk.params.variants, dataset)
    with atomic_path(smk.output.csv) as tmp:
        df.to_csv(tmp, index=False)
    write_text(smk.output.md, to_markdown(df))
    log.info("\n%s", df.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
