"""The path scheme (matlabel/paths.py) is the one place a result path is written: the rules' outputs are its patterns,
and results/README.md's table is rendered from it."""
import importlib.util
import re

import pytest

from helpers import ROOT, parsed_workflow
from matlabel.paths import SCHEME, configured, pattern

CONSTRAINED = re.compile(r"\{(\w+),[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")  # {name,regex} as a parsed rule writes it


def render_paths():
    spec = importlib.util.spec_from_file_location("render_paths", ROOT / "scripts" / "render_paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_is_the_rendered_one():
    render = render_paths()
    text = render.README.read_text(encoding="utf-8")
    assert render.rendered(text) == text, "results/README.md is out of date: run make docs"
    assert render.main(["--check"]) == 0


def test_pattern_fills_the_given_wildcards_and_keeps_the_others():
    assert pattern("labels", stage="seed") == "results/{dataset}/rows/{row}/seed/shard{shard}"
    assert pattern("maps", dataset="voc12", method="cam", shard=3) == "results/voc12/maps/cam/shard3"
    assert configured(pattern("table")) == "results/{table}.csv"
    with pytest.raises(KeyError, match="no wildcard"):
        pattern("model", stage="seed")
    with pytest.raises(ValueError, match="not under"):
        configured(pattern("manifest"))


def test_content_stamps_are_where_the_content_module_writes_them():
    from matlabel.datasets.content import stamp_path

    content_dir = pattern("content", dataset="voc12").rsplit("/", 1)[0]
    assert str(stamp_path(content_dir, "train", "images")) == pattern("content", dataset="voc12", split="train",
                                                                       part="images")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """{rule: its output patterns} of the parsed workflow, wildcard constraints left out."""
    rules = parsed_workflow(tmp_path_factory.mktemp("workflow"))["rules"]
    return {rule: [CONSTRAINED.sub(r"{\1}", f) for f in r["output"]] for rule, r in rules.items()}


def test_every_result_a_rule_writes_is_in_the_scheme(outputs):
    """A rule's output under results/ or resources/<dataset>/ is a pattern of the scheme (filled in or not), or the
    configured dataset's copy of one."""
    known = [entry.pattern for entry in SCHEME.values()]
    known += [configured(p) for p in known if p.startswith("results/{dataset}/")]
    as_regex = [re.compile(re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(p)) + "$") for p in known]
    written = [f for files in outputs.values() for f in files if f.startswith(("results/", "resources/"))]
    dataset_files = [f for f in written if not f.startswith(("resources/downloads/", "resources/weights/",
                                                                 "resources/voc_subset", "resources/folder/cls"))]
    assert len(dataset_files) > 30
    for f in dataset_files:
        assert any(r.match(f) for r in as_regex), f"{f} is not in matlabel/paths.py SCHEME"


def test_every_pattern_of_the_scheme_is_written_by_a_rule(outputs):
    written = {f for files in outputs.values() for f in files}
    unused = [name for name, entry in SCHEME.items() if name != "results" and not any(
        re.fullmatch(re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(entry.pattern)), f) for f in written)]
    assert unused == []
