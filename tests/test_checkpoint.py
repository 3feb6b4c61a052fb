"""State trees ↔ flat safetensors + JSON, and the checkpoint file's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ssdd_cli.checkpoint import (
    CheckpointError,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)
from ssdd_cli.errors import OutputError
from ssdd_cli.io import check_writable


def _optimizer_state() -> dict:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3)).square().mean().backward()
    opt.step()
    return opt.state_dict()


def _assert_same(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


def test_flatten_round_trip_keeps_int_keys_tuples_and_tensors() -> None:
    state = {
        "opt": _optimizer_state(),
        "misc": (1, 2.5, None, "x", [True]),
        "g": torch.Generator().get_state(),
    }
    tensors, skeleton = flatten_state(state, "s")
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    _assert_same(state, unflatten_state(skeleton, tensors))


def test_checkpoint_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run.ckpt"
    state = {"opt": _optimizer_state(), "w": torch.arange(6.0).view(2, 3)[:, 1]}  # a view
    save_checkpoint(path, "test-checkpoint", state, {"epoch": 3, "losses": [1.0, 0.5]})
    loaded, info = load_checkpoint(path, "test-checkpoint")
    _assert_same(state, loaded)
    assert info == {"epoch": 3, "losses": [1.0, 0.5]}
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind


def test_refuses_garbage_and_foreign_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(junk, "test-checkpoint")
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.ckpt"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a test-checkpoint checkpoint"):
        load_checkpoint(foreign, "test-checkpoint")
    save_checkpoint(foreign, "other-checkpoint", {}, {})
    with pytest.raises(CheckpointError, match="not a test-checkpoint checkpoint"):
        load_checkpoint(foreign, "test-checkpoint")


def test_check_writable(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "t.safetensors") == tmp_path / "t.safetensors"
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "t.safetensors")
    with pytest.raises(OutputError, match="is a folder"):
        check_writable(tmp_path)
