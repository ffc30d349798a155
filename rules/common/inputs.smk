# Per-row settings and the input functions that join the stages: which maps a row labels, its thresholds, its scores,
# the trained models another stage starts from, and the file lists of the tables, the gallery and the eps grid (each
# path from matlabel/paths.py).
from matlabel.config import method_thresholds
from matlabel.weights import staged


def row_thresholds(wildcards) -> dict:
    """The thresholds of a Table 1 row: those of the map method its maps come from (config method_thresholds)."""
    return method_thresholds(config, config_section(SOURCES[wildcards.row][0]))


def confident_thresholds(wildcards) -> dict:
    """IRN's confident regions of a row: its method's thresholds on maps, irn.confident.matting on alphas."""
    if SOURCES[wildcards.row][1] == "matting":  # null: the trimap's own thresholds, read from there
        return config["irn"]["confident"]["matting"] or {"fg": config["trimap"]["eps_fg"],
                                                         "bg": config["trimap"]["eps_bg"]}
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
    plane = (config["matting"]["fg_threshold"] if walk_source(wildcards) == "matting"
             else row_thresholds(wildcards)["walk"])
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
