import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    """Under pytest-xdist (make test / make check run one worker per core) each worker's torch gets its share of the
    cores: N workers with torch's default pool (a thread per core) would run N x cores threads, and OpenMP's waiting
    threads slow each other down. The Snakemake jobs the tests start pin their own pools (config torch_threads)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        from matlabel.runlog import pin_torch_threads

        pin_torch_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A tiny synthetic dataset in VOC layout with its manifest (shared by the loader/evaluation tests)."""
    from matlabel.datasets.layout import VOC_CLASSES, load_manifest, write_manifest
    from matlabel.datasets.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("synthetic")
    splits = generate(out / "VOC2012", SyntheticConfig(n_train=12, n_val=4, width=64, height=48, border_px=2),
                      progress=False)
    write_manifest(out / "dataset.json", "synthetic", out / "VOC2012", VOC_CLASSES, "SegmentationClass", splits)
    return load_manifest(out / "dataset.json")


@pytest.fixture
def one_thread():
    """The machine is shared: a test module that uses this (``pytestmark``) runs on one CPU thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# the demo's plan with a trimap of its own, so a job that reads the trimap's thresholds shows where it got them
DEMO_PLAN_TRIMAP = {"eps_fg": 0.7, "eps_bg": 0.1}
# ... and the classifiers' job threads per method family
DEMO_PLAN_THREADS = {"train_classifier": {"cam": 3, "d2cam": 1, "recam": 2}}


@pytest.fixture(scope="session")
def demo_plan(tmp_path_factory):
    """The jobs `make demo` plans (the Makefile's DEMO_TARGETS, config/demo.yaml) with trimap DEMO_PLAN_TRIMAP and
    threads DEMO_PLAN_THREADS, as data (tests/plan.py): one workflow load shared by the tests that check what a rule
    does with the config."""
    from helpers import make_variable, plan, workdir, write_overlay

    wd = workdir(tmp_path_factory.mktemp("demo_plan"))
    overlay = write_overlay(wd, {"trimap": DEMO_PLAN_TRIMAP, "threads": DEMO_PLAN_THREADS})
    return plan(wd, make_variable("DEMO_TARGETS"), ["config/demo.yaml", overlay])
