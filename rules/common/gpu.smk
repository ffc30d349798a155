# GPU routing under a cluster profile, derived from the rules themselves. Each rule asks for a GPU in one place (its
# `resources: gpu`); after the last rule the Snakefile calls route_gpu_rules, which gives each one whose gpu is
# above 0 (after the profile's set-resources) what snakemake-executor-plugin-slurm reads: slurm_partition = config
# slurm.gpu_partition, and gpu_model = slurm.gpu_model when set (--gpus=<model>:1). The others keep the profile's
# default-resources slurm_partition (its CPU partition). A local run ignores these resources.
def gpu_count(workflow_rule):
    """A rule's `gpu` resource as the profile left it (0 when it asks for none)."""
    gpu = workflow_rule.resources.get("gpu")
    if gpu is None:
        return 0
    if gpu.is_evaluable():
        raise WorkflowError(f"the gpu resource of {workflow_rule.name} must be a number, not a function, for the GPU "
                            "routing (rules/common/gpu.smk route_gpu_rules)")
    return int(gpu.value or 0)


def route_gpu_rules(rules, slurm, overrides):
    """Give every rule that asks for a GPU the GPU partition (and model) of config ``slurm``, unless ``overrides``
    (the profile's set-resources, {rule: {resource: value}}) names them for it."""
    for each in rules:
        if gpu_count(each) > 0:
            for name, value in (("slurm_partition", slurm["gpu_partition"]), ("gpu_model", slurm["gpu_model"])):
                if value is not None and name not in overrides.get(each.name, {}):
                    each.resources[name] = value
