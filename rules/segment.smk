# DeepLab-v2 trained on a Table 2 row's pseudo-labels (paper Sec. 4.2, kazuto1011/deeplab-pytorch), evaluated on
# the segmentation split (VOC val / COCO val) with multi-scale inference and DenseCRF; the VOC test set has no
# public masks, so its predictions are written in the evaluation server's format instead.


rule saliency_labels:
    input:
        labels=lambda wc: pattern("labels", dataset=wc.dataset, row=SALIENCY_ROWS[wc.row], stage=wc.stage,
                                  shard=wc.shard),
    output:
        directory(pattern("labels")),
    wildcard_constraints:
        row="|".join(SALIENCY_ROWS),
        stage=config["deeplab"]["labels_stage"],
    params:
        code=code_version("saliency_labels"),
        dir=config["saliency"]["dir"],
        threshold=config["saliency"]["threshold"],
    log:
        "logs/{dataset}/saliency_labels/{row}/{stage}/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/saliency_labels/{row}/{stage}/shard{shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/saliency_labels.py"


rule train_deeplab:
    input:
        unpack(trunk_input("deeplab")),
        unpack(imagenet_input(config["deeplab"]["model"], "deeplab")),
        unpack(dataset_input("export:images")),
        labels=lambda wc: expand(
            pattern("labels"),
            dataset=wc.dataset,
            row=wc.row,
            stage=config["deeplab"]["labels_stage"],
            shard=SHARDS,
        ),
    output:
        model=pattern("deeplab_model"),
    wildcard_constraints:
        row="|".join(SEG_ROWS),
    params:
        code=code_version("train_deeplab"),
        model=config["deeplab"]["model"],
        train=config["deeplab"]["train"],
        split=config["splits"]["export"],
        seed=config["seed"],
        device=config["device"],
        speed=config["speed"],
    threads: rule_threads("train_deeplab")
    resources:
        gpu=1,
    log:
        "logs/{dataset}/train_deeplab/{row}.log",
    benchmark:
        "benchmarks/{dataset}/train_deeplab/{row}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_deeplab.py"


rule evaluate_deeplab:
    input:
        unpack(dataset_input("eval_seg:images", "eval_seg:masks")),
        model=pattern("deeplab_model"),
    output:
        eval=pattern("deeplab_eval"),
        predictions=directory(pattern("deeplab_predictions")),
    wildcard_constraints:
        row="|".join(SEG_ROWS),
    params:
        code=code_version("evaluate_deeplab"),
        model=config["deeplab"]["model"],
        test=config["deeplab"]["test"],
        split=config["splits"]["eval_seg"],
        device=config["device"],
    threads: rule_threads("evaluate_deeplab")
    resources:
        gpu=1,
    log:
        "logs/{dataset}/evaluate_deeplab/{row}.log",
    benchmark:
        "benchmarks/{dataset}/evaluate_deeplab/{row}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate_deeplab.py"


rule export_voc_test:
    input:
        unpack(dataset_input("test:images")),
        model=pattern("deeplab_model"),
    output:
        pattern("voc_test"),
    wildcard_constraints:
        dataset="voc12",
        row="|".join(SEG_ROWS),
    params:
        code=code_version("evaluate_deeplab"),
        model=config["deeplab"]["model"],
        test=config["deeplab"]["test"],
        split="test",
        device=config["device"],
    threads: rule_threads("evaluate_deeplab")
    resources:
        gpu=1,
    log:
        "logs/{dataset}/export_voc_test/{row}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate_deeplab.py"
