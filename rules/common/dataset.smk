# The dataset: its manifest and content stamps as inputs, the folder dataset's sources, the downloads, and the
# refresh of the stamps before Snakemake plans the jobs.
import sys
from pathlib import Path

from matlabel.datasets.content import existing_stamps, folder_digest, refresh_stamps, stamp_path
from matlabel.datasets.folder import link_root
from matlabel.datasets.sources import ARCHIVES
from matlabel.datasets.voc_subset import SUBSET_ROOT, id_lists_digest
from matlabel.io import read_json
from matlabel.shards import empty_shards_warning


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


def refresh_dataset_stamps():
    """Bring the content stamps written by earlier runs up to date with the dataset's files (a stamp changes only when
    the files do; matlabel/datasets/content.py), and relink a folder dataset's root. The Snakefile calls it while it
    parses, before Snakemake plans the jobs; jobs re-parse the workflow on a cluster node, and only the submitting
    process refreshes."""
    if not workflow.is_main_process or not Path(manifest_path()).is_file():
        return
    if DATASET == "folder":  # the manifest names resources/folder/root: point it at the configured folder
        link_root(folder_config()["root"], Path(manifest_path()).parent)
    n_export = read_json(manifest_path()).get("splits", {}).get(config["splits"]["export"])
    warning = n_export is not None and empty_shards_warning(N_SHARDS, n_export, config["splits"]["export"])
    if warning:
        print(warning, file=sys.stderr)
    rewritten = refresh_stamps(manifest_path(), existing_stamps(CONTENT_DIR))
    if rewritten:
        print(f"dataset files changed since the last run: {', '.join(p.name for p in rewritten)} "
              "(the rules that read them will rerun)", file=sys.stderr)
