# Pseudo-labels of the Table 1 rows (matlabel/labels.py SOURCES), one job per image shard:
#   seed  = a method's maps -> labels (threshold: CAM-style; matting: Mat-Label's trimap + KNN matting)
#   crf   = DenseCRF on a row's seeds
# and their evaluation on the eval split, under results/<dataset>/rows/<row>/ (matlabel/paths.py). {row} names a
# Table 1 row; its maps
# come from SOURCES[row][0]. The tables take a threshold row's seed score from its maps' evaluation (rule
# evaluate_cams, with the threshold sweep; rules/common/inputs.smk row_eval).


rule threshold_labels:
    input:
        unpack(dataset_input("export:images")),
        cams=row_maps,
    output:
        directory(pattern("labels", stage="seed")),
    wildcard_constraints:
        row="|".join(THRESHOLD_ROWS),
    params:
        code=code_version("make_labels", by="row"),
        labeler="threshold",
        split=config["splits"]["export"],
        n_shards=N_SHARDS,
        bg_threshold=lambda wc: row_thresholds(wc)["seed"],
    threads: 1
    log:
        "logs/{dataset}/threshold_labels/{row}/shard{shard}.log",
    conda:
        ENV
    script:
        "../scripts/make_labels.py"


rule matting_labels:
    input:
        unpack(dataset_input("export:images")),
        cams=row_maps,
    output:
        directory(pattern("labels", stage="seed")),
    wildcard_constraints:
        row="|".join(MATTING_ROWS),
    params:
        code=code_version("make_labels", by="row"),
        labeler="matting",
        split=config["splits"]["export"],
        n_shards=N_SHARDS,
        trimap=config["trimap"],
        matting=config["matting"],
        bg_threshold=lambda wc: row_thresholds(wc)["seed"],  # the threshold seed an image falls back to
    threads: rule_threads("matting_labels")
    resources:
        gpu=MATTING_GPU,  # 1 with matting.device: cuda (and then the GPU partition under a cluster profile)
    log:
        "logs/{dataset}/matting_labels/{row}/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/matting_labels/{row}/shard{shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/make_labels.py"


rule crf_labels:
    input:
        unpack(dataset_input("export:images")),
        seed=pattern("labels", stage="seed"),
        cams=row_maps,  # crf.unary: score
    output:
        directory(pattern("labels", stage="crf")),
    wildcard_constraints:
        row="|".join(LABEL_ROWS),
    params:
        code=code_version("crf_labels", by="row"),
        labeler=lambda wc: SOURCES[wc.row][1],
        split=config["splits"]["export"],
        n_shards=N_SHARDS,
        crf=config["crf"],
    threads: rule_threads("crf_labels")
    log:
        "logs/{dataset}/crf_labels/{row}/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/crf_labels/{row}/shard{shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/crf_labels.py"


rule evaluate_labels:
    input:
        unpack(dataset_input("eval_seed:masks")),
        shards=lambda wc: expand(
            pattern("labels"),
            dataset=wc.dataset,
            row=wc.row,
            stage=wc.stage,
            shard=range(N_SHARDS),
        ),
    output:
        pattern("labels_eval"),
    wildcard_constraints:
        row="|".join(LABEL_ROWS),
        stage="|".join(STAGES),
    params:
        code=code_version("evaluate_labels"),
        split=config["splits"]["eval_seed"],
    threads: 1
    log:
        "logs/{dataset}/evaluate_labels/{row}/{stage}.log",
    benchmark:
        "benchmarks/{dataset}/evaluate_labels/{row}/{stage}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate_labels.py"


# The floor of Tables 1 and 2: every pixel labelled background, scored on a split like any row.
rule evaluate_floor:
    input:
        unpack(dataset_input("{split}:masks")),
    output:
        pattern("floor"),
    params:
        code=code_version("evaluate_floor"),
    threads: 1
    log:
        "logs/{dataset}/evaluate_floor/{split}.log",
    benchmark:
        "benchmarks/{dataset}/evaluate_floor/{split}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate_floor.py"

