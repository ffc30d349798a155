# Config checks and the names every stage shares: the dataset, the shards, the map methods and Table 1/2 rows, the
# wildcard constraints built from the code's lists (tests/test_owners.py).
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)  # the matlabel package lives next to the Snakefile

from matlabel.config import check_config, retype_overrides, validate_config
from matlabel.datasets.content import PARTS
from matlabel.io import output_folder_problems
from matlabel.labels import LABEL_RULES, SOURCES, rows_for
from matlabel.matting.laplacians import LAPLACIANS
from matlabel.methods import METHODS, TABLE4_METHODS, config_section
from matlabel.paths import configured, pattern
from matlabel.tables import SALIENCY_ROWS, STAGES

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


def rule_threads(rule_name):
    """A rule's job threads, config threads.<rule>: a number, or (train_classifier) one per method family, as a
    function of the job's method: the CAM, which the other methods start from, can take every core while it trains
    alone, and D2CAM and ReCAM one each side by side (config/folder-example.yaml)."""
    value = config["threads"][rule_name]
    if isinstance(value, dict):
        return lambda wildcards: value[config_section(wildcards.method)]
    return value


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
