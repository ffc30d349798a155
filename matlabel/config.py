"""Checks of the configuration that JSON Schema cannot express (run by the Snakefile before any job).

The schema (schemas/config.schema.yaml) rejects unknown keys, wrong types and out-of-range values; this
module rejects combinations that are each valid alone but wrong together, with a message naming the keys.
"""
from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key(s) and the fix."""


#: Keys that moved: old dotted key -> (new dotted key, why). A config still holding the old key is an error that
#: names the new one (the schema rejects the old key as unknown).
MOVED_KEYS = {"d2cam.border_pad": ("export.border_pad", "it now reads every method's maps alike, and only at export")}


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
            lines.extend(f"{old}: moved to {new} ({why}): write it there instead"
                         for old, (new, why) in MOVED_KEYS.items()
                         if old.rpartition(".")[0] == key and old.rpartition(".")[2] in err.instance)
        else:
            lines.append(f"{key}: {err.message}{_string_number_hint(err)}")
    return sorted(lines)


def _string_number_hint(err) -> str:
    """For a number given as a string: why, and how to write it. YAML 1.1 (PyYAML, hence Snakemake) reads 6e-3
    as the string '6e-3' (a float needs a '.' before the 'e'); ``--config key=0.5`` passes '0.5' on when the
    override's value is a JSON/YAML mapping typed as text."""
    types = err.validator_value if err.validator == "type" else None
    wanted = {types} if isinstance(types, str) else set(types or [])
    if not isinstance(err.instance, str) or not wanted & {"number", "integer"}:
        return ""
    try:
        value = float(err.instance)
    except ValueError:
        return ""
    mantissa, _, exponent = err.instance.lower().partition("e")
    if exponent and "." not in mantissa:
        return f" (YAML reads {err.instance} as text: write {mantissa}.0e{exponent})"
    return f" (a number was given as text '{err.instance}': write {value:g} without quotes)"


def retype_overrides(config: dict, overrides: dict, schema_path) -> list[str]:
    """Give back their types to the values inside a mapping passed with ``--config``.

    Snakemake reads ``--config saliency='{"dir": "/d", "threshold": 0.5}'`` (the way to override a nested key:
    ``--config saliency.threshold=0.5`` is not accepted) with YAML's BaseLoader, so every value inside the mapping
    arrives as text ('0.5', 'true', 'null'). Where the schema wants a number, integer, boolean or null (and no
    string) and the text reads as one (YAML 1.2 style: 6e-3 is a number), ``config`` gets the typed value.
    Returns the dotted keys changed. Top-level ``--config key=value`` values are already typed by Snakemake.
    """
    import yaml

    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    changed: list[str] = []

    def node_types(node: dict) -> set:
        node = _resolve(schema, node)
        types = node.get("type", [])
        found = {types} if isinstance(types, str) else set(types)
        for key in ("anyOf", "oneOf"):
            for sub in node.get(key, []):
                found |= node_types(sub)
        for value in node.get("enum", []):
            found.add({bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(value), "null"))
        return found

    def typed(text: str, types: set):
        if "null" in types and text in ("null", "Null", "NULL", "~"):
            return None
        if "string" in types or not types & {"number", "integer", "boolean", "null"}:
            return text
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        if isinstance(value, str) and "number" in types:
            try:
                value = float(value)  # 6e-3: text to YAML 1.1, a number to JSON and to the user
            except ValueError:
                return text
        kind = ("null" if value is None else "boolean" if isinstance(value, bool) else
                "integer" if isinstance(value, int) else "number" if isinstance(value, float) else None)
        ok = kind in types or (kind == "integer" and "number" in types)
        return value if ok else text

    def walk(target: dict, over: dict, node: dict, path: list[str]) -> None:
        props = _resolve(schema, node).get("properties", {})
        for key, value in over.items():
            if key not in props or key not in target:
                continue
            child = props[key]
            if isinstance(value, dict) and isinstance(target[key], dict):
                walk(target[key], value, child, [*path, key])
            elif isinstance(value, str):
                new = typed(value, node_types(child))
                enum = _resolve(schema, child).get("enum", [])
                if new is value and value not in enum and typed(value, {"boolean", "null"}) in enum:
                    new = typed(value, {"boolean", "null"})  # an enum of text and booleans (auto | true | false)
                if new is not value:
                    target[key] = new
                    changed.append(".".join([*path, key]))
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                item_types = node_types(_resolve(schema, child).get("items", {}))
                new_list = [typed(v, item_types) for v in value]
                if any(a is not b for a, b in zip(new_list, value)):
                    target[key] = new_list
                    changed.append(".".join([*path, key]))

    for key, value in overrides.items():  # only the values inside a mapping are BaseLoader text
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            walk(config[key], value, schema.get("properties", {}).get(key, {}), [key])
    return changed


def _resolve(schema: dict, node: dict) -> dict:
    """A schema node with its local ``$ref`` (``#/$defs/name``) merged in."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = schema
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


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
        folder = config.get("data", {}).get("folder") or {}
        if folder.get("voc_ids") or folder.get("voc_dir"):  # a folder the workflow builds from VOC (rule voc_subset)
            from matlabel.datasets.voc_subset import voc_subset_config_errors

            errors.extend(voc_subset_config_errors(folder, config["splits"]))
        else:
            from matlabel.datasets.folder import folder_config_errors

            errors.extend(folder_config_errors(folder))
    if config["evaluate"]["bg_threshold"] not in config["evaluate"]["bg_threshold_sweep"]:
        errors.append("evaluate.bg_threshold must be one of evaluate.bg_threshold_sweep (it is reported beside it)")
    tri = config["trimap"]
    if not tri["eps_bg"] < tri["eps_fg"]:
        errors.append(f"trimap.eps_bg ({tri['eps_bg']}) must be below trimap.eps_fg ({tri['eps_fg']}) (paper Eq. 9)")
    for kind, conf in config["irn"]["confident"].items():
        if conf is not None and not conf["bg"] < conf["fg"]:
            errors.append(f"irn.confident.{kind}: bg ({conf['bg']}) must be below fg ({conf['fg']})")
    for section in config.get("method_thresholds") or {}:
        t = method_thresholds(config, section)
        if not t["confident_bg"] < t["confident_fg"]:
            errors.append(f"method_thresholds.{section}: confident_bg ({t['confident_bg']}) must be below "
                          f"confident_fg ({t['confident_fg']})")
    mat = config.get("matting", {})
    if str(mat.get("device", "cpu")) != "cpu" and mat.get("lam", float("inf")) != float("inf"):
        errors.append(f"matting.device {mat['device']} solves the hard-constrained system only: set matting.lam: .inf "
                      f"(got {mat['lam']}) or matting.device: cpu")
    pad, stride = config["export"].get("border_pad", 0), config["backbone"].get("output_stride", 16)
    if pad % stride:
        errors.append(f"export.border_pad ({pad}) must be a multiple of backbone.output_stride ({stride}): the maps of "
                      f"CAM and ReCAM have one cell per {stride} px, and the pad is cropped off in whole cells")
    grid = config.get("eps_sensitivity") or {}
    if grid.get("eps_fg") and grid.get("eps_bg") and not max(grid["eps_bg"]) < min(grid["eps_fg"]):
        errors.append(f"eps_sensitivity: every eps_bg must be below every eps_fg (paper Eq. 9), got eps_bg up to "
                      f"{max(grid['eps_bg'])} and eps_fg from {min(grid['eps_fg'])}")
    gallery = config.get("gallery") or {}
    off_table = [r for r in gallery.get("rank_by") or [] if r not in config["table1"]["methods"]]
    if off_table:
        errors.append(f"gallery.rank_by: {off_table} not in table1.methods {config['table1']['methods']} (the gallery "
                      "ranks by the rows it shows)")
    sal = config.get("saliency", {}).get("dir")
    if sal and not Path(sal).is_dir():
        errors.append(f"saliency.dir: {sal} is not a folder; give the folder of <image id>.png saliency maps "
                      "(Table 2's I+S row), or null to leave that row 'not run'")
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))


def load_config_file(path) -> dict:
    """One config file as a mapping; a YAML error names the file, the line and column, and what is wrong there.

    Snakemake reads --configfile files before the workflow starts and, on a syntax error, says only "Config file is
    not valid JSON or YAML"; ``python -m matlabel.config FILE`` runs this on each file to find the line."""
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        hint = " (a tab: YAML indents with spaces only)" if "\t" in line[: mark.column + 1] or "tab" in problem else ""
        raise ConfigError(f"{where}: not valid YAML: {problem}{hint}\n    {line!r}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys (e.g. 'cam: {{epochs: 3}}'), got "
                          f"{type(data).__name__}")
    return data


def paper_config(root=None) -> dict:
    """config.yaml as it ships, the paper's settings: for code that runs a library function outside the workflow
    (tests, bench/) and needs the numbers whose one owner it is."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    return load_config_file(root / "config.yaml")


def check_files(paths, root=None) -> dict:
    """The config the workflow would get from config.yaml then ``paths`` (as --configfile), checked the way the
    Snakefile checks it: YAML syntax per file (file:line:column), the schema, then check_config. Returns it."""
    from snakemake.utils import update_config

    root = Path(root) if root else Path(__file__).resolve().parents[1]
    files = [root / "config.yaml", *map(Path, paths)]
    config: dict = {}
    for path in files:  # layered as Snakemake layers --configfile files
        update_config(config, load_config_file(path))
    schema = root / "schemas" / "config.schema.yaml"
    validate_config(config, schema, files)
    check_config(config)
    return config


def main(argv=None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m matlabel.config", description=(
        "Check config files as the workflow would read them (config.yaml, then each FILE as --configfile): YAML "
        "syntax with the file and line, the schema, and the checks across keys."))
    parser.add_argument("files", nargs="*", help="config overlays, in --configfile order")
    args = parser.parse_args(argv)
    try:
        check_files(args.files)
    except (ConfigError, OSError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"config OK: config.yaml{''.join(' + ' + f for f in args.files)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
