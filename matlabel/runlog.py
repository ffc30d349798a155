"""Per-job logging for the scripts called by rules: stderr (progress bars included) goes to the rule's log."""
from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import traceback


def start(smk) -> logging.Logger:
    """Send stderr and ``logging`` to ``smk.log[0]`` (line-buffered) and size torch's thread pool: config
    ``torch_threads`` when set, else ``smk.threads`` (Snakemake sets OMP_NUM_THREADS to it; torch needs to be
    told as well). Pinning it makes CPU results independent of --cores: oneDNN's convolution gradients are
    summed in per-thread partial sums, so another thread count rounds differently (tests/test_determinism.py).
    A job whose script has not imported torch is not made to (its import costs ~2 s of CPU): the pool is sized
    when something imports it, if anything does.

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
    log = logging.getLogger(f"matlabel.{smk.rule}")
    if _asks_for_gpu(smk):  # before torch starts CUDA: the job's own card of the pool (matlabel/gpus.py)
        from matlabel.gpus import claim_for_job

        claim_for_job(log=log)
    pin_torch_threads(job_threads(smk), lambda torch: log.info("torch threads: %d (job threads: %s)",
                                                               torch.get_num_threads(), smk.threads))
    return log


def pin_torch_threads(n: int, then=lambda torch: None) -> None:
    """``torch.set_num_threads(n)``, then ``then(torch)``: now if torch is loaded, else right after the first
    ``import torch`` of this process (a job that never imports it never pays for it)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
        then(torch)
    elif not any(isinstance(f, _PinOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PinOnImport(n, then))


class _PinOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of ``torch`` (found by the finders after it) so that the module, once
    executed, gets its thread count; then steps aside."""

    def __init__(self, n: int, then):
        self.n, self.then = n, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is not None and spec.loader is not None:
            spec.loader = _PinningLoader(spec.loader, self.n, self.then)
        return spec


class _PinningLoader(importlib.abc.Loader):
    def __init__(self, loader, n: int, then):
        self.loader, self.n, self.then = loader, n, then

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # torch sees its own loader
        self.loader.exec_module(module)
        module.set_num_threads(self.n)
        self.then(module)


def _asks_for_gpu(smk) -> bool:
    resources = getattr(smk, "resources", None)
    try:
        return int(resources.get("gpu", 0) or 0) > 0 if resources is not None else False
    except (TypeError, ValueError):
        return False


def job_threads(smk) -> int:
    """torch's intra-op threads for this job: ``config["torch_threads"]`` if set, else the job's threads."""
    pinned = (getattr(smk, "config", None) or {}).get("torch_threads")
    return max(1, int(pinned if pinned is not None else smk.threads))
