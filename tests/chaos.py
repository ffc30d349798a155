"""Chaos check of the resume contract (DESIGN.md, "Contracts"): a rule's output appears whole or not at all, and a
killed run resumes with ``snakemake --rerun-incomplete`` without losing a finished job.

The tiny demo (test_workflow.TINY, CAM row, seed and IRN stages) runs once uninterrupted: its duration, its job list
and its outputs are the reference. Each trial then starts the same run from scratch in its own process group, kills
the whole group (snakemake, its job processes, their DataLoader workers) with SIGKILL at a seeded random moment of
the reference duration (trial i of n draws from the i-th n-th of it, so a few trials still spread over the DAG); a
checkpoint trial kills it as soon as a training's epoch checkpoint (``<model>.pt.resume``) appears, so the resume must
continue that training from it. A checkpoint trial starts from a copy of the reference run without the outputs of
that training and of every job after it (what Snakemake plans once its model is gone): the jobs before it would
only be done again as they were in the reference run. Each trial checks, before resuming:

- every output that exists parses (json, png, npz, csv, md, torch .pt) and no file under results/ is anything but an
  output of the reference run, a training resume checkpoint (``*.resume``, which must load too) or a hidden
  atomic-write temporary (``.name.XXXXXXXX.tmp*``);
- a shard directory is either absent or holds exactly the files of the reference run's shard;
then ``snakemake --unlock`` (SIGKILL leaves the lock behind), a dry-run and the resume with ``--rerun-incomplete``,
and checks that the jobs planned and run are exactly the reference jobs that had not completed (a job is complete
when all its outputs exist and snakemake has no incomplete marker on them), that a training killed after a
checkpoint logs that it resumed from it, that no temporary or resume checkpoint is left under results/, and that
table1.csv and every eval.json are byte-identical and every trained model tensor-identical to the reference.

    python tests/chaos.py --trials 10 --seed 1      # + a checkpoint trial per training; a line per trial, a total;
                                                    # exit status 1 on a failure

tests/test_resume.py runs MATLABEL_CHAOS_TRIALS random trials (default 1; 0 skips) and the IRN checkpoint trial.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_workflow, when run as a script

from helpers import TINY, snakemake, snakemake_env, snapshot_workflow, write_overlay  # noqa: E402

TARGET = "results/table1.csv"
OVERLAY = {**TINY, "table1": {"methods": ["cam"], "stages": ["seed", "irn"]},
           "cam": {**TINY["cam"], "epochs": 3},  # a kill inside training can resume from an epoch checkpoint
           "irn": {**TINY["irn"], "train": {**TINY["irn"]["train"], "epochs": 2}}}
CORES = 2
# the resume checkpoints of the two trainings of this DAG (matlabel.train.fit writes <model>.resume after each epoch)
CHECKPOINTS = ("results/synthetic/maps/cam/model.pt.resume", "results/synthetic/rows/cam/irn/model.pt.resume")
JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n)*)", re.M)
STAMP = ".snakemake_timestamp"  # snakemake writes it into a directory output after the job
TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.\w+)?$")  # matlabel.io atomic_path / atomic_dir temporaries


@dataclass(frozen=True)
class Job:
    rule: str
    outputs: tuple[str, ...]
    log: str = field(default="", compare=False)


@dataclass
class Reference:
    duration: float
    jobs: list[Job]
    shards: dict[str, list[str]]  # directory output -> its file names
    files: dict[str, bytes]  # table1.csv and the eval.json files
    models: dict[str, dict]  # model.pt -> state_dict
    wd: Path | None = None  # the finished run's working directory


@dataclass
class Trial:
    index: int
    kill_at: float  # seconds after the start (for a checkpoint trial: when the checkpoint appeared)
    kill_when: str = ""  # a checkpoint trial: the kill comes as soon as this resume checkpoint exists
    finished_before_kill: bool = False
    killed_rules: list[str] = field(default_factory=list)  # jobs running at the kill
    complete_before: int = 0
    shards_present: int = 0
    temporaries: int = 0  # atomic-write temporaries under results/ after the kill
    temporaries_left: int = 0  # and after the resume
    checkpoints: list[str] = field(default_factory=list)
    unlocked: bool = False
    rerun: dict[str, int] = field(default_factory=dict)
    resume_s: float = 0.0
    problems: list[str] = field(default_factory=list)


def parse_jobs(text: str) -> list[Job]:
    """The jobs of a snakemake log or dry-run: (rule, outputs) of each ``rule X:`` block."""
    jobs = []
    for m in JOB.finditer(text):
        out = re.search(r"^\s+output: (.*)$", m.group(2), re.M)
        log = re.search(r"^\s+log: (.*)$", m.group(2), re.M)
        jobs.append(Job(m.group(1), tuple(out.group(1).split(", ")) if out else (), log.group(1) if log else ""))
    return jobs


def snapshot(dest: Path) -> Path:
    """A copy of the workflow as a clone has it, so edits to the checkout while trials run cannot reach them."""
    if dest.exists():
        raise FileExistsError(dest)
    return snapshot_workflow(dest)


def fresh(base: Path, dest: Path, overlay: dict) -> Path:
    shutil.copytree(base, dest)
    write_overlay(dest, overlay)
    return dest


def arguments(*extra, target=TARGET, cores=CORES) -> list[str]:
    return [target, "--cores", str(cores), "--configfile", "config/demo.yaml", "test-overlay.yaml", *extra]


def run(wd: Path, *extra, timeout=900, check=True, **kw) -> subprocess.CompletedProcess:
    return snakemake(wd, *arguments(*extra, **kw), timeout=timeout, check=check)


def load_state(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def reference_run(base: Path, dest: Path, overlay: dict = OVERLAY) -> Reference:
    wd = fresh(base, dest, overlay)
    start = time.monotonic()
    proc = run(wd)
    duration = time.monotonic() - start
    jobs = parse_jobs(proc.stderr)
    assert jobs and any(j.rule == "train_classifier" for j in jobs), proc.stderr[-3000:]
    shards = {o: listing(wd / o) for j in jobs for o in j.outputs if (wd / o).is_dir()}
    compared = [wd / TARGET, *sorted((wd / "results").rglob("eval.json"))]
    files = {str(p.relative_to(wd)): p.read_bytes() for p in compared}
    models = {o: load_state(wd / o) for j in jobs for o in j.outputs if o.endswith("model.pt")}
    return Reference(duration, jobs, shards, files, models, wd)


def without_training(done: Path, dest: Path, model: str) -> Path:
    """A copy of the finished run ``done`` (times kept) without the outputs of the training of ``model`` and of every
    job after it (those --forcerun of ``model`` plans): the state of a run from scratch that has just reached that
    training."""
    shutil.copytree(done, dest, symlinks=True)
    dry = run(dest, "-n", "--forcerun", model)
    planned = parse_jobs(dry.stdout + dry.stderr)
    assert any(model in job.outputs for job in planned), dry.stdout[-3000:]
    for output in {o for job in planned for o in job.outputs}:
        path = dest / output
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return dest


def listing(directory: Path) -> list[str]:
    """The file names of a directory output, less the timestamp snakemake adds once the job has finished."""
    return sorted(p.name for p in directory.iterdir() if p.name != STAMP)


def incomplete_markers(wd: Path) -> set[str]:
    """Output paths that snakemake has marked incomplete (.snakemake/incomplete holds their base64 names)."""
    root = wd / ".snakemake" / "incomplete"
    marked = set()
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file() and path.name != "migration_underway":
            parts = [p.lstrip("@") for p in path.relative_to(root).parts]
            marked.add(base64.urlsafe_b64decode("".join(parts)).decode())
    return marked


def check_parses(path: Path) -> str | None:
    """None if ``path`` reads back whole as the format its name says, else what is wrong."""
    try:
        suffix = path.suffix
        if suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as img:
                img.load()
        elif suffix == ".npz":
            import numpy as np

            with np.load(path) as z:
                for k in z.files:
                    z[k]
        elif suffix in (".pt", ".resume"):
            import torch

            torch.load(path, map_location="cpu", weights_only=False)
        elif suffix == ".csv":
            import pandas as pd

            pd.read_csv(path)
        elif suffix == ".md":
            if not path.read_text().strip():
                return "empty"
        else:
            return "not a known output type"
    except Exception as err:  # noqa: BLE001 -- any failure to read back is the finding
        return f"{type(err).__name__}: {err}"
    return None


def is_temporary(path: Path) -> bool:
    return bool(TEMP.match(path.name)) or path.name.endswith(".tmp")  # .tmp: the shell copy rules' cp target


def inspect(wd: Path, ref: Reference, trial: Trial) -> list[Job]:
    """Check the half-done working directory; returns the reference jobs that are complete there."""
    marked = incomplete_markers(wd)
    outputs = {o for j in ref.jobs for o in j.outputs}
    for o in sorted(outputs):
        p = wd / o
        if p.is_dir():
            names = listing(p)
            if names != ref.shards.get(o):
                trial.problems.append(f"{o}: directory differs from the reference run's ({len(names)} vs "
                                      f"{len(ref.shards.get(o, []))} files)")
            for q in p.iterdir():
                if q.name != STAMP and (why := check_parses(q)) is not None:
                    trial.problems.append(f"{q.relative_to(wd)}: {why}")
            trial.shards_present += 1
        elif p.exists() and (why := check_parses(p)) is not None:
            trial.problems.append(f"{o}: {why}")
    inside = {Path(o) for o in outputs if (wd / o).is_dir()}
    for p in sorted((wd / "results").rglob("*")):
        rel = p.relative_to(wd)
        if any(parent in inside for parent in rel.parents) or str(rel) in outputs:
            continue
        if any(is_temporary(Path(part)) for part in rel.parts):
            trial.temporaries += is_temporary(p)
        elif p.name.endswith(".resume"):
            trial.checkpoints.append(str(rel))
            if (why := check_parses(p)) is not None:
                trial.problems.append(f"{rel}: {why}")
        elif p.is_file():
            trial.problems.append(f"{rel}: neither an output, a resume checkpoint nor a temporary")
    complete = [j for j in ref.jobs if all((wd / o).exists() and o not in marked for o in j.outputs)]
    trial.complete_before = len(complete)
    return complete


def wait_group_gone(pgid: int, timeout: float = 30) -> None:
    """Wait until no live (non-zombie) process is left in process group ``pgid``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(stat.parent.name)
        if not alive:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes {alive} of group {pgid} survived SIGKILL")


def trial_run(base: Path, dest: Path, ref: Reference, index: int, kill_at: float | None = None, kill_when: str = "",
              overlay: dict = OVERLAY) -> Trial:
    """Run from scratch (a checkpoint trial: from the reference run without the checkpoint's training and what
    follows it), SIGKILL the process group at ``kill_at`` s or as soon as file ``kill_when`` exists, check, resume,
    check (see the module docstring)."""
    trial = Trial(index, kill_at or 0.0, kill_when)
    if kill_when and ref.wd is not None:
        wd = without_training(ref.wd, dest, kill_when.removesuffix(".resume"))
    else:
        wd = fresh(base, dest, overlay)
    with open(wd / "killed-run.log", "w") as out:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", *arguments()], cwd=wd, stdout=out,
                                stderr=subprocess.STDOUT, env=snakemake_env(),
                                start_new_session=True)
        deadline = start + (kill_at if not kill_when else 900)
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_when and (wd / kill_when).exists():
                break
            time.sleep(0.02)
        if kill_when and not (wd / kill_when).exists() and proc.poll() is None:
            raise AssertionError(f"{kill_when} did not appear in 900 s")
        if proc.poll() is None:
            trial.kill_at = time.monotonic() - start
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            wait_group_gone(proc.pid)
        else:
            trial.finished_before_kill = True
            if proc.returncode != 0:
                trial.problems.append(f"the run failed by itself ({proc.returncode}); see {wd}/killed-run.log")
    killed_log = (wd / "killed-run.log").read_text()
    started = parse_jobs(killed_log)
    finished = Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", killed_log))
    trial.killed_rules = sorted((Counter(j.rule for j in started) - finished).elements())

    complete = inspect(wd, ref, trial)
    if kill_when and kill_when not in trial.checkpoints:
        trial.problems.append(f"the kill missed the checkpoint {kill_when} (found {trial.checkpoints})")
    if any((wd / ".snakemake" / "locks").glob("*")):
        run(wd, "--unlock")
        trial.unlocked = True
    dry = run(wd, "--rerun-incomplete", "-n")
    plan = parse_jobs(dry.stdout + dry.stderr)
    start = time.monotonic()
    resumed = parse_jobs(run(wd, "--rerun-incomplete").stderr)
    trial.resume_s = time.monotonic() - start
    trial.rerun = dict(Counter(j.rule for j in resumed))

    expected = {j.outputs for j in ref.jobs} - {j.outputs for j in complete}
    if {j.outputs for j in resumed} != expected:
        trial.problems.append(f"resumed jobs {sorted(j.outputs for j in resumed)} != the reference jobs not complete "
                              f"before the resume {sorted(expected)}")
    if {j.outputs for j in plan} != {j.outputs for j in resumed}:
        trial.problems.append("the dry-run planned other jobs than the resume ran")
    redone = [j.outputs for j in resumed if j in complete]
    if redone:
        trial.problems.append(f"complete jobs rerun: {redone}")
    for ckpt in trial.checkpoints:
        model = ckpt.removesuffix(".resume")
        log = next((wd / j.log for j in ref.jobs if model in j.outputs and j.log), None)
        if log is None or "resuming from" not in log.read_text():
            trial.problems.append(f"{model}: retrained without its resume checkpoint {ckpt}")
    for rel, data in ref.files.items():
        if (wd / rel).read_bytes() != data:
            trial.problems.append(f"{rel} differs from the uninterrupted run's")
    import torch

    for rel, state in ref.models.items():
        got = load_state(wd / rel)
        if set(got) != set(state) or not all(torch.equal(got[k], state[k]) for k in state):
            trial.problems.append(f"{rel}: weights differ from the uninterrupted run's")
    # a killed shard's partial directory is removed when the shard reruns (matlabel.io.atomic_dir); a file temporary
    # (a kill inside torch.save or a PNG write) stays, hidden and ignored, and is only counted
    left = [str(p.relative_to(wd)) for p in (wd / "results").rglob("*")
            if (is_temporary(p) and p.is_dir()) or p.suffix == ".resume"]
    if left:
        trial.problems.append(f"left under results/ after the resume: {left}")
    trial.temporaries_left = sum(is_temporary(p) for p in (wd / "results").rglob("*"))
    return trial


def kill_times(duration: float, trials: int, seed: int) -> list[float]:
    """One moment per trial, trial i drawn uniformly from the i-th of ``trials`` equal slices of the duration."""
    rng = random.Random(seed)
    return [duration * (i + rng.random()) / trials for i in range(trials)]


def chaos(workdir: Path, trials: int, seed: int, checkpoints=CHECKPOINTS, report=print
          ) -> tuple[Reference, list[Trial]]:
    """The reference run, ``trials`` kills at random moments, then one kill per resume checkpoint in
    ``checkpoints`` (as soon as it appears, so the resume must continue a training from it)."""
    base = snapshot(workdir / "workflow")
    ref = reference_run(base, workdir / "reference")
    report(f"reference: {len(ref.jobs)} jobs in {ref.duration:.1f} s")
    plan = [{"kill_at": t} for t in kill_times(ref.duration, trials, seed)] + [{"kill_when": c} for c in checkpoints]
    results = []
    for i, how in enumerate(plan):
        try:
            t = trial_run(base, workdir / f"trial{i}", ref, i, **how)
        except (AssertionError, subprocess.TimeoutExpired) as err:  # a failed resume: record it, go on
            t = Trial(i, how.get("kill_at", 0.0), how.get("kill_when", ""), problems=[f"{type(err).__name__}: {err}"])
        results.append(t)
        report(describe(t, len(ref.jobs)))
    return ref, results


def describe(t: Trial, n_jobs: int) -> str:
    state = ("finished before the kill" if t.finished_before_kill
             else f"killed during {t.killed_rules or 'DAG building'}")
    rerun = ", ".join(f"{r}x{n}" for r, n in sorted(t.rerun.items())) or "nothing"
    when = f"kill at {t.kill_at:.1f} s" + (f" (when {t.kill_when} appeared)" if t.kill_when else "")
    return (f"trial {t.index}: {when}, {state}; {t.complete_before}/{n_jobs} jobs complete, "
            f"{t.shards_present} shard dirs, {t.temporaries} temporaries ({t.temporaries_left} after the resume), "
            f"checkpoints {t.checkpoints or '-'}, "
            f"unlock {'needed' if t.unlocked else 'not needed'}; resume {t.resume_s:.1f} s reran {rerun}; "
            + ("OK" if not t.problems else "PROBLEMS:\n  " + "\n  ".join(t.problems)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-checkpoint-trials", action="store_true",
                        help="only the random kills, not the kills at the appearance of each training checkpoint")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a removed tmp dir)")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="matlabel-chaos-"))
    try:
        start = time.monotonic()
        ref, trials = chaos(workdir, args.trials, args.seed, () if args.no_checkpoint_trials else CHECKPOINTS,
                            report=lambda line: print(line, flush=True))
        failed = [t for t in trials if t.problems]
        reran = sum(sum(t.rerun.values()) for t in trials)
        expected = sum(len(ref.jobs) - t.complete_before for t in trials)
        print(f"\n{len(trials)} trials ({args.trials} random, seed {args.seed}), {len(trials) - len(failed)} survived; "
              f"kill times {[round(t.kill_at, 1) for t in trials]} s of a {ref.duration:.1f} s run of "
              f"{len(ref.jobs)} jobs; {reran} jobs rerun in all, {expected} expected; "
              f"{sum(bool(t.checkpoints) for t in trials)} resumes continued a training from its checkpoint; "
              f"{time.monotonic() - start:.0f} s in all")
        return 1 if failed else 0
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
