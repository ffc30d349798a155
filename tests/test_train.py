import dataclasses
import os

import pytest
import torch

from matlabel.datasets.loader import ClassifierAugment, VOCLayoutDataset
from matlabel.models import build
from matlabel.train import TrainConfig, input_stamps, poly_lr, resolve_device, resume_meta, train

BACKBONE = dict(arch="resnet18", weights="none", output_stride=16, freeze_bn=False, train_from="stem")
CFG = TrainConfig(epochs=2, batch_size=4, lr=0.01, head_lr_mult=1, momentum=0.9, seed=0)


def dataset(manifest):
    return VOCLayoutDataset(manifest, "train", transform=ClassifierAugment((40, 64), 48, True, seed=0))


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
    cfg = TrainConfig(epochs=4, batch_size=4, lr=0.01, head_lr_mult=1, momentum=0.9, seed=0)
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
        train(model, [], TrainConfig(epochs=1, batch_size=4, lr=0.01), torch.device("cpu"), tmp_path / "m.pt",
              loss_fn)


def test_killed_training_resumes_to_the_same_weights(tiny_synthetic, tmp_path):
    """A run killed after epoch 1 resumes from its checkpoint and ends bit-identical to an uninterrupted run."""
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(123)  # the global RNG state must not matter: build() seeds the initialisation
        model, loss_fn = build("cam", 20, BACKBONE)
        train(model, dataset(tiny_synthetic), CFG, torch.device("cpu"), tmp_path / "full.pt", loss_fn)

        calls = {"n": 0}
        steps_per_epoch = -(-len(dataset(tiny_synthetic)) // CFG.batch_size)

        def dying_loss(m, batch):
            calls["n"] += 1
            if calls["n"] > steps_per_epoch:  # the "kill": epoch 2 never finishes
                raise KeyboardInterrupt
            return loss_fn(m, batch)

        torch.manual_seed(456)
        model, _ = build("cam", 20, BACKBONE)
        with pytest.raises(KeyboardInterrupt):
            train(model, dataset(tiny_synthetic), CFG, torch.device("cpu"), tmp_path / "resumed.pt", dying_loss)
        assert (tmp_path / "resumed.pt.resume").exists() and not (tmp_path / "resumed.pt").exists()
        model, _ = build("cam", 20, BACKBONE)
        # resumed with another number of loader workers (they follow --cores): the checkpoint still applies
        history = train(model, dataset(tiny_synthetic), dataclasses.replace(CFG, num_workers=1), torch.device("cpu"),
                        tmp_path / "resumed.pt", loss_fn)
        assert [h["epoch"] for h in history] == [1, 2]
        full = torch.load(tmp_path / "full.pt", weights_only=False)["model"]
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
