"""The opening every rule's script shares: ``log, p, manifest, ids = jobs.start(smk)`` (or ``jobs.start(smk).log``).

``start`` sends the job's stderr and logging to the rule's log and sizes torch's thread pool (``runlog.start``), then
gives the pieces the scripts used to fetch one line each: the rule's params, the dataset's manifest and the ids of
the images the job works on (a shard rule: its shard's share of the split). The manifest and the ids are read when
first asked for, so a script that needs neither reads neither.
"""
from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from matlabel import runlog
from matlabel.datasets.layout import Manifest, load_manifest
from matlabel.shards import shard_ids


class Job:
    """What a rule's script starts from. Unpacks as ``log, params, manifest, ids``."""

    def __init__(self, smk, log: logging.Logger):
        self.smk, self.log = smk, log

    @property
    def params(self) -> Any:
        return self.smk.params

    @cached_property
    def manifest(self) -> Manifest:
        """The dataset of the rule's ``manifest`` input."""
        return load_manifest(self.smk.input.manifest)

    @cached_property
    def ids(self) -> list[str] | None:
        """The images of split ``params.split`` (else of the ``split`` wildcard; None for a rule with neither); for
        a rule with a ``shard`` wildcard, only that shard's of ``params.n_shards`` (``shards.shard_ids``)."""
        # getattr: Snakemake's namedlists and plain namespaces (the tests') alike
        split = getattr(self.params, "split", None) or getattr(self.smk.wildcards, "split", None)
        if split is None:
            return None
        ids = self.manifest.split_ids(split)
        shard = getattr(self.smk.wildcards, "shard", None)
        return ids if shard is None else shard_ids(ids, int(shard), self.params.n_shards)

    def __iter__(self):
        return iter((self.log, self.params, self.manifest, self.ids))


def start(smk) -> Job:
    """Start the job: ``runlog.start(smk)`` first (before anything can fail or touch a GPU), then its ``Job``."""
    return Job(smk, runlog.start(smk))
