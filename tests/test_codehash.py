"""Code versions derived from imports (matlabel/codehash.py): the closure, the code-not-text digest, exclusions."""
import textwrap
from pathlib import Path

from matlabel.codehash import code_version, import_closure, module_code_digest
from matlabel.labels import MATTING_MODULES
from matlabel.methods import other_methods_modules

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def toy(tmp_path: Path):
    pkg = tmp_path / "matlabel"
    write(pkg / "__init__.py", "")
    write(pkg / "a.py", '"""Module a."""\nfrom matlabel.b import f\n\n\ndef g():\n    """Doc."""\n'
                        '    return f()  # note\n')
    write(pkg / "b.py", "from . import c\n\n\ndef f():\n    from matlabel.sub import d  # a lazy import counts\n"
                        "    return c.X + d.Y\n")
    write(pkg / "c.py", "X = 1\n")
    write(pkg / "sub" / "__init__.py", "")
    write(pkg / "sub" / "d.py", "from ..c import X as Y\n")
    write(pkg / "e.py", "import os\nZ = 2\n")
    write(pkg / "unused.py", "W = 3\n")
    script = write(tmp_path / "scripts" / "s.py", "import numpy\nfrom matlabel import a\nimport matlabel.e\n")
    return pkg, script


def test_closure_follows_every_import_form(tmp_path):
    pkg, script = toy(tmp_path)
    assert import_closure(script, pkg) == ["matlabel", "matlabel.a", "matlabel.b", "matlabel.c", "matlabel.e",
                                           "matlabel.sub", "matlabel.sub.d"]
    # an excluded module is not entered: what only it imports drops out, what others import stays
    assert import_closure(script, pkg, exclude=("matlabel.b",)) == ["matlabel", "matlabel.a", "matlabel.e"]


def test_excluding_a_package_excludes_its_modules(tmp_path):
    """Leaving out a package leaves out its modules too, those imported directly included (importing one runs the
    package): the threshold rows leave out ``matlabel.matting``, the whole package."""
    pkg, script = toy(tmp_path)
    write(pkg / "e.py", "import matlabel.sub.d\n")  # the package's module reached by another path than the package
    assert "matlabel.sub.d" in import_closure(script, pkg, exclude=("matlabel.b",))
    closure = import_closure(script, pkg, exclude=("matlabel.sub",))
    assert not any(m == "matlabel.sub" or m.startswith("matlabel.sub.") for m in closure)
    assert "matlabel.c" in closure and "matlabel.e" in closure


def test_comments_docstrings_and_layout_do_not_change_the_version_code_does(tmp_path):
    pkg, script = toy(tmp_path)
    before = code_version(script, pkg)
    a = pkg / "a.py"
    a.write_text('"""Module a, reworded."""\nfrom matlabel.b import (\n    f,\n)\n\n\ndef g():\n'
                 '    """Another doc."""\n    # a comment\n    return f()\n')
    assert code_version(script, pkg) == before
    (pkg / "unused.py").write_text("W = 4\n")  # outside the closure
    assert code_version(script, pkg) == before
    (pkg / "sub" / "d.py").write_text("from ..c import X as Y\nY = Y + 1\n")  # a lazy import's module
    assert code_version(script, pkg) != before
    assert module_code_digest(a) != module_code_digest(pkg / "c.py")


def test_the_rules_closures_on_this_code_base():
    pkg = ROOT / "matlabel"

    def closure(script, exclude=()):
        return set(import_closure(ROOT / "scripts" / f"{script}.py", pkg, exclude))

    # image reading (io) is in the version of every rule that reads images
    for script in ("train_classifier", "export_cams", "make_labels", "crf_labels", "train_irn", "random_walk",
                   "train_deeplab", "evaluate_deeplab"):
        assert "matlabel.io" in closure(script), script
    # per method: CAM's training does not reach ReCAM's or D2CAM's modules; each method reaches its own
    cam = closure("train_classifier", other_methods_modules("cam"))
    assert not {"matlabel.recam", "matlabel.d2cam", "matlabel.losses"} & cam and "matlabel.cam" in cam
    assert "matlabel.recam" in closure("train_classifier", other_methods_modules("recam"))
    assert "matlabel.d2cam" in closure("train_classifier", other_methods_modules("d2cam_d2"))
    # threshold rows do not reach the matting solver; matting rows do
    threshold = closure("make_labels", other_methods_modules("cam") + MATTING_MODULES)
    package = {"matlabel.matting"} | {f"matlabel.matting.{f.stem}" for f in (pkg / "matting").glob("*.py")
                                      if f.stem != "__init__"}
    assert not any(m.startswith("matlabel.matting") for m in threshold)
    # the matting rows (their labels, Table 5 and the eps sensitivity) reach every module of the matting package
    for script in ("make_labels", "table5_cell", "eps_cell"):
        assert package <= closure(script), (script, package - closure(script))
    # the walk reaches the relations it builds its paths from (it was missing from the hand-kept list)
    assert {"matlabel.irn.relations", "matlabel.cam", "matlabel.backbone"} <= closure("random_walk")
    # DeepLab trains with the classifiers' loop; their training does not reach DeepLab's package
    assert {"matlabel.train", "matlabel.deeplab.train", "matlabel.checkpoints"} <= closure("train_deeplab")
    assert not any(m.startswith("matlabel.deeplab") for m in closure("train_classifier"))
    # the evaluations do not reach training code
    assert not {"matlabel.train", "matlabel.models"} & closure("evaluate_labels")
