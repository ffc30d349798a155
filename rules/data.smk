# Datasets in VOC layout: downloaded and converted (VOC 2012 + SBD, COCO 2014) or synthesised (demo).
# Each ends with resources/<dataset>/dataset.json, the manifest every later stage declares as input.


rule synthesize_dataset:
    output:
        manifest="resources/{dataset}/dataset.json",
    wildcard_constraints:
        dataset="synthetic|synthetic_voc",  # the demo's and the VOC-size scale preset's (config/voc-scale.yaml)
    params:
        code=code_version("datasets/synthetic.py", "datasets/layout.py"),
        synthetic=config.get("data", {}).get("synthetic", {}),
    log:
        "logs/{dataset}/synthesize_dataset.log",
    benchmark:
        "benchmarks/{dataset}/synthesize_dataset.tsv"
    conda:
        ENV
    script:
        "../scripts/synthesize_dataset.py"


rule download_archive:
    output:
        "resources/downloads/{filename}",
    params:
        name=lambda wc: archive_by_filename(wc.filename),
        url=lambda wc: archive_url(archive_by_filename(wc.filename)),
    log:
        "logs/download/{filename}.log",
    conda:
        ENV
    script:
        "../scripts/download_archive.py"


rule imagenet_weights:
    output:
        "resources/weights/{file}",
    wildcard_constraints:
        file=r"resnet\d+-[0-9a-f]+\.pth",
    params:
        url=lambda wc: config.get("data", {}).get("url_overrides", {}).get(wc.file, ""),
    log:
        "logs/weights/{file}.log",
    conda:
        ENV
    script:
        "../scripts/fetch_weights.py"


rule prepare_voc12:
    input:
        voc=archive_path("voc2012_trainval"),
        sbd=archive_path("sbd"),
    output:
        manifest="resources/voc12/dataset.json",
    params:
        code=code_version("datasets/voc12.py", "datasets/download.py"),
    log:
        "logs/prepare_voc12.log",
    benchmark:
        "benchmarks/prepare_voc12.tsv"
    conda:
        ENV
    script:
        "../scripts/prepare_voc12.py"


rule prepare_coco14:
    input:
        train=archive_path("coco2014_train"),
        val=archive_path("coco2014_val"),
        annotations=archive_path("coco2014_annotations"),
    output:
        manifest="resources/coco14/dataset.json",
    params:
        code=code_version("datasets/coco14.py", "datasets/download.py"),
    log:
        "logs/prepare_coco14.log",
    benchmark:
        "benchmarks/prepare_coco14.tsv"
    conda:
        ENV
    script:
        "../scripts/prepare_coco14.py"


rule prepare_folder:
    input:
        unpack(folder_inputs),
    output:
        manifest="resources/folder/dataset.json",
        labels="resources/folder/cls_labels.json",
    params:
        code=code_version("datasets/folder.py", "datasets/layout.py"),
        root=folder_config().get("root"),
        classes=folder_config().get("classes"),
        max_side=folder_config().get("max_side"),
        splits=config["splits"],  # max_errors is read from the config: no rerun for it
    log:
        "logs/folder/prepare_folder.log",
    benchmark:
        "benchmarks/folder/prepare_folder.tsv"
    conda:
        ENV
    script:
        "../scripts/prepare_folder.py"
