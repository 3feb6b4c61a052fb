"""The teacher cache used by `distill`, and the cached teacher features beside it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ssdd_cli.errors import UsageError
from ssdd_cli.models import BackboneFileError
from ssdd_cli.progress import ProgressEvent
from ssdd_cli.teacher import cache, provide
from ssdd_cli.teacher.cache import teacher_features
from ssdd_cli.teacher.provide import default_cache_root, get_or_train_teacher, teacher_path
from ssdd_cli.teacher.store import weights_sha256
from ssdd_cli.teacher.trainer import TeacherConfig, build_teacher


def test_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSDD_CACHE", str(tmp_path))
    assert default_cache_root() == tmp_path / "teachers"
    assert teacher_path("digits", "resnet10") == tmp_path / "teachers" / "digits-resnet10.safetensors"
    monkeypatch.delenv("SSDD_CACHE")
    assert default_cache_root() == Path("~/.cache/ssdd/teachers").expanduser()
    a = teacher_path("imagefolder:/a/b", "vit", tmp_path).name
    b = teacher_path("imagefolder:/a_b", "vit", tmp_path).name
    assert a != b and "/" not in a and a.startswith("imagefolder__a_b")


def test_trains_once_then_loads(tmp_path: Path, tiny_config: TeacherConfig,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = dataclasses.replace(tiny_config, epochs=1, batch_size=256)
    events: list[ProgressEvent] = []
    model, meta, path = get_or_train_teacher("digits", device="cpu", callback=events.append,
                                             cache_root=tmp_path, config=config)
    assert path == tmp_path / "digits-resnet10.safetensors" and path.is_file()
    assert not path.with_name(path.name + ".ckpt").exists()
    notices = [e.message for e in events if e.message]
    assert notices and "no cached teacher for (digits, resnet10): training one" in notices[0]
    assert meta["ssdd.kind"] == "teacher" and meta["ssdd.sha256"] == weights_sha256(model)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached teacher should have been loaded")

    monkeypatch.setattr(provide, "train_teacher", no_training)
    events.clear()
    again, meta2, _ = get_or_train_teacher("digits", callback=events.append, cache_root=tmp_path,
                                           config=config)
    assert meta2 == meta and not events

    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BackboneFileError, match="delete"):
        get_or_train_teacher("digits", cache_root=tmp_path, config=config)


def test_features_are_cached_keyed_and_invalidated(tmp_path: Path, tiny_config: TeacherConfig,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    teacher_file = tmp_path / "t.safetensors"
    model, _ = build_teacher(tiny_config, 1, 8)
    meta = {"ssdd.sha256": weights_sha256(model), "ssdd.source": "toy"}
    x = torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    feats = teacher_features(model, meta, x, "identity", teacher_file=teacher_file, batch_size=4)
    assert feats.shape == (10, model.feature_dim) and feats.dtype == torch.float32
    files = list((tmp_path / "t.features").glob("*.safetensors"))
    assert len(files) == 1 and meta["ssdd.sha256"][:16] in files[0].name
    flip = teacher_features(model, meta, x, "flip", teacher_file=teacher_file)
    assert not torch.allclose(flip, feats)
    assert torch.allclose(flip, cache.compute_features(model, x.flip(-1)), atol=1e-6)

    calls: list[int] = []
    real = cache.compute_features

    def counting(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "compute_features", counting)
    cached = teacher_features(model, meta, x, "identity", teacher_file=teacher_file)
    assert torch.equal(cached, feats) and not calls

    # Other images, another split, or a retrained teacher (new sha) never reuse the file.
    teacher_features(model, meta, x[:5], "identity", teacher_file=teacher_file)
    teacher_features(model, meta, x, "identity", teacher_file=teacher_file, split="test")
    other, _ = build_teacher(dataclasses.replace(tiny_config, seed=1), 1, 8)
    other_meta = {"ssdd.sha256": weights_sha256(other), "ssdd.source": "toy"}
    fresh = teacher_features(other, other_meta, x, "identity", teacher_file=teacher_file)
    assert len(calls) == 3 and not torch.allclose(fresh, feats)

    with pytest.raises(UsageError, match="unknown teacher view"):
        teacher_features(model, meta, x, "rotate", teacher_file=teacher_file)


def test_a_cached_teacher_that_saw_the_validation_images_is_trained_again(
        tmp_path: Path, tiny_config: TeacherConfig) -> None:
    """A teacher from before validation was held out of the source side (no `ssdd.trained_on`)
    is not reused: it has seen the images the held-out signals score."""
    from ssdd_cli.models import load_backbone, save_backbone
    from ssdd_cli.models.store import STRUCTURAL_KEYS as STRUCTURAL
    from ssdd_cli.teacher.store import TRAINED_ON

    config = dataclasses.replace(tiny_config, epochs=1, batch_size=256)
    _, meta, path = get_or_train_teacher("digits", cache_root=tmp_path, config=config)
    assert meta["ssdd.trained_on"] == TRAINED_ON
    net, old = load_backbone(path)
    save_backbone(path, net, {k: v for k, v in old.items() if k not in STRUCTURAL and k != "ssdd.trained_on"})
    events: list[ProgressEvent] = []
    _, again, _ = get_or_train_teacher("digits", cache_root=tmp_path, config=config, callback=events.append)
    assert again["ssdd.trained_on"] == TRAINED_ON
    assert any("trained on the validation images too" in (e.message or "") for e in events)
