"""State trees ↔ flat safetensors + JSON, and the checkpointer's refusals (kind, settings, data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ssdd_cli.errors import CheckpointError, OutputError
from ssdd_cli.io import check_writable
from ssdd_cli.kit.checkpoint import (
    KEYED_WHEN_SET,
    Checkpointer,
    flat_settings,
    flatten_state,
    tensor_sha256,
    unflatten_state,
)


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
    Checkpointer(path, "test", {"lr": 0.1}).save(state, {"epoch": 3, "losses": [1.0, 0.5]})
    loaded, info = Checkpointer(path, "test", {"lr": 0.1}).load()
    _assert_same(state, loaded)
    assert info == {"epoch": 3, "losses": [1.0, 0.5]}
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind


def test_refuses_garbage_and_foreign_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="unreadable"):
        Checkpointer(junk, "test", {}).load()
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.ckpt"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a test checkpoint"):
        Checkpointer(foreign, "test", {}).load()
    Checkpointer(foreign, "other", {}).save({}, {})
    with pytest.raises(CheckpointError, match="not a test checkpoint"):
        Checkpointer(foreign, "test", {}).load()


def test_refuses_a_run_with_other_settings_or_data_naming_the_first_difference(tmp_path: Path) -> None:
    path = tmp_path / "run.ckpt"
    settings = {"steps": 10, "krr.pool.size": 4, "lr": 1e-3, "data": "abc"}
    Checkpointer(path, "distill", settings).save({"x": torch.zeros(1)}, {"step": 2})
    options = {"krr.pool.size": "pool_size"}
    with pytest.raises(CheckpointError, match=r"made with krr.pool.size = 4, but this run has 2") as err:
        Checkpointer(path, "distill", {**settings, "krr.pool.size": 2, "lr": 1.0}, options).load()
    assert err.value.option == "pool_size"
    with pytest.raises(CheckpointError, match="lr = 0.001") as err:
        Checkpointer(path, "distill", {**settings, "lr": 1.0}).load()
    assert err.value.option == "lr"
    with pytest.raises(CheckpointError, match="other data"):
        Checkpointer(path, "distill", {**settings, "data": "abd"}).load()
    with pytest.raises(CheckpointError, match="made with seed = '\\(unset\\)'"):
        Checkpointer(path, "distill", {**settings, "seed": 1}).load()
    assert Checkpointer(path, "distill", settings).load()[1] == {"step": 2}


def test_flat_settings_and_tensor_fingerprint() -> None:
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Inner:
        size: int = 2

    @dataclass(frozen=True)
    class Outer:
        N: int = 1
        pool: Inner = field(default_factory=Inner)
        widths: tuple[int, ...] = (8, 16)

    assert flat_settings(Outer()) == {"N": 1, "pool.size": 2, "widths": [8, 16]}

    @dataclass(frozen=True)
    class Later(Outer):  # a field added after stores recorded Outer: keyed only when set
        new: bool = field(default=True, metadata=KEYED_WHEN_SET)

    assert flat_settings(Later()) == flat_settings(Outer())
    assert flat_settings(Later(new=False)) == {**flat_settings(Outer()), "new": False}
    a = torch.arange(6.0)
    assert tensor_sha256(a) == tensor_sha256(a.clone()) != tensor_sha256(a.view(2, 3))
    assert tensor_sha256(a) != tensor_sha256(a.double())


def test_check_writable(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "t.safetensors") == tmp_path / "t.safetensors"
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "t.safetensors")
    with pytest.raises(OutputError, match="is a folder"):
        check_writable(tmp_path)
