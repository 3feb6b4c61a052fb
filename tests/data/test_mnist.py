"""Fashion-MNIST and MNIST from tiny files in the official IDX format (gzipped and plain); every
corruption refused in one sentence naming the file; the official splits and the validation carve."""

from __future__ import annotations

import dataclasses
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ssdd_cli.data import load_source, source_status
from ssdd_cli.data.idx import read_idx, write_idx
from ssdd_cli.data.mnist import FILES, FashionMnist
from ssdd_cli.errors import DataError
from tests.data.helpers import assert_well_formed, row_hashes

N_TRAIN, N_TEST = 50, 20


@pytest.fixture(autouse=True)
def no_system_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine may have the Debian package installed; the tests must not see it."""
    monkeypatch.setattr(FashionMnist, "layout", dataclasses.replace(FashionMnist.layout, system=()))


def pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def make_idx(folder: Path, *, gz: bool = True, n_train: int = N_TRAIN, n_test: int = N_TEST) -> Path:
    """The four official files with n_train and n_test images, labels k % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for (images, labels), n, seed in zip(FILES.values(), (n_train, n_test), (1, 2), strict=True):
        write_idx(folder / f"{images}{suffix}", pixels(n, seed))
        write_idx(folder / f"{labels}{suffix}", np.arange(n, dtype=np.uint8) % 10)
    return folder


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_fashion_mnist_loads_official_files(tmp_path: Path, gz: bool) -> None:
    make_idx(tmp_path / "fashion-mnist", gz=gz)
    data = load_source("fashion-mnist", data_root=tmp_path)
    assert_well_formed(data, channels=1, resolution=28)
    assert data.classes == 10
    assert data.sizes == (45, 5, 20)  # the official test split; a stratified 10% of train is val
    assert torch.equal(data.test, torch.from_numpy(pixels(N_TEST, 2)).unsqueeze(1).float() / 255)
    assert data.test_labels is not None and data.test_labels.tolist() == [k % 10 for k in range(N_TEST)]
    train = torch.from_numpy(pixels(N_TRAIN, 1)).unsqueeze(1).float() / 255
    assert row_hashes(data.train) | row_hashes(data.val) == row_hashes(train)
    assert data.val_labels is not None and sorted(data.val_labels.tolist()) == list(range(5))


def test_the_split_is_fixed_and_torchvision_layout_and_mnist_are_found(tmp_path: Path) -> None:
    make_idx(tmp_path / "MNIST" / "raw")
    a = load_source("mnist", data_root=tmp_path, seed=1)
    b = load_source("mnist", data_root=tmp_path, seed=2)
    assert torch.equal(a.val, b.val) and torch.equal(a.train, b.train)
    assert source_status("mnist", tmp_path).available
    assert load_source("mnist", data_root=tmp_path, resolution=32).train.shape[1:] == (1, 32, 32)


def test_the_real_splits_sizes_are_declared() -> None:
    status = source_status("fashion-mnist", Path("/nonexistent"))
    assert status.sizes == "54,000/6,000/10,000" and status.shape == (1, 28, 28)


def test_missing_files_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_source("fashion-mnist", data_root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "fashion-mnist") in message and "FashionMNIST/raw" in message
    assert "apt-get install dataset-fashion-mnist" in message and "--download" in message
    status = source_status("fashion-mnist", tmp_path)
    assert not status.available and "apt-get install dataset-fashion-mnist" in status.where


def corrupt(path: Path, how: str) -> None:
    data = gzip.decompress(path.read_bytes())
    if how == "truncated":
        data = data[:-7]
    elif how == "wrong magic":
        data = b"\x01\x02" + data[2:]
    elif how == "wrong type":
        data = data[:2] + b"\x0d" + data[3:]
    elif how == "wrong count":
        data = data[:4] + struct.pack(">I", N_TRAIN + 1) + data[8:]
    path.write_bytes(gzip.compress(data))


@pytest.mark.parametrize(("how", "says"), [("truncated", "truncated"), ("wrong magic", "magic number"),
                                           ("wrong type", "type code 0x0d"), ("wrong count", "truncated")])
def test_a_corrupt_file_is_refused_naming_it(tmp_path: Path, how: str, says: str) -> None:
    folder = make_idx(tmp_path / "fashion-mnist")
    victim = folder / "train-images-idx3-ubyte.gz"
    corrupt(victim, how)
    with pytest.raises(DataError) as err:
        load_source("fashion-mnist", data_root=tmp_path)
    message = str(err.value)
    assert str(victim) in message and says in message and "\n" not in message


def test_a_damaged_gzip_and_mismatched_counts_are_refused(tmp_path: Path) -> None:
    folder = make_idx(tmp_path / "fashion-mnist")
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:40])
    with pytest.raises(DataError, match="damaged gzip"):
        load_source("fashion-mnist", data_root=tmp_path)
    write_idx(images, pixels(N_TEST + 3, 2))
    with pytest.raises(DataError) as err:
        load_source("fashion-mnist", data_root=tmp_path)
    assert f"{N_TEST + 3} images" in str(err.value) and f"{N_TEST} labels" in str(err.value)


def test_read_idx_round_trips_and_checks_dimensions(tmp_path: Path) -> None:
    values = pixels(3, 0)
    write_idx(tmp_path / "x.idx", values)
    assert np.array_equal(read_idx(tmp_path / "x.idx", 3), values)
    with pytest.raises(DataError, match="3 dimensions, not 1"):
        read_idx(tmp_path / "x.idx", 1)


def test_download_fetches_the_four_files_into_the_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    source = make_idx(tmp_path / "elsewhere")
    fetched: list[str] = []

    def fake_download(url: str, root: str, filename: str, md5: str) -> None:
        fetched.append(url)
        (Path(root) / filename).write_bytes((source / filename).read_bytes())

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    data = load_source("fashion-mnist", data_root=tmp_path / "root", download=True)
    assert data.sizes == (45, 5, 20) and len(fetched) == 4
    assert all(u.endswith(".gz") for u in fetched) and (tmp_path / "root" / "fashion-mnist").is_dir()

    def offline(url: str, root: str, filename: str, md5: str) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    with pytest.raises(DataError) as err:
        load_source("mnist", data_root=tmp_path / "root", download=True)
    assert "downloading mnist's" in str(err.value) and "network is unreachable" in str(err.value)


@pytest.mark.parametrize("shape", [(N_TRAIN, 32, 32), (N_TRAIN, 28, 30)], ids=["32x32", "28x30"])
def test_another_image_side_is_refused_naming_the_file_and_its_side(tmp_path: Path,
                                                                      shape: tuple[int, int, int]) -> None:
    folder = make_idx(tmp_path / "fashion-mnist")
    victim = folder / "train-images-idx3-ubyte.gz"
    write_idx(victim, np.zeros(shape, dtype=np.uint8))  # a valid IDX file of other images
    with pytest.raises(DataError) as err:
        load_source("fashion-mnist", data_root=tmp_path)
    message = str(err.value)
    assert str(victim) in message and f"{shape[1]}×{shape[2]}" in message and "28×28" in message
    assert "\n" not in message


def test_an_absurd_header_is_one_sentence_not_a_traceback(tmp_path: Path) -> None:
    # 4 · 2^31 · 2^31 = 2^64 wraps to 0 in int64, which an empty body would have matched.
    path = tmp_path / "absurd-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 4, 2**31, 2**31))
    with pytest.raises(DataError) as err:
        read_idx(path, 3)
    message = str(err.value)
    assert str(path) in message and "4×2147483648×2147483648" in message and "truncated" in message
    assert "\n" not in message


def fake_mirror(monkeypatch: pytest.MonkeyPatch, source: Path) -> list[str]:
    """torchvision's downloader replaced by a copy from `source` (no network); returns the names fetched."""
    import torchvision.datasets.utils as tv_utils

    fetched: list[str] = []

    def fake_download(url: str, root: str, filename: str, md5: str) -> None:
        fetched.append(filename)
        (Path(root) / filename).write_bytes((source / filename).read_bytes())

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    return fetched


def test_download_replaces_a_damaged_file_when_all_four_exist(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_idx(tmp_path / "mirror")
    folder = make_idx(tmp_path / "root" / "fashion-mnist")
    victim = folder / "train-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:40])
    fetched = fake_mirror(monkeypatch, good)
    with pytest.raises(DataError, match="damaged gzip"):
        load_source("fashion-mnist", data_root=tmp_path / "root")
    assert fetched == []  # without download, nothing is fetched
    data = load_source("fashion-mnist", data_root=tmp_path / "root", download=True)
    assert data.sizes == (45, 5, 20) and "train-images-idx3-ubyte.gz" in fetched
    assert victim.read_bytes() == (good / "train-images-idx3-ubyte.gz").read_bytes()


def test_download_of_damaged_files_elsewhere_fetches_into_the_data_root(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_idx(tmp_path / "mirror")
    folder = make_idx(tmp_path / "root" / "MNIST" / "raw")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot gzip")
    fake_mirror(monkeypatch, good)
    data = load_source("mnist", data_root=tmp_path / "root", download=True)
    assert data.sizes == (45, 5, 20) and (tmp_path / "root" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


@pytest.mark.parametrize("damaged", [".gz", ""], ids=["gzip-damaged", "plain-damaged"])
def test_a_file_that_reads_is_used_whichever_of_the_two_names_is_damaged(tmp_path: Path, damaged: str) -> None:
    folder = make_idx(tmp_path / "fashion-mnist", gz=True)
    make_idx(folder, gz=False)  # the same files, also unzipped
    victim = folder / f"train-images-idx3-ubyte{damaged}"
    victim.write_bytes(victim.read_bytes()[:100])
    data = load_source("fashion-mnist", data_root=tmp_path)
    assert data.sizes == (45, 5, 20)


def test_status_reports_the_counts_the_files_hold(tmp_path: Path) -> None:
    make_idx(tmp_path / "mnist", n_train=30, n_test=7)
    status = source_status("mnist", tmp_path)
    assert status.available and status.sizes == "27/3/7"  # val is 10% of the 30
    make_idx(tmp_path / "fashion-mnist", gz=False, n_train=40, n_test=9)
    assert source_status("fashion-mnist", tmp_path).sizes == "36/4/9"


def test_status_says_when_a_header_cannot_be_read(tmp_path: Path) -> None:
    folder = make_idx(tmp_path / "mnist")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot gzip")
    status = source_status("mnist", tmp_path)
    assert status.sizes == "unreadable" and "t10k-images-idx3-ubyte.gz" in status.where
