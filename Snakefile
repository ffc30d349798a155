# Mat-Label (ICCV 2023): pseudo-labels for weakly supervised semantic segmentation by image matting.
#   snakemake results/table1.csv --cores 16 --resources gpu=1               # the paper's VOC 2012 setting
#   snakemake results/table1.csv --cores 2 --configfile config/demo.yaml    # synthetic demo on CPU
#   snakemake results/table4.csv --cores 16 --resources gpu=1               # D2CAM ablation (Table 4)
#   snakemake results/runtimes.csv ... && snakemake results/runtimes.csv ... --report results/report.html
# The data flow, stage by stage, is in docs/layout.md; each stage is one file under rules/.
#
# Paths (<ds> the dataset; <method> a map method: cam, recam, d2cam, d2cam_<variant>; <row> a Table 1/2 row: cam,
# recam, d2cam, matlabel_recam, matlabel, matlabel_is; <k> a shard):
#   resources/<ds>/dataset.json, resources/<ds>/content/<split>.{images,masks}.json   the dataset and its stamps
#   results/<ds>/<method>/model.pt, <method>/cams/shard<k>/<id>.npz               a classifier and its maps
#   results/<ds>/<method>/seed/eval.json                                          a threshold row's seed score
#   results/<ds>/<row>/{seed,crf,irn}/shard<k>/<id>.png, .../eval.json            a row's labels per stage
#   results/<ds>/<row>/irn/model.pt, <row>/deeplab/{model.pt,eval.json,predictions/}
#   results/<ds>/floor/<split>/eval.json, results/<ds>/table5/<matting>_<rule>.json,
#   results/<ds>/eps_sensitivity/<method>/fg<e>_bg<e>.json
#   results/<ds>/tableN.{csv,md}, results/<ds>/figures/*.png  ->  copied to results/ for the configured dataset
# A threshold row is named as its map method (row cam = method cam), so results/<ds>/cam/seed/eval.json has two
# rules that can make it; ruleorder picks evaluate_cams (with its threshold sweep).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
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
        "results/runtimes.csv",
