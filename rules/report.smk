# The paper's tables: our measured numbers beside the paper's, one CSV (+ Markdown) per table.


rule table1:
    input:
        evals=expand(
            "results/{{dataset}}/{method}/{stage}/eval.json",
            method=config["table1"]["methods"],
            stage=config["table1"]["stages"],
        ),
    output:
        csv=report("results/{dataset}/table1.csv", caption="../report/table1.rst", category="Tables"),
        md="results/{dataset}/table1.md",
    params:
        code=code_version("tables.py"),
        methods=config["table1"]["methods"],
        stages=config["table1"]["stages"],
    log:
        "logs/{dataset}/table1.log",
    conda:
        ENV
    script:
        "../scripts/make_table.py"


rule table4:
    input:
        evals=expand(
            "results/{{dataset}}/{method}/seed/eval.json",
            method=[TABLE4_METHODS[v] for v in config["table4"]["variants"]],
        ),
    output:
        csv=report("results/{dataset}/table4.csv", caption="../report/table4.rst", category="Tables"),
        md="results/{dataset}/table4.md",
    params:
        variants=config["table4"]["variants"],
        code=code_version("tables.py"),
    log:
        "logs/{dataset}/table4.log",
    conda:
        ENV
    script:
        "../scripts/make_table.py"


rule configured_dataset_table:
    input:
        csv=f"results/{DATASET}/{{table}}.csv",
        md=f"results/{DATASET}/{{table}}.md",
    output:
        csv="results/{table}.csv",
        md="results/{table}.md",
    log:
        "logs/configured_dataset_{table}.log",
    conda:
        ENV
    shell:
        "(cp {input.csv} {output.csv}.tmp && mv {output.csv}.tmp {output.csv} && "
        "cp {input.md} {output.md}.tmp && mv {output.md}.tmp {output.md}) > {log} 2>&1"
