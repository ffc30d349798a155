"""Per-job logging for the scripts called by rules: stderr (progress bars included) goes to the rule's log."""
from __future__ import annotations

import logging
import sys
import traceback


def start(smk) -> logging.Logger:
    """Send stderr and ``logging`` to ``smk.log[0]`` (line-buffered) and size torch's thread pool from
    ``smk.threads`` (Snakemake sets OMP_NUM_THREADS to it; torch needs to be told as well).

    An uncaught error is written to the log with its traceback and, as one readable message, to the
    terminal, so a user sees *what* failed and the fix (e.g. where to put a manual download) without
    opening the log.
    """
    terminal = sys.stderr
    if smk.log:
        sys.stderr = open(smk.log[0], "w", buffering=1)

        def report(kind, err, tb):
            traceback.print_exception(kind, err, tb, file=sys.stderr)
            print(f"\n[{smk.rule}] {kind.__name__}: {err}\n(full traceback in {smk.log[0]})\n", file=terminal)

        sys.excepthook = report
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import torch

        torch.set_num_threads(max(1, int(smk.threads)))
    except ImportError:  # the data-only rules do not need torch
        pass
    return logging.getLogger(f"matlabel.{smk.rule}")
