"""The label, evaluation and table jobs start without torch (its import costs ~2 s a job on 2 cores)."""
import subprocess
import sys

import pytest

TORCH_FREE = ["matlabel.seeds", "matlabel.evaluate", "matlabel.labels", "matlabel.crf", "matlabel.tables",
              "matlabel.trimap", "matlabel.matting"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"{module} imports torch"


def test_cam_reexports_the_seed_functions():
    from matlabel import cam, seeds
    assert cam.cams_to_labels is seeds.cams_to_labels
    assert cam.labels_at_thresholds is seeds.labels_at_thresholds
