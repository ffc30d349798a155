"""The jobs Snakemake plans for some targets, as data: what a dry-run prints, plus what it does not print (each job's
evaluated params, the report flags of its outputs, the rules that could make each output).

Tests read a plan instead of the text of the rules, so they check what the workflow does with a config, whatever
file or input function does it. Runs in its own process (``helpers.plan``), as ``snakemake -n`` would:

    python tests/plan.py '{"targets": [...], "configfiles": [...], "config": {...}}'   # in the workflow directory

prints one line ``PLAN <json list of jobs>``.
"""
import json
import os
import sys
from pathlib import Path

MARK = "PLAN "
PLAN_CORES = 64  # above every rule's threads, so a job's threads are the rule's, not lowered to --cores


def plan_jobs(targets, configfiles=(), config=None) -> list[dict]:
    """Every job of the DAG of ``targets`` (all of them, as with --forceall): rule, wildcards, input, output, params
    (evaluated), threads, report (category and caption, relative to the working directory, of an output flagged
    report()), producers (the rules whose output patterns match one of the job's outputs)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, DeploymentSettings, OutputSettings,
                                          ResourceSettings, StorageSettings, WorkflowSettings)

    cwd = Path.cwd()
    with SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=PLAN_CORES),
            config_settings=ConfigSettings(configfiles=[Path(p).absolute() for p in configfiles], config=config or {}),
            storage_settings=StorageSettings(), workflow_settings=WorkflowSettings(),
            deployment_settings=DeploymentSettings(), snakefile=Path("Snakefile"), workdir=cwd)
        workflow_api.dag(DAGSettings(targets=set(targets), forceall=True))
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        jobs = []
        for job in workflow.dag.jobs:
            report = None
            for f in job.output:
                if flag := f.flags.get("report"):
                    report = {"category": flag.category,
                              "caption": os.path.relpath(os.path.normpath(str(flag.caption)), cwd)}
            jobs.append({"rule": job.rule.name, "wildcards": dict(job.wildcards_dict),
                         "input": [str(f) for f in job.input], "output": [str(f) for f in job.output],
                         "params": dict(job.params.items()), "threads": job.threads, "report": report,
                         "producers": sorted({r.name for f in job.output for r in workflow.rules if r.is_producer(f)})})
        return jobs


if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    jobs = plan_jobs(request["targets"], request.get("configfiles", ()), request.get("config"))
    print(MARK + json.dumps(jobs, default=str))
