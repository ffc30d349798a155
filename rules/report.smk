# The paper's tables: our measured numbers beside the paper's, one CSV (+ Markdown) per table.


rule table1:
    input:
        evals=lambda wc: [
            row_eval(wc.dataset, row, stage)
            for row in config["table1"]["methods"]
            for stage in config["table1"]["stages"]
        ],
        floor=pattern("floor", split=config["splits"]["eval_seed"]),
        seeds=lambda wc: [  # their shard.json: the images whose matting failed (column matting_failures)
            pattern("labels", dataset=wc.dataset, row=row, stage="seed", shard=shard)
            for row in config["table1"]["methods"]
            if SOURCES[row][1] == "matting"
            for shard in range(N_SHARDS)
        ],
    output:
        csv=report(pattern("table", table="table1"), caption="../report/table1.rst", category="Tables"),
        md=pattern("table_md", table="table1"),
    params:
        code=code_version("make_table"),
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
            pattern("maps_eval"),
            method=[TABLE4_METHODS[v] for v in config["table4"]["variants"]],
            allow_missing=True,
        ),
    output:
        csv=report(pattern("table", table="table4"), caption="../report/table4.rst", category="Tables"),
        md=pattern("table_md", table="table4"),
    params:
        variants=config["table4"]["variants"],
        code=code_version("make_table"),
    log:
        "logs/{dataset}/table4.log",
    conda:
        ENV
    script:
        "../scripts/make_table.py"


rule table2:
    input:
        evals=lambda wc: deeplab_evals(wc, "table2"),
        test=voc_test_archives,
        floor=pattern("floor", split=config["splits"]["eval_seg"]),
    output:
        csv=report(pattern("table", table="table2"), caption="../report/table2.rst", category="Tables"),
        md=pattern("table_md", table="table2"),
    params:
        code=code_version("make_table"),
        methods=config["table2"]["methods"],
    log:
        "logs/{dataset}/table2.log",
    conda:
        ENV
    script:
        "../scripts/make_table.py"


rule table3:
    input:
        evals=lambda wc: deeplab_evals(wc, "table3"),
    output:
        csv=report(pattern("table", table="table3"), caption="../report/table3.rst", category="Tables"),
        md=pattern("table_md", table="table3"),
    params:
        code=code_version("make_table"),
        methods=config["table3"]["methods"],
    log:
        "logs/{dataset}/table3.log",
    conda:
        ENV
    script:
        "../scripts/make_table.py"


rule configured_dataset_table:
    input:
        csv=pattern("table", dataset=DATASET),
        md=pattern("table_md", dataset=DATASET),
    output:
        csv=configured(pattern("table")),
        md=configured(pattern("table_md")),
    log:
        "logs/configured_dataset_{table}.log",
    conda:
        ENV
    shell:
        "(cp {input.csv} {output.csv}.tmp && mv {output.csv}.tmp {output.csv} && "
        "cp {input.md} {output.md}.tmp && mv {output.md}.tmp {output.md}) > {log} 2>&1"


rule figure2:
    input:
        unpack(dataset_input("eval_seed:images", "eval_seed:masks")),
        cam=lambda wc: map_shards(wc.dataset, "cam"),
        d2cam=lambda wc: map_shards(wc.dataset, "d2cam"),
        matlabel=expand(pattern("labels", row="matlabel", stage="seed"), shard=SHARDS, allow_missing=True),
    output:
        report(pattern("figure", figure="fig2"), caption="../report/fig2.rst", category="Figures"),
    params:
        code=code_version("make_figures"),
        ids=config["figures"]["ids"],
        split=config["splits"]["eval_seed"],
        eps_fg=config["trimap"]["eps_fg"],
        eps_bg=config["trimap"]["eps_bg"],
    log:
        "logs/{dataset}/figure2.log",
    conda:
        ENV
    script:
        "../scripts/make_figures.py"


rule figure5:
    input:
        unpack(dataset_input("eval_seg:images", "eval_seg:masks")),
        predictions=pattern("deeplab_predictions", row=config["figures"]["fig5_row"]),
    output:
        report(pattern("figure", figure="fig5"), caption="../report/fig5.rst", category="Figures"),
    params:
        code=code_version("make_figures"),
        ids=config["figures"]["fig5_ids"],
        split=config["splits"]["eval_seg"],
    log:
        "logs/{dataset}/figure5.log",
    conda:
        ENV
    script:
        "../scripts/make_figures.py"


rule gallery:
    input:
        unpack(dataset_input("eval_seed:images", "eval_seed:masks")),
        unpack(gallery_inputs),
    output:
        report(
            directory(pattern("gallery")),
            patterns=[r"{rank,\d+}_{image}.png"],
            caption="../report/gallery.rst",
            category="Gallery",
            labels={"rank": "{rank}", "image": "{image}"},
        ),
    params:
        code=code_version("make_gallery"),
        rows=config["table1"]["methods"],
        stages=GALLERY_STAGES,
        rank_stage=config["gallery"]["stage"],
        rank_by=config["gallery"]["rank_by"],
        images=config["gallery"]["images"],
        split=config["splits"]["eval_seed"],
        eps_fg=config["trimap"]["eps_fg"],
        eps_bg=config["trimap"]["eps_bg"],
    log:
        "logs/{dataset}/gallery.log",
    benchmark:
        "benchmarks/{dataset}/gallery.tsv"
    conda:
        ENV
    script:
        "../scripts/make_gallery.py"


rule run_summary:
    input:
        # the paper's outputs of this run (Table 4's ablation is optional): the summary is made after them
        tables=expand(pattern("table"), table=["table1", "table2", "table3"], allow_missing=True),
        figures=expand(pattern("figure"), figure=["fig2", "fig5"], allow_missing=True),
        gallery=pattern("gallery"),
    output:
        runtimes=report(pattern("table", table="runtimes"), caption="../report/runtimes.rst", category="Run"),
        runtimes_md=pattern("table_md", table="runtimes"),
        config=report(pattern("run_config"), caption="../report/config.rst", category="Run"),
    params:
        code=code_version("run_summary"),
        benchmarks=lambda wc: f"benchmarks/{wc.dataset}",
        config=config,
    log:
        "logs/{dataset}/run_summary.log",
    conda:
        ENV
    script:
        "../scripts/run_summary.py"


rule configured_dataset_summary:
    input:
        pattern("results", dataset=DATASET),
    output:
        configured(pattern("results")),
    wildcard_constraints:
        name="runtimes.csv|runtimes.md|config.yaml|eps_sensitivity.csv|eps_sensitivity.md",
    log:
        "logs/configured_dataset_{name}.log",
    conda:
        ENV
    shell:
        "(cp {input} {output}.tmp && mv {output}.tmp {output}) > {log} 2>&1"


rule configured_dataset_figure:
    input:
        pattern("figure", dataset=DATASET),
    output:
        configured(pattern("figure")),
    log:
        "logs/configured_dataset_{figure}.log",
    conda:
        ENV
    shell:
        "(cp {input} {output}.tmp && mv {output}.tmp {output}) > {log} 2>&1"


rule configured_dataset_gallery:
    input:
        pattern("gallery", dataset=DATASET),
    output:
        directory(configured(pattern("gallery"))),
    log:
        "logs/configured_dataset_gallery.log",
    conda:
        ENV
    shell:
        "(rm -rf {output}.tmp && cp -r {input} {output}.tmp && mv {output}.tmp {output}) > {log} 2>&1"
