# Classifier training, multi-scale map export (one job per image shard) and the maps' seed evaluation (background
# threshold + its sweep: the seed score of the threshold rows), all under results/<dataset>/maps/<method>/
# (matlabel/paths.py).
# {method} is a map-producing method (matlabel/methods.py METHODS) sharing these rules.


rule train_classifier:
    input:
        unpack(init_model),
        unpack(imagenet_input(config["backbone"])),
        unpack(dataset_input("train_classifier:images")),
    output:
        model=pattern("model"),
    params:
        code=code_version("train_classifier", by="method"),
        train=lambda wc: config[config_section(wc.method)],
        backbone=config["backbone"],
        augment=config["augment"],
        split=config["splits"]["train_classifier"],
        seed=config["seed"],
        device=config["device"],
        speed=config["speed"],
    threads: rule_threads("train_classifier")
    resources:
        gpu=1,
    log:
        "logs/{dataset}/train_classifier/{method}.log",
    benchmark:
        "benchmarks/{dataset}/train_classifier/{method}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_classifier.py"


rule export_cams:
    input:
        unpack(dataset_input("export:images")),
        model=pattern("model"),
    output:
        directory(pattern("maps")),
    params:
        code=code_version("export_cams", by="method"),
        split=config["splits"]["export"],
        n_shards=N_SHARDS,
        backbone=config["backbone"],
        scales=config["export"]["scales"],
        flip=config["export"]["flip"],
        border_pad=config["export"]["border_pad"],  # export only: changing it re-exports, never retrains
        device=config["device"],
    threads: rule_threads("export_cams")
    resources:
        gpu=1,
    log:
        "logs/{dataset}/export_cams/{method}/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/export_cams/{method}/shard{shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/export_cams.py"


rule evaluate_cams:
    input:
        unpack(dataset_input("eval_seed:masks")),
        shards=cam_shards,
    output:
        pattern("maps_eval"),
    params:
        code=code_version("evaluate_cams", by="method"),
        split=config["splits"]["eval_seed"],
        bg_threshold=lambda wc: method_thresholds(config, config_section(wc.method))["seed"],
        sweep=config["evaluate"]["bg_threshold_sweep"],
    threads: 1
    log:
        "logs/{dataset}/evaluate_cams/{method}.log",
    benchmark:
        "benchmarks/{dataset}/evaluate_cams/{method}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate_cams.py"
