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


rule table1_configured_dataset:
    input:
        csv=f"results/{DATASET}/table1.csv",
        md=f"results/{DATASET}/table1.md",
    output:
        csv="results/table1.csv",
        md="results/table1.md",
    log:
        "logs/table1_configured_dataset.log",
    conda:
        ENV
    shell:
        "(cp {input.csv} {output.csv}.tmp && mv {output.csv}.tmp {output.csv} && "
        "cp {input.md} {output.md}.tmp && mv {output.md}.tmp {output.md}) > {log} 2>&1"
