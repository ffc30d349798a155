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


def first_line(p, timeout_s=60.0) -> str:
    """The holder's first line, or a failure after ``timeout_s`` (a holder waiting for a card never prints)."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(p.stdout, selectors.EVENT_READ)
        assert sel.select(timeout_s), f"no card within {timeout_s} s"
    return p.stdout.readline()


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


def slurm_allocation(tmp_path, **extra):
    """The environment of a process inside one SLURM allocation of four cards (a Snakemake run in ``salloc``)."""
    env = {**os.environ, "SLURM_JOB_ID": "4242", "CUDA_VISIBLE_DEVICES": "0,1,2,3", "SLURM_JOB_GPUS": "0,1,2,3",
           "MATLABEL_GPU_LOCKS": str(tmp_path / "locks"), **extra}
    env.pop("MATLABEL_GPUS", None)
    env.pop("SLURM_STEP_GPUS", None)
    return env


def test_jobs_inside_one_slurm_allocation_of_several_cards_get_distinct_cards(tmp_path):
    env = slurm_allocation(tmp_path)
    first, second = start_holder(env), start_holder(env)
    try:
        got = [first_line(first).split(), first_line(second).split()]
    finally:
        for p in (first, second):
            p.kill()
            p.wait()
    assert sorted(card for card, _ in got) == ["0", "1"]
    assert all(card == visible for card, visible in got)  # each job sees its own card alone


def test_a_slurm_job_that_sees_one_card_claims_nothing(tmp_path):
    for own in ({"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_GPUS": "3"},  # sbatch --gpus=1 (the SLURM profile)
                {"CUDA_VISIBLE_DEVICES": "2", "SLURM_STEP_GPUS": "2"},  # srun --gpus=1 inside an allocation of 4
                {"SLURM_STEP_GPUS": "1"}):
        env = {"SLURM_JOB_ID": "7", "MATLABEL_GPU_LOCKS": str(tmp_path / "locks"), **own}
        assert claim_for_job(env) is None
        assert env.get("CUDA_VISIBLE_DEVICES") == own.get("CUDA_VISIBLE_DEVICES")
    assert not (tmp_path / "locks").exists()  # not even the lock dir
    assert claim_for_job({"SLURM_JOB_ID": "7", "PATH": os.environ["PATH"]}) is None  # a job without cards


def test_two_slurm_jobs_on_one_node_lock_their_cards_by_slurms_global_ids(tmp_path):
    """With constrained devices both jobs see their two cards as 0,1: the locks go by SLURM_JOB_GPUS instead, so
    neither waits for the other's cards, and each job is handed a card in its own numbering."""
    from matlabel.gpus import lock_names

    job_a = {"SLURM_JOB_ID": "1", "CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_GPUS": "0,1"}
    job_b = {"SLURM_JOB_ID": "2", "CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_GPUS": "2,3"}
    assert lock_names(["0", "1"], job_b) == ["2", "3"]
    assert lock_names(["0", "1"], {**job_b, "SLURM_STEP_GPUS": "6,7"}) == ["6", "7"]  # the step's, within a step
    assert lock_names(["0", "1"], {**job_b, "SLURM_JOB_GPUS": "2"}) == ["0", "1"]  # lists that do not match
    locks = str(tmp_path / "locks")
    cards = []
    for job in (job_a, job_a, job_b, job_b):
        env = {**os.environ, **job, "MATLABEL_GPU_LOCKS": locks}
        env.pop("MATLABEL_GPUS", None)
        env.pop("SLURM_STEP_GPUS", None)
        cards.append(start_holder(env))
    try:
        got = [first_line(p).split()[0] for p in cards]  # would block if job b waited for job a's cards
    finally:
        for p in cards:
            p.kill()
            p.wait()
    assert sorted(got[:2]) == sorted(got[2:]) == ["0", "1"]
    assert sorted(f.name for f in (tmp_path / "locks").iterdir()) == [f"gpu{i}.lock" for i in range(4)]


def test_the_default_lock_dir_is_one_per_machine_whatever_the_user_and_tmpdir(tmp_path, monkeypatch):
    import tempfile

    from matlabel import gpus

    seen = set()
    for uid, tmp in ((0, "/tmp"), (1000, str(tmp_path / "a")), (1001, str(tmp_path / "b"))):
        monkeypatch.setattr(os, "getuid", lambda uid=uid: uid)
        monkeypatch.setenv("TMPDIR", tmp)
        monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads TMPDIR afresh
        env = {k: v for k, v in os.environ.items() if k != "MATLABEL_GPU_LOCKS"}
        seen.add(gpus.lock_dir(env))
    assert seen == {gpus.DEFAULT_LOCKS}
    assert gpus.lock_dir({"MATLABEL_GPU_LOCKS": str(tmp_path)}) == tmp_path  # still overridden


def test_the_lock_dir_and_files_are_shared_with_every_user_whatever_the_umask(tmp_path):
    from matlabel.gpus import _held, acquire

    locks = tmp_path / "parent" / "locks"
    old = os.umask(0o077)
    try:
        assert acquire(["5"], locks) == "5"
    finally:
        os.umask(old)
        _held.pop().close()
    assert oct(locks.stat().st_mode & 0o7777) == oct(0o1777)  # as /tmp: anyone adds, no one removes another's
    assert oct((locks / "gpu5.lock").stat().st_mode & 0o777) == oct(0o666)
    assert oct(locks.parent.stat().st_mode & 0o777) == oct(0o700)  # parents as the umask says


def test_an_unusable_lock_dir_is_an_error_that_names_it_and_the_fix(tmp_path):
    import pytest

    from matlabel.gpus import acquire

    (tmp_path / "file").write_text("")
    with pytest.raises(RuntimeError, match=r"lock dir .*file cannot be used .*MATLABEL_GPU_LOCKS"):
        acquire(["0"], tmp_path / "file")
    if os.getuid() != 0:  # root may write anywhere
        closed = tmp_path / "closed"
        closed.mkdir(mode=0o555)
        with pytest.raises(RuntimeError, match=r"chmod 1777 .*closed"):
            acquire(["0"], closed)


def test_another_user_takes_a_card_from_the_same_pool():
    """A real second user (nobody, started by root): it adds its lock file to the pool root made, the card it holds
    is busy for root, and root opens the lock file it created."""
    import shutil
    import tempfile

    import pytest

    if os.getuid() != 0:
        pytest.skip("needs root to run a process as another user")
    top = Path(tempfile.mkdtemp(prefix="matlabel-gpus-test-", dir="/tmp"))  # pytest's tmp_path is root's alone
    top.chmod(0o755)
    locks = top / "pool"
    # nobody may not read the checkout (a clone in root's home): it imports a copy of the (standard-library-only) module
    (top / "lib" / "matlabel").mkdir(parents=True)
    (top / "lib" / "matlabel" / "__init__.py").write_text("")
    shutil.copy(ROOT / "matlabel" / "gpus.py", top / "lib" / "matlabel" / "gpus.py")
    for d in (top / "lib", top / "lib" / "matlabel"):
        d.chmod(0o755)
    env = {**os.environ, "MATLABEL_GPUS": "0,1", "MATLABEL_GPU_LOCKS": str(locks)}
    env.pop("SLURM_JOB_ID", None)
    procs = [start_holder(env)]
    try:
        assert first_line(procs[0]).split()[0] == "0"
        for python in dict.fromkeys([sys.executable, "/usr/bin/python3", shutil.which("python3")]):  # the holder
            try:  # this interpreter may sit in root's home
                procs.append(subprocess.Popen([python, "-c", HOLDER.format(root=str(top / "lib"))], env=env, text=True,
                                              stdout=subprocess.PIPE, user=65534, group=65534, umask=0o077,
                                              cwd="/"))
                break
            except (PermissionError, FileNotFoundError, TypeError):
                continue
        else:
            pytest.skip("no Python the user nobody may run")
        assert first_line(procs[1]).split()[:1] == ["1"]
        procs[1].kill()
        procs[1].wait()
        procs.append(start_holder({**env, "MATLABEL_GPUS": "1"}))
        assert first_line(procs[2]).split()[0] == "1"
        assert {f.name: f.stat().st_uid for f in locks.iterdir()} == {"gpu0.lock": 0, "gpu1.lock": 65534}
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(top)
