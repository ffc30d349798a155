"""Each on-disk format between rules has one writer and one reader (matlabel/formats.py, matlabel/checkpoints.py);
a round trip through them gives back what was written, to the format's precision."""
import numpy as np
import torch

from matlabel.checkpoints import read_checkpoint, read_model_state, write_model, write_resume
from matlabel.formats import ALPHAS_SUFFIX, MAPS_SUFFIX, read_alphas, read_maps, write_alphas, write_maps


def test_maps_round_trip_in_float16(tmp_path):
    rng = np.random.default_rng(0)
    cams = rng.random((2, 5, 7)).astype(np.float32)
    path = tmp_path / f"a{MAPS_SUFFIX}"
    write_maps(path, cams, [3, 15])
    back, classes = read_maps(path)
    assert back.dtype == np.float32 and classes.dtype == np.int64 and classes.tolist() == [3, 15]
    assert np.abs(back - cams).max() <= 2 ** -11  # float16's rounding in [0, 1]
    with np.load(path) as z:  # what other tools see in the file
        assert z["cams"].dtype == np.float16 and z["classes"].dtype == np.int16


def test_alphas_round_trip_in_steps_of_one_255th(tmp_path):
    alphas = np.array([[[0.0, 0.5, 1.0, 0.2, 0.999]]], np.float32)
    path = tmp_path / f"a{ALPHAS_SUFFIX}"
    write_alphas(path, alphas, np.array([7]))
    back, classes = read_alphas(path)
    assert classes.tolist() == [7] and back.dtype == np.float32
    assert np.abs(back - alphas).max() <= 0.5 / 255 + 1e-7
    assert back[0, 0, 0] == 0.0 and back[0, 0, 2] == 1.0  # the ends are exact
    with np.load(path) as z:
        assert z["alphas"].dtype == np.uint8 and z["alphas"].tolist() == [[[0, 128, 255, 51, 255]]]


def test_model_and_resume_checkpoints_round_trip(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    write_model(tmp_path / "model.pt", net.state_dict(), {"lr": 0.1}, [{"epoch": 1, "total": 0.5}])
    state = read_model_state(tmp_path / "model.pt")
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert read_checkpoint(tmp_path / "model.pt")["meta"] == {"lr": 0.1}
    rng = torch.get_rng_state()
    write_resume(tmp_path / "model.pt.resume", net.state_dict(), {"lr": 0.1}, [], opt.state_dict(), epoch=1)
    ckpt = read_checkpoint(tmp_path / "model.pt.resume")
    assert ckpt["epoch"] == 1 and torch.equal(ckpt["torch_rng"], rng)
    assert ckpt["optimizer"]["state"][0]["momentum_buffer"].shape == (2, 3)
