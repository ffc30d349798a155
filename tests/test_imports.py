"""The label, evaluation and table jobs start without torch (its import costs ~2 s a job on 2 cores), and so does
every snakemake call's parsing and planning of the workflow (-n, --unlock, --report)."""
import subprocess
import sys

import pytest

TORCH_FREE = ["matlabel.seeds", "matlabel.evaluate", "matlabel.labels", "matlabel.crf", "matlabel.tables",
              "matlabel.trimap", "matlabel.matting", "matlabel.methods", "matlabel.weights", "matlabel.formats",
              "matlabel.codehash", "matlabel.datasets.content", "matlabel.config"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"{module} imports torch"


def test_cam_reexports_the_seed_functions():
    from matlabel import cam, seeds
    assert cam.cams_to_labels is seeds.cams_to_labels
    assert cam.labels_at_thresholds is seeds.labels_at_thresholds


def test_planning_the_workflow_imports_no_torch(tmp_path):
    """The paper's VOC dry run (parse + DAG of Table 1, weights and downloads included) never imports torch."""
    from helpers import snakemake_env, workdir

    wd = workdir(tmp_path)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "results/table1.csv",
                           "--cores", "16", "--resources", "gpu=1"], cwd=wd, capture_output=True, text=True,
                          env=snakemake_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "train_classifier" in proc.stdout and "snakemake" in imported  # it planned, and importtime saw it
    assert not {"torch", "torchvision"} & imported
