"""Standardised targets round-trip through the artifact: the manifest holds the teacher's
statistics, and the stored targets give back the teacher's raw features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli.main import app
from ssdd_cli.data import device_tensor, load_source
from ssdd_cli.distill.run import DistillRequest, checkpoint_path, run_distill
from ssdd_cli.errors import SSDDError, UsageError
from ssdd_cli.models import extract_features, save_backbone
from ssdd_cli.progress import ProgressEvent
from ssdd_cli.teacher import load_teacher
from ssdd_cli.teacher.store import weights_sha256
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


def _collapsed_teacher(path: Path) -> Path:
    """A teacher whose every weight is 0: the same features (zeros) for every image."""
    net, meta = load_teacher(write_tiny_teacher(path))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    kept = {k: meta[k] for k in ("ssdd.kind", "ssdd.source", "ssdd.mean", "ssdd.std")}
    save_backbone(path, net, {**kept, "ssdd.sha256": weights_sha256(net)})
    return path


def test_a_collapsed_teacher_is_refused_before_any_outer_step(tmp_path: Path) -> None:
    collapsed = _collapsed_teacher(tmp_path / "collapsed.safetensors")
    steps: list[int] = []

    def watch(event: ProgressEvent) -> None:
        if event.stage == "distill" and event.step > 0:
            steps.append(event.step)

    out = tmp_path / "c.ssdd"
    request = DistillRequest(source="digits", output=out, method="krr-st", budget=10, teacher=collapsed,
                             options={"steps": 2, "batch_size": 64, "pool_size": 1, "pool_steps": 1})
    with pytest.raises(SSDDError) as err:
        run_distill(request, watch)
    message = str(err.value)
    assert "collapsed" in message and "retrain the teacher" in message and "raw" not in message
    assert "\n" not in message and message.endswith(".")
    assert steps == [] and not out.exists() and not checkpoint_path(out).exists()
    for scaling in ("standardized", "raw"):  # raw targets from a collapsed teacher teach nothing either
        result = CliRunner().invoke(app, ["distill", "--source", "digits", "--method", "random", "--budget",
                                          "10", "--teacher", str(collapsed), "--target-scaling", scaling,
                                          "-o", str(out)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "--teacher: the teacher has collapsed" in result.output and not out.exists()


def test_the_scaling_of_a_collapsed_or_non_finite_teacher_is_refused() -> None:
    with pytest.raises(SSDDError, match="collapsed"):
        TargetScaling.fit(torch.full((50, 8), 0.27))
    nan = torch.randn(50, 8)
    nan[3, 2] = float("nan")
    with pytest.raises(SSDDError, match="not finite"):
        TargetScaling.fit(nan)


def test_a_partly_constant_teacher_gets_a_positive_std_in_float32() -> None:
    # One dimension varies by a subnormal float32 step, the other never: the floor
    # sqrt(1e-6 · mean(var)) ≈ 3.5e-48 was 0 in float32, so the constant one's targets were NaN.
    features = torch.zeros(40, 2)
    features[::2, 0] = 1e-44
    scaling = TargetScaling.fit(features)
    assert bool((scaling.std > 0).all()) and bool(torch.isfinite(scaling.apply(features)).all())
