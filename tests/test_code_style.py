"""Repository-wide code habits: no line of the Python code (the package, the scripts, the benchmarks, the tests) or
of the workflow (Snakefile, rules/**/*.smk) is longer than 120 characters."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE = 120
PATTERNS = ("*.py", "*.smk", "Snakefile")
DIRS = ("matlabel", "scripts", "bench", "tests", "rules")


def code_files() -> list[Path]:
    """The tracked code files (``git ls-files``); without git (a copy of the working tree), those of ``DIRS`` and the
    Snakefile."""
    if (ROOT / ".git").exists():
        try:
            out = subprocess.run(["git", "ls-files", "-z", "--", *PATTERNS], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout
            return [ROOT / name for name in out.split("\0") if name and (ROOT / name).is_file()]
        except (OSError, subprocess.CalledProcessError):
            pass
    files = [p for d in DIRS for pattern in PATTERNS for p in sorted((ROOT / d).rglob(pattern))]
    return files + [p for p in [ROOT / "Snakefile"] if p.is_file()]


def long_lines(paths, limit: int = MAX_LINE) -> list[str]:
    """``file:line (n chars)`` for each line of ``paths`` longer than ``limit`` characters (not bytes)."""
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            length = len(line.rstrip("\r"))
            if length > limit:
                found.append(f"{path.relative_to(ROOT).as_posix()}:{number} ({length} chars)")
    return found


def test_no_line_is_longer_than_120_characters():
    files = code_files()
    assert any(p.suffix == ".smk" for p in files) and any(p.name == "Snakefile" for p in files)
    found = long_lines(files)
    assert not found, f"lines over {MAX_LINE} characters: " + "; ".join(found)
