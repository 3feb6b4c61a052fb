"""CIFAR loading from tiny trees in the official format, and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ssdd_cli.data import load_source
from ssdd_cli.errors import DataError
from tests.data.fake_cifar import dump_py2, images, make_cifar10, make_cifar100
from tests.data.helpers import assert_well_formed, row_hashes


def test_cifar100_loads_official_layout(tmp_path: Path) -> None:
    make_cifar100(tmp_path, n_train=40, n_test=10)
    data = load_source("cifar100", data_root=tmp_path)
    assert_well_formed(data, channels=3, resolution=32)
    assert data.classes == 100
    assert data.sizes == (36, 4, 10)
    # Rows are channel-first, row-major: pixel (c, i, j) is column c·1024 + i·32 + j.
    rows = images(10, 2)
    assert torch.equal(data.test, torch.from_numpy(rows).view(10, 3, 32, 32).float() / 255)
    assert data.test[3, 2, 5, 7] == rows[3, 2 * 1024 + 5 * 32 + 7] / 255
    assert data.test_labels is not None
    assert data.test_labels.tolist() == [(k * 7) % 100 for k in range(10)]
    # Every training image is in train or val, exactly once.
    train_rows = torch.from_numpy(images(40, 1)).view(40, 3, 32, 32).float() / 255
    assert row_hashes(data.train) | row_hashes(data.val) == row_hashes(train_rows)


def test_cifar10_loads_five_batches(tmp_path: Path) -> None:
    make_cifar10(tmp_path, per_batch=6, n_test=10)
    data = load_source("cifar10", data_root=tmp_path)
    assert_well_formed(data, channels=3, resolution=32)
    assert data.classes == 10 and data.sizes == (27, 3, 10)
    assert data.train_labels is not None and data.val_labels is not None
    labels = torch.cat([data.train_labels, data.val_labels]).sort().values
    assert labels.tolist() == sorted([k % 10 for k in range(6)] * 5)


def test_cifar_split_is_fixed_and_resize_follows_resolution(tmp_path: Path) -> None:
    make_cifar100(tmp_path)
    a = load_source("cifar100", data_root=tmp_path, seed=1)
    b = load_source("cifar100", data_root=tmp_path, seed=2)
    assert torch.equal(a.val, b.val) and torch.equal(a.train, b.train)
    small = load_source("cifar100", data_root=tmp_path, resolution=16)
    assert small.train.shape[1:] == (3, 16, 16)
    assert float(small.train.min()) >= 0 and float(small.train.max()) <= 1


def test_missing_tree_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_source("cifar100", data_root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "cifar-100-python") in message
    assert "{train,test}" in message and "download it" in message and err.value.option == "download"
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence


def test_missing_file_in_tree_is_missing(tmp_path: Path) -> None:
    folder = make_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_source("cifar10", data_root=tmp_path)


def test_download_fetches_then_reads_with_our_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.utils as tv_utils

    calls: list[tuple[str, str]] = []

    def fake_download(url: str, root: str, **kwargs: Any) -> None:
        calls.append((url, root))
        make_cifar100(Path(root))

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_download)
    data = load_source("cifar100", data_root=tmp_path / "new", download=True)
    assert len(calls) == 1 and calls[0][0].endswith("cifar-100-python.tar.gz")
    assert data.classes == 100
    load_source("cifar100", data_root=tmp_path / "new", download=True)  # present: no fetch
    assert len(calls) == 1


def test_download_failure_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(url: str, root: str, **kwargs: Any) -> None:
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match="downloading cifar10 .* failed .*Network is unreachable"):
        load_source("cifar10", data_root=tmp_path, download=True)


class _Payload:
    """Unpickling this would run `touch <marker>`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


class _EvalPayload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return eval, ("__import__('os').getcwd()",)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_hostile_pickle_is_refused_before_it_runs(tmp_path: Path, protocol: int) -> None:
    folder = make_cifar100(tmp_path)
    marker = tmp_path / "pwned"
    hostile = {b"data": _Payload(marker), b"fine_labels": [0]}
    if protocol == 2:  # Python 2 style, like the official files
        dump_py2(hostile, folder / "train")
    else:
        (folder / "train").write_bytes(pickle.dumps(hostile, protocol=protocol))
    with pytest.raises(DataError) as err:
        load_source("cifar100", data_root=tmp_path)
    assert not marker.exists()
    message = str(err.value)
    assert "refused" in message and "system" in message and "re-download" in message


def test_eval_payload_is_refused(tmp_path: Path) -> None:
    folder = make_cifar10(tmp_path)
    dump_py2({b"data": _EvalPayload()}, folder / "test_batch")
    with pytest.raises(DataError, match=r"asks for __builtin__\.eval"):
        load_source("cifar10", data_root=tmp_path)


def test_malformed_batches_are_data_errors(tmp_path: Path) -> None:
    folder = make_cifar100(tmp_path)
    dump_py2({b"data": np.zeros((4, 100), np.uint8), b"fine_labels": [0] * 4}, folder / "train")
    with pytest.raises(DataError, match=r"uint8 \(N, 3072\)"):
        load_source("cifar100", data_root=tmp_path)
    dump_py2({b"data": images(4, 0), b"fine_labels": [0, 1, 2]}, folder / "train")
    with pytest.raises(DataError, match="4 images but 3 labels"):
        load_source("cifar100", data_root=tmp_path)
    (folder / "train").write_bytes((folder / "test").read_bytes()[:200])  # truncated
    with pytest.raises(DataError, match="not a readable CIFAR pickle"):
        load_source("cifar100", data_root=tmp_path)
