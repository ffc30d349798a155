import dataclasses
import logging
import math
import os

import pytest
import torch

from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset
from matlabel.models import build
from matlabel.checkpoints import resume_path
from matlabel.train import TrainConfig, input_stamps, poly_lr, resolve_device, resume_meta, train

BACKBONE = dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=False, train_from="stem")
CFG = TrainConfig(epochs=2, batch_size=4, lr=0.01, head_lr_mult=1, momentum=0.9,
                  weight_decay=1e-4, poly_power=0.9, seed=0)


def dataset(manifest):
    return VOCLayoutDataset(manifest, "train", transform=ClassifierAugment((40, 64), 48, True, seed=0))


def from_step(k, loss_fn, change):
    """``loss_fn`` whose ``k``-th call (1-based: the k-th training step) and later ones return ``change(model,
    losses, call)`` instead of the losses."""
    calls = {"n": 0}

    def wrapped(m, batch):
        calls["n"] += 1
        losses = loss_fn(m, batch)
        return change(m, losses, calls["n"]) if calls["n"] >= k else losses

    return wrapped


def kill(m, losses, call):
    raise KeyboardInterrupt


def epoch_steps(manifest):
    """Steps of one epoch of CFG's training."""
    return -(-len(dataset(manifest)) // CFG.batch_size)


def killed_in_epoch_2(manifest, out):
    """CFG's CAM training "killed" at the start of epoch 2 (the global RNG seeded differently: it must not matter);
    returns its resume checkpoint's path."""
    torch.manual_seed(456)
    model, loss_fn = build("cam", 20, BACKBONE)
    dying = from_step(epoch_steps(manifest) + 1, loss_fn, kill)
    with pytest.raises(KeyboardInterrupt):
        train(model, dataset(manifest), CFG, torch.device("cpu"), out, dying)
    assert resume_path(out).exists() and not out.exists()
    return resume_path(out)


def finite(state):
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.fixture(scope="module")
def uninterrupted(tiny_synthetic, tmp_path_factory):
    """CFG's CAM training without interruption, deterministic algorithms: (history, model state)."""
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(123)  # the global RNG state must not matter: build() seeds the initialisation
        model, loss_fn = build("cam", 20, BACKBONE)
        out = tmp_path_factory.mktemp("uninterrupted") / "full.pt"
        history = train(model, dataset(tiny_synthetic), CFG, torch.device("cpu"), out, loss_fn)
        return history, torch.load(out, weights_only=False)["model"]
    finally:
        torch.use_deterministic_algorithms(False)


def test_poly_schedule():
    assert poly_lr(0.1, 0, 100, 0.9) == 0.1
    assert poly_lr(0.1, 50, 100, 0.9) == pytest.approx(0.1 * 0.5**0.9)


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="device: auto"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_training_lowers_the_loss_and_writes_a_checkpoint(tiny_synthetic, tmp_path):
    model, loss_fn = build("cam", 20, BACKBONE)
    cfg = TrainConfig(epochs=4, batch_size=4, lr=0.01, head_lr_mult=1, momentum=0.9,
                      weight_decay=1e-4, poly_power=0.9, seed=0)
    data = dataset(tiny_synthetic)
    history = train(model, data, cfg, torch.device("cpu"), tmp_path / "model.pt", loss_fn)
    assert history[-1]["total"] < history[0]["total"]
    # the shared loop (matlabel.train.fit) records each epoch's last learning rate: IRN's poly decay per step
    steps = -(-len(data) // cfg.batch_size)
    assert [h["lr"] for h in history] == [poly_lr(0.01, (e + 1) * steps - 1, 4 * steps, 0.9) for e in range(4)]
    ckpt = torch.load(tmp_path / "model.pt", weights_only=False)
    assert set(ckpt) == {"model", "meta", "history"} and ckpt["meta"]["config"]["epochs"] == 4
    assert not (tmp_path / "model.pt.resume").exists()


def test_an_empty_training_set_is_a_clear_error(tmp_path):
    model, loss_fn = build("cam", 20, BACKBONE)
    with pytest.raises(ValueError, match="the training set is empty"):
        train(model, [], dataclasses.replace(CFG, epochs=1), torch.device("cpu"), tmp_path / "m.pt", loss_fn)


def test_killed_training_resumes_to_the_same_weights(tiny_synthetic, tmp_path, uninterrupted):
    """A run killed after epoch 1 resumes from its checkpoint and ends bit-identical to an uninterrupted run."""
    torch.use_deterministic_algorithms(True)
    try:
        killed_in_epoch_2(tiny_synthetic, tmp_path / "resumed.pt")
        model, loss_fn = build("cam", 20, BACKBONE)
        # resumed with another number of loader workers (they follow --cores): the checkpoint still applies
        history = train(model, dataset(tiny_synthetic), dataclasses.replace(CFG, num_workers=1), torch.device("cpu"),
                        tmp_path / "resumed.pt", loss_fn)
        assert [h["epoch"] for h in history] == [1, 2]
        full = uninterrupted[1]
        resumed = torch.load(tmp_path / "resumed.pt", weights_only=False)["model"]
        for k in full:
            assert torch.equal(full[k], resumed[k]), k
    finally:
        torch.use_deterministic_algorithms(False)


def test_resume_meta_ignores_workers_and_input_stamps_see_a_remade_input(tmp_path):
    assert resume_meta(CFG, {"a": 1}) == resume_meta(dataclasses.replace(CFG, num_workers=3), {"a": 1})
    assert resume_meta(CFG) != resume_meta(dataclasses.replace(CFG, epochs=CFG.epochs + 1))
    (tmp_path / "labels").mkdir()
    (tmp_path / "x.json").write_text("1")
    before = input_stamps([tmp_path / "x.json", tmp_path / "labels"])
    assert before == input_stamps([tmp_path / "labels", tmp_path / "x.json"])  # order-free, unchanged
    os.utime(tmp_path / "x.json", ns=(1, 1))  # the input remade upstream
    assert input_stamps([tmp_path / "x.json", tmp_path / "labels"]) != before


def test_initialisation_depends_on_the_seed_only():
    torch.manual_seed(1)
    a, _ = build("cam", 20, BACKBONE, seed=7)
    torch.manual_seed(2)
    b, _ = build("cam", 20, BACKBONE, seed=7)
    c, _ = build("cam", 20, BACKBONE, seed=8)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


# --- a NaN or infinite loss or weight stops the training before anything is written ----------------------


def test_a_nan_loss_stops_training_naming_term_and_step_before_its_checkpoint(tiny_synthetic, tmp_path):
    """NaN from the 2nd step of epoch 2 on (through ``total``: the weights turn NaN too): the run stops at epoch 2's
    checkpoint naming each term and its first NaN step; epoch 1's finite checkpoint stays, no model.pt is written."""
    model, loss_fn = build("cam", 20, BACKBONE)
    steps = epoch_steps(tiny_synthetic)
    k = steps + 2
    nan = from_step(k, loss_fn, lambda m, losses, call: {t: v * math.nan for t, v in losses.items()})
    with pytest.raises(FloatingPointError) as err:
        train(model, dataset(tiny_synthetic), CFG, torch.device("cpu"), tmp_path / "model.pt", nan)
    message = str(err.value)
    assert f"'cls' from step {k} (epoch 2) on, 'total' from step {k} (epoch 2) on" in message, message
    assert f"{tmp_path / 'model.pt'} diverged" in message and f"stopped after step {2 * steps}" in message
    assert "Lower the learning rate" in message
    assert not (tmp_path / "model.pt").exists()
    resume = torch.load(tmp_path / "model.pt.resume", weights_only=False)
    assert resume["epoch"] == 1 and finite(resume["model"])
    assert all(math.isfinite(h["total"]) for h in resume["history"])


def test_one_nan_step_of_a_side_term_stops_before_the_first_checkpoint(tiny_synthetic, tmp_path):
    """A term outside ``total`` that is NaN at step 2 only (the weights stay finite, later steps are finite):
    named alone, with its step; nothing is written."""
    model, loss_fn = build("cam", 20, BACKBONE)

    def side(m, losses, call):
        return {**losses, "ma": torch.tensor(math.nan if call == 2 else 0.5)}

    with pytest.raises(FloatingPointError, match=r"NaN or infinite loss: 'ma' from step 2 \(epoch 1\) on;") as err:
        train(model, dataset(tiny_synthetic), CFG, torch.device("cpu"), tmp_path / "model.pt",
              from_step(1, loss_fn, side))
    assert "'cls'" not in str(err.value) and "there is no earlier checkpoint" in str(err.value)
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "model.pt.resume").exists()


def test_nan_weights_with_finite_losses_stop_before_the_first_checkpoint(tiny_synthetic, tmp_path):
    """An infinite gradient at epoch 1's last step (a term 0·sqrt(0·w): value 0, gradient 0·inf = NaN) turns the
    classifier's weight NaN while every loss stays finite: the weight is named, nothing is written."""
    model, loss_fn = build("cam", 20, BACKBONE)
    steps = epoch_steps(tiny_synthetic)

    def infinite_gradient(m, losses, call):
        return {**losses, "total": losses["total"] + 0 * torch.sqrt(0 * m.classifier.weight.sum())}

    with pytest.raises(FloatingPointError, match=r"model\.classifier\.weight, optimizer\.state\.\d+\.momentum_buffer "
                       "are NaN or infinite although every loss term was finite") as err:
        train(model, dataset(tiny_synthetic), CFG, torch.device("cpu"), tmp_path / "model.pt",
              from_step(steps, loss_fn, infinite_gradient))
    assert f"stopped after step {steps} of {2 * steps}" in str(err.value)
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "model.pt.resume").exists()


@pytest.mark.parametrize("spoiled", ["weights", "history"])
def test_a_resume_file_with_nan_is_not_picked_up(tiny_synthetic, tmp_path, caplog, spoiled, uninterrupted):
    """A resume checkpoint holding a NaN weight or loss (as one written before training checked them): ignored with a
    warning naming the file and the value; the training restarts and ends as an uninterrupted run."""
    torch.use_deterministic_algorithms(True)
    try:
        resume = killed_in_epoch_2(tiny_synthetic, tmp_path / "m.pt")
        ckpt = torch.load(resume, weights_only=False)
        if spoiled == "weights":
            ckpt["model"]["classifier.weight"].view(-1)[0] = math.nan
        else:
            ckpt["history"][0]["cls"] = math.nan
        torch.save(ckpt, resume)
        model, loss_fn = build("cam", 20, BACKBONE)
        with caplog.at_level(logging.INFO, logger="matlabel"):
            history = train(model, dataset(tiny_synthetic), CFG, torch.device("cpu"), tmp_path / "m.pt", loss_fn)
        state = torch.load(tmp_path / "m.pt", weights_only=False)["model"]
        assert history == uninterrupted[0] and all(torch.equal(state[k], v) for k, v in uninterrupted[1].items())
        assert not resume.exists() and "resuming from" not in caplog.text
        named = "model.classifier.weight" if spoiled == "weights" else "history.0.cls"
        assert f"ignoring {resume}: {named} is NaN or infinite; training restarts from scratch" in caplog.text
    finally:
        torch.use_deterministic_algorithms(False)


def test_a_model_with_nan_weights_is_refused_by_the_stages_that_read_it(tmp_path):
    from matlabel.checkpoints import read_model_state, write_model

    state = {"w": torch.ones(3), "b": torch.tensor([0.0, float("nan")])}
    write_model(tmp_path / "model.pt", state, {"config": {}}, [])
    with pytest.raises(ValueError, match=r"model\.pt: weights b are NaN or infinite.*delete the file"):
        read_model_state(tmp_path / "model.pt")
    write_model(tmp_path / "ok.pt", {"w": torch.ones(3)}, {"config": {}}, [])
    assert torch.equal(read_model_state(tmp_path / "ok.pt")["w"], torch.ones(3))
