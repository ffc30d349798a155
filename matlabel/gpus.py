"""One GPU per GPU job on a machine with several: a slot pool of lock files.

Snakemake's ``--resources gpu=4`` lets four GPU jobs run at once but does not say which card each may use, and
every job would take ``cuda:0``. Each job that asks for a GPU (``resources: gpu=1``) therefore takes a free card
from the pool before torch starts CUDA: it holds an exclusive ``flock`` on ``<lock dir>/gpu<id>.lock`` and sets
``CUDA_VISIBLE_DEVICES`` to that card, so ``cuda:0`` in the job is its own card. The lock belongs to the job's
process: it is released when the job ends, fails or is killed (the kernel drops flocks with the process), so a
killed run leaves no stale slot.

The pool: ``MATLABEL_GPUS`` (e.g. ``0,1,2,3``) if set, else the cards ``CUDA_VISIBLE_DEVICES`` lists, else (under
SLURM) the cards of ``SLURM_STEP_GPUS`` or ``SLURM_JOB_GPUS``, else (outside SLURM) every card ``nvidia-smi -L``
lists.

Under SLURM (``SLURM_JOB_ID`` set) the rule is the number of cards the job's process sees:

- one card (or none): nothing is done. This is every job of the SLURM profile: the Snakemake SLURM executor
  (snakemake-executor-plugin-slurm) submits each job as its own ``sbatch`` with its own ``--gpus=1``, and runs it as
  one ``srun -n1`` step in there (snakemake-executor-plugin-slurm-jobstep, ``run_job``), so SLURM already gave
  the job its card and ``CUDA_VISIBLE_DEVICES`` names it alone; likewise a job started by ``srun --gpus=1`` inside
  an allocation.
- several cards: a slot is claimed among them, as on a workstation. This is a Snakemake run inside ONE allocation
  (``salloc --gpus=4`` or an ``sbatch`` script, then ``snakemake --cores 32 --resources gpu=4``): its jobs are
  local processes of the allocation that all inherit the allocation's four cards, and without a claim each would
  take ``cuda:0``. The lock of a card is named by SLURM's global id of the card (``SLURM_STEP_GPUS`` /
  ``SLURM_JOB_GPUS``, which SLURM documents as not relative to the job's device cgroup) where that list matches
  ``CUDA_VISIBLE_DEVICES`` card for card: with constrained devices two jobs on one node both see their cards as
  ``0,1``, and only the global ids tell that they are different cards.

The lock dir is one per machine, whoever runs and whatever ``TMPDIR`` says (SLURM often gives each job its own):
``MATLABEL_GPU_LOCKS`` if set, else :data:`DEFAULT_LOCKS` (``/tmp/matlabel-gpu-slots``). It is created like
``/tmp`` itself (mode 1777: every user may add lock files, none may remove another's) and its lock files with mode
0666 whatever the umask, so runs of different users share the pool. ``/tmp`` is local to each node, and so is the
pool, as the cards are. A lock dir that cannot be used is an error that names it and the fix.
"""
from __future__ import annotations

import fcntl
import os
import re
import stat
import time
from pathlib import Path

#: The machine-wide lock dir unless ``MATLABEL_GPU_LOCKS`` names another (a fixed path: not ``TMPDIR``, not the uid).
#: /tmp is the directory every POSIX system provides for all users' temporary files (Filesystem Hierarchy Standard
#: 3.0, section 3.18, "/tmp: Temporary files"; POSIX.1-2017, Base Definitions 10.1, "Directory Structure and Files").
DEFAULT_LOCKS = Path("/tmp/matlabel-gpu-slots")

_held: list = []  # the open lock files of this process (kept open: closing one would release its card)


def _ids(value: str | None) -> list[str]:
    return [g.strip() for g in (value or "").split(",") if g.strip() and g.strip() != "-1"]


def under_slurm(environ=os.environ) -> bool:
    return bool(environ.get("SLURM_JOB_ID"))


def _slurm_ids(environ) -> list[str]:
    """SLURM's global ids of the cards of this job step (``srun``), else of the job; [] when it names none."""
    return _ids(environ.get("SLURM_STEP_GPUS")) or _ids(environ.get("SLURM_JOB_GPUS"))


def pool(environ=os.environ) -> list[str]:
    """The card ids jobs may take, in this process's CUDA numbering (see the module doc); [] on a machine without
    CUDA or a SLURM job without cards."""
    if environ.get("MATLABEL_GPUS"):
        return _ids(environ["MATLABEL_GPUS"])
    if environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return _ids(environ["CUDA_VISIBLE_DEVICES"])
    if under_slurm(environ):  # SLURM's cards of this job only: nvidia-smi may list cards of other jobs
        return _slurm_ids(environ)
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


def lock_names(cards: list[str], environ=os.environ) -> list[str]:
    """The name of each card's lock: the card's id, or under SLURM its global id when SLURM lists the job's cards
    one for one with ``CUDA_VISIBLE_DEVICES`` (module doc)."""
    if under_slurm(environ):
        visible, global_ids = _ids(environ.get("CUDA_VISIBLE_DEVICES")), _slurm_ids(environ)
        if visible and len(visible) == len(global_ids):
            by_visible = dict(zip(visible, global_ids))
            return [by_visible.get(card, card) for card in cards]
    return list(cards)


def lock_dir(environ=os.environ) -> Path:
    """``MATLABEL_GPU_LOCKS`` or :data:`DEFAULT_LOCKS`: the same dir for every user and ``TMPDIR`` of the machine."""
    return Path(environ.get("MATLABEL_GPU_LOCKS") or DEFAULT_LOCKS)


def _unusable(locks: Path, why) -> RuntimeError:
    return RuntimeError(
        f"GPU slot lock dir {locks} cannot be used ({why}). Every GPU job on this machine takes its card there, "
        f"so every user must be able to add files to it: have its owner run `chmod 1777 {locks}`, or set "
        f"MATLABEL_GPU_LOCKS to a directory all runs on this machine can write (the same one for all of them)")


def shared_dir(locks: Path) -> Path:
    """Create ``locks`` (its parents as usual) with mode 1777, as ``/tmp``: world-writable, and sticky so that no
    user can remove another's lock file. An existing dir is used as it is (never chmod-ed: ``MATLABEL_GPU_LOCKS`` may
    name any dir) if this process may add files to it."""
    try:
        locks.parent.mkdir(parents=True, exist_ok=True)
        old = os.umask(0)  # the job's umask must not take the group's and others' write bits off
        try:
            locks.mkdir(mode=0o1777)
            created = True
        except FileExistsError:
            created = False
        finally:
            os.umask(old)
        if created and stat.S_IMODE(locks.stat().st_mode) != 0o1777:
            os.chmod(locks, 0o1777)  # a system whose mkdir drops the sticky bit
    except OSError as e:
        raise _unusable(locks, e) from e
    if not locks.is_dir() or not os.access(locks, os.W_OK | os.X_OK):
        raise _unusable(locks, "not a directory" if not locks.is_dir() else "no write permission")
    return locks


def _open_lock(path: Path):
    """The lock file ``path`` opened for reading and writing, created with mode 0666 if missing."""
    while True:
        try:  # an existing file without O_CREAT: Linux refuses O_CREAT on another user's file in a sticky
            return open(os.open(path, os.O_RDWR), "r+")  # world-writable dir (fs.protected_regular)
        except FileNotFoundError:
            pass
        except PermissionError as e:
            raise _unusable(path.parent, f"{path} is not writable for this user: its owner can `chmod 666 {path}`"
                            ) from e
        old = os.umask(0)
        try:
            return open(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), "r+")
        except FileExistsError:
            continue  # another job created it meanwhile: open it as an existing file
        except OSError as e:
            raise _unusable(path.parent, e) from e
        finally:
            os.umask(old)


def acquire(cards: list[str], locks: Path, wait_s: float = 0.5, timeout_s: float | None = None,
            log=None, names: list[str] | None = None) -> str | None:
    """Take the first free card of ``cards`` (blocking until one is free, polling every ``wait_s``); returns its id,
    or None when ``cards`` is empty. ``names``: each card's lock name (default: its id). The lock stays held until
    this process exits."""
    if not cards:
        return None
    names = list(cards) if names is None else names
    shared_dir(locks)
    start, told = time.monotonic(), False
    while True:
        for card, name in zip(cards, names):
            f = _open_lock(locks / f"gpu{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.lock")  # MIG ids hold slashes
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
    nothing to do (no GPU on this machine, or a SLURM job that sees one card only: SLURM gave it that card)."""
    cards = pool(environ)
    if under_slurm(environ) and len(cards) <= 1:
        return None
    card = acquire(cards, lock_dir(environ), log=log, names=lock_names(cards, environ))
    if card is not None:
        environ["CUDA_VISIBLE_DEVICES"] = card
        if log:
            log.info("GPU slot: card %s (CUDA_VISIBLE_DEVICES=%s)", card, card)
    return card
