"""Tables 1 + 2 of VOC on one node: the workflow's job DAG, list-scheduled with per-stage costs measured on a GPU.

    .venv/bin/python bench/node_projection.py [--costs bench/results/voc_scale_h200.json]
        [--dag snakemake | --dag saved_dag.json] [--save-dag dag.json] [--scenario 1:16 --scenario 8:128 ...]
        [--out bench/results/node_projection_h200.json] [--png bench/results/node_projection_h200.png]

``bench/voc_scale.py`` measures what one unit of each stage of the Mat-Label row costs (a training step, an image)
and projects that row as a sum: GPU stages one after another on one GPU, CPU stages over ``--cores`` processes,
nothing overlapping. This script takes the same per-unit costs and the jobs Snakemake itself plans for
``results/table1.csv results/table2.csv`` (a dry run with ``--forceall`` of the default config.yaml, VOC 2012: every
rule, its wildcards, threads, ``gpu`` resource and input/output files, hence the dependencies), gives each job a
duration (units of its shard or its training run x the measured cost per unit), and simulates a Snakemake-like
greedy list scheduler: whenever a job ends, ready jobs start in priority order while their threads fit in the free
cores and their ``gpu`` in the free cards (one card per GPU job, matlabel/gpus.py). Printed and written as JSON:

- the Mat-Label row alone (the ancestors of its DeepLab evaluation): voc_scale.py's serial sum recomputed from the
  DAG's jobs (it must equal voc_scale.py's total), and the same jobs list-scheduled on 1 GPU + 16 cores, where a
  shard's CPU job may start as soon as its own GPU shard is done (shard k is matted while shard k+1 exports);
- all of Tables 1 + 2 per scenario ``GPUS:CORES`` (default 1 GPU + 16 cores; 8 GPUs + 16, 64 or 128 cores):
  wall time, GPU and core utilisation, how much of the CPU jobs' work runs while a GPU job runs, the critical path
  (the longest chain of jobs: no number of cards beats it) and the lower bounds;
- a Gantt chart (one panel per scenario: each card's jobs, and the cores the CPU jobs hold) with ``--png``.

How each job is costed, and what is not (``job_parts``): training jobs = the recipe's steps (epochs x
ceil(10,582 / batch), DeepLab's iterations) x the measured step; per-shard jobs = the shard's images (shard k of
n takes ids[k::n], matlabel/shards.py) x the measured per-image cost, one image after the other as the scripts
loop; ``evaluate_deeplab`` = 1,449 x multi-scale inference + 1,449 DeepLab CRFs spread over the job's threads (config
``threads.evaluate_deeplab`` worker processes, ``deeplab.segment_all``), the two counted one after the other (an upper
bound: the CRFs overlap the inference). Proxies, said so in the JSON: ReCAM's training step is costed as the plain
CAM step (ReCAM's class-wise features and class predictor on top of it are not timed), every method's map export
as D2CAM's. Jobs
with no measured cost are counted as 0 s and listed by rule: downloads and dataset preparation (left out as in
voc_scale.py), the ImageNet weights copy, the threshold seeds, the evaluations on VOC train, the tables.

Two accountings of the confident regions (rule ir_labels): ``code`` (default) as matlabel.labels.confident_labels
runs them, two label CRFs per image (the foreground and the background map, as IRN's cam_to_ir_label.py);
``voc_scale``: one CRF per image, as voc_scale.py costs the stage. The DeepLab CRF was timed over an image's
present labels; the rule runs it over all 21 classes (matlabel.deeplab.segment, crf_labels="all"), so that part is
a lower bound. Left out as in voc_scale.py: Snakemake's own seconds per job, and data loading (it keeps up).

The scheduler's order among ready jobs: ``fifo`` (the order they became ready; Snakemake's rules set no priority,
so its choice among equal rewards is not modelled exactly) and ``critical`` (longest remaining path first: a
what-if for an order that rule priorities or ``--prioritize`` could approach). Both are reported.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Dataset sizes (as bench/voc_scale.py): VOC 2012 + SBD train_aug, VOC 2012 val.
VOC_TRAIN_AUG, VOC_VAL = 10582, 1449

# Where each measured stage of voc_scale.py runs: on the GPU (serial on a card) or on CPU cores (one per shard job).
STAGE_ON = {"cam": "gpu", "d2cam": "gpu", "export": "gpu", "matting": "cpu", "crf_label": "cpu", "irn": "gpu",
            "walk": "gpu", "deeplab": "gpu", "deeplab_predict": "gpu", "crf_deeplab": "cpu"}

# Rules with no measured cost (counted as 0 s), and why.
UNMEASURED = {
    "download_archive": "network-bound, left out as in voc_scale.py",
    "prepare_voc12": "unpacking, left out as in voc_scale.py",
    "synthesize_dataset": "drawing the synthetic dataset (config/voc-scale.yaml), dataset preparation",
    "imagenet_weights": "a file copy",
    "dataset_content": "content stamps of the dataset",
    "evaluate_floor": "scores an all-background prediction",
    "evaluate_cams": "thresholds the maps of VOC train and scores them",
    "threshold_labels": "thresholds a shard's maps",
    "evaluate_labels": "scores a stage's label PNGs on VOC train",
    "table1": "a table", "table2": "a table", "configured_dataset_table": "a copy",
}

DEFAULT_SCENARIOS = ["1:16", "8:16", "8:64", "8:128"]  # GPUS:CORES
WORKFLOW_FILES = ["Snakefile", "config.yaml", "config", "rules", "scripts", "schemas", "envs", "report", "matlabel"]


@dataclass
class Job:
    """One job of the DAG: its rule, wildcards, declared threads and gpu, the jobs it needs, and its duration."""

    id: str
    rule: str
    wildcards: dict = field(default_factory=dict)
    threads: int = 1
    gpu: int = 0
    deps: tuple = ()
    seconds: float = 0.0
    parts: tuple = ()  # ((stage, units), ...) the measured stages its duration is made of; () = not measured


def job_id(rule: str, wildcards: dict) -> str:
    """``rule[k=v,...]``: unique per job of a DAG (the dataset wildcard left out)."""
    w = ",".join(f"{k}={v}" for k, v in wildcards.items() if k != "dataset")
    return f"{rule}[{w}]" if w else rule


def natural_key(text: str):
    """Sort key that puts shard2 before shard10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


# ------------------------------------------------------------------------------------------------------ the DAG


def parse_dry_run(text: str) -> list[Job]:
    """The jobs of ``snakemake -n`` output: a ``rule X:`` / ``localrule X:`` block per job with its input, output,
    wildcards, threads (printed when not 1) and resources; a job needs the jobs whose outputs are its inputs."""
    blocks, current = [], None
    for line in text.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            current = {"rule": m.group(1)}
            blocks.append(current)
        elif current is not None and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            current[key] = value
        elif current is not None and not line.startswith("    "):
            current = None

    def items(value):
        return [v.strip() for v in value.split(",") if v.strip()] if value else []

    jobs, producer, inputs = [], {}, {}
    for b in blocks:
        wildcards = dict(kv.split("=", 1) for kv in items(b.get("wildcards", "")))
        resources = dict(kv.split("=", 1) for kv in items(b.get("resources", "")))
        job = Job(job_id(b["rule"], wildcards), b["rule"], wildcards, int(b.get("threads", 1)),
                  int(resources.get("gpu", 0)))
        inputs[job.id] = items(b.get("input", ""))
        for out in items(b.get("output", "")):
            producer[out] = job.id
        jobs.append(job)
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two jobs share an id: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")
    for job in jobs:
        job.deps = tuple(sorted({producer[f] for f in inputs[job.id] if f in producer}, key=natural_key))
    return jobs


def snakemake_dag(targets, configfiles=(), overrides=(), root: Path = ROOT) -> tuple[list[Job], str]:
    """The jobs Snakemake plans for ``targets`` from scratch (``-n --forceall``), in a scratch directory holding
    the workflow (symlinks, as tests/helpers.py), so nothing is written beside the checkout. Threads as declared
    (``--cores`` large, so none is capped here: the scheduler caps them at its scenario's cores as Snakemake does)."""
    with tempfile.TemporaryDirectory(prefix="node-projection-") as tmp:
        for name in WORKFLOW_FILES:
            (Path(tmp) / name).symlink_to(root / name)
        cmd = [sys.executable, "-m", "snakemake", *targets, "-n", "--forceall", "--cores", "1024"]
        for c in configfiles:
            cmd += ["--configfile", str(Path(c).resolve())]
        if overrides:
            cmd += ["--config", *overrides]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    version = subprocess.run([sys.executable, "-m", "snakemake", "--version"], capture_output=True, text=True).stdout
    return sorted(parse_dry_run(proc.stdout), key=lambda j: natural_key(j.id)), version.strip()


def dag_to_json(jobs: list[Job]) -> list[dict]:
    return [{"id": j.id, "rule": j.rule, "wildcards": j.wildcards, "threads": j.threads, "gpu": j.gpu,
             "deps": list(j.deps)} for j in jobs]


def dag_file_text(saved: dict) -> str:
    """The saved DAG as JSON text, one job a line (so a diff shows which jobs changed)."""
    head = {k: v for k, v in saved.items() if k != "jobs"}
    lines = ",\n".join(json.dumps(j) for j in saved["jobs"])
    return json.dumps(head)[:-1] + f', "jobs": [\n{lines}\n]}}\n'


def dag_from_json(rows: list[dict]) -> list[Job]:
    return [Job(r["id"], r["rule"], dict(r["wildcards"]), int(r["threads"]), int(r["gpu"]), tuple(r["deps"]))
            for r in rows]


# ------------------------------------------------------------------------------------------------- the costs


def shard_size(n_items: int, shard: int, n_shards: int) -> int:
    """Images in shard ``shard`` of ``n_shards`` (matlabel.shards.shard_ids: every n-th id of the sorted list)."""
    return len(range(shard, n_items, n_shards))


def load_config(presets=(), overrides=(), root: Path = ROOT) -> dict:
    """config.yaml, with each preset's sections merged over it in turn (bench/voc_scale.py's load_config), then
    top-level ``KEY=VALUE`` overrides as Snakemake's --config (the value read as YAML)."""
    import yaml

    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(dict(a.get(k) or {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a

    cfg = yaml.safe_load((root / "config.yaml").read_text())
    for preset in presets:
        cfg = merge(cfg, yaml.safe_load(Path(preset).read_text()) or {})
    for item in overrides:
        key, value = item.split("=", 1)
        cfg[key] = yaml.safe_load(value)
    return cfg


def job_parts(rule: str, wildcards: dict, cfg: dict, accounting: str = "code") -> tuple[tuple, list[str]]:
    """The measured stages a job's duration is made of, ``((stage, units), ...)``, and the proxies it uses (said
    in words); ``((), [])`` for a rule with no measured cost (UNMEASURED). Raises on a rule it does not know."""
    if accounting not in ("code", "voc_scale"):
        raise ValueError(f"accounting must be 'code' or 'voc_scale', got {accounting!r}")
    if rule in UNMEASURED:
        return (), []
    n_shards = int(cfg["n_shards"])
    images = shard_size(VOC_TRAIN_AUG, int(wildcards["shard"]), n_shards) if "shard" in wildcards else None
    proxies = []
    if rule == "train_classifier":
        method = wildcards["method"]
        section = cfg[method if method in ("cam", "recam") else "d2cam"]
        steps = section["epochs"] * math.ceil(VOC_TRAIN_AUG / section["batch_size"])
        if method == "recam":
            proxies.append("ReCAM training step costed as the plain CAM step")
            return (("cam", steps),), proxies
        if method not in ("cam", "d2cam"):
            raise ValueError(f"no measured training cost for method {method!r}")
        return ((method, steps),), proxies
    if rule == "export_cams":
        if wildcards["method"] != "d2cam":
            proxies.append(f"{wildcards['method']} map export costed as D2CAM's")
        return (("export", images),), proxies
    if rule == "matting_labels":
        if str(cfg["matting"]["device"]) != "cpu":
            proxies.append("matting on the GPU (matting.device) costed as the measured CPU matting")
        return (("matting", images),), proxies
    if rule == "crf_labels":
        return (("crf_label", images),), proxies
    if rule == "ir_labels":  # matlabel.labels.confident_labels: a label CRF of the fg map and one of the bg map
        return (("crf_label", images * (2 if accounting == "code" else 1)),), proxies
    if rule == "train_irn":
        t = cfg["irn"]["train"]
        return (("irn", t["epochs"] * math.ceil(VOC_TRAIN_AUG / t["batch_size"])),), proxies
    if rule == "random_walk":
        return (("walk", images),), proxies
    if rule == "train_deeplab":
        return (("deeplab", cfg["deeplab"]["train"]["iterations"]),), proxies
    if rule == "evaluate_deeplab":
        parts = [("deeplab_predict", VOC_VAL)]
        if cfg["deeplab"]["test"]["crf"]:  # in the job's worker processes: in_job_workers
            parts.append(("crf_deeplab", VOC_VAL))
        return tuple(parts), proxies
    raise ValueError(f"rule {rule!r} has no cost mapping: add it to job_parts or UNMEASURED")


def in_job_workers(stage: str, cfg: dict) -> int | None:
    """Processes a job spreads a stage's units over: DeepLab's evaluation CRFs run in the evaluation job's threads
    (config ``threads.evaluate_deeplab`` worker processes, ``deeplab.segment_all``); None for every other stage
    (its units one after another in the job)."""
    if stage == "crf_deeplab":
        return max(1, int(cfg.get("threads", {}).get("evaluate_deeplab", 1)))
    return None


def stage_costs(measured: dict) -> dict[str, float]:
    """{stage: seconds per unit} of the stages a voc_scale.py JSON measured (skipped ones left out)."""
    return {k: v["s_per_unit"] for k, v in measured["stages"].items() if "s_per_unit" in v}


def cost_jobs(jobs: list[Job], costs: dict[str, float], cfg: dict, accounting: str = "code") -> dict:
    """Set each job's ``parts`` and ``seconds`` (the parts one after another); returns what is not measured:
    {"unmeasured": {rule: jobs}, "missing_stage": {stage: jobs} (a stage the JSON skipped), "proxies": {...: jobs}}."""
    unmeasured, missing, proxies = {}, {}, {}
    for job in jobs:
        parts, used = job_parts(job.rule, job.wildcards, cfg, accounting)
        for p in used:
            proxies[p] = proxies.get(p, 0) + 1
        job.parts = parts
        if not parts:
            unmeasured[job.rule] = unmeasured.get(job.rule, 0) + 1
        for stage, _ in parts:
            if stage not in costs:
                missing[stage] = missing.get(stage, 0) + 1
        job.seconds = sum(units * costs.get(stage, 0.0) / (in_job_workers(stage, cfg) or 1) for stage, units in parts)
    return {"unmeasured": unmeasured, "missing_stage": missing, "proxies": proxies}


def ancestors(jobs: list[Job], target: str) -> list[Job]:
    """``target`` and every job it needs, directly or not, in the DAG's order."""
    by_id = {j.id: j for j in jobs}
    seen, todo = set(), [target]
    while todo:
        jid = todo.pop()
        if jid not in seen:
            seen.add(jid)
            todo.extend(by_id[jid].deps)
    return [j for j in jobs if j.id in seen]


def stage_totals(jobs: list[Job]) -> dict[str, int]:
    """{stage: units} summed over the jobs' parts."""
    totals = {}
    for job in jobs:
        for stage, units in job.parts:
            totals[stage] = totals.get(stage, 0) + units
    return totals


def serial_projection(totals: dict[str, int], costs: dict[str, float], cores: int,
                      cfg: dict) -> dict[str, float | None]:
    """voc_scale.py's projection of stage totals, in seconds per stage: a GPU stage's units one after another, a
    CPU stage's over ``cores`` processes (a job's own worker processes, ``in_job_workers``, if fewer); no two stages
    overlap. None for a stage with no measured cost."""
    def par(stage):
        workers = in_job_workers(stage, cfg)
        return cores if workers is None else min(cores, workers)

    return {stage: units * costs[stage] / (par(stage) if STAGE_ON[stage] == "cpu" else 1) if stage in costs else None
            for stage, units in totals.items()}


# --------------------------------------------------------------------------------------------- the scheduler


@dataclass
class Run:
    start: float
    end: float
    cores: int
    cards: tuple


def children_of(jobs: list[Job]) -> dict[str, list[str]]:
    """{job id: the ids of the jobs that need it}; raises on a dependency that is not a job of the DAG."""
    children = {j.id: [] for j in jobs}
    for j in jobs:
        for d in j.deps:
            if d not in children:
                raise ValueError(f"{j.id} needs {d}, which is not a job of the DAG")
            children[d].append(j.id)
    return children


def bottom_levels(jobs: list[Job]) -> dict[str, float]:
    """Each job's longest path to the end of the DAG, its own duration included."""
    children = children_of(jobs)
    by_id = {j.id: j for j in jobs}
    level = {}
    for jid in reversed(topological_order(jobs)):
        level[jid] = by_id[jid].seconds + max((level[c] for c in children[jid]), default=0.0)
    return level


def topological_order(jobs: list[Job]) -> list[str]:
    """Job ids, every job after the jobs it needs (Kahn's algorithm, ties in natural order of the ids)."""
    pending = {j.id: len(j.deps) for j in jobs}
    children = children_of(jobs)
    ready = sorted((jid for jid, n in pending.items() if n == 0), key=natural_key)
    order = []
    while ready:
        jid = ready.pop(0)
        order.append(jid)
        for c in children[jid]:
            pending[c] -= 1
            if pending[c] == 0:
                ready.append(c)
        ready.sort(key=natural_key)
    if len(order) != len(jobs):
        raise ValueError("the DAG has a cycle")
    return order


def critical_path(jobs: list[Job]) -> tuple[float, list[str]]:
    """The longest chain of jobs by duration (resources unlimited): its length in seconds and its job ids."""
    by_id = {j.id: j for j in jobs}
    finish, prev = {}, {}
    for jid in topological_order(jobs):
        job = by_id[jid]
        best = max(job.deps, key=lambda d: (finish[d], natural_key(d)), default=None)
        finish[jid] = job.seconds + (finish[best] if best else 0.0)
        prev[jid] = best
    if not finish:
        return 0.0, []
    end = max(finish, key=lambda j: (finish[j], natural_key(j)))
    path = [end]
    while prev[path[-1]]:
        path.append(prev[path[-1]])
    return finish[end], path[::-1]


def schedule(jobs: list[Job], gpus: int, cores: int, order: str = "fifo") -> dict[str, Run]:
    """Greedy list scheduling, Snakemake-like: at time 0 and whenever a job ends, the ready jobs (all they need
    done) are taken in ``order`` and each starts at once if its threads (capped at ``cores``, as Snakemake caps
    them) fit in the free cores and its ``gpu`` in the free cards; a job that does not fit is passed over for the
    next. ``order``: "fifo" (when it became ready, then the ids' natural order) or "critical" (longest remaining
    path first). Returns {job id: Run(start, end, cores, cards)}."""
    if order not in ("fifo", "critical"):
        raise ValueError(f"order must be 'fifo' or 'critical', got {order!r}")
    by_id = {j.id: j for j in jobs}
    for j in jobs:
        if j.gpu > gpus:
            raise ValueError(f"{j.id} needs {j.gpu} GPUs, the node has {gpus}")
    topo = {jid: i for i, jid in enumerate(topological_order(jobs))}
    level = bottom_levels(jobs) if order == "critical" else {}
    children = children_of(jobs)
    pending = {j.id: len(j.deps) for j in jobs}
    ready = {jid: 0.0 for jid, n in pending.items() if n == 0}
    free_cores, free_cards = cores, list(range(gpus))
    running, runs, t, seq = [], {}, 0.0, 0

    def priority(jid):
        if order == "critical":
            return (-level[jid], ready[jid], topo[jid])
        return (ready[jid], topo[jid])

    while ready or running:
        for jid in sorted(ready, key=priority):
            job = by_id[jid]
            need = min(job.threads, cores)
            if need <= free_cores and job.gpu <= len(free_cards):
                cards = tuple(free_cards[: job.gpu])
                del free_cards[: job.gpu]
                free_cores -= need
                runs[jid] = Run(t, t + job.seconds, need, cards)
                heapq.heappush(running, (t + job.seconds, seq, jid))
                seq += 1
                del ready[jid]
        if not running:
            raise RuntimeError(f"jobs that can never start: {sorted(ready)[:5]}")
        t = running[0][0]
        while running and running[0][0] <= t:
            _, _, jid = heapq.heappop(running)
            free_cores += runs[jid].cores
            free_cards = sorted(free_cards + list(runs[jid].cards))
            for c in children[jid]:
                pending[c] -= 1
                if pending[c] == 0:
                    ready[c] = t
    return runs


def summarize(jobs: list[Job], runs: dict[str, Run], gpus: int, cores: int) -> dict:
    """Wall time, utilisation of the cards and the cores, and how the CPU jobs' work overlaps the GPU jobs."""
    by_id = {j.id: j for j in jobs}
    makespan = max((r.end for r in runs.values()), default=0.0)
    gpu_s = sum((r.end - r.start) * len(r.cards) for r in runs.values())
    cpu_jobs = [jid for jid in runs if by_id[jid].gpu == 0]
    cpu_core_s = sum((runs[j].end - runs[j].start) * runs[j].cores for j in cpu_jobs)
    reserved_core_s = sum((r.end - r.start) * r.cores for r in runs.values())
    # sweep over the start/end events: time with a GPU job and a CPU job running, CPU core-seconds under a GPU job
    events = sorted({0.0, makespan, *(r.start for r in runs.values()), *(r.end for r in runs.values())})
    both_s = cpu_under_gpu_s = gpu_idle_s = 0.0
    for a, b in zip(events, events[1:]):
        mid = (a + b) / 2
        active = [jid for jid, r in runs.items() if r.start <= mid < r.end]
        gpu_on = any(runs[j].cards for j in active)
        cpu_cores = sum(runs[j].cores for j in active if by_id[j].gpu == 0)
        if gpu_on and cpu_cores:
            both_s += b - a
            cpu_under_gpu_s += (b - a) * cpu_cores
        if not gpu_on:
            gpu_idle_s += b - a
    span = makespan or 1.0
    return {
        "gpus": gpus, "cores": cores, "minutes": makespan / 60,
        "gpu_busy_minutes": gpu_s / 60, "gpu_utilisation": gpu_s / (span * gpus) if gpus else None,
        "cpu_job_core_minutes": cpu_core_s / 60, "cpu_job_core_utilisation": cpu_core_s / (span * cores),
        "reserved_core_utilisation": reserved_core_s / (span * cores),
        "minutes_gpu_and_cpu_jobs_both_running": both_s / 60,
        "minutes_no_gpu_job_running": gpu_idle_s / 60,
        "cpu_work_share_under_a_gpu_job": cpu_under_gpu_s / cpu_core_s if cpu_core_s else None,
        "lower_bound_minutes": {"critical_path": critical_path(jobs)[0] / 60,
                                "gpu_work_over_cards": gpu_s / max(gpus, 1) / 60,
                                "reserved_core_work_over_cores": reserved_core_s / cores / 60},
    }


# ------------------------------------------------------------------------------------------------ reporting


def describe(job: Job) -> str:
    w = ", ".join(f"{k} {v}" for k, v in job.wildcards.items() if k != "dataset")
    return f"{job.rule}({w})" if w else job.rule


def gantt(jobs: list[Job], results: list[tuple[str, dict[str, Run], int, int]], path: Path, title: str) -> None:
    """One panel per scenario: a lane per card with its jobs (coloured by rule), and below, the cores the CPU-only
    jobs hold over time (stacked by rule)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_id = {j.id: j for j in jobs}
    rules = sorted({j.rule for j in jobs if j.seconds > 0})
    cmap = plt.get_cmap("tab10")
    colour = {r: cmap(i % 10) for i, r in enumerate(rules)}
    horizon = max(max((r.end for r in runs.values()), default=0) for _, runs, _, _ in results) / 60
    fig, axes = plt.subplots(2 * len(results), 1, figsize=(12, 3.2 * len(results) + 1),
                             gridspec_kw={"height_ratios": [1.2, 1] * len(results)}, constrained_layout=True)
    for k, (label, runs, gpus, cores) in enumerate(results):
        top, bottom = axes[2 * k], axes[2 * k + 1]
        for jid, r in runs.items():
            job = by_id[jid]
            for card in r.cards:
                top.broken_barh([(r.start / 60, max(r.end - r.start, 1e-9) / 60)], (card - 0.4, 0.8),
                                facecolors=colour.get(job.rule, "grey"), edgecolor="white", linewidth=0.2)
        top.set_yticks(range(gpus), [f"GPU {i}" for i in range(gpus)])
        top.set_ylim(gpus - 0.5, -0.5)
        span = max((r.end for r in runs.values()), default=0) / 60
        top.set_title(f"{label}: {span:.0f} min")
        top.set_xlim(0, horizon)
        cpu_rules = sorted({by_id[j].rule for j, r in runs.items() if not r.cards and r.end > r.start})
        times = sorted({0.0, *(r.start for r in runs.values()), *(r.end for r in runs.values())})
        stacks = [[sum(r.cores for j, r in runs.items() if not r.cards and by_id[j].rule == rule
                       and r.start <= t < r.end) for t in times] for rule in cpu_rules]
        if cpu_rules:
            bottom.stackplot([t / 60 for t in times], stacks, step="post", labels=cpu_rules,
                             colors=[colour[r] for r in cpu_rules])
        bottom.set_ylim(0, cores)
        bottom.set_xlim(0, horizon)
        bottom.set_ylabel(f"cores (of {cores})\nin CPU jobs")
        bottom.set_xlabel("minutes")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[r]) for r in rules]
    fig.legend(handles, rules, loc="outside lower center", ncol=min(len(rules), 6), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--costs", default=str(ROOT / "bench" / "results" / "voc_scale_h200.json"),
                   help="a voc_scale.py JSON (per-unit costs)")
    p.add_argument("--dag", default="snakemake",
                   help="'snakemake': plan it with a dry run now; or a JSON written by --save-dag")
    p.add_argument("--configfile", action="append", default=[], help="a preset for the dry run (default: VOC)")
    p.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                   help="top-level overrides for the dry run, as Snakemake's (e.g. n_shards=64)")
    p.add_argument("--targets", nargs="+", default=["results/table1.csv", "results/table2.csv"])
    p.add_argument("--save-dag", default=None, help="write the planned DAG as JSON (for machines without Snakemake)")
    p.add_argument("--scenario", action="append", default=None,
                   help=f"GPUS:CORES, repeatable (default {' '.join(DEFAULT_SCENARIOS)})")
    p.add_argument("--accounting", choices=("code", "voc_scale"), default="code",
                   help="confident regions: two label CRFs per image as the code (default) or one as voc_scale.py")
    p.add_argument("--chain-row", default="matlabel", help="the row whose chain is compared with voc_scale.py")
    p.add_argument("--out", default=None, help="JSON of the results")
    p.add_argument("--png", default=None, help="Gantt chart of the scenarios (fifo order)")
    return p.parse_args(argv)


def scenario_key(text: str) -> tuple[int, int]:
    gpus, cores = text.split(":")
    return int(gpus), int(cores)


def fresh_dag(dag: list[Job]) -> list[Job]:
    return [Job(j.id, j.rule, dict(j.wildcards), j.threads, j.gpu, j.deps) for j in dag]


def project(dag: list[Job], measured: dict, cfg: dict, scenarios, accounting: str = "code",
            chain_row: str = "matlabel") -> tuple[dict, list[Job], dict]:
    """Everything this script reports, as a JSON-able dict; also the costed jobs and the fifo schedules (for the
    chart)."""
    costs = stage_costs(measured)
    jobs = fresh_dag(dag)
    notes = cost_jobs(jobs, costs, cfg, accounting)
    notes["why_not_measured"] = {rule: UNMEASURED[rule] for rule in notes["unmeasured"]}
    target = next((j.id for j in jobs if j.rule == "evaluate_deeplab" and j.wildcards.get("row") == chain_row), None)
    out = {"device": measured.get("device"), "torch": measured.get("torch"), "accounting": accounting,
           "jobs": len(jobs), "jobs_by_rule": {}, "not_measured": notes, "stage_s_per_unit": costs}
    for j in jobs:
        out["jobs_by_rule"][j.rule] = out["jobs_by_rule"].get(j.rule, 0) + 1
    if target:
        # the chain as voc_scale.py costs it (one CRF per confident image), then as the code runs it
        chain_vs = ancestors(fresh_dag(dag), target)
        cost_jobs(chain_vs, costs, cfg, "voc_scale")
        totals = stage_totals(chain_vs)
        cores = int(measured.get("cores", 16))  # the cores voc_scale.py's sum spreads the CPU stages over
        serial = serial_projection(totals, costs, cores, cfg)
        chain = ancestors(jobs, target)
        one_vs = summarize(chain_vs, schedule(chain_vs, 1, cores), 1, cores)
        one = summarize(chain, schedule(chain, 1, cores), 1, cores)
        out["chain"] = {
            "row": chain_row, "jobs": len(chain), "stage_units": totals,
            "serial_minutes_by_stage": {k: None if v is None else v / 60 for k, v in serial.items()},
            "serial_minutes": None if None in serial.values() else sum(serial.values()) / 60,
            "voc_scale_projected_minutes": measured.get("projected_minutes"),
            "list_scheduled_1gpu_voc_scale_accounting": one_vs,
            "list_scheduled_1gpu": one,
            "critical_path_minutes": critical_path(chain)[0] / 60,
        }
    length, path = critical_path(jobs)
    by_id = {j.id: j for j in jobs}
    out["critical_path"] = {"minutes": length / 60,
                            "jobs": [{"job": describe(by_id[p]), "minutes": by_id[p].seconds / 60} for p in path]}
    out["scenarios"], fifo = [], {}
    for gpus, cores in scenarios:
        for order in ("fifo", "critical"):
            runs = schedule(jobs, gpus, cores, order)
            out["scenarios"].append({**summarize(jobs, runs, gpus, cores), "order": order})
            if order == "fifo":
                fifo[(gpus, cores)] = runs
    by_rule = {}
    for j in jobs:
        if j.seconds:
            key = f"{j.rule} ({'GPU-min' if j.gpu else 'core-min'})"
            by_rule[key] = by_rule.get(key, 0.0) + j.seconds * (1 if j.gpu else j.threads) / 60
    out["work"] = {"gpu_job_minutes": sum(j.seconds for j in jobs if j.gpu) / 60,
                   "cpu_job_core_minutes": sum(j.seconds * j.threads for j in jobs if not j.gpu) / 60,
                   "by_rule": dict(sorted(by_rule.items(), key=lambda kv: -kv[1]))}
    return out, jobs, fifo


def main(argv=None) -> int:
    args = parse_args(argv)
    measured = json.loads(Path(args.costs).read_text())
    if measured.get("small"):
        print("note: the costs come from a --small (smoke) run of voc_scale.py: not a projection of anything")
    saved = {}
    if args.dag == "snakemake":
        dag, version = snakemake_dag(args.targets, args.configfile, args.config)
        saved = {"targets": args.targets, "configfiles": args.configfile, "config": args.config, "snakemake": version,
                 "jobs": dag_to_json(dag)}
        if args.save_dag:
            Path(args.save_dag).write_text(dag_file_text(saved))
    else:
        saved = json.loads(Path(args.dag).read_text())
        dag = dag_from_json(saved["jobs"])
    cfg = load_config(saved.get("configfiles") or [], saved.get("config") or [])
    if cfg["dataset"] not in ("voc12", "synthetic_voc"):
        sys.exit(f"node_projection costs VOC's sizes ({VOC_TRAIN_AUG:,} + {VOC_VAL:,} images); "
                 f"the DAG is of dataset {cfg['dataset']!r}")
    scenarios = [scenario_key(s) for s in (args.scenario or DEFAULT_SCENARIOS)]
    out, jobs, fifo = project(dag, measured, cfg, scenarios, args.accounting, args.chain_row)
    out.update(costs=Path(args.costs).name, targets=saved.get("targets"), snakemake=saved.get("snakemake"),
               config=saved.get("config") or [], n_shards=cfg["n_shards"])

    print(f"{out['jobs']} jobs for {' '.join(saved.get('targets') or [])} (Snakemake {out['snakemake']}); "
          f"per-unit costs from {out['costs']} ({out['device']}); confident regions: {args.accounting} accounting")
    nm = out["not_measured"]
    print("  not measured, counted as 0 s: " + ", ".join(f"{r} x{n}" for r, n in sorted(nm["unmeasured"].items())))
    if nm["proxies"]:
        print("  proxies: " + "; ".join(f"{p} ({n} jobs)" for p, n in nm["proxies"].items()))
    if nm["missing_stage"]:
        print("  stages the JSON did not measure (their jobs counted as 0 s): " + ", ".join(nm["missing_stage"]))
    c = out.get("chain")
    if c:
        print(f"\nThe {c['row']} row alone ({c['jobs']} jobs), 1 GPU + {c['list_scheduled_1gpu']['cores']} cores:")
        vs = c["voc_scale_projected_minutes"]
        serial = "incomplete" if c["serial_minutes"] is None else f"{c['serial_minutes']:.1f} min"
        print(f"  voc_scale.py's serial sum recomputed from the DAG's jobs: {serial}"
              + (f" (voc_scale.py: {vs:.1f} min)" if vs is not None else ""))
        vs_run, run = c["list_scheduled_1gpu_voc_scale_accounting"], c["list_scheduled_1gpu"]
        print(f"  list-scheduled, voc_scale.py's costs: {vs_run['minutes']:.1f} min")
        print(f"  list-scheduled, {args.accounting} accounting: {run['minutes']:.1f} min "
              f"(critical path {c['critical_path_minutes']:.1f} min)")
    work = out["work"]
    print(f"\nTables 1 + 2, all rows: GPU jobs {work['gpu_job_minutes']:.0f} GPU-min, CPU jobs "
          f"{work['cpu_job_core_minutes']:.0f} core-min; critical path {out['critical_path']['minutes']:.1f} min")
    print(f"  {'node':18s} {'order':8s} {'wall':>9s} {'GPU util':>9s} {'CPU-job cores':>14s} "
          f"{'CPU work under GPU':>19s} {'no GPU job':>11s}")
    for s in out["scenarios"]:
        share = s["cpu_work_share_under_a_gpu_job"]
        print(f"  {s['gpus']} GPU + {s['cores']:3d} cores  {s['order']:8s} {s['minutes']:7.1f} m "
              f"{100 * s['gpu_utilisation']:8.0f}% {100 * s['cpu_job_core_utilisation']:13.0f}% "
              f"{'-' if share is None else f'{100 * share:.0f}%':>19s} {s['minutes_no_gpu_job_running']:9.1f} m")
    print("  critical path: " + " -> ".join(f"{p['job']} {p['minutes']:.1f}" for p in out["critical_path"]["jobs"]
                                          if p["minutes"] > 0))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    if args.png:
        try:
            gantt(jobs, [(f"{g} GPU{'s' if g > 1 else ''} + {n} cores", fifo[(g, n)], g, n) for g, n in scenarios],
                  Path(args.png), f"Tables 1 + 2 (VOC), projected from {out['device']} per-unit costs, fifo order")
        except ImportError as err:
            print(f"no chart: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
