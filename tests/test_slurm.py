"""The workflow on a real one-node SLURM (.ci/slurm-up.sh), through profiles/slurm as a user runs it.

The tiny demo runs once with a fault that only the evaluation rules meet (an evaluation split that does not exist),
then again without it. Checked: GPU rules are submitted to the profile's GPU partition with a GPU request, the failed
job is reported as failed (after the profile's retry, with twice the memory), the rerun does only the jobs that had
not finished, and it ends with results/table1.csv. SLURM is brought up and down by this module (root + Debian; the
scripts install slurm-wlm and munge). About 3-4 minutes on 2 cores; MATLABEL_TEST_SLURM=0 skips it.

Without a cluster (dry runs under the profile, every rule of the workflow planned): each rule that asks for a GPU,
and only those, is routed to the profile's GPU partition (rules/common/gpu.smk route_gpu_rules).
"""
import fcntl
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import TINY, WORKFLOW_FILES, job_counts, snakemake, snapshot_workflow, workdir, write_overlay

ROOT = Path(__file__).resolve().parents[1]
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
PROFILES = ["--profile", "profiles/slurm", "--profile", "profiles/slurm-ci"]  # the user's, then the test cluster's
GPU_RULES = {"train_classifier", "export_cams"}  # of the tiny CAM-seed run below
GPU_PARTITION = PROFILE["config"]["slurm"]["gpu_partition"]
CPU_PARTITION = PROFILE["default-resources"]["slurm_partition"]
LOCK = Path("/tmp/matlabel-slurm-ci.lock")  # one test session at a time drives the shared cluster
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*?/rule_(\w+)/")


def _skip_reason() -> str | None:
    if os.environ.get("MATLABEL_TEST_SLURM") == "0":
        return "MATLABEL_TEST_SLURM=0"
    if os.geteuid() != 0:
        return "needs root: .ci/slurm-up.sh installs slurm-wlm and munge and runs the SLURM daemons"
    if not Path("/etc/debian_version").exists():
        return "needs Debian: .ci/slurm-up.sh installs slurm-wlm and munge with apt-get"
    return None


def _script(name: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / ".ci" / name)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node SLURM for this session (.ci/slurm-up.sh), stopped at its end (.ci/slurm-down.sh)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with open(LOCK, "w") as lock:
        deadline = time.monotonic() + 900
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test session held {LOCK} for 15 minutes")
                time.sleep(5)
        up = _script("slurm-up.sh", timeout=900)
        if up.returncode == 3:
            pytest.skip(f".ci/slurm-up.sh: {up.stderr.strip().splitlines()[-1]}")
        try:
            if up.returncode != 0:
                pytest.fail(f".ci/slurm-up.sh failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
            yield
        finally:
            down = _script("slurm-down.sh", timeout=120)
            assert down.returncode == 0, f".ci/slurm-down.sh failed:\n{down.stdout}\n{down.stderr}"


def run_snakemake(wd: Path, *args, timeout: int) -> subprocess.CompletedProcess:
    """The snakemake CLI in `wd`, killed after `timeout` s (its SLURM jobs are cancelled by slurm-down.sh)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SNAKEMAKE_PROFILE"))}
    cmd = ["timeout", "-s", "KILL", str(timeout), sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=wd, capture_output=True, text=True, env={**env, "PYTHONUNBUFFERED": "1"},
                          timeout=timeout + 30)


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def submitted_jobs(text: str) -> list[dict]:
    """The SLURM record (`scontrol show job`) of each job the run submitted, with the rule it ran."""
    jobs = []
    for slurm_id, rule in SUBMITTED.findall(text):
        record = subprocess.run(["scontrol", "-o", "show", "job", slurm_id], capture_output=True, text=True,
                                timeout=30).stdout
        jobs.append({"rule": rule, "id": slurm_id, **dict(re.findall(r"(\w+)=(\S*)", record))})
    return jobs


FAULTY_RULES = ("dataset_content",)  # the content stamp of the faulty split of run 1 (before the evaluations)


def mem_mb(job: dict) -> int:
    value = job["MinMemoryNode"]  # e.g. 8000M or 16G
    return int(float(value[:-1]) * (1024 if value.endswith("G") else 1))


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """Run 1 with a fault in the evaluated split's content stamp, run 2 without it, then a dry-run; outputs and job
    records of each."""
    wd = snapshot_workflow(tmp_path_factory.mktemp("slurm"), extra=["profiles"])
    # the CAM seed only: this checks how jobs travel through SLURM, the pipeline itself is tested in test_workflow
    tiny = write_overlay(wd, {**TINY, "table1": {"methods": ["cam"], "stages": ["seed"]}})
    fault = wd / "fault.yaml"  # a split that only the evaluations (the CAM seed's, the floor's) read, and that the
    # dataset does not have
    fault.write_text(yaml.safe_dump({"splits": {"eval_seed": "no_such_split"}}))
    target = "results/table1.csv"
    started = time.monotonic()

    first = run_snakemake(wd, target, *PROFILES, "--configfile", "config/demo.yaml", tiny, str(fault), timeout=540)
    first_jobs = submitted_jobs(output(first))
    first_log = (wd / "logs/synthetic/dataset_content/no_such_split.masks.log").read_text()
    first_table = (wd / target).exists()
    finished = {p: p.stat().st_mtime_ns for p in [wd / "results/synthetic/maps/cam/model.pt",
                                                  *(wd / "results/synthetic/maps/cam").glob("shard*")]}
    second = run_snakemake(wd, target, *PROFILES, "--configfile", "config/demo.yaml", tiny, timeout=360)
    second_jobs = submitted_jobs(output(second))
    dry = run_snakemake(wd, target, *PROFILES, "--configfile", "config/demo.yaml", tiny, "-n", timeout=120)
    print(f"SLURM runs took {time.monotonic() - started:.0f} s")
    return dict(wd=wd, first=first, first_jobs=first_jobs, first_log=first_log, first_table=first_table,
                finished=finished, second=second, second_jobs=second_jobs, dry=dry)


def slurm_logs(wd: Path) -> str:
    logs = sorted((wd / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "\n".join(f"--- {p.relative_to(wd)}\n{p.read_text()[-1500:]}" for p in logs[-3:])


@pytest.mark.slow
def test_failed_job_is_reported_as_failed(runs):
    first, jobs = runs["first"], runs["first_jobs"]
    text = output(first)
    assert first.returncode not in (0, 137), f"run 1 should fail in dataset_content:\n{text[-4000:]}"
    assert "Error in rule dataset_content" in text
    assert re.search(r"SLURM-job '\d+' failed, SLURM status is: 'FAILED'", text), text[-4000:]
    failed = [j for j in jobs if j["JobState"] != "COMPLETED"]  # every other job completed
    assert {j["rule"] for j in failed} == set(FAULTY_RULES), jobs
    assert len(failed) == 1 + PROFILE["retries"], jobs  # the profile's retries, each a new SLURM job
    assert all(j["JobState"] == "FAILED" for j in failed), failed
    assert mem_mb(failed[1]) == 2 * mem_mb(failed[0])  # a retry asks for twice the memory (`* attempt`)
    assert "no_such_split" in runs["first_log"]  # the job's own log says why
    assert not runs["first_table"]


@pytest.mark.slow
def test_gpu_rules_ask_slurm_for_a_gpu(runs):
    jobs = runs["first_jobs"]
    assert sorted(j["rule"] for j in jobs if j["rule"] in GPU_RULES) == ["export_cams", "export_cams",
                                                                         "train_classifier"], jobs
    for job in jobs:
        assert job["Partition"] == (GPU_PARTITION if job["rule"] in GPU_RULES else CPU_PARTITION), job
        if job["rule"] in GPU_RULES:  # sbatch --gpus=1, as SLURM recorded it
            assert re.fullmatch(r"gres[:/]gpu:1", job.get("TresPerJob", "")), job
        else:
            assert "gpu" not in job.get("TresPerJob", ""), job
    train = next(j for j in jobs if j["rule"] == "train_classifier")
    assert train["NumCPUs"] == "2"  # the rule's threads (8), capped to the test node's 2 CPUs by profiles/slurm-ci


@pytest.mark.slow
def test_rerun_resumes_without_redoing_finished_jobs(runs):
    second, wd = runs["second"], runs["wd"]
    text = output(second)
    assert second.returncode == 0, f"{text[-4000:]}\n{slurm_logs(wd)}"
    assert job_counts(text) == {"dataset_content": 1, "evaluate_cams": 1, "evaluate_floor": 1, "table1": 1,
                                "configured_dataset_table": 1, "total": 5}  # train.masks.json: the fixed split's
    assert {j["rule"] for j in runs["second_jobs"]} == {*FAULTY_RULES, "evaluate_cams", "evaluate_floor", "table1"}
    assert all(j["JobState"] == "COMPLETED" for j in runs["second_jobs"]), runs["second_jobs"]
    assert "rule train_classifier:" not in text and "rule export_cams:" not in text
    assert {p: p.stat().st_mtime_ns for p in runs["finished"]} == runs["finished"]  # model and maps untouched
    table = pd.read_csv(wd / "results" / "table1.csv", dtype=str).set_index("method")
    assert 0.0 <= float(table.loc["CAM", "seed"]) <= 100.0
    assert "Nothing to be done" in output(runs["dry"])


def planned_jobs(wd: Path, *args) -> list[tuple[str, dict[str, str]]]:
    """(rule, {resource: value}) of every job a dry run under the user's profile plans (--forceall: all of them)."""
    out = snakemake(wd, "-n", "--forceall", "--profile", "profiles/slurm", *args).stdout
    jobs = []
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?=^\S|\Z)", out, re.M | re.S):
        line = re.search(r"^\s+resources: (.*)$", body, re.M)[1]
        jobs.append((rule, dict(item.split("=", 1) for item in line.split(", "))))
    return jobs


def test_every_rule_that_asks_for_a_gpu_and_only_those_run_on_the_gpu_partition(tmp_path):
    """Every rule of the workflow planned under profiles/slurm (VOC with the test archive, I+S and GPU matting, plus
    the other datasets' preparation): gpu > 0 -> the profile's GPU partition, else its CPU partition."""
    wd = workdir(tmp_path, names=[*WORKFLOW_FILES, "profiles"])
    (wd / "saliency").mkdir()
    overlay = write_overlay(wd, {"n_shards": 1, "matting": {"device": "cuda"}, "deeplab": {"voc_test": True},
                                 "saliency": {"dir": str(wd / "saliency")}})
    jobs = planned_jobs(wd, "all", "resources/coco14/dataset.json", "resources/folder/dataset.json",
                        "resources/synthetic/dataset.json", "resources/voc_subset", "--configfile", overlay)
    rules = set(re.findall(r"^(\w+)$", snakemake(wd, "--list-rules").stdout, re.M))
    assert {rule for rule, _ in jobs} == rules  # every rule walked
    gpu_rules = {rule for rule, res in jobs if int(res.get("gpu", 0)) > 0}
    assert {"train_deeplab", "evaluate_deeplab", "export_voc_test", "matting_labels"} <= gpu_rules
    # the eps grid's and Table 5's cells solve on matting.device as well (they used to go to the CPU partition)
    assert {"eps_cell", "table5_cell"} <= gpu_rules
    for rule, res in jobs:
        assert res["slurm_partition"] == (GPU_PARTITION if rule in gpu_rules else CPU_PARTITION), (rule, res)
    # the partition and GPU type are config (slurm:); a rule's own set-resources still wins
    jobs = planned_jobs(wd, "results/voc12/rows/cam/irn/model.pt", "--config",
                        'slurm={"gpu_partition": "a100q", "gpu_model": "a100"}', "--set-resources",
                        "train_irn:slurm_partition=long")
    res = {rule: res for rule, res in jobs}
    assert res["train_classifier"]["slurm_partition"] == "a100q" and res["train_classifier"]["gpu_model"] == "a100"
    assert res["train_irn"]["slurm_partition"] == "long" and res["train_irn"]["gpu_model"] == "a100"
    assert res["ir_labels"]["slurm_partition"] == CPU_PARTITION and "gpu_model" not in res["ir_labels"]
