# Datasets in VOC layout: downloaded and converted (VOC 2012 + SBD, COCO 2014) or synthesised (demo).
# Each ends with resources/<dataset>/dataset.json, the manifest every later stage declares as input, beside the
# content stamps of the splits the stages read (rule dataset_content).


rule synthesize_dataset:
    output:
        manifest=pattern("manifest"),
    wildcard_constraints:
        dataset="synthetic|synthetic_voc",  # the demo's and the VOC-size scale preset's (config/voc-scale.yaml)
    params:
        code=code_version("synthesize_dataset"),
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
        manifest=pattern("manifest", dataset="voc12"),
    params:
        code=code_version("prepare_voc12"),
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
        manifest=pattern("manifest", dataset="coco14"),
    params:
        code=code_version("prepare_coco14"),
    log:
        "logs/prepare_coco14.log",
    benchmark:
        "benchmarks/prepare_coco14.tsv"
    conda:
        ENV
    script:
        "../scripts/prepare_coco14.py"


# The folder of dataset: folder built from PASCAL VOC 2012 trainval (config data.folder.voc_ids, e.g.
# config/voc-photos.yaml): each listed id's JPEG and SegmentationClass PNG, bytes unchanged, from the archive dataset
# voc12 downloads (or an extracted copy, data.folder.voc_dir), with the lists and classes.txt; prepare_folder checks it.
rule voc_subset:
    input:
        unpack(voc_subset_input),
    output:
        directory(SUBSET_ROOT),
    params:
        code=code_version("voc_subset"),
        ids=voc_ids_digest(),  # the lists by content; where they and voc_dir are is read from the config
    log:
        "logs/folder/voc_subset.log",
    benchmark:
        "benchmarks/folder/voc_subset.tsv"
    conda:
        ENV
    script:
        "../scripts/voc_subset.py"


# No input and no root param: the folder's content is followed by the `source` digest (split lists, classes.txt,
# cls_labels.csv, images, masks; paths relative to the root), so a moved or copied folder with the same content
# reruns nothing (the manifest names the link resources/folder/root, relinked while the workflow parses). A folder
# the workflow builds (data.folder.voc_ids) is the one input instead, and `source` is the digest of its id lists.
rule prepare_folder:
    input:
        unpack(folder_build_input),  # only when the workflow builds the folder (rule voc_subset)
    output:
        manifest=pattern("manifest", dataset="folder"),
        labels="resources/folder/cls_labels.json",
    params:
        code=code_version("prepare_folder"),
        source=folder_source(),
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


# What a split's files are (matlabel/datasets/content.py): written here once, then refreshed while the workflow is
# parsed (rules/common/dataset.smk refresh_dataset_stamps), so replacing an image, a mask, a split list or
# cls_labels reruns the rules that read it.
rule dataset_content:
    input:
        manifest=pattern("manifest"),
    output:
        pattern("content"),
    wildcard_constraints:
        split=r"[^/.]+",
        part="|".join(PARTS),
    # no code version: every run recomputes the existing stamps with the current code while it parses and rewrites
    # only those whose digest changed, so a code edit here reruns nothing that the data did not change
    log:
        "logs/{dataset}/dataset_content/{split}.{part}.log",
    conda:
        ENV
    script:
        "../scripts/dataset_content.py"
