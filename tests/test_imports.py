"""The label, evaluation and table jobs start without torch (its import costs ~2 s a job on 2 cores), and so does
every snakemake call's parsing and planning of the workflow (-n, --unlock, --report). The package's imports (read
from the source) form no cycle, and no module imports its own package's ``__init__``."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

TORCH_FREE = ["matlabel.seeds", "matlabel.evaluate", "matlabel.labels", "matlabel.crf", "matlabel.tables",
              "matlabel.trimap", "matlabel.matting", "matlabel.methods", "matlabel.weights", "matlabel.formats",
              "matlabel.codehash", "matlabel.datasets.content", "matlabel.config"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"{module} imports torch"


def test_cam_reexports_the_seed_functions():
    from matlabel import cam, seeds
    assert cam.cams_to_labels is seeds.cams_to_labels
    assert cam.labels_at_thresholds is seeds.labels_at_thresholds


def test_planning_the_workflow_imports_no_torch(tmp_path):
    """The paper's VOC dry run (parse + DAG of Table 1, weights and downloads included) never imports torch."""
    from helpers import snakemake_env, workdir

    wd = workdir(tmp_path)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "results/table1.csv",
                           "--cores", "16", "--resources", "gpu=1"], cwd=wd, capture_output=True, text=True,
                          env=snakemake_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "train_classifier" in proc.stdout and "snakemake" in imported  # it planned, and importtime saw it
    assert not {"torch", "torchvision"} & imported


# ------------------------------------------------------------------------------- the package's import graph

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "matlabel"


def _module_names(package_dir: Path) -> dict[str, Path]:
    """{dotted module name: file} of every module of the package at ``package_dir`` (``__init__.py``: the package)."""
    root = package_dir.name
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [root, *path.relative_to(package_dir).with_suffix("").parts]
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph(package_dir: Path) -> dict[str, dict[str, int]]:
    """{module: {imported module of the package: line}} from the source (``ast``): every ``import`` and ``from …
    import`` anywhere in a module (inside functions too), absolute and relative. ``from p import x`` imports the
    module ``p.x`` when there is one, else a name of ``p`` (a package's names live in its ``__init__``). Importing a
    module also runs its packages' ``__init__``: an edge to each of those that is not a package of the importer
    itself (those are already being imported when it runs)."""
    modules = _module_names(package_dir)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        own = name if path.name == "__init__.py" else name.rpartition(".")[0]  # the package relative imports start at
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = own.split(".")[: own.count(".") + 2 - node.level]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # import a.b.c of a module a.b that defines c
                    target = target.rpartition(".")[0]
                if not target or target == name:
                    continue
                parts = target.split(".")
                for t in [".".join(parts[:i]) for i in range(1, len(parts))] + [target]:
                    if t in modules and (t == target or t not in ancestors) and t != name:
                        edges.setdefault(t, node.lineno)
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (``[a, b, …, a]``) per strongly connected component of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(set(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for component in components:  # a shortest way back to the first module, within the component
        start = min(component)
        paths, seen = {start: [start]}, {start}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    cycles.append(paths[v] + [start])
                    queue = []
                    break
                if w in component and w not in seen:
                    seen.add(w)
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return sorted(cycles)


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    """``module (line n) imports its package p's __init__``, for each module that imports one of its own packages
    (a name of ``p/__init__.py``, or ``import p``): the package's ``__init__`` is the top of the package and imports
    its modules, not the other way round."""
    found = []
    for name, edges in sorted(graph.items()):
        ancestors = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        found += [f"{name} (line {edges[p]}) imports its package {p}'s __init__" for p in ancestors if p in edges]
    return found


def describe(cycles: list[list[str]]) -> str:
    return "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_package_has_no_import_cycle():
    cycles = import_cycles(import_graph(PACKAGE_DIR))
    assert not cycles, f"import cycles in matlabel/: {describe(cycles)}"


def test_no_module_imports_its_own_package():
    upward = upward_imports(import_graph(PACKAGE_DIR))
    assert not upward, "upward imports in matlabel/: " + "; ".join(upward)


def test_the_import_checks_find_cycles_and_upward_imports(tmp_path):
    """The two checks above on a toy package: a cycle through a function-level relative import, one through a
    package's ``__init__``, and a module importing a name of its package's ``__init__``; imports of a sibling and of
    the root's modules are neither."""
    pkg = tmp_path / "matlabel"
    files = {
        "__init__.py": "",
        "a.py": "from matlabel import b\n",
        "b.py": "def f():\n    from . import a  # a lazy import closes the cycle\n",
        "c.py": "X = 1\n",
        "sub/__init__.py": "from matlabel.sub.d import Y\nfrom .e import Z\n",
        "sub/d.py": "from matlabel.c import X as Y\nfrom .e import Z\n",
        "sub/e.py": "from matlabel.sub import Y as Z  # upward\n",
        "f.py": "import matlabel.sub.d\n",
        "g.py": "from matlabel.f import *\n",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    graph = import_graph(pkg)
    assert graph["matlabel.f"] == {"matlabel.sub": 1, "matlabel.sub.d": 1}  # importing sub.d runs sub's __init__
    assert graph["matlabel.sub.d"] == {"matlabel.c": 1, "matlabel.sub.e": 2}  # not its own package's __init__
    assert describe(import_cycles(graph)) == ("matlabel.a -> matlabel.b -> matlabel.a; "
                                              "matlabel.sub -> matlabel.sub.e -> matlabel.sub")
    assert upward_imports(graph) == ["matlabel.sub.e (line 1) imports its package matlabel.sub's __init__"]
