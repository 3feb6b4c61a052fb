"""The registry, the embedded sources (digits, digits-nuisance, shapes) and the user sources (npz, imagefolder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssdd_cli.data import (
    SHAPE_CLASSES,
    ImageSet,
    default_data_root,
    generate_shapes,
    list_sources,
    load_source,
    source_status,
)
from ssdd_cli.data.nuisance_digits import NuisanceConfig, render_digits
from ssdd_cli.data.splits import carve
from ssdd_cli.errors import DataError, UsageError
from tests.data.fake_cifar import make_cifar100
from tests.data.helpers import assert_well_formed, row_hashes


def test_registry_lists_sources_and_refuses_unknown_names() -> None:
    assert list_sources() == ["cifar10", "cifar100", "digits", "digits-nuisance", "fashion-mnist",
                              "imagefolder", "mnist", "npz", "shapes"]
    with pytest.raises(UsageError, match="unknown source 'svhn'; choose one of: .*digits.*npz:PATH"):
        load_source("svhn")
    with pytest.raises(UsageError, match="needs a path"):
        load_source("npz")
    with pytest.raises(UsageError, match="takes no path"):
        load_source("digits:/tmp")
    with pytest.raises(UsageError, match="resolution must be a positive integer"):
        load_source("digits", resolution=0)


def test_default_data_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSDD_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("SSDD_DATA")
    assert default_data_root() == Path.home() / ".cache" / "ssdd" / "data"


def test_digits_are_real_upsampled_and_deterministic() -> None:
    a, b = load_source("digits"), load_source("digits", seed=5)
    assert_well_formed(a, channels=1, resolution=16)
    assert a.classes == 10 and a.sizes == (1294, 144, 359)
    assert sum(a.sizes) == 1797
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert a.test_labels is not None and b.test_labels is not None
    assert torch.equal(a.test_labels, b.test_labels)
    assert torch.bincount(a.test_labels).min() >= 35  # stratified: ~36 per class
    small = load_source("digits", resolution=8)
    assert float(small.train.max()) == 1.0 and small.train.shape[-1] == 8
    assert source_status("digits").sizes == "1,294/144/359"


def test_size_keeps_a_fixed_subset_of_real_training_images() -> None:
    full, part = load_source("digits"), load_source("digits", size=100)
    assert len(part.train) == 100 and torch.equal(part.test, full.test)
    assert row_hashes(part.train) <= row_hashes(full.train)


def test_digits_nuisance_keeps_the_digits_splits_and_varies_the_rendering() -> None:
    digits = load_source("digits")
    a, b, c = (load_source("digits-nuisance", seed=s) for s in (0, 0, 1))
    assert_well_formed(a, channels=1, resolution=16)
    cfg = NuisanceConfig()
    assert a.sizes == (5176, 576, 2 * 359) and a.classes == 10
    assert source_status("digits-nuisance").sizes == "5,176/576/718"
    assert torch.equal(a.train, b.train) and not torch.equal(a.train, c.train)
    # each test digit of `digits` is drawn test_copies times, and no other digit is
    assert a.test_labels is not None and digits.test_labels is not None
    assert torch.equal(torch.bincount(a.test_labels), cfg.test_copies * torch.bincount(digits.test_labels))
    assert float(a.train.min()) >= 0.0 and float(a.train.max()) <= 1.0


def test_render_digits_draws_each_glyph_inside_the_canvas_at_its_size() -> None:
    glyph = np.zeros((1, 8, 8), dtype=np.float32)
    glyph[0, 2:6, 2:6] = 1.0  # a filled square covering the middle half of the glyph
    cfg = NuisanceConfig(scale=(0.5, 0.5), noise=0.0)
    images, which = render_digits(glyph, 20, 16, np.random.default_rng(0), cfg)
    assert images.shape == (20, 1, 16, 16) and which.tolist() == [0] * 20
    bright = images[:, 0] > 0.5
    assert len({tuple(np.argwhere(m.numpy()).min(0)) for m in bright}) > 1  # positions vary
    for mask in bright:  # an 8-px digit whose middle half is lit: a 4×4 block, fully inside
        rows, cols = np.nonzero(mask.numpy())
        assert rows.max() - rows.min() + 1 == 4 and cols.max() - cols.min() + 1 == 4


def test_shapes_are_deterministic_and_disjoint() -> None:
    a = load_source("shapes", size=200)
    b = load_source("shapes", size=200)
    c = load_source("shapes", size=200, seed=1)
    assert_well_formed(a, channels=3, resolution=32)
    assert a.sizes == (180, 20, 40) and a.classes == len(SHAPE_CLASSES) >= 8
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert a.train_labels is not None and b.train_labels is not None
    assert torch.equal(a.train_labels, b.train_labels)
    assert not torch.equal(a.train, c.train)
    assert set(a.train_labels.tolist()) == set(range(len(SHAPE_CLASSES)))


def test_generate_shapes_chunks_and_resolution() -> None:
    x, y = generate_shapes(30, seed=3, resolution=24)
    assert x.shape == (30, 3, 24, 24) and y.shape == (30,) and y.dtype == torch.int64
    x2, y2 = generate_shapes(30, seed=3, resolution=24)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    # Per-image colour variation: the nuisance is not a constant background.
    assert float(x.std(dim=(0, 2, 3)).min()) > 0.1


def test_carve_is_stratified_and_deterministic() -> None:
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    keep, out = carve(100, 10, labels, seed=0)
    keep2, out2 = carve(100, 10, labels, seed=0)
    assert np.array_equal(out, out2) and np.array_equal(keep, keep2)
    assert len(out) == 10 and not set(keep) & set(out) and len(keep) + len(out) == 100
    assert np.bincount(labels[out], minlength=4).tolist() == [4, 3, 2, 1]


def test_npz_with_test_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "set.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8),
        y=np.arange(30) % 3,
        x_test=rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
        y_test=np.arange(6) % 3,
    )
    data = load_source(f"npz:{path}", resolution=8)
    assert_well_formed(data, channels=3, resolution=8)
    assert data.sizes == (27, 3, 6) and data.classes == 3
    assert data.name == f"npz:{path}"
    assert load_source(f"npz:{path}").resolution == 32  # the preset's default, resized


def test_npz_unlabelled_float_grayscale_carves_test(tmp_path: Path) -> None:
    path = tmp_path / "gray.npz"
    np.savez(path, x=np.random.default_rng(1).random((20, 4, 4)).astype(np.float32))
    data = load_source(f"npz:{path}", resolution=4)
    assert_well_formed(data, channels=1, resolution=4)
    assert data.classes is None and data.train_labels is None and data.sizes == (14, 2, 4)


def test_npz_refuses_bad_archives(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.full((5, 4, 4, 3), 2.0, dtype=np.float32))
    with pytest.raises(DataError, match=r"outside \[0, 1\]"):
        load_source(f"npz:{path}")
    np.savez(path, x=np.array([object()] * 3, dtype=object))
    with pytest.raises(DataError, match="refused"):
        load_source(f"npz:{path}")
    np.savez(path, images=np.zeros((5, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="no 'x' array"):
        load_source(f"npz:{path}")
    with pytest.raises(DataError, match="does not exist"):
        load_source(f"npz:{tmp_path / 'nope.npz'}")


def _write_images(folder: Path, n: int, colour: tuple[int, int, int], mark: int = 0) -> None:
    folder.mkdir(parents=True)
    for k in range(n):
        pixels = np.full((10, 10 + k, 3), colour, dtype=np.uint8)
        pixels[:2, :2] = (k * 20 + mark) % 256  # make every file distinct
        Image.fromarray(pixels).save(folder / f"{k}.png")


def test_imagefolder_with_train_and_test(tmp_path: Path) -> None:
    for split, n, mark in (("train", 10, 0), ("test", 3, 7)):
        _write_images(tmp_path / split / "cat", n, (200, 10, 10), mark)
        # Nested one level down, as in TinyImageNet's train/<wnid>/images/.
        _write_images(tmp_path / split / "dog" / "images", n, (10, 10, 200), mark)
    data = load_source(f"imagefolder:{tmp_path}", resolution=8)
    assert_well_formed(data, channels=3, resolution=8)
    assert data.classes == 2 and data.sizes == (18, 2, 6)
    assert data.test_labels is not None
    # Class 0 is "cat" (sorted names): red.
    assert float(data.test[data.test_labels == 0][:, 0].mean()) > 0.7


def test_imagefolder_flat_classes_and_tinyimagenet_val(tmp_path: Path) -> None:
    _write_images(tmp_path / "flat" / "a", 10, (255, 255, 255))
    _write_images(tmp_path / "flat" / "b", 10, (0, 0, 0))
    flat = load_source(f"imagefolder:{tmp_path / 'flat'}", resolution=4)
    assert flat.sizes == (14, 2, 4) and flat.classes == 2

    tiny = tmp_path / "tiny"
    _write_images(tiny / "train" / "n01" / "images", 6, (255, 0, 0))
    _write_images(tiny / "train" / "n02" / "images", 6, (0, 255, 0))
    _write_images(tiny / "val" / "images", 4, (0, 255, 0))
    (tiny / "val" / "val_annotations.txt").write_text(
        "".join(f"{k}.png\tn0{1 + k % 2}\t0\t0\t8\t8\n" for k in range(4))
    )
    _write_images(tiny / "test" / "images", 3, (9, 9, 9))  # unlabelled: ignored
    data = load_source(f"imagefolder:{tiny}", resolution=8)
    assert data.sizes == (11, 1, 4)
    assert data.test_labels is not None and data.test_labels.tolist() == [0, 1, 0, 1]


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a folder"):
        load_source(f"imagefolder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_source(f"imagefolder:{tmp_path / 'empty'}")
    _write_images(tmp_path / "broken" / "a", 3, (1, 2, 3))
    (tmp_path / "broken" / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*bad.png"):
        load_source(f"imagefolder:{tmp_path / 'broken'}")


def test_source_status(tmp_path: Path) -> None:
    assert source_status("digits", tmp_path).available
    shapes = source_status("shapes", tmp_path)
    assert shapes.available and shapes.where == "generated" and shapes.shape == (3, 32, 32)
    missing = source_status("cifar100", tmp_path)
    assert not missing.available and str(tmp_path) in missing.where
    make_cifar100(tmp_path)
    found = source_status("cifar100", tmp_path)
    assert found.available and found.where == str(tmp_path / "cifar-100-python")
    assert found.sizes == "45,000/5,000/10,000"
    assert not source_status("npz", tmp_path).available
    assert source_status(f"imagefolder:{tmp_path}", tmp_path).available


def test_imageset_validates_its_tensors() -> None:
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="labels"):
        ImageSet("bad", x, torch.zeros(3, dtype=torch.int64), x, None, x, None,
                 (0.0,) * 3, (1.0,) * 3, 2)
