"""Backbone files: round trip, metadata, and one clear error for every kind of bad file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from ssdd_cli.errors import SSDDError
from ssdd_cli.models import Backbone, BackboneFileError, create_backbone, load_backbone, save_backbone


def _trained_convnet() -> Backbone:
    torch.manual_seed(0)
    model = create_backbone("convnet", 3, 16, widths=(8, 16), norm="bn")
    model(torch.randn(4, 3, 16, 16))  # moves the BatchNorm running statistics off their init
    return model.eval()


def test_round_trip_gives_identical_features(tmp_path: Path) -> None:
    model = _trained_convnet()
    path = tmp_path / "backbone.safetensors"
    save_backbone(path, model, {"ssdd.source": "digits"})
    loaded, meta = load_backbone(path)
    assert not loaded.training
    assert (loaded.arch, loaded.config, loaded.feature_dim) == (model.arch, model.config, model.feature_dim)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.features(x), model.features(x))
    assert meta["ssdd.kind"] == "backbone"
    assert meta["ssdd.source"] == "digits"
    assert meta["ssdd.arch"] == "convnet"
    assert (meta["ssdd.in_channels"], meta["ssdd.image_size"]) == ("3", "16")
    assert meta["ssdd.feature_dim"] == str(model.feature_dim)
    assert json.loads(meta["ssdd.config"]) == {"widths": [8, 16], "norm": "bn"}
    assert [p.name for p in tmp_path.iterdir()] == ["backbone.safetensors"]  # no temp file left


@pytest.mark.parametrize("name", ["resnet10", "vit"])
def test_round_trip_other_families(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    options = {"width": 8} if name == "resnet10" else {"embed_dim": 32, "depth": 1, "num_heads": 2}
    model = create_backbone(name, 1, 16, **options).eval()
    save_backbone(tmp_path / "m.safetensors", model, {"ssdd.kind": "teacher"})
    loaded, meta = load_backbone(tmp_path / "m.safetensors")
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta["ssdd.kind"] == "teacher"


def test_meta_must_be_strings_and_cannot_override_structure(tmp_path: Path) -> None:
    model = _trained_convnet()
    with pytest.raises(TypeError):
        save_backbone(tmp_path / "a.safetensors", model, {"epochs": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        save_backbone(tmp_path / "b.safetensors", model, {"ssdd.arch": "vit"})


class _Tied(Backbone):
    """Two parameters sharing storage, and a non-contiguous one: (B, 1, 4, 4) -> (B, 4)."""

    def __init__(self) -> None:
        super().__init__("tied", 1, 4, {})
        self.a = nn.Linear(16, 4, bias=False)
        self.b = nn.Linear(16, 4, bias=False)
        self.b.weight = self.a.weight
        self.c = nn.Parameter(torch.randn(4, 16).t())
        self.feature_dim = 4

    def features(self, x: Tensor) -> Tensor:
        return self.a(x.flatten(1)) + self.b(x.flatten(1))


def test_shared_and_non_contiguous_tensors_are_saved(tmp_path: Path) -> None:
    model = _Tied()
    save_backbone(tmp_path / "t.safetensors", model, {})
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as f:
        assert set(f.keys()) == {"a.weight", "b.weight", "c"}
        assert torch.equal(f.get_tensor("b.weight"), model.a.weight.detach())
        assert torch.equal(f.get_tensor("c"), model.c.detach())


def test_the_same_weights_and_metadata_give_the_same_bytes(tmp_path: Path) -> None:
    # safetensors writes its metadata in a different order at each save; `ssdd compare` keys an
    # evaluation on its backbone file's sha256, so a backbone made again must give the same file.
    model = _trained_convnet()
    meta = {f"ssdd.extra{i}": str(i) for i in range(12)}
    files = [tmp_path / f"{i}.safetensors" for i in range(4)]
    for path in files:
        save_backbone(path, model, meta)
    assert len({path.read_bytes() for path in files}) == 1
    data = files[0].read_bytes()
    size = int.from_bytes(data[:8], "little")
    assert size % 8 == 0
    keys = list(json.loads(data[8:8 + size])["__metadata__"])
    assert keys == sorted(keys)
    loaded, read = load_backbone(files[0])
    assert {k: read[k] for k in meta} == meta
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "good.safetensors"
    save_backbone(path, _trained_convnet(), {})
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackboneFileError, match="does not exist"):
        load_backbone(tmp_path / "nope.safetensors")
    with pytest.raises(BackboneFileError, match="folder"):
        load_backbone(tmp_path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(BackboneFileError, match="not a readable safetensors file"):
        load_backbone(path)


@pytest.mark.parametrize("keep", [0, 5, 100, -10])
def test_truncated_file(tmp_path: Path, keep: int) -> None:
    good = _saved(tmp_path)
    data = good.read_bytes()
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[:keep])
    with pytest.raises(BackboneFileError, match="safetensors"):
        load_backbone(path)


def test_safetensors_without_ssdd_metadata(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(BackboneFileError, match=r"not written by ssdd \(no ssdd.arch metadata\)"):
        load_backbone(path)
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(BackboneFileError, match="no ssdd.arch metadata"):
        load_backbone(path)


def test_weights_that_do_not_match_the_arch(tmp_path: Path) -> None:
    good = _saved(tmp_path)
    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    path = tmp_path / "bad.safetensors"
    wrong_shape = dict(tensors, **{"blocks.0.weight": torch.zeros(8, 3, 5, 5)})
    save_file(wrong_shape, str(path), metadata=meta)
    with pytest.raises(BackboneFileError, match="do not match its architecture 'convnet'"):
        load_backbone(path)
    missing = {k: v for k, v in tensors.items() if k != "blocks.0.bias"}
    save_file(missing, str(path), metadata=meta)
    with pytest.raises(BackboneFileError, match="do not match"):
        load_backbone(path)
    save_file(tensors, str(path), metadata=dict(meta, **{"ssdd.arch": "resnet2"}))
    with pytest.raises(BackboneFileError, match="cannot build"):
        load_backbone(path)
    save_file(tensors, str(path), metadata=dict(meta, **{"ssdd.config": "{not json"}))
    with pytest.raises(BackboneFileError, match="ssdd.config"):
        load_backbone(path)


def test_non_finite_weights(tmp_path: Path) -> None:
    model = _trained_convnet()
    conv = model.get_submodule("blocks.0")
    assert isinstance(conv, nn.Conv2d)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = float("nan")
    save_backbone(tmp_path / "nan.safetensors", model, {})
    with pytest.raises(BackboneFileError, match="NaN"):
        load_backbone(tmp_path / "nan.safetensors")


def test_store_errors_are_user_errors() -> None:
    assert issubclass(BackboneFileError, SSDDError)
    assert BackboneFileError.exit_code == 1


class PanicException(BaseException):  # stands in for pyo3's, which is not importable
    pass


def test_library_panics_become_file_errors_but_interrupts_propagate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssdd_cli.models.store as store

    path = _saved(tmp_path)

    def panic(*args: object, **kwargs: object) -> None:
        raise PanicException("called `Result::unwrap()` on an `Err` value")

    monkeypatch.setattr(store, "safe_open", panic)
    with pytest.raises(BackboneFileError, match="not a readable safetensors file"):
        load_backbone(path)

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "safe_open", interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_backbone(path)


def test_resnet_file_from_before_the_stem_option_loads_with_its_padding_1_stem(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_backbone("resnet10", 3, 16, width=8, stem="cifar-same").eval()
    path = tmp_path / "old.safetensors"
    save_backbone(path, model, {})
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["ssdd.config"] = json.dumps({"width": 8})  # what files written before `stem` hold
    save_file(tensors, str(path), metadata=meta)
    loaded, _ = load_backbone(path)
    assert loaded.config["stem"] == "cifar-same"
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
