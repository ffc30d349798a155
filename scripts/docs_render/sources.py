"""What the renderers read (:class:`Sources`: the repository and the demo's results directory), an absent source
(:class:`Missing`), and the Table 1 rows of a table CSV by their key."""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = "synthetic"  # the demo's dataset: its tables under results/synthetic/, whatever dataset ran last


class Missing(Exception):
    """A region's source file is absent (the demo not run): the region is left as it is."""


@dataclass
class Sources:
    """Where the renderers read: the repository (configs, bench/results/) and the demo's results directory."""

    root: Path = ROOT
    results: Path | None = None

    def __post_init__(self):
        self.results = Path(self.results) if self.results is not None else self.root / "results"

    def path(self, rel: str) -> Path:
        """``results/...`` from the results directory, anything else from the repository; :class:`Missing` if absent."""
        p = self.results / rel[len("results/"):] if rel.startswith("results/") else self.root / rel
        if not p.exists():
            raise Missing(rel)
        return p

    def csv(self, rel: str) -> list[dict]:
        with open(self.path(rel), newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def json(self, rel: str):
        return json.loads(self.path(rel).read_text(encoding="utf-8"))

    def text(self, rel: str) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    def yaml(self, rel: str) -> dict:
        import yaml
        return yaml.safe_load(self.text(rel))

    def config(self, *presets: str) -> dict:
        """config.yaml with ``presets`` laid over it in order, as ``--configfile`` merges them."""
        cfg = self.yaml("config.yaml")
        for rel in presets:
            cfg = _merged(cfg, self.yaml(rel))
        return cfg


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = _merged(base.get(k) or {}, v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _table1_rows(src: Sources, rel: str) -> dict[str, dict]:
    """The rows of a table CSV written by the workflow that are Table 1 rows, by their key (``matlabel.tables``'s
    TABLE1_ROWS: ``cam``, ``matlabel_cam``, ...); the floor and I+S rows left out."""
    keys = {label: key for key, label in _table1_labels(src).items()}
    return {keys[r["method"]]: r for r in src.csv(rel) if r["method"] in keys}


def _table1_labels(src: Sources) -> dict[str, str]:
    sys.path.insert(0, str(src.root))
    from matlabel.tables import TABLE1_ROWS
    return TABLE1_ROWS


def _short(src: Sources, row: str) -> str:
    """A Table 1 row's label without its parenthesis (``Mat-Label w/ CAM``)."""
    return _table1_labels(src)[row].split(" (")[0]
