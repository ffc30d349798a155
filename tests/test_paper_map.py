"""docs/paper-map.md cannot rot: every function it names imports, every rule is defined in rules/, every config key
is in config.yaml, and every test exists."""
import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "docs" / "paper-map.md"
COLUMNS = ["paper", "what", "function", "config", "rule", "test"]


def entries() -> dict[str, set[str]]:
    """The backticked names of each column over every table of the map whose header is :data:`COLUMNS`."""
    out: dict[str, set[str]] = {c: set() for c in COLUMNS[2:]}
    header = None
    for line in MAP.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            assert header == COLUMNS, f"paper-map.md: a table with columns {header}"
            continue
        if set(cells) <= {"---"}:
            continue
        for name, cell in zip(header, cells):
            if name in out:
                out[name] |= set(re.findall(r"`([^`]+)`", cell))
    return out


ENTRIES = entries()


def test_the_map_names_something_in_every_column():
    assert all(len(names) >= 10 for names in ENTRIES.values()), {k: len(v) for k, v in ENTRIES.items()}


@pytest.mark.parametrize("dotted", sorted(ENTRIES["function"]))
def test_every_function_imports(dotted):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):  # the longest importable module, then attributes (classes, their methods)
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        assert callable(obj), dotted
        return
    pytest.fail(f"{dotted}: no module of it imports")


def test_every_rule_is_defined():
    defined = {m.group(1) for p in (ROOT / "rules").glob("*.smk")
               for m in re.finditer(r"^(?:rule|checkpoint) (\w+):", p.read_text(encoding="utf-8"), re.M)}
    assert ENTRIES["rule"] - defined == set()


def test_every_config_key_is_in_config_yaml():
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    missing = []
    for dotted in ENTRIES["config"]:
        node = config
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                missing.append(dotted)
                break
            node = node[key]
    assert missing == []


def test_every_test_exists():
    missing = []
    for ref in ENTRIES["test"]:
        path, _, name = ref.partition("::")
        file = ROOT / path
        if not file.is_file() or (name and not re.search(rf"^def {name}\(", file.read_text(encoding="utf-8"), re.M)):
            missing.append(ref)
    assert missing == []
