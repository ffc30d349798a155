"""bench/node_projection.py: the list scheduler on hand-made DAGs with hand-computed schedules, the cost mapping,
the dry-run parser, and the Mat-Label chain of the saved VOC DAG against voc_scale.py's own projection."""
import json
import os
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import node_projection as npj  # noqa: E402

SAVED_DAG = ROOT / "bench" / "results" / "voc_tables12_dag.json"
H200 = ROOT / "bench" / "results" / "voc_scale_h200.json"


def job(jid, seconds, gpu=0, threads=1, deps=()):
    return npj.Job(jid, jid, {}, threads, gpu, tuple(deps), seconds)


def small_dag():
    """Two GPU jobs and three CPU jobs: G1 -> C1, C2; C1 + G2 -> C3 (C2 takes two threads)."""
    return [job("G1", 10, gpu=1), job("G2", 6, gpu=1), job("C1", 4, deps=["G1"]),
            job("C2", 3, threads=2, deps=["G1"]), job("C3", 5, deps=["C1", "G2"])]


def spans(runs):
    return {jid: (r.start, r.end) for jid, r in runs.items()}


def test_one_gpu_two_cores_by_hand():
    # t=0 G1 (the card); t=10 G2 (ready since 0) and C1, C2 waits for two cores; t=14 one core free, still not two;
    # t=16 C2 (ready at 10, before C3); t=19 C3
    runs = npj.schedule(small_dag(), gpus=1, cores=2)
    assert spans(runs) == {"G1": (0, 10), "G2": (10, 16), "C1": (10, 14), "C2": (16, 19), "C3": (19, 24)}
    s = npj.summarize(small_dag(), runs, 1, 2)
    assert s["minutes"] * 60 == pytest.approx(24)
    assert s["gpu_utilisation"] == pytest.approx(16 / 24)
    assert s["cpu_job_core_minutes"] * 60 == pytest.approx(4 + 3 * 2 + 5)
    # only C1 runs under a GPU job (G2, 10..14): 4 of 15 core-seconds; no GPU job from 16 to 24
    assert s["cpu_work_share_under_a_gpu_job"] == pytest.approx(4 / 15)
    assert s["minutes_gpu_and_cpu_jobs_both_running"] * 60 == pytest.approx(4)
    assert s["minutes_no_gpu_job_running"] * 60 == pytest.approx(8)


def test_two_gpus_by_hand():
    # both GPU jobs at once; at t=10 C1 takes a core and C2 (two threads) waits until C1 is done at 14
    assert spans(npj.schedule(small_dag(), gpus=2, cores=2)) == {
        "G1": (0, 10), "G2": (0, 6), "C1": (10, 14), "C2": (14, 17), "C3": (17, 22)}
    # with four cores the critical path G1 -> C1 -> C3 (19 s) is the wall time
    runs = npj.schedule(small_dag(), gpus=2, cores=4)
    assert max(r.end for r in runs.values()) == 19
    assert npj.critical_path(small_dag()) == (19, ["G1", "C1", "C3"])


def test_threads_are_capped_at_the_cores_and_a_gpu_job_needs_a_card():
    runs = npj.schedule([job("big", 5, threads=8), job("next", 1, deps=["big"])], gpus=0, cores=2)
    assert runs["big"].cores == 2 and spans(runs) == {"big": (0, 5), "next": (5, 6)}
    with pytest.raises(ValueError, match="needs 1 GPUs"):
        npj.schedule([job("g", 1, gpu=1)], gpus=0, cores=4)


def test_fifo_takes_the_job_that_became_ready_first():
    # one core; "a1" (2 s) then its child "a2"; "b" waits from 0. At t=2 both are ready: b (ready since 0) goes
    # first although a2 comes first in the ids' order
    dag = [job("a1", 2), job("a2", 1, deps=["a1"]), job("b", 3, threads=1)]
    assert spans(npj.schedule(dag, gpus=0, cores=1)) == {"a1": (0, 2), "b": (2, 5), "a2": (5, 6)}


def test_critical_order_runs_the_long_chain_first():
    # two cores; A and B take 4 s, C (1 s) leads to D (6 s): fifo starts A and B, then C and D (11 s);
    # longest-path-first starts C and A, then D at 1 and B at 4 (8 s)
    dag = [job("A", 4), job("B", 4), job("C", 1), job("D", 6, deps=["C"])]
    fifo = npj.schedule(dag, gpus=0, cores=2, order="fifo")
    assert spans(fifo) == {"A": (0, 4), "B": (0, 4), "C": (4, 5), "D": (5, 11)}
    crit = npj.schedule(dag, gpus=0, cores=2, order="critical")
    assert spans(crit) == {"C": (0, 1), "A": (0, 4), "D": (1, 7), "B": (4, 8)}


def test_zero_second_jobs_pass_on_at_once_and_cards_are_reused():
    dag = [job("prep", 0), job("g1", 3, gpu=1, deps=["prep"]), job("g2", 2, gpu=1, deps=["prep"]),
           job("table", 0, deps=["g1", "g2"])]
    runs = npj.schedule(dag, gpus=1, cores=4)
    assert spans(runs) == {"prep": (0, 0), "g1": (0, 3), "g2": (3, 5), "table": (5, 5)}
    assert runs["g1"].cards == runs["g2"].cards == (0,)


def test_a_cycle_or_an_unknown_dependency_is_an_error():
    with pytest.raises(ValueError, match="cycle"):
        npj.topological_order([job("a", 1, deps=["b"]), job("b", 1, deps=["a"])])
    with pytest.raises(ValueError, match="not a job"):
        npj.topological_order([job("a", 1, deps=["zz"])])


DRY_RUN = """Building DAG of jobs...
[Mon Nov 30 09:06:32 2026]
rule train_classifier:
    input: resources/voc12/dataset.json
    output: results/voc12/d2cam/model.pt
    jobid: 3
    reason: Forced execution
    wildcards: dataset=voc12, method=d2cam
    threads: 8
    resources: tmpdir=/tmp, gpu=1
[Mon Nov 30 09:06:32 2026]
rule export_cams:
    input: resources/voc12/dataset.json, results/voc12/d2cam/model.pt
    output: results/voc12/d2cam/cams/shard1
    jobid: 7
    wildcards: dataset=voc12, method=d2cam, shard=1
    threads: 2
    resources: tmpdir=/tmp, gpu=1
[Mon Nov 30 09:06:32 2026]
localrule prepare_voc12:
    output: resources/voc12/dataset.json
    jobid: 1
    resources: tmpdir=/tmp
Job stats:
job                 count
"""


def test_the_dry_run_parser_reads_rules_wildcards_threads_gpus_and_dependencies():
    jobs = {j.id: j for j in npj.parse_dry_run(DRY_RUN)}
    assert sorted(jobs) == ["export_cams[method=d2cam,shard=1]", "prepare_voc12", "train_classifier[method=d2cam]"]
    train, export = jobs["train_classifier[method=d2cam]"], jobs["export_cams[method=d2cam,shard=1]"]
    assert (train.threads, train.gpu, train.deps) == (8, 1, ("prepare_voc12",))
    assert export.wildcards == {"dataset": "voc12", "method": "d2cam", "shard": "1"}
    assert (export.threads, export.gpu) == (2, 1)
    assert set(export.deps) == {"prepare_voc12", "train_classifier[method=d2cam]"}
    assert jobs["prepare_voc12"].threads == 1 and jobs["prepare_voc12"].gpu == 0


def test_shard_sizes_are_those_of_shard_ids():
    from matlabel.shards import shard_ids

    ids = [f"{i:05d}" for i in range(103)]
    assert [npj.shard_size(103, k, 16) for k in range(16)] == [len(shard_ids(ids, k, 16)) for k in range(16)]
    assert sum(npj.shard_size(npj.VOC_TRAIN_AUG, k, 16) for k in range(16)) == npj.VOC_TRAIN_AUG


def test_job_parts_follow_the_recipes():
    cfg = npj.load_config()
    assert npj.job_parts("train_classifier", {"method": "d2cam"}, cfg) == (
        (("d2cam", cfg["d2cam"]["epochs"] * math.ceil(10582 / cfg["d2cam"]["batch_size"])),), [])
    parts, proxies = npj.job_parts("train_classifier", {"method": "recam"}, cfg)
    assert parts[0][0] == "cam" and proxies == ["ReCAM training step costed as the plain CAM step"]
    shard0 = npj.shard_size(10582, 0, cfg["n_shards"])
    assert npj.job_parts("ir_labels", {"row": "matlabel", "shard": "0"}, cfg) == ((("crf_label", 2 * shard0),), [])
    assert npj.job_parts("ir_labels", {"row": "matlabel", "shard": "0"}, cfg, "voc_scale")[0] == (
        ("crf_label", shard0),)
    assert npj.job_parts("evaluate_deeplab", {"row": "matlabel"}, cfg)[0] == (
        ("deeplab_predict", 1449), ("crf_deeplab", 1449))
    assert npj.job_parts("threshold_labels", {"row": "cam", "shard": "3"}, cfg) == ((), [])
    gpu_matting = {**cfg, "matting": {**cfg["matting"], "device": "cuda"}}
    assert npj.job_parts("matting_labels", {"row": "matlabel", "shard": "0"}, gpu_matting)[1] == [
        "matting on the GPU (matting.device) costed as the measured CPU matting"]
    with pytest.raises(ValueError, match="no cost mapping"):
        npj.job_parts("a_new_rule", {}, cfg)


def test_cost_jobs_multiplies_units_by_the_measured_cost_and_lists_what_is_missing():
    cfg = npj.load_config()
    jobs = [npj.Job("t", "train_deeplab", {"row": "matlabel"}),
            npj.Job("w", "random_walk", {"row": "cam", "shard": "2"}), npj.Job("x", "table1", {})]
    notes = npj.cost_jobs(jobs, {"deeplab": 0.1}, cfg)
    assert jobs[0].seconds == pytest.approx(0.1 * cfg["deeplab"]["train"]["iterations"])
    assert jobs[1].seconds == 0 and notes["missing_stage"] == {"walk": 1}
    assert notes["unmeasured"] == {"table1": 1}
    ev = [npj.Job("e", "evaluate_deeplab", {"row": "matlabel"})]
    npj.cost_jobs(ev, {"deeplab_predict": 0.2, "crf_deeplab": 0.8}, cfg)  # the CRFs over the job's worker processes
    assert ev[0].seconds == pytest.approx(1449 * (0.2 + 0.8 / cfg["threads"]["evaluate_deeplab"]))


def saved_dag():
    return npj.dag_from_json(json.loads(SAVED_DAG.read_text())["jobs"])


def test_the_saved_voc_dag_has_every_row_of_tables_1_and_2():
    jobs = saved_dag()
    counts = {}
    for j in jobs:
        counts[j.rule] = counts.get(j.rule, 0) + 1
    assert counts["train_classifier"] == 3 and counts["export_cams"] == 48 and counts["matting_labels"] == 32
    assert counts["train_irn"] == 5 and counts["random_walk"] == 80 and counts["train_deeplab"] == 3
    assert {j.gpu for j in jobs if j.rule in ("train_deeplab", "export_cams", "random_walk")} == {1}
    deeplab = next(j for j in jobs if j.id == "train_deeplab[row=matlabel]")
    walks = [d for d in deeplab.deps if d.startswith("random_walk")]
    assert walks == [f"random_walk[row=matlabel,shard={k}]" for k in range(16)]  # every shard, in order
    cfg = npj.load_config()
    for j in jobs:  # every rule of the DAG is costed or listed as not measured
        npj.job_parts(j.rule, j.wildcards, cfg)


def voc_scale_minutes(measured: dict, cfg: dict) -> float:
    """voc_scale.py's projection from its JSON's own rows, with the DeepLab evaluation's CRFs over the job's worker
    processes as voc_scale.py now spreads them (the H200 JSON predates them: its row spread them over all cores)."""
    total = 0.0
    for r in measured["projection"]:
        par = r["parallel"]
        workers = npj.in_job_workers(r["stage"], cfg)
        if workers is not None:
            par = min(measured["cores"], workers)
        total += r["s_per_unit"] * r["units"] / par
    return total / 60


def test_the_matlabel_chain_of_the_dag_reproduces_voc_scale_projection():
    measured = json.loads(H200.read_text())
    costs = npj.stage_costs(measured)
    jobs = saved_dag()
    target = "evaluate_deeplab[row=matlabel]"
    chain = npj.ancestors(jobs, target)
    npj.cost_jobs(chain, costs, npj.load_config(), "voc_scale")
    totals = npj.stage_totals(chain)
    assert totals == {row["stage"]: row["units"] for row in measured["projection"]}
    assert {s: npj.STAGE_ON[s] for s in totals} == {row["stage"]: row["on"] for row in measured["projection"]}
    cfg = npj.load_config()
    serial = npj.serial_projection(totals, costs, measured["cores"], cfg)
    assert sum(serial.values()) / 60 == pytest.approx(voc_scale_minutes(measured, cfg), rel=1e-12)
    assert npj.in_job_workers("crf_deeplab", cfg) == cfg["threads"]["evaluate_deeplab"] > 1
    # no other row's work is in the chain
    assert not [j for j in chain if j.wildcards.get("row", "matlabel") != "matlabel"
                or j.wildcards.get("method", "d2cam") != "d2cam"]


def test_projection_of_the_saved_dag_is_bounded_and_more_cards_help():
    measured = json.loads(H200.read_text())
    out, jobs, _ = npj.project(saved_dag(), measured, npj.load_config(), [(1, 16), (8, 128)])
    by = {(s["gpus"], s["cores"], s["order"]): s for s in out["scenarios"]}
    for s in out["scenarios"]:
        assert s["minutes"] >= max(s["lower_bound_minutes"].values()) - 1e-9
    assert by[(1, 16, "fifo")]["minutes"] >= out["work"]["gpu_job_minutes"]  # one card does all the GPU work
    assert by[(8, 128, "fifo")]["minutes"] < by[(1, 16, "fifo")]["minutes"]
    assert sum(v for k, v in out["work"]["by_rule"].items() if k.endswith("(GPU-min)")) == pytest.approx(
        out["work"]["gpu_job_minutes"])
    chain = out["chain"]
    assert chain["serial_minutes"] == pytest.approx(voc_scale_minutes(measured, npj.load_config()))
    # the code's second CRF per confident image only adds work
    assert chain["list_scheduled_1gpu"]["minutes"] >= chain["list_scheduled_1gpu_voc_scale_accounting"]["minutes"]


def test_the_gantt_chart_is_written(tmp_path):
    runs = npj.schedule(small_dag(), gpus=1, cores=2)
    npj.gantt(small_dag(), [("1 GPU + 2 cores", runs, 1, 2)], tmp_path / "g.png", "test")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_saved_dag_is_the_one_snakemake_plans_now():  # a dry run, seconds
    jobs, _ = npj.snakemake_dag(["results/table1.csv", "results/table2.csv"])
    assert npj.dag_to_json(jobs) == json.loads(SAVED_DAG.read_text())["jobs"], (
        "the workflow's DAG changed: rerun bench/node_projection.py --save-dag bench/results/voc_tables12_dag.json")


def test_a_partial_costs_json_projects_the_measured_stages_and_says_what_is_missing():
    measured = json.loads(H200.read_text())
    measured["stages"] = {k: v for k, v in measured["stages"].items() if k not in ("deeplab", "crf_deeplab")}
    measured["projected_minutes"] = None
    out, _, _ = npj.project(saved_dag(), measured, npj.load_config(), [(1, 16)])
    assert out["not_measured"]["missing_stage"] == {"deeplab": 3, "crf_deeplab": 3}
    assert out["chain"]["serial_minutes"] is None and out["chain"]["serial_minutes_by_stage"]["deeplab"] is None
    full, _, _ = npj.project(saved_dag(), json.loads(H200.read_text()), npj.load_config(), [(1, 16)])
    assert out["work"]["gpu_job_minutes"] < full["work"]["gpu_job_minutes"]


def _device_all(tmp_path, steps=None, trace=False) -> str:
    """bench/device_all.sh's output with ``timeout`` (the steps' runner) and ``nvidia-smi`` stubbed: every step is
    announced with its limit and runs nothing."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    for name in ("timeout", "nvidia-smi"):
        (stubs / name).write_text("#!/bin/sh\nexit 0\n")
        (stubs / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "DEST": str(tmp_path / "out"), "PY": "true",
           "CARD": "test", "SMOKE": "0", "LIMIT_SCALE": "1"}
    env.pop("STEPS", None)
    if steps is not None:
        env["STEPS"] = steps
    proc = subprocess.run(["bash", *(["-x"] if trace else []), str(ROOT / "bench" / "device_all.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_device_all_parses_and_its_step_limits_fit_one_device_call(tmp_path):
    """The script's steps (as it calls them), the default call's (as it runs them) and the speed flags' call: each
    call of the device tool fits 600 s, and every step is in one of the two."""
    every = dict(re.findall(r"^\++ step (\w+) (\d+) ", _device_all(tmp_path, steps="none", trace=True), re.M))
    limits = {name: int(limit) for name, limit in every.items()}

    def announced(steps=None):
        return {m[0]: int(m[1]) for m in re.findall(r"^== (\w+) \(at most (\d+) s\)$", _device_all(tmp_path, steps),
                                                    re.M)}

    first = announced()  # the default STEPS
    second = announced("setup speed speed_determinism")  # the speed flags' call
    assert set(first) == {"setup", "voc_scale", "d2cam", "determinism", "matting", "projection"}
    assert set(second) == {"setup", "speed", "speed_determinism"}
    assert set(limits) == set(first) | set(second) and {**first, **second} == limits
    for steps in (first, second):  # each call of the device tool: at most 600 s
        assert sum(steps.values()) <= 590
