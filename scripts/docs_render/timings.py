"""The development machine's timings (bench/results/timings.csv): newest record first, with its history."""
from __future__ import annotations

from docs_render.formatting import about_minutes, duration, md_table
from docs_render.sources import Missing, Sources


TIMINGS = "bench/results/timings.csv"


def timings(src: Sources, what: str) -> list[dict]:
    """The records of one measurement, newest first."""
    rows = [r for r in src.csv(TIMINGS) if r["what"] == what]
    if not rows:
        raise Missing(f"{TIMINGS}: {what}")
    return sorted(rows, key=lambda r: r["date"], reverse=True)


def _value(r: dict) -> str:
    return duration(r["value"]) if r["unit"] == "s" else f"{r['value']} {r['unit']}"


def _with_history(rows: list[dict], what: str) -> str:
    new, old = rows[0], rows[1:]
    text = f"{_value(new)} from a fresh clone of {new['commit']}, {new['date']} ({new['detail']})"
    if old:
        text += "; earlier: " + ", ".join(f"{_value(r)} from {r['commit']} ({r['detail']})" for r in old)
    return text


def timings_table(src: Sources) -> str:
    """README's table of the development machine's timings."""
    venv, size = timings(src, "make_venv")[0], timings(src, "venv_size")[0]
    return md_table(["what", "value"], [
        ["`make venv` (pip install of `requirements.txt` + numba warm-up)", about_minutes(venv["value"])],
        ["venv size", f"{_value(size)} ({size['detail']})"],
        ["`make demo` (96 train + 24 val synthetic images at 192×144, EfficientNet-Lite0 from ImageNet, CPU: the "
         "content stamps, CAM, ReCAM and D2CAM training and export, matting, CRF, five IRNs and random walks, three "
         "DeepLab-v2s, the floor, Tables 1–3, Figures 2 and 5, the gallery, run summary, then the report; the goal "
         "is 10 min)", _with_history(timings(src, "make_demo"), "make_demo")],
        ["`make test` (`bash .ci/run`)", _with_history(timings(src, "make_test"), "make_test")],
        ["`make check`", _with_history(timings(src, "make_check"), "make_check")],
        ["Table 5 + the ε grid after `make demo`", _with_history(timings(src, "table5_eps"), "table5_eps")],
    ])


def _newest(what: str, text, doc: str):
    """A renderer of the newest ``what`` record through ``text(record)``."""
    def render(src: Sources) -> str:
        return text(timings(src, what)[0])
    render.__doc__ = doc.format(what=what)
    return render


def timing_about(what: str):
    return _newest(what, lambda r: about_minutes(float(r["value"])), "``about N minutes`` of the newest {what} record.")


def timing_exact(what: str):
    return _newest(what, lambda r: f"{_value(r)} from a fresh clone of {r['commit']}",
                   "The newest {what} record and its commit.")


def recorded(what: str):
    return _newest(what, lambda r: f"{r['value']} {r['unit']}", "The newest {what} record as written (value and unit).")


def dry_runs(src: Sources) -> str:
    """The planning time of VOC's Table 1 and COCO's Table 3, each against its record before (timings.csv)."""
    voc, coco = timings(src, "dry_run_voc_table1"), timings(src, "dry_run_coco_table3")
    return (f"the paper's VOC Table 1 dry run takes {voc[0]['value']} s and COCO's Table 3 {coco[0]['value']} s on "
            f"the 2-core machine ({voc[1]['value']} s and {coco[1]['value']} s at {voc[1]['commit']}, before "
            f"{voc[0]['commit']})")
