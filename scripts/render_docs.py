"""Render the measured numbers of README.md, docs/*.md and bench/README.md from the files that hold them.

    python scripts/render_docs.py                  # rewrite every generated region (what `make docs` runs)
    python scripts/render_docs.py --check          # exit 1, naming each region, if a doc differs from its files
    python scripts/render_docs.py --results DIR    # the demo's results from DIR instead of results/

A generated region is the text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; the
renderer of NAME (:data:`docs_render.regions.REGIONS`, scripts/docs_render/) makes it from its source files, so a
number is written in one file (a table of the demo under ``results/``, a measurement under ``bench/results/``, a
timing in ``bench/results/timings.csv``) and every doc that shows it shows the same value. A region whose markers
sit on one line is inline (a number in a sentence); otherwise it is a block (a table). Sources under ``results/``
are the demo's (``make demo``; not in git): a region whose source is absent is left as it is and listed, so
``--check`` on a clone without a demo run checks the regions sourced from ``bench/results/`` and the configs only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_render.regions import REGION, doc_files, render_text  # noqa: E402  (scripts/ is not a package)
from docs_render.sources import ROOT, Sources  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a doc differs from its sources")
    ap.add_argument("--results", type=Path, help="the demo's results directory (default: results/)")
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    src = Sources(root=args.root, results=args.results)
    skipped: list = []
    stale = []
    for path in doc_files(args.root):
        old = path.read_text(encoding="utf-8")
        new = render_text(old, src, skipped=skipped)
        if new != old:
            rel = path.relative_to(args.root)
            names = [m.group("name") for m, n in zip(REGION.finditer(old), REGION.finditer(new))
                     if m.group(0) != n.group(0)]
            stale.append(f"{rel}: {', '.join(dict.fromkeys(names))}")
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for name, missing in dict.fromkeys(skipped):
        print(f"left as it is: {name} ({missing} not found)", file=sys.stderr)
    if args.check and stale:
        print("docs differ from their sources (make docs re-renders them):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print("\n".join(f"rendered {s}" for s in stale) or "every generated region is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
