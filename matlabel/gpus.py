"""One GPU per GPU job on a machine with several: a slot pool of lock files.

Snakemake's ``--resources gpu=4`` lets four GPU jobs run at once but does not say which card each may use, and
every job would take ``cuda:0``. Each job that asks for a GPU (``resources: gpu=1``) therefore takes a free card
from the pool before torch starts CUDA: it holds an exclusive ``flock`` on ``<lock dir>/gpu<id>.lock`` and sets
``CUDA_VISIBLE_DEVICES`` to that card, so ``cuda:0`` in the job is its own card. The lock belongs to the job's
process: it is released when the job ends, fails or is killed (the kernel drops flocks with the process), so a
killed run leaves no stale slot.

The pool: ``MATLABEL_GPUS`` (e.g. ``0,1,2,3``) if set, else the cards ``CUDA_VISIBLE_DEVICES`` lists, else every card
torch counts. Under SLURM (``SLURM_JOB_ID`` set) nothing is done: SLURM gives each job its own card. The lock dir is
machine-wide (``MATLABEL_GPU_LOCKS``, default ``<tmp>/matlabel-gpu-slots-<uid>``), so two workflows on one machine
share the pool.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

_held: list = []  # the open lock files of this process (kept open: closing one would release its card)


def pool(environ=os.environ) -> list[str]:
    """The card ids jobs may take (see the module doc); [] on a machine without CUDA."""
    if environ.get("MATLABEL_GPUS"):
        return [g.strip() for g in environ["MATLABEL_GPUS"].split(",") if g.strip()]
    if environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [g.strip() for g in environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip() and g.strip() != "-1"]
    return _nvidia_smi_cards()


def _nvidia_smi_cards() -> list[str]:
    """The cards ``nvidia-smi -L`` lists (asked outside this process: CUDA must not start before the job's
    CUDA_VISIBLE_DEVICES is set); [] without the tool."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]


def lock_dir(environ=os.environ) -> Path:
    return Path(environ.get("MATLABEL_GPU_LOCKS") or Path(tempfile.gettempdir(), f"matlabel-gpu-slots-{os.getuid()}"))


def acquire(cards: list[str], locks: Path, wait_s: float = 0.5, timeout_s: float | None = None,
            log=None) -> str | None:
    """Take the first free card of ``cards`` (blocking until one is free, polling every ``wait_s``); returns its id,
    or None when ``cards`` is empty. The lock stays held until this process exits."""
    if not cards:
        return None
    locks.mkdir(parents=True, exist_ok=True)
    start, told = time.monotonic(), False
    while True:
        for card in cards:
            f = open(locks / f"gpu{card}.lock", "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            _held.append(f)
            return card
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no free GPU among {cards} after {timeout_s} s (locks in {locks})")
        if log and not told:
            log.info("all GPUs of the pool %s are taken; waiting for one (locks in %s)", cards, locks)
            told = True
        time.sleep(wait_s)


def claim_for_job(environ=os.environ, log=None) -> str | None:
    """For a job that asked for a GPU: take a card of the pool and make it the only visible one; None when there is
    nothing to do (SLURM, or no GPU on this machine)."""
    if environ.get("SLURM_JOB_ID"):
        return None
    card = acquire(pool(environ), lock_dir(environ), log=log)
    if card is not None:
        environ["CUDA_VISIBLE_DEVICES"] = card
        if log:
            log.info("GPU slot: card %s (CUDA_VISIBLE_DEVICES=%s)", card, card)
    return card
