"""A killed run resumes (DESIGN.md, "Contracts"): SIGKILL of the whole tiny workflow at random moments (tests/chaos.py),
the IRN training resuming from its epoch checkpoint, and the cleanup of a killed job's atomic-write temporaries.

The chaos test takes about a minute per trial plus one for the reference run on 2 idle cores (3-4 minutes in all,
twice that on a loaded machine): MATLABEL_CHAOS_TRIALS random kills (default 1; 0 skips the test) and one kill in the
middle of the IRN training; MATLABEL_CHAOS_SEED (default 9) seeds the kill times. A longer run with a summary:
``python tests/chaos.py --trials 10 --seed 1``.
"""
import os

import numpy as np
import pytest
import torch

import chaos
from matlabel.backbone import ResNetBackbone
from matlabel.io import atomic_dir
from matlabel.irn import AffinityAugment, IRNDataset, IRNet, irn_loss
from matlabel.train import TrainConfig, train

TRIALS = int(os.environ.get("MATLABEL_CHAOS_TRIALS", "1"))
# seed 9 draws 0.46 of the reference duration for one trial: a kill mid-run, with some shards done and some not
SEED = int(os.environ.get("MATLABEL_CHAOS_SEED", "9"))


@pytest.mark.slow
@pytest.mark.skipif(TRIALS == 0, reason="MATLABEL_CHAOS_TRIALS=0")
def test_sigkill_at_random_moments_then_rerun_incomplete(tmp_path):
    """The tiny demo killed (SIGKILL, whole process group) at random moments and once in the middle of the IRN
    training, each resumed with --rerun-incomplete: no half-written output, only the unfinished jobs rerun, the
    IRN training continued from its epoch checkpoint, and the same table1.csv, eval.json files and weights as an
    uninterrupted run (the checks are in tests/chaos.py)."""
    lines = []
    irn = "results/synthetic/rows/cam/irn/model.pt.resume"
    ref, trials = chaos.chaos(tmp_path, TRIALS, SEED, checkpoints=(irn,), report=lines.append)
    print("\n".join(lines))
    assert len(trials) == TRIALS + 1
    failed = [chaos.describe(t, len(ref.jobs)) for t in trials if t.problems]
    assert not failed, "\n".join(failed)
    # what a resume redoes is what had not finished, and nothing that had
    assert all(sum(t.rerun.values()) == len(ref.jobs) - t.complete_before for t in trials)
    last = trials[-1]
    assert not last.finished_before_kill and last.checkpoints == [irn] and last.killed_rules == ["train_irn"]
    assert last.rerun["train_irn"] == 1 and "train_classifier" not in last.rerun


def test_parse_jobs_reads_rule_outputs_and_logs():
    text = ("[Thu Nov 26 03:03:14 2026]\nlocalrule random_walk:\n    input: a, b\n"
            "    output: results/x/irn/shard1\n    log: logs/x.log\n    jobid: 17\n\n"
            "rule table1:\n    output: t.csv, t.md\n    jobid: 1\n")
    jobs = chaos.parse_jobs(text)
    assert jobs == [chaos.Job("random_walk", ("results/x/irn/shard1",)), chaos.Job("table1", ("t.csv", "t.md"))]
    assert jobs[0].log == "logs/x.log"


def test_kill_times_spread_over_the_run():
    times = chaos.kill_times(60.0, 3, seed=4)
    assert [int(t // 20) for t in times] == [0, 1, 2] and times == chaos.kill_times(60.0, 3, seed=4)


# --- a killed job's temporaries ---------------------------------------------------------------------------

def test_a_killed_jobs_temporary_shard_is_removed_by_the_next_attempt(tmp_path):
    """SIGKILL skips atomic_dir's cleanup: the partial directory stays, hidden, until the job runs again."""
    shard = tmp_path / "cams" / "shard0"
    stale = tmp_path / "cams" / ".shard0.abcd1234.tmp"
    stale.mkdir(parents=True)
    (stale / "a.npz").write_bytes(b"partial")
    other = tmp_path / "cams" / ".shard01.abcd1234.tmp"  # shard01's temporary is not shard0's
    other.mkdir()
    with atomic_dir(shard) as tmp:
        (tmp / "b.npz").write_bytes(b"whole")
    assert sorted(p.name for p in (tmp_path / "cams").iterdir()) == [".shard01.abcd1234.tmp", "shard0"]
    assert [p.name for p in shard.iterdir()] == ["b.npz"]


# --- IRN training resumes from its epoch checkpoint ------------------------------------------------------

IRN_CFG = TrainConfig(epochs=2, batch_size=4, lr=0.01, head_lr_mult=10, momentum=0.9,
                      weight_decay=1e-4, poly_power=0.9, seed=0)


def _irn_data(manifest):
    """IRN's dataset with the ground-truth masks standing in for the confident-region labels."""
    return IRNDataset(manifest, "train", [manifest.root / manifest.mask_dir], AffinityAugment((0.75, 1.25), 48, True),
                      radius=5)


def _irn_model(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return IRNet(ResNetBackbone("resnet18", "none", 16, False, "layer3"), radius=5)


def test_killed_irn_training_resumes_to_the_same_weights(tiny_synthetic, tmp_path):
    """scripts/train_irn.py trains through matlabel.train.train, so a run killed in epoch 2 resumes from the epoch-1
    checkpoint (model, optimiser, torch RNG) and ends bit-identical to an uninterrupted run."""
    cpu = torch.device("cpu")
    full_history = train(_irn_model(), _irn_data(tiny_synthetic), IRN_CFG, cpu, tmp_path / "full.pt", irn_loss)

    calls = {"n": 0}
    steps_per_epoch = -(-len(_irn_data(tiny_synthetic)) // IRN_CFG.batch_size)

    def dying_loss(model, batch):
        calls["n"] += 1
        if calls["n"] > steps_per_epoch + 1:  # the "kill": in the middle of epoch 2
            raise KeyboardInterrupt
        return irn_loss(model, batch)

    with pytest.raises(KeyboardInterrupt):
        train(_irn_model(), _irn_data(tiny_synthetic), IRN_CFG, cpu, tmp_path / "resumed.pt", dying_loss)
    assert (tmp_path / "resumed.pt.resume").exists() and not (tmp_path / "resumed.pt").exists()
    assert torch.load(tmp_path / "resumed.pt.resume", weights_only=False)["epoch"] == 1
    history = train(_irn_model(seed=5), _irn_data(tiny_synthetic), IRN_CFG, cpu, tmp_path / "resumed.pt", irn_loss)
    assert [h["epoch"] for h in history] == [1, 2] and not (tmp_path / "resumed.pt.resume").exists()
    assert [h["total"] for h in history] == [h["total"] for h in full_history]
    full = torch.load(tmp_path / "full.pt", weights_only=False)["model"]
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=False)["model"]
    assert set(full) == set(resumed)
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    assert not np.allclose(full["edge_layers.5.weight"].numpy(), _irn_model().state_dict()["edge_layers.5.weight"])
