"""Helpers of the tests that run the workflow: a working directory holding it, snakemake in a subprocess, the
tiny config (tests/config/tiny.yaml), job counts of a plan."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "config", "rules", "scripts", "schemas", "envs", "report", "matlabel"]
TINY = yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text())  # also for the shell: README, Testing


def workdir(tmp_path: Path, copy=(), names=WORKFLOW_FILES) -> Path:
    """A fresh working directory holding the workflow (symlinked; the names in ``copy`` copied, so a test
    can edit them), as a clone would."""
    for name in names:
        src = ROOT / name
        if name not in copy:
            (tmp_path / name).symlink_to(src)
        elif src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, tmp_path / name)
    return tmp_path


def snapshot_workflow(dest: Path, extra=()) -> Path:
    """A copy of the workflow (plus the names in ``extra``) as a clone has it, so edits to the checkout while long
    runs go on (which the code rerun trigger would act on) cannot reach them."""
    dest.mkdir(parents=True, exist_ok=True)
    names = [*WORKFLOW_FILES, *extra]
    return workdir(dest, copy=names, names=names)


def snakemake_env() -> dict:
    """The environment of a test's snakemake: a user's profile or SLURM job variables must not redirect it."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SNAKEMAKE_PROFILE", "SLURM_"))}
    return {**keep, "PYTHONUNBUFFERED": "1"}


def snakemake(wd: Path, *args, timeout=900, check=True):
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout, env=snakemake_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def write_overlay(wd: Path, overlay: dict) -> str:
    path = wd / "test-overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return str(path)


# Parses the workflow (config.yaml) and prints its global wildcard constraints and, per rule, its own and its outputs.
PARSE = """
import json
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, Quietness, ResourceSettings

with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=Path("Snakefile"))._workflow
    rules = {rule.name: {"constraints": dict(rule.wildcard_constraints), "output": [str(f) for f in rule.output]}
             for rule in workflow.rules}
    print(json.dumps({"constraints": dict(workflow.wildcard_constraints), "rules": rules}))
"""


def parsed_workflow(tmp_path: Path) -> dict:
    """{"constraints": the global wildcard constraints, "rules": {rule: {"constraints", "output"}}} of the workflow
    parsed in a working directory of its own (parsing refreshes the content stamps of a prepared dataset)."""
    wd = workdir(tmp_path)
    proc = subprocess.run([sys.executable, "-c", PARSE], cwd=wd, capture_output=True, text=True, timeout=300,
                          env=snakemake_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plan(wd: Path, targets, configfiles=(), config=None, timeout=300) -> list[dict]:
    """The jobs Snakemake plans in ``wd`` for ``targets`` as data (tests/plan.py): rule, wildcards, input, output,
    params, report, producers of each."""
    import json

    request = json.dumps({"targets": list(targets), "configfiles": [str(c) for c in configfiles], "config": config})
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "plan.py"), request], cwd=wd, capture_output=True,
                          text=True, timeout=timeout, env=snakemake_env())
    line = next((l for l in proc.stdout.splitlines() if l.startswith("PLAN ")), None)
    if proc.returncode != 0 or line is None:
        raise AssertionError(f"planning {targets} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}")
    return json.loads(line[len("PLAN "):])


def paper_matting(**fields):
    """The MattingConfig of config.yaml (the paper's trimap and matting sections), ``fields`` replaced."""
    from dataclasses import replace

    from matlabel.config import paper_config
    from matlabel.labels import MattingConfig

    paper = paper_config()
    return replace(MattingConfig.from_config(paper["trimap"], paper["matting"]), **fields)


def paper_seg(**fields):
    """The SegConfig of config.yaml's ``deeplab.train`` (deeplab-pytorch's VOC recipe), ``fields`` replaced."""
    from dataclasses import replace

    from matlabel.config import paper_config
    from matlabel.deeplab import SegConfig

    return replace(SegConfig.from_mapping(paper_config()["deeplab"]["train"]), **fields)


def make_variable(name: str) -> list[str]:
    """The words of the Makefile's variable ``name``, as make expands it."""
    proc = subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile",
                           "--eval", f"print-variable: ; @echo $({name})", "print-variable"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return proc.stdout.split()
