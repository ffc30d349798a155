"""Checks of the configuration that JSON Schema cannot express (run by the Snakefile before any job).

The schema (schemas/config.schema.yaml) rejects unknown keys, wrong types and out-of-range values; this
module rejects combinations that are each valid alone but wrong together, with a message naming the keys.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key(s) and the fix."""


def method_thresholds(config: dict, section: str) -> dict[str, float]:
    """The thresholds of the rows built on one map method's maps, ``{"seed", "confident_fg", "confident_bg",
    "walk"}``: the seed's background plane, IRN's confident foreground / background and the random walk's
    background plane (``section``: the method's config section, ``cam``, ``d2cam`` or ``recam``; D2CAM's
    Table 4 variants share ``d2cam``'s): IRN's values (``evaluate.bg_threshold``,
    ``irn.confident.threshold``, ``irn.walk.bg_threshold``) with ``method_thresholds.<section>`` over them."""
    irn = config["irn"]
    defaults = {"seed": config["evaluate"]["bg_threshold"], "confident_fg": irn["confident"]["threshold"]["fg"],
                "confident_bg": irn["confident"]["threshold"]["bg"], "walk": irn["walk"]["bg_threshold"]}
    return {**defaults, **(config.get("method_thresholds") or {}).get(section, {})}


def schema_errors(config: dict, schema_path) -> list[str]:
    """Every violation of the JSON Schema as one line ``key.path: what is wrong`` (all at once, sorted by key),
    where Snakemake's own validation stops at the first and follows it with the whole config section."""
    import jsonschema
    import yaml

    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for err in validator.iter_errors(config):
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        if err.validator == "additionalProperties":  # name the unknown key itself and what is allowed there
            known = sorted(err.schema.get("properties", {}))
            lines.append(f"{key}: {err.message.split(' (')[0].lower()}: {err.message.split('(')[-1].rstrip(')')}; "
                         f"known keys there: {', '.join(known)}")
        else:
            lines.append(f"{key}: {err.message}")
    return sorted(lines)


def validate_config(config: dict, schema_path, config_files=()) -> None:
    """Raise ConfigError listing every schema violation and naming the config files to fix."""
    errors = schema_errors(config, schema_path)
    if errors:
        files = ", ".join(str(f) for f in config_files) or "config.yaml"
        raise ConfigError(f"{len(errors)} config error(s), fix them in {files} (or the --config overrides):\n  "
                          + "\n  ".join(errors))


def check_config(config: dict) -> None:
    errors = []
    lo, hi = config["augment"]["resize_long"]
    if lo > hi:
        errors.append(f"augment.resize_long must be [min, max] with min <= max, got [{lo}, {hi}]")
    syn = config.get("data", {}).get("synthetic", {})
    if config["dataset"].startswith("synthetic"):
        from matlabel.datasets.synthetic import SyntheticConfig

        try:  # the generator's own checks (min <= max objects, size_min <= size_max, seed != val_seed, ...)
            SyntheticConfig.from_mapping(syn)
        except (ValueError, TypeError) as err:
            errors.append(f"data.synthetic: {err}")
    if config["dataset"] == "folder":
        from matlabel.datasets.folder import folder_config_errors

        errors.extend(folder_config_errors(config.get("data", {}).get("folder")))
    if config["evaluate"]["bg_threshold"] not in config["evaluate"]["bg_threshold_sweep"]:
        errors.append("evaluate.bg_threshold must be one of evaluate.bg_threshold_sweep (it is reported beside it)")
    tri = config["trimap"]
    if not tri["eps_bg"] < tri["eps_fg"]:
        errors.append(f"trimap.eps_bg ({tri['eps_bg']}) must be below trimap.eps_fg ({tri['eps_fg']}) (paper Eq. 9)")
    for kind, conf in config["irn"]["confident"].items():
        if not conf["bg"] < conf["fg"]:
            errors.append(f"irn.confident.{kind}: bg ({conf['bg']}) must be below fg ({conf['fg']})")
    for section in config.get("method_thresholds") or {}:
        t = method_thresholds(config, section)
        if not t["confident_bg"] < t["confident_fg"]:
            errors.append(f"method_thresholds.{section}: confident_bg ({t['confident_bg']}) must be below "
                          f"confident_fg ({t['confident_fg']})")
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
