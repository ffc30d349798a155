"""How the renderers write a number, a duration, a table and a name."""
from __future__ import annotations

import math
import re

DASH = "—"
METHOD_NAMES = {"cam": "CAM", "recam": "ReCAM", "d2cam": "D2CAM"}


def md_table(header, rows) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """``13 min 19 s`` (``58 s`` under a minute, ``1 h 2 min`` from an hour)."""
    s = int(round(float(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def about_minutes(seconds: float) -> str:
    """``about 22 minutes`` / ``about 2 minutes`` / ``about 1 minute``."""
    m = max(1, int(round(float(seconds) / 60)))
    return f"about {m} minute{'s' if m != 1 else ''}"


def short_not_run(cell: str, seen: set) -> str:
    """A table's ``not run: why (how)`` cell without its parenthesis; ``not run (as above)`` once said in the column."""
    if not cell.startswith("not run"):
        return cell
    short = re.sub(r"\s*\(.*\)\s*$", "", cell)
    if short in seen:
        return "not run (as above)"
    seen.add(short)
    return short


def half_up(x: float) -> int:
    """``x`` rounded to an integer, halves up (a percentage printed to one decimal, 2.5, reads 3)."""
    return math.floor(x + 0.5)


def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f}%"


def _signed(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")
