"""Write the path table of results/README.md from matlabel/paths.py, its one owner (``make docs``).

    python scripts/render_paths.py            # rewrite the table between the markers
    python scripts/render_paths.py --check    # exit 1 when the committed table differs (tests/test_paths.py)
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matlabel.paths import table_markdown  # noqa: E402

README = ROOT / "results" / "README.md"
BEGIN = "<!-- paths: written by scripts/render_paths.py from matlabel/paths.py; edit there -->\n"
END = "<!-- end of paths -->\n"


def rendered(text: str) -> str:
    """``text`` with the part between the markers replaced by the table of the path scheme."""
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"{README.relative_to(ROOT)} lacks the markers {BEGIN.strip()} ... {END.strip()}")
    return head + BEGIN + table_markdown() + END + tail


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the committed table is current")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = rendered(text)
    if args.check:
        if new != text:
            print(f"{README.relative_to(ROOT)} is out of date: run python scripts/render_paths.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
