# Checks beyond the paper's tables, on maps already exported (matlabel/sensitivity.py), each cell one job that makes
# Mat-Label's seed on the evaluated split and scores it:
#   the eps grid: the paper's claim that eps_fg / eps_bg are insensitive (Sec. 3.2.2), per (map method, eps_fg, eps_bg);
#   Table 5: which matting method, per (matting Laplacian, label rule), on one method's maps, seed and w/ CRF.


rule eps_cell:
    input:
        unpack(dataset_input("eval_seed:images", "eval_seed:masks")),
        shards=cam_shards,
    output:
        pattern("eps_cell"),
    wildcard_constraints:
        eps_fg=r"[01](\.\d+)?",
        eps_bg=r"[01](\.\d+)?",
    params:
        code=code_version("eps_cell", by="method"),
        split=config["splits"]["eval_seed"],
        matting=config["matting"],
        bg_threshold=lambda wc: method_thresholds(config, config_section(wc.method))["seed"],
    threads: 1
    resources:
        gpu=MATTING_GPU,  # the matting solve on matting.device, as rule matting_labels (routing, GPU slot)
    log:
        "logs/{dataset}/eps_cell/{method}/fg{eps_fg}_bg{eps_bg}.log",
    benchmark:
        "benchmarks/{dataset}/eps_cell/{method}/fg{eps_fg}_bg{eps_bg}.tsv"
    conda:
        ENV
    script:
        "../scripts/eps_cell.py"


rule eps_sensitivity:
    input:
        eps_cells,
    output:
        csv=report(pattern("table", table="eps_sensitivity"), caption="../report/eps_sensitivity.rst",
                   category="Tables"),
        md=pattern("table_md", table="eps_sensitivity"),
        png=report(pattern("figure", figure="eps_sensitivity"), caption="../report/eps_sensitivity.rst",
                   category="Figures"),
    params:
        code=code_version("make_eps_figure"),
        trimap=config["trimap"],  # its (eps_fg, eps_bg) boxed on the grid
    log:
        "logs/{dataset}/eps_sensitivity.log",
    conda:
        ENV
    script:
        "../scripts/make_eps_figure.py"


rule table5_cell:
    input:
        unpack(dataset_input("eval_seed:images", "eval_seed:masks")),
        shards=lambda wc: map_shards(wc.dataset, config["table5"]["maps"]),
    output:
        pattern("table5_cell"),
    wildcard_constraints:
        matting="|".join(LAPLACIANS),
        label_rule="|".join(LABEL_RULES),
    params:
        code=code_version("table5_cell"),
        split=config["splits"]["eval_seed"],
        maps=config["table5"]["maps"],
        trimap=config["trimap"],
        matting=config["matting"],
        crf=config["crf"],
        bg_threshold=method_thresholds(config, config_section(config["table5"]["maps"]))["seed"],
    threads: 1
    resources:
        gpu=MATTING_GPU,  # the matting solve on matting.device, as rule matting_labels (routing, GPU slot)
    log:
        "logs/{dataset}/table5_cell/{matting}_{label_rule}.log",
    benchmark:
        "benchmarks/{dataset}/table5_cell/{matting}_{label_rule}.tsv"
    conda:
        ENV
    script:
        "../scripts/table5_cell.py"


rule table5:
    input:
        evals=expand(
            pattern("table5_cell"),
            matting=config["table5"]["methods"],
            label_rule=config["table5"]["label_rules"],
            allow_missing=True,
        ),
    output:
        csv=report(pattern("table", table="table5"), caption="../report/table5.rst", category="Tables"),
        md=pattern("table_md", table="table5"),
    params:
        code=code_version("make_table"),
        methods=config["table5"]["methods"],
        label_rules=config["table5"]["label_rules"],
        maps=config["table5"]["maps"],
    log:
        "logs/{dataset}/table5.log",
    conda:
        ENV
    script:
        "../scripts/make_table.py"
