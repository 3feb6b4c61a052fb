"""Teacher files: metadata, the weights hash, and refusals of non-teacher or tampered files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from ssdd_cli.models import BackboneFileError, create_backbone, save_backbone
from ssdd_cli.teacher.store import load_teacher, save_teacher, weights_sha256
from ssdd_cli.teacher.trainer import TeacherConfig, TeacherResult, build_teacher


@pytest.fixture
def result(tiny_config: TeacherConfig) -> TeacherResult:
    backbone, projector = build_teacher(tiny_config, 1, 8)
    return TeacherResult(backbone.eval(), projector, tiny_config, losses=[12.0, 9.5], seconds=1.0,
                         images_per_second=10.0, start_epoch=0)


def test_save_load_round_trip_and_metadata(tmp_path: Path, result: TeacherResult) -> None:
    path = tmp_path / "t.safetensors"
    meta = save_teacher(path, result, source="digits", mean=(0.3,), std=(0.32,))
    model, loaded = load_teacher(path)
    assert loaded["ssdd.kind"] == "teacher" and loaded["ssdd.ssl"] == "barlow_twins"
    assert loaded["ssdd.source"] == "digits" and loaded["ssdd.arch"] == "resnet10"
    assert json.loads(loaded["ssdd.mean"]) == [0.3] and json.loads(loaded["ssdd.std"]) == [0.32]
    assert loaded["ssdd.epochs"] == "2" and float(loaded["ssdd.loss"]) == 9.5
    assert int(loaded["ssdd.feature_dim"]) == model.feature_dim == 32
    assert json.loads(loaded["ssdd.teacher_config"])["arch_kwargs"] == {"width": 4}
    # The hash is computable from the loaded model and equals the one recorded at save time.
    assert loaded["ssdd.sha256"] == meta["ssdd.sha256"] == weights_sha256(model)


def test_sha256_is_sensitive_to_every_weight_and_buffer(result: TeacherResult) -> None:
    model = result.backbone
    sha = weights_sha256(model)
    assert sha == weights_sha256(model)
    state = model.state_dict()
    key = sorted(k for k in state if "running_mean" in k)[0]
    state[key][0] += 1e-3
    assert weights_sha256(model) != sha
    other = create_backbone("resnet10", 1, 8, width=4)
    assert weights_sha256(other) != sha


def test_refuses_a_non_teacher_and_a_tampered_teacher(tmp_path: Path, result: TeacherResult) -> None:
    plain = tmp_path / "plain.safetensors"
    save_backbone(plain, create_backbone("resnet10", 1, 8, width=4), {})
    with pytest.raises(BackboneFileError, match="not a teacher"):
        load_teacher(plain)

    path = tmp_path / "t.safetensors"
    save_teacher(path, result, source="digits", mean=(0.3,), std=(0.32,))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(BackboneFileError, match="sha256"):
        load_teacher(path)


def test_corrupt_teacher_file_is_a_user_error(tmp_path: Path, result: TeacherResult) -> None:
    path = tmp_path / "t.safetensors"
    save_teacher(path, result, source="digits", mean=(0.3,), std=(0.32,))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BackboneFileError):
        load_teacher(path)

