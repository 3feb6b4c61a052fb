"""Standardised targets round-trip through the artifact: the manifest holds the teacher's
statistics, and the stored targets give back the teacher's raw features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssdd_cli.bundle import load_bundle
from ssdd_cli.data import device_tensor, load_source
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.errors import UsageError
from ssdd_cli.models import extract_features
from ssdd_cli.teacher import load_teacher
from ssdd_cli.teacher.targets import TargetScaling
from tests.distill.helpers import write_tiny_teacher

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_teacher(tmp_path_factory.mktemp("t") / "teacher.safetensors")


def _random(tmp_path: Path, teacher: Path, scaling: str) -> Path:
    out = tmp_path / f"{scaling}.ssdd"
    run_distill(DistillRequest(source="digits", output=out, method="random", budget=10, teacher=teacher,
                               target_scaling=scaling, options={"count_targets": False}))
    return out


def _raw_features(teacher: Path, images: torch.Tensor) -> torch.Tensor:
    net = load_teacher(teacher)[0]
    return extract_features(net, images, device=CPU)


def test_standardised_targets_round_trip_through_the_artifact(tmp_path: Path, teacher: Path) -> None:
    bundle = load_bundle(_random(tmp_path, teacher, "standardized"))
    record = bundle.manifest.teacher
    assert record is not None and record.targets == "standardized"
    assert record.target_mean is not None and record.target_std is not None
    assert len(record.target_mean) == record.feature_dim == 64
    data = load_source("digits")
    source = device_tensor(data.source, data.mean, data.std, CPU)
    raw_all = _raw_features(teacher, source)
    # the statistics are the teacher's over the whole source side
    assert torch.allclose(torch.tensor(record.target_mean), raw_all.mean(0), atol=1e-5)
    assert torch.allclose(torch.tensor(record.target_std), raw_all.std(0, unbiased=False), rtol=1e-3)
    # the stored targets, un-standardised, are the teacher's features of the stored images
    scaling = TargetScaling.from_lists(record.target_mean, record.target_std)
    raw = _raw_features(teacher, bundle.tensors["images"])
    assert torch.allclose(scaling.invert(bundle.tensors["targets"]), raw, atol=1e-4)
    stored = bundle.tensors["targets"]
    assert stored.abs().max() > 0.5  # on the unit scale, not the features' own tiny one


def test_raw_targets_are_the_features_and_say_so(tmp_path: Path, teacher: Path) -> None:
    bundle = load_bundle(_random(tmp_path, teacher, "raw"))
    record = bundle.manifest.teacher
    assert record is not None and record.targets == "raw" and record.target_mean is None
    raw = _raw_features(teacher, bundle.tensors["images"])
    assert torch.allclose(bundle.tensors["targets"], raw, atol=1e-5)


def test_an_unknown_scaling_is_refused_before_any_work(tmp_path: Path, teacher: Path) -> None:
    with pytest.raises(UsageError, match="unknown target scaling 'whitened'"):
        _random(tmp_path, teacher, "whitened")
    assert not (tmp_path / "whitened.ssdd").exists()
