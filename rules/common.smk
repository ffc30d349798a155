# Config validation, shard/method lists, wildcard constraints and input helpers shared by all stages.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)  # the matlabel package lives next to the Snakefile

from matlabel import codehash
from matlabel.config import check_config, method_thresholds, retype_overrides, validate_config
from matlabel.datasets.content import PARTS, existing_stamps, folder_digest, refresh_stamps, stamp_path
from matlabel.datasets.folder import link_root
from matlabel.datasets.sources import ARCHIVES
from matlabel.datasets.voc_subset import SUBSET_ROOT, id_lists_digest
from matlabel.io import output_folder_problems, read_json
from matlabel.labels import LABEL_RULES, MATTING_MODULES, SOURCES, rows_for
from matlabel.matting.laplacians import LAPLACIANS
from matlabel.methods import METHODS, TABLE4_METHODS, config_section, other_methods_modules
from matlabel.paths import configured, pattern
from matlabel.shards import empty_shards_warning
from matlabel.tables import SALIENCY_ROWS, STAGES
from matlabel.weights import staged

# values inside a mapping given to --config arrive as text (Snakemake reads them with YAML's BaseLoader)
retype_overrides(config, workflow.config_settings.config or {}, Path(workflow.basedir, "schemas", "config.schema.yaml"))
# every value comes from config.yaml (always read first) and the overlays: the schema checks them and fills nothing
validate_config(config, Path(workflow.basedir, "schemas", "config.schema.yaml"), workflow.configfiles)
check_config(config)
# a file or a dangling link where the outputs go would end the first job in a traceback: say so now
_output_problems = output_folder_problems([f for top in ("results", "resources", "logs", "benchmarks")
                                           for f in (top, f"{top}/{config['dataset']}")])
if _output_problems:
    raise WorkflowError("cannot write the workflow's outputs:\n  " + "\n  ".join(_output_problems))

DATASET = config["dataset"]
N_SHARDS = config["n_shards"]
SHARDS = [str(i) for i in range(N_SHARDS)]
MAP_METHODS = list(METHODS)  # methods that train a classifier and export class activation maps
THRESHOLD_ROWS = rows_for(MAP_METHODS, "threshold")  # Table 1 rows labelled by a background threshold
MATTING_ROWS = rows_for(MAP_METHODS, "matting")  # Table 1 rows labelled by trimap + KNN matting
LABEL_ROWS = THRESHOLD_ROWS + MATTING_ROWS
# I+S rows (Table 2) exist only when the user gives saliency maps (config saliency.dir)
SALIENCY_ROWS_ON = sorted(SALIENCY_ROWS) if config["saliency"]["dir"] else []
SEG_ROWS = LABEL_ROWS + SALIENCY_ROWS_ON  # rows a DeepLab-v2 can train on
ENV = "../envs/matlabel.yaml"
CONTENT_DIR = str(Path(pattern("content", dataset=DATASET)).parent)  # the content stamps (rule dataset_content)
MATTING_GPU = int(str(config["matting"]["device"]) != "cpu")  # the matting solve on the GPU asks for one


# Run on the submitting machine under a cluster profile: a copy, and downloads (compute nodes are often offline).
localrules:
    download_archive,
    imagenet_weights,
    configured_dataset_table,


wildcard_constraints:
    dataset=DATASET,
    method="|".join(MAP_METHODS),
    shard=r"\d+",
    table=r"table\d",


def code_version(script, by=None):
    """Param: a hash of the library code that scripts/<script>.py can run (its import closure within matlabel/,
    docstrings and comments left out; matlabel/codehash.py), so editing a line of code reruns exactly the rules
    whose scripts reach it (Snakemake's own code trigger sees only the script). by="method" or "row": per job, the
    modules of other method families (methods.FAMILY_MODULES) and, for threshold rows, the matting modules
    (labels.MATTING_MODULES) are left out."""
    path = Path(workflow.basedir, "scripts", f"{script}.py")
    package = Path(workflow.basedir, "matlabel")
    if by is None:
        return codehash.code_version(path, package)

    def per_job(wildcards):
        method, labeler = (wildcards.method, None) if by == "method" else SOURCES[wildcards.row]
        exclude = other_methods_modules(method) + (MATTING_MODULES if labeler == "threshold" else ())
        key = (script, exclude)
        if key not in _CODE_VERSIONS:  # thousands of jobs, a handful of versions: the files do not change mid-run
            _CODE_VERSIONS[key] = codehash.code_version(path, package, exclude)
        return _CODE_VERSIONS[key]

    return per_job


_CODE_VERSIONS = {}


def manifest_path(wildcards=None):
    """The prepared dataset's manifest; its presence means the dataset is complete."""
    return pattern("manifest", dataset=DATASET)


def dataset_input(*needs):
    """Input: {"manifest": dataset.json, "<split>_<part>": its content stamp, ...} for needs "role:part", where role
    is a key of config splits (or a split's own name, e.g. "test"), or "{split}:part" for the job's split wildcard.
    Rules read the dataset through these, so changing a file they read reruns them."""

    def inputs(wildcards):
        files = {"manifest": manifest_path()}
        for need in needs:
            role, part = need.split(":")
            split = wildcards.split if role == "{split}" else config["splits"].get(role, role)
            files[f"{split}_{part}"] = str(stamp_path(CONTENT_DIR, split, part))
        return files

    return inputs


def folder_config():
    """config data.folder: the user's own folder in VOC layout (dataset: folder, docs/folder-dataset.md)."""
    return config.get("data", {}).get("folder") or {}


def folder_source():
    """Digest of the folder dataset's files: split lists, classes.txt, cls_labels.csv, images and masks
    (matlabel/datasets/content.py folder_digest), a param of prepare_folder: editing or replacing one reruns it (it
    may copy or resize it); a touched file, or the same files under another root, reruns nothing."""
    root = folder_config().get("root")
    if DATASET != "folder" or not root:
        return ""
    if folder_config().get("voc_ids"):  # built by the workflow (voc_subset, an input); its lists, built or not
        return f"voc_ids:{voc_ids_digest()}"
    return folder_digest(root, config["splits"].values(), "resources/folder/.source.cache.json",
                         save=workflow.is_main_process)


def voc_ids_digest():
    """The id lists of config data.folder.voc_ids by content ("" when unset): rule voc_subset's param, so editing a
    list rebuilds the folder and touching one rebuilds nothing."""
    voc_ids = folder_config().get("voc_ids")
    return id_lists_digest(voc_ids) if voc_ids else ""


def folder_build_input(wildcards):
    """Input of prepare_folder: {"voc_subset": resources/voc_subset} when config data.folder.voc_ids has the workflow
    build the folder from VOC 2012 (rule voc_subset); {} for a folder of the user's own."""
    return {"voc_subset": SUBSET_ROOT} if DATASET == "folder" and folder_config().get("voc_ids") else {}


def voc_subset_input(wildcards):
    """Input of voc_subset: the VOC 2012 trainval archive of dataset voc12 (downloaded, or put there by hand), or
    nothing when config data.folder.voc_dir gives an extracted copy."""
    return {} if folder_config().get("voc_dir") else {"voc": archive_path("voc2012_trainval")}


def row_thresholds(wildcards) -> dict:
    """The thresholds of a Table 1 row: those of the map method its maps come from (config method_thresholds)."""
    return method_thresholds(config, config_section(SOURCES[wildcards.row][0]))


def confident_thresholds(wildcards) -> dict:
    """IRN's confident regions of a row: its method's thresholds on maps, irn.confident.matting on alphas."""
    if SOURCES[wildcards.row][1] == "matting":  # null: the trimap's own thresholds, read from there
        return config["irn"]["confident"]["matting"] or {"fg": config["trimap"]["eps_fg"], "bg": config["trimap"]["eps_bg"]}
    t = row_thresholds(wildcards)
    return {"fg": t["confident_fg"], "bg": t["confident_bg"]}


def walk_source(wildcards) -> str:
    """What a row's random walk propagates, as a load_row_maps labeler: "threshold" (the method's exported maps)
    or "matting" (the row's alphas; matting rows with irn.matting_walk: alphas)."""
    labeler = SOURCES[wildcards.row][1]
    return "matting" if labeler == "matting" and config["irn"]["matting_walk"] == "alphas" else "threshold"


def walk_settings(wildcards) -> dict:
    """irn.walk of a row with its background plane: the row's method's walk plane on maps, the seed's alpha
    threshold (matting.fg_threshold) on alphas."""
    plane = config["matting"]["fg_threshold"] if walk_source(wildcards) == "matting" else row_thresholds(wildcards)["walk"]
    return {**config["irn"]["walk"], "bg_threshold": plane}


def init_model(wildcards):
    """{"init": model.pt} when the method's config section starts from another trained method (init_from)."""
    source = config[config_section(wildcards.method)].get("init_from")
    if not source:
        return {}
    return {"init": pattern("model", dataset=wildcards.dataset, method=source)}


def row_maps(wildcards):
    """The shard of exported maps a row's labels come from: its map method's (SOURCES)."""
    return pattern("maps", dataset=wildcards.dataset, method=SOURCES[wildcards.row][0], shard=wildcards.shard)


def row_seed_inputs(wildcards):
    """The maps a row refines: its method's exported maps, plus the seed shard (alphas) for matting rows."""
    inputs = {"cams": row_maps(wildcards)}
    if SOURCES[wildcards.row][1] == "matting":
        inputs["seed"] = pattern("labels", dataset=wildcards.dataset, row=wildcards.row, stage="seed",
                                 shard=wildcards.shard)
    return inputs


def row_eval(dataset, row, stage):
    """The score of a Table 1 row at a stage: a threshold row's seed is its maps' (evaluate_cams, with the
    background-threshold sweep), every other one its labels' (evaluate_labels)."""
    method, labeler = SOURCES[row]
    if stage == "seed" and labeler == "threshold":
        return pattern("maps_eval", dataset=dataset, method=method)
    return pattern("labels_eval", dataset=dataset, row=row, stage=stage)


def trunk_input(section):
    """Input function: {"backbone": model.pt} when config[section].backbone_from names a trained classifier."""

    def inputs(wildcards):
        source = config[section].get("backbone_from")
        return {"backbone": pattern("model", dataset=wildcards.dataset, method=source)} if source else {}

    return inputs


def imagenet_input(model, section=None):
    """Input: {"weights": resources/weights/<file>} when the model config (arch, weights) needs torchvision's
    ImageNet file staged (rule imagenet_weights; matlabel/weights.py); {} otherwise, and also when
    config[section].backbone_from gives the trunk instead (trunk_input)."""

    def inputs(wildcards):
        if section and config[section].get("backbone_from"):
            return {}
        entry = staged(model)
        return {"weights": entry.path} if entry else {}

    return inputs


def map_shards(dataset, method):
    """Every shard folder of a method's exported maps."""
    return expand(pattern("maps"), dataset=dataset, method=method, shard=SHARDS)


def cam_shards(wildcards):
    return map_shards(wildcards.dataset, wildcards.method)


# The stages the gallery shows: Table 1's, and the one that ranks its images.
GALLERY_STAGES = [s for s in STAGES
                  if s in config["table1"]["stages"] or s == config["gallery"]["stage"]]


def gallery_inputs(wildcards):
    """{"maps_<row>": the shard folders of the row's maps, "<row>_<stage>": those of its labels} per Table 1 row."""
    files = {}
    for row in config["table1"]["methods"]:
        files[f"maps_{row}"] = map_shards(wildcards.dataset, SOURCES[row][0])
        for stage in GALLERY_STAGES:
            files[f"{row}_{stage}"] = expand(pattern("labels"), dataset=wildcards.dataset, row=row, stage=stage,
                                             shard=SHARDS)
    return files


def archive_url(name):
    """A user's mirror for archive ``name`` (config data.url_overrides), or "" for the registry's URLs."""
    return config.get("data", {}).get("url_overrides", {}).get(name, "")


def archive_by_filename(filename):
    for name, archive in ARCHIVES.items():
        if archive.filename == filename:
            return name
    raise ValueError(f"no archive named {filename} in matlabel/datasets/sources.py")


def archive_path(name):
    """Where archive ``name`` of the registry is downloaded to (or put by hand)."""
    return f"resources/downloads/{ARCHIVES[name].filename}"


def eps_cells(wildcards):
    """The cells of the eps sensitivity grid (config eps_sensitivity), one JSON per (method, eps_fg, eps_bg)."""
    grid = config["eps_sensitivity"]
    return expand(
        pattern("eps_cell"),
        dataset=wildcards.dataset,
        method=grid["methods"],
        eps_fg=[f"{v:g}" for v in grid["eps_fg"]],
        eps_bg=[f"{v:g}" for v in grid["eps_bg"]],
    )


def deeplab_evals(wildcards, table):
    rows = [r for r in config[table]["methods"] if r in SEG_ROWS]
    if table == "table3" and wildcards.dataset != "coco14":
        return []  # Table 3 is COCO's; other datasets get a table of "not run" cells
    return expand(pattern("deeplab_eval"), dataset=wildcards.dataset, row=rows)


def voc_test_archives(wildcards):
    if wildcards.dataset != "voc12" or not config["deeplab"].get("voc_test"):
        return []
    rows = [r for r in config["table2"]["methods"] if r in SEG_ROWS]
    return expand(pattern("voc_test"), dataset=wildcards.dataset, row=rows)


# GPU routing under a cluster profile, derived from the rules themselves. Each rule asks for a GPU in one place (its
# `resources: gpu`); after the last rule the Snakefile calls route_gpu_rules, which gives each one whose gpu is
# above 0 (after the profile's set-resources) what snakemake-executor-plugin-slurm reads: slurm_partition = config
# slurm.gpu_partition, and gpu_model = slurm.gpu_model when set (--gpus=<model>:1). The others keep the profile's
# default-resources slurm_partition (its CPU partition). A local run ignores these resources.
def gpu_count(workflow_rule):
    """A rule's `gpu` resource as the profile left it (0 when it asks for none)."""
    gpu = workflow_rule.resources.get("gpu")
    if gpu is None:
        return 0
    if gpu.is_evaluable():
        raise WorkflowError(f"the gpu resource of {workflow_rule.name} must be a number, not a function, for the GPU "
                            "routing (rules/common.smk route_gpu_rules)")
    return int(gpu.value or 0)


def route_gpu_rules(rules, slurm, overrides):
    """Give every rule that asks for a GPU the GPU partition (and model) of config ``slurm``, unless ``overrides``
    (the profile's set-resources, {rule: {resource: value}}) names them for it."""
    for each in rules:
        if gpu_count(each) > 0:
            for name, value in (("slurm_partition", slurm["gpu_partition"]), ("gpu_model", slurm["gpu_model"])):
                if value is not None and name not in overrides.get(each.name, {}):
                    each.resources[name] = value


# Bring the content stamps written by earlier runs up to date with the dataset's files before Snakemake plans the
# jobs (matlabel/datasets/content.py): a stamp changes only when the files do. Jobs re-parse the workflow on a
# cluster node; only the submitting process refreshes.
if workflow.is_main_process and Path(manifest_path()).is_file():
    if DATASET == "folder":  # the manifest names resources/folder/root: point it at the configured folder
        link_root(folder_config()["root"], Path(manifest_path()).parent)
    _n_export = read_json(manifest_path()).get("splits", {}).get(config["splits"]["export"])
    _warning = _n_export is not None and empty_shards_warning(N_SHARDS, _n_export, config["splits"]["export"])
    if _warning:
        print(_warning, file=sys.stderr)
    _rewritten = refresh_stamps(manifest_path(), existing_stamps(CONTENT_DIR))
    if _rewritten:
        print(f"dataset files changed since the last run: {', '.join(p.name for p in _rewritten)} "
              "(the rules that read them will rerun)", file=sys.stderr)
