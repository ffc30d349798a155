"""Code versions of the rules: a hash of the library code each rule's script can run, derived from its imports.

Snakemake reruns a job when its script changes, not when a module the script imports does. Each rule therefore
passes a code hash as a param. It used to be a hand-kept list of modules per rule, both too broad (editing
``recam.py`` retrained CAM and D2CAM) and too narrow (``io.py``, where images are read, was in no list). Here the
list is derived: the import closure of ``scripts/<rule script>.py`` within the ``matlabel`` package (every
``import``/``from … import`` anywhere in a module, function-level imports included), found statically with ``ast``.

The hash is of the code, not its text: each module's syntax tree with docstrings removed (comments are not in the
tree), so editing a comment, a docstring or the layout of a line reruns nothing, and editing code reruns exactly
the rules whose scripts reach it. A rule that serves several methods can leave out the modules that only other
methods run (``exclude``): the traversal does not enter them, so CAM's training does not depend on ``recam.py``.
Leaving out a package leaves out its modules (the threshold rows leave out ``matlabel.matting``, all of it).
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "matlabel"


def _module_file(package_dir: Path, dotted: str) -> Path | None:
    """The file of module ``dotted`` (``matlabel.x.y``): ``x/y.py`` or ``x/y/__init__.py``; None if neither."""
    parts = dotted.split(".")[1:]
    base = package_dir.joinpath(*parts) if parts else package_dir
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(dotted: str) -> list[str]:
    """``matlabel.a.b`` -> ["matlabel", "matlabel.a"]: importing a module runs its packages' ``__init__``."""
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _stat_key(path: Path) -> tuple:
    st = Path(path).stat()
    return (str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _parse_cached(key: tuple) -> ast.Module:
    return _strip_docstrings(ast.parse(Path(key[0]).read_text(encoding="utf-8"), filename=key[0]))


def _parse(path: Path) -> ast.Module:
    """The module's syntax tree without docstrings (no import lives in one), parsed once per file version and shared
    by the import walk and the digest; callers must not modify it."""
    return _parse_cached(_stat_key(path))


def imported_modules(path: Path, module: str | None, package_dir: Path) -> set[str]:
    """The ``matlabel`` modules that the file ``path`` (module ``module``, None for a script) imports anywhere."""
    return set(_imported_cached(_stat_key(path), module, Path(package_dir)))


@functools.lru_cache(maxsize=None)
def _imported_cached(key: tuple, module: str | None, package_dir: Path) -> frozenset[str]:
    path = Path(key[0])
    found: set[str] = set()
    package = module if module and path.name == "__init__.py" else (module.rsplit(".", 1)[0] if module else None)
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                if package is None:
                    continue
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from matlabel import runlog" names a submodule; "from matlabel.io import read_json" a name in one
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                if _module_file(package_dir, name) is not None:
                    found.add(name)
                    found.update(_parents(name))
    return frozenset(found)


def _excluded(name: str, exclude) -> bool:
    """``name`` is in ``exclude`` or in a package that is (importing a package's module runs the package)."""
    return any(name == e or name.startswith(e + ".") for e in exclude)


def import_closure(script: str | Path, package_dir: str | Path, exclude=()) -> list[str]:
    """Sorted ``matlabel`` modules reachable from ``script`` by imports, not entering the modules in ``exclude``
    (dotted names, e.g. ``matlabel.recam``; a package's name leaves out all its modules)."""
    package_dir = Path(package_dir)
    seen: set[str] = set()
    todo = sorted(imported_modules(Path(script), None, package_dir))
    while todo:
        name = todo.pop()
        if name in seen or _excluded(name, exclude):
            continue
        seen.add(name)
        todo.extend(imported_modules(_module_file(package_dir, name), name, package_dir) - seen)
    return sorted(seen)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def module_code_digest(path: Path) -> str:
    """sha256 of a module's syntax tree without docstrings and positions: comments and docstrings do not count."""
    return _digest_cached(_stat_key(path))


@functools.lru_cache(maxsize=None)
def _digest_cached(key: tuple) -> str:
    """Once per file version: the rules' code versions share most modules (ast.dump of them all, for every rule,
    was half of a dry-run's time)."""
    return hashlib.sha256(ast.dump(_parse_cached(key), include_attributes=False).encode()).hexdigest()


def code_version(script: str | Path, package_dir: str | Path, exclude=()) -> str:
    """The code version of a rule: a 16-hex digest over the code of every module in the script's import closure."""
    package_dir = Path(package_dir)
    digest = hashlib.sha256()
    for name in import_closure(script, package_dir, exclude):
        digest.update(f"{name}:{module_code_digest(_module_file(package_dir, name))}\n".encode())
    return digest.hexdigest()[:16]
