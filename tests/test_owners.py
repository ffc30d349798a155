"""One owner for every name: each list of names the config schema or a rule's wildcard constraint enumerates is the
code's own list (matlabel/), so adding a method, row, Laplacian or stage in the code is the only edit to make, and a
list typed twice fails here instead of drifting.

The schema is YAML and cannot import Python, so this test is its owner check; the rules build their constraints
from the code's lists, and the test reads them back from the parsed workflow.
"""
import pytest
import yaml

from helpers import ROOT, parsed_workflow

SCHEMA = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())


def map_methods():
    """The methods whose maps a Table 1 row labels (cam, recam, d2cam), in SOURCES order."""
    from matlabel.labels import SOURCES

    return list(dict.fromkeys(method for method, _ in SOURCES.values()))


def families():
    """The config sections of the map methods (matlabel.methods.METHODS: cam, d2cam, recam)."""
    from matlabel.methods import METHODS

    return list(dict.fromkeys(family for family, _ in METHODS.values()))


def code_lists():
    """Schema enum (dotted config key; [] an array's items, <key> a mapping's keys) -> the code list it must equal."""
    from matlabel.backbone import STAGES as BACKBONE_STAGES
    from matlabel.backbone import arch_names
    from matlabel.crf import PRESETS, UNARIES
    from matlabel.deeplab.model import INPUT_NORMS
    from matlabel.labels import LABEL_RULES, SOURCES
    from matlabel.matting.laplacians import LAPLACIANS
    from matlabel.methods import TABLE4_METHODS
    from matlabel.tables import STAGES, TABLE2_ROWS, TABLE3_ROWS

    return {
        "$defs.arch": arch_names(),
        "backbone.train_from": list(BACKBONE_STAGES),
        "matting.method": list(LAPLACIANS),
        "matting.label_rule": list(LABEL_RULES),
        "method_thresholds.<key>": families(),
        "crf.preset": list(PRESETS),
        "crf.unary": list(UNARIES),
        "deeplab.labels_stage": list(STAGES),
        "deeplab.model.input_norm": list(INPUT_NORMS),
        "table1.methods[]": list(SOURCES),
        "table1.stages[]": list(STAGES),
        "table2.methods[]": list(TABLE2_ROWS),
        "table3.methods[]": list(TABLE3_ROWS),
        "table4.variants[]": list(TABLE4_METHODS),
        "table5.maps": map_methods(),
        "table5.methods[]": list(LAPLACIANS),
        "table5.label_rules[]": list(LABEL_RULES),
        "figures.fig5_row": list(TABLE2_ROWS),
        "gallery.stage": list(STAGES),
        "gallery.rank_by[]": list(SOURCES),
        "eps_sensitivity.methods[]": map_methods(),
    }


# Enums that name a trained method to start from: any of its values but null must be a map method.
STARTING_POINTS = ("d2cam.init_from", "recam.init_from", "irn.backbone_from", "deeplab.backbone_from")
# Enums that list no names of the code: each with where its values are read.
NOT_CODE_LISTS = {
    "dataset": "one rule per dataset makes resources/<dataset>/dataset.json (rules/data.smk)",
    "device": "matlabel.train.resolve_device",
    "$defs.speed_flag": "auto | true | false of matlabel.train.Speed",
    "backbone.output_stride": "numbers",
    "irn.matting_walk": "what rules/common/inputs.smk walk_source reads",
}


def enums(node, key=""):
    """Every enum of a schema node, as {dotted config key: values}."""
    found = {key: node["enum"]} if "enum" in node else {}
    children = [(f"{key}.{name}".lstrip("."), child) for name, child in node.get("properties", {}).items()]
    children += [(f"$defs.{name}", child) for name, child in node.get("$defs", {}).items()]
    children += [(f"{key}[]", node["items"])] if isinstance(node.get("items"), dict) else []
    children += [(f"{key}.<key>", node["propertyNames"])] if "propertyNames" in node else []
    children += [(key, child) for child in node.get("oneOf", [])]
    for child_key, child in children:
        found.update(enums(child, child_key))
    return found


def test_every_schema_enum_has_an_owner():
    """A new enum in the schema must say here which code list it is (or why it is none)."""
    assert set(enums(SCHEMA)) == set(code_lists()) | set(STARTING_POINTS) | set(NOT_CODE_LISTS)


@pytest.mark.parametrize("key", sorted(code_lists()))
def test_schema_enum_is_the_code_list(key):
    values = enums(SCHEMA)[key]
    assert len(set(values)) == len(values) and sorted(values) == sorted(code_lists()[key])  # the schema's own order


@pytest.mark.parametrize("key", STARTING_POINTS)
def test_starting_points_are_map_methods(key):
    from matlabel.methods import METHODS

    values = enums(SCHEMA)[key]
    assert None in values and set(values) - {None} <= set(METHODS)


@pytest.fixture(scope="module")
def constraints(tmp_path_factory):
    """{rule: {wildcard: regex}} of the parsed workflow ("" for the global ones)."""
    parsed = parsed_workflow(tmp_path_factory.mktemp("workflow"))
    return {"": parsed["constraints"], **{rule: r["constraints"] for rule, r in parsed["rules"].items()}}


def wildcard_lists():
    """Wildcard -> the code list its constraint is, whole (True) or a part of it (False: rows_for picks rows)."""
    from matlabel.datasets.content import PARTS
    from matlabel.labels import LABEL_RULES, SOURCES
    from matlabel.matting.laplacians import LAPLACIANS
    from matlabel.methods import METHODS
    from matlabel.tables import SALIENCY_ROWS, STAGES

    return {"method": (list(METHODS), True), "matting": (list(LAPLACIANS), True),
            "label_rule": (list(LABEL_RULES), True), "part": (list(PARTS), True), "stage": (list(STAGES), True),
            "row": ([*SOURCES, *SALIENCY_ROWS], False), "dataset": (SCHEMA["properties"]["dataset"]["enum"], False)}


# Constraints that are a setting, not a list: the stage DeepLab-v2 trains on (deeplab.labels_stage).
CONFIGURED = {("saliency_labels", "stage")}


def test_wildcard_constraints_are_the_code_lists(constraints):
    checked = 0
    for rule, wildcards in constraints.items():
        for wildcard, regex in wildcards.items():
            if wildcard not in wildcard_lists():
                continue
            names, whole = wildcard_lists()[wildcard]
            alternatives = regex.split("|")
            if (rule, wildcard) in CONFIGURED:
                assert len(alternatives) == 1 and alternatives[0] in names, (rule, wildcard, regex)
            elif whole:
                assert alternatives == names, (rule, wildcard, regex)
            else:
                assert set(alternatives) <= set(names) and alternatives == [n for n in names if n in alternatives], \
                    (rule, wildcard, regex)
            checked += 1
    assert checked >= 10  # the table5, labels, irn, segment, data and global constraints were all read


def test_no_constraint_retypes_a_list(constraints):
    """Every alternation of plain names in a constraint is one of the lists above (a new one needs an owner)."""
    allowed = set(wildcard_lists())
    for rule, wildcards in constraints.items():
        for wildcard, regex in wildcards.items():
            if all(part.isidentifier() for part in regex.split("|")):
                assert wildcard in allowed, (rule, wildcard, regex)
