# IRN refinement of each Table 1 row (paper Sec. 4.2: "we retrain the IRN ... using the initialized
# pseudo-labels we generated"): confident regions of the row's maps (threshold rows) or alphas (matting rows),
# one IRN trained per row, then the random walk per shard -> the "w/ IRN" pseudo-labels.


rule ir_labels:
    input:
        unpack(row_seed_inputs),
        unpack(dataset_input("export:images")),
    output:
        directory(pattern("ir_label")),
    wildcard_constraints:
        row="|".join(LABEL_ROWS),
    params:
        code=code_version("ir_labels", by="row"),
        labeler=lambda wc: SOURCES[wc.row][1],
        split=config["splits"]["export"],
        n_shards=N_SHARDS,
        confident=confident_thresholds,
        crf=config["irn"]["crf"],
    threads: 1
    log:
        "logs/{dataset}/ir_labels/{row}/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/ir_labels/{row}/shard{shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/ir_labels.py"


rule train_irn:
    input:
        unpack(trunk_input("irn")),
        unpack(imagenet_input(config["backbone"], "irn")),
        unpack(dataset_input("export:images")),
        labels=lambda wc: expand(
            pattern("ir_label"), dataset=wc.dataset, row=wc.row, shard=SHARDS
        ),
    output:
        model=pattern("irn_model"),
    wildcard_constraints:
        row="|".join(LABEL_ROWS),
    params:
        code=code_version("train_irn", by="row"),
        train=config["irn"]["train"],
        backbone=config["backbone"],
        split=config["splits"]["export"],
        seed=config["seed"],
        device=config["device"],
        speed=config["speed"],
    threads: rule_threads("train_irn")
    resources:
        gpu=1,
    log:
        "logs/{dataset}/train_irn/{row}.log",
    benchmark:
        "benchmarks/{dataset}/train_irn/{row}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_irn.py"


rule random_walk:
    input:
        unpack(row_seed_inputs),
        unpack(dataset_input("export:images")),
        model=pattern("irn_model"),
    output:
        directory(pattern("labels", stage="irn")),
    wildcard_constraints:
        row="|".join(LABEL_ROWS),
    params:
        code=code_version("random_walk", by="row"),
        labeler=walk_source,  # what the walk propagates: the method's maps or the row's alphas
        split=config["splits"]["export"],
        n_shards=N_SHARDS,
        backbone=config["backbone"],
        radius=config["irn"]["train"]["radius"],
        walk=walk_settings,
        device=config["device"],
    threads: rule_threads("random_walk")
    resources:
        gpu=1,
    log:
        "logs/{dataset}/random_walk/{row}/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/random_walk/{row}/shard{shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/random_walk.py"
