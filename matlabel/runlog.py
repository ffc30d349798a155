"""Per-job logging for the scripts called by rules: stderr (progress bars included) goes to the rule's log."""
from __future__ import annotations

import logging
import sys


def start(smk) -> logging.Logger:
    """Send stderr and ``logging`` to ``smk.log[0]`` (line-buffered) and size torch's thread pool from
    ``smk.threads`` (Snakemake sets OMP_NUM_THREADS to it; torch needs to be told as well)."""
    if smk.log:
        sys.stderr = open(smk.log[0], "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import torch

        torch.set_num_threads(max(1, int(smk.threads)))
    except ImportError:  # the data-only rules do not need torch
        pass
    return logging.getLogger(f"matlabel.{smk.rule}")
