"""Rule run_summary: the run's runtimes per rule (from the benchmark files) and the config it used, for the report."""
import yaml

from matlabel import jobs
from matlabel.io import atomic_path, write_text
from matlabel.runtimes import benchmark_summary
from matlabel.tables import to_markdown


def main(smk):
    log = jobs.start(smk).log
    df = benchmark_summary(smk.params.benchmarks)
    with atomic_path(smk.output.runtimes) as tmp:
        df.to_csv(tmp, index=False)
    write_text(smk.output.runtimes_md, to_markdown(df))
    write_text(smk.output.config, yaml.safe_dump(dict(smk.params.config), sort_keys=False))
    log.info("runtimes of %d rules (%.0f s of jobs in all)\n%s", len(df), df["wall_s_total"].sum(), df.to_string())


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
