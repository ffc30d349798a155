# Mat-Label (ICCV 2023): pseudo-labels for weakly supervised semantic segmentation by image matting.
#   snakemake results/table1.csv --cores 16 --resources gpu=1               # the paper's VOC 2012 setting
#   snakemake results/table1.csv --cores 2 --configfile config/demo.yaml    # synthetic demo on CPU
#   snakemake results/table4.csv --cores 16 --resources gpu=1               # D2CAM ablation (Table 4)
#   snakemake results/runtimes.csv ... && snakemake results/runtimes.csv ... --report results/report.html
# The data flow, stage by stage, is in docs/layout.md; each stage is one file under rules/.
#
# Paths: each file a rule writes under results/ and resources/<dataset>/ is named once, in matlabel/paths.py (its
# table: results/README.md, written by scripts/render_paths.py); the rules take their inputs and outputs from there.
# A threshold row (cam, recam, d2cam) labels the maps of the method of its name; the tables take its seed score from
# maps/<method>/eval.json (with the sweep), its other stages from rows/<row>/ (rules/common/inputs.smk row_eval).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common/config.smk"
include: "rules/common/code.smk"
include: "rules/common/dataset.smk"
include: "rules/common/inputs.smk"
include: "rules/common/gpu.smk"


# Before Snakemake plans the jobs: the content stamps of earlier runs brought up to date with the dataset's files.
refresh_dataset_stamps()


include: "rules/data.smk"
include: "rules/cam.smk"
include: "rules/labels.smk"
include: "rules/irn.smk"
include: "rules/segment.smk"
include: "rules/report.smk"
include: "rules/sensitivity.smk"


rule all:
    default_target: True
    input:
        "results/table1.csv",
        "results/table2.csv",
        "results/table3.csv",
        "results/table4.csv",
        "results/table5.csv",
        "results/figures/fig2.png",
        "results/figures/fig5.png",
        "results/figures/eps_sensitivity.png",
        "results/gallery",
        "results/runtimes.csv",


# Last, after every rule: under a cluster profile, each rule that asks for a GPU (its `resources: gpu`) runs on the
# GPU partition (config slurm.gpu_partition; a profile's set-resources for a rule still wins; rules/common/gpu.smk).
route_gpu_rules(workflow.rules, config["slurm"], workflow.resource_settings.overwrite_resources)
