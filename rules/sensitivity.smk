# The paper's claim that eps_fg / eps_bg are insensitive (Sec. 3.2.2), checked on a grid (matlabel/sensitivity.py):
# one job per (map method, eps_fg, eps_bg) cell makes Mat-Label's seed on the evaluated split from the maps the
# method already exported and scores it; a table and a figure gather the grid.


rule eps_cell:
    input:
        unpack(dataset_input("eval_seed:images", "eval_seed:masks")),
        shards=cam_shards,
    output:
        "results/{dataset}/eps_sensitivity/{method}/fg{eps_fg}_bg{eps_bg}.json",
    wildcard_constraints:
        eps_fg=r"[01](\.\d+)?",
        eps_bg=r"[01](\.\d+)?",
    params:
        code=code_version("eps_cell", by="method"),
        split=config["splits"]["eval_seed"],
        matting=config["matting"],
        bg_threshold=lambda wc: method_thresholds(config, config_section(wc.method))["seed"],
    threads: 1
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
        csv=report("results/{dataset}/eps_sensitivity.csv", caption="../report/eps_sensitivity.rst", category="Tables"),
        md="results/{dataset}/eps_sensitivity.md",
        png=report("results/{dataset}/figures/eps_sensitivity.png", caption="../report/eps_sensitivity.rst",
                   category="Figures"),
    params:
        code=code_version("make_eps_figure"),
    log:
        "logs/{dataset}/eps_sensitivity.log",
    conda:
        ENV
    script:
        "../scripts/make_eps_figure.py"
