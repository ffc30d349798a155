"""One card per GPU job (matlabel/gpus.py), with a fake device list: distinct cards, waiting, release on kill."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from matlabel.gpus import claim_for_job, pool

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import os, sys, time
sys.path.insert(0, {root!r})
from matlabel.gpus import claim_for_job
card = claim_for_job()
print(card, os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(60)
"""


def start_holder(env):
    return subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT))], env=env, stdout=subprocess.PIPE,
                            text=True)


def test_jobs_get_distinct_cards_wait_for_a_free_one_and_a_killed_job_frees_its_card(tmp_path):
    env = {**os.environ, "MATLABEL_GPUS": "0,1", "MATLABEL_GPU_LOCKS": str(tmp_path / "locks")}
    env.pop("SLURM_JOB_ID", None)
    first, second = start_holder(env), start_holder(env)
    cards = sorted(first.stdout.readline().split()[0] + second.stdout.readline().split()[0])
    assert cards == ["0", "1"]
    third = start_holder(env)
    time.sleep(1.5)
    assert third.poll() is None  # both cards taken: it waits
    os.kill(first.pid, signal.SIGKILL)  # a killed job's lock goes with its process
    first.wait()
    freed = third.stdout.readline().split()
    assert freed[0] == freed[1] and freed[0] in ("0", "1")
    for p in (second, third):
        p.kill()
        p.wait()


def test_the_pool_and_when_nothing_is_claimed(tmp_path):
    assert pool({"MATLABEL_GPUS": "2, 3"}) == ["2", "3"]
    assert pool({"CUDA_VISIBLE_DEVICES": "4,5"}) == ["4", "5"] and pool({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    slurm = {"SLURM_JOB_ID": "7", "MATLABEL_GPUS": "0", "MATLABEL_GPU_LOCKS": str(tmp_path)}
    assert claim_for_job(slurm) is None and "CUDA_VISIBLE_DEVICES" not in slurm  # SLURM gives each job its card
    empty = {"MATLABEL_GPUS": "", "CUDA_VISIBLE_DEVICES": "", "MATLABEL_GPU_LOCKS": str(tmp_path)}
    assert claim_for_job(empty) is None  # no card on this machine: nothing to do


def test_a_job_asking_for_a_gpu_gets_its_card_when_its_log_starts(tmp_path, monkeypatch):
    """runlog.start, the first call of every script, claims the card before torch can start CUDA."""
    import logging
    import sys as _sys

    from snakemake.iocontainers import Namedlist

    from matlabel import runlog

    monkeypatch.setenv("MATLABEL_GPUS", "3")
    monkeypatch.setenv("MATLABEL_GPU_LOCKS", str(tmp_path / "locks"))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    class Job:
        rule, threads, config, log = "train_classifier", 1, {}, []
        resources = Namedlist(fromdict={"gpu": 1})

    stderr, hook = _sys.stderr, _sys.excepthook
    try:
        runlog.start(Job())
    finally:
        _sys.stderr, _sys.excepthook = stderr, hook
        logging.basicConfig(force=True)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    Job.resources = Namedlist(fromdict={"gpu": 0})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "untouched")
    runlog.start(Job())
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "untouched"  # a CPU job takes no card
