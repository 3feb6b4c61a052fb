"""The trained-network held-out signal: a fresh network pretrained on the current set, measured
on validation images only, recorded through the run into the artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssdd_cli.bundle import load_bundle
from ssdd_cli.data import device_tensor, load_source
from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.param import RawSet
from ssdd_cli.distill.pool import PoolConfig
from ssdd_cli.distill.probe import PROBE_BATCH, PROBE_STEPS, TrainedProbe, split_half_knn
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.errors import UsageError
from ssdd_cli.kit.checkpoint import flat_settings
from ssdd_cli.models import extract_features
from ssdd_cli.teacher import load_teacher
from ssdd_cli.train.batchnorm import recompute_batchnorm
from ssdd_cli.train.cka import linear_cka
from ssdd_cli.train.pretrain import pretrain
from ssdd_cli.train.recipe import PretrainConfig
from tests.distill.helpers import write_tiny_teacher

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_teacher(tmp_path_factory.mktemp("t") / "teacher.safetensors")


def test_split_half_knn_is_perfect_on_separable_features() -> None:
    labels = torch.arange(40) // 10  # both halves hold every class
    features = torch.nn.functional.one_hot(labels, 4).float() + 0.01 * torch.randn(40, 4)
    assert split_half_knn(features, labels) == 1.0


def test_the_probe_reads_the_set_and_the_validation_images_only(teacher: Path) -> None:
    data = load_source("digits")
    net, meta = load_teacher(teacher)
    val = device_tensor(data.val, data.mean, data.std, CPU)
    poisoned = torch.full_like(device_tensor(data.source, data.mean, data.std, CPU), float("nan"))
    targets = TeacherTargets.from_backbone(net, meta, poisoned, CPU)
    inputs = DistillInputs(poisoned, targets, torch.Generator().manual_seed(0), held_out=val,
                           held_out_labels=data.val_labels)
    g = torch.Generator().manual_seed(0)
    distilled = RawSet(torch.randn(12, 1, 16, 16, generator=g), torch.randn(12, 64, generator=g))
    probe = TrainedProbe(PoolConfig(arch="convnet", arch_kwargs={"widths": (8, 16)}), inputs)
    signals = probe(distilled)  # the source side is NaN: never read
    assert set(signals) == {"val-cka", "val-knn"}
    assert all(0.0 <= v <= 1.0 for v in signals.values())
    assert probe(distilled) == signals  # a fixed seed: the same network each time
    other = DistillInputs(poisoned, targets, torch.Generator().manual_seed(0), held_out=val.flip(-1),
                          held_out_labels=data.val_labels)
    assert TrainedProbe(probe.pool, other)(distilled) != signals  # it does read the validation images


def test_the_run_records_the_signal_at_its_interval(tmp_path: Path, teacher: Path) -> None:
    out = tmp_path / "k.ssdd"
    run_distill(DistillRequest(source="digits", output=out, method="krr-st", budget=10, teacher=teacher,
                               options={"steps": 4, "batch_size": 64, "pool_size": 1, "pool_steps": 2,
                                        "probe_every": 2}))
    man = load_bundle(out).manifest
    assert man.distill is not None
    assert [step for step, _ in man.distill.probe] == [0, 2, 4]
    assert all(set(d) == {"val-cka", "val-knn"} for _, d in man.distill.probe)
    quiet = tmp_path / "q.ssdd"
    run_distill(DistillRequest(source="digits", output=quiet, method="krr-st", budget=10, teacher=teacher,
                               options={"steps": 4, "batch_size": 64, "pool_size": 1, "pool_steps": 2}))
    after = load_bundle(quiet)
    assert after.manifest.distill is not None and after.manifest.distill.probe == []
    # the probe draws from its own generators: the distilled set is the same with or without it
    assert torch.equal(after.tensors["images"], load_bundle(out).tensors["images"])


def _probe_case(teacher: Path) -> tuple[torch.nn.Module, torch.Tensor, DistillInputs, RawSet, PoolConfig]:
    """The teacher, digits' validation images, the inputs a probe reads, a set of 12 random
    images with random targets and a tiny pool network."""
    data = load_source("digits")
    net, meta = load_teacher(teacher)
    val = device_tensor(data.val, data.mean, data.std, CPU)
    source = device_tensor(data.source, data.mean, data.std, CPU)
    inputs = DistillInputs(source, TeacherTargets.from_backbone(net, meta, source, CPU),
                           torch.Generator().manual_seed(0), held_out=val, held_out_labels=data.val_labels)
    g = torch.Generator().manual_seed(0)
    distilled = RawSet(torch.randn(12, 1, 16, 16, generator=g), torch.randn(12, 64, generator=g))
    return net, val, inputs, distilled, PoolConfig(arch="convnet", arch_kwargs={"widths": (8, 16)})


def _by_hand_features(distilled: RawSet, pool: PoolConfig, val: torch.Tensor, steps: int) -> torch.Tensor:
    """The probe's network by hand (its recipe, seed 0; 12 images: one step an epoch), its
    BatchNorm statistics recomputed on `val`, and its features of `val`."""
    x, y = distilled.support()
    config = PretrainConfig(arch=pool.arch, arch_kwargs=dict(pool.arch_kwargs), epochs=steps,
                            batch_size=PROBE_BATCH, lr=pool.lr, momentum=pool.momentum,
                            weight_decay=pool.weight_decay, seed=0)
    student, _ = pretrain(x.detach(), y.detach(), None, config, in_channels=1, image_size=16, device=CPU)
    return extract_features(recompute_batchnorm(student, val), val).double()


def test_val_cka_compares_with_the_teacher_recalibrated_on_the_validation_images(teacher: Path) -> None:
    """The progress line's val-cka and the table's `align` compare with one function: the teacher
    with BatchNorm statistics recomputed on the images the probed network is recalibrated on."""
    net, val, inputs, distilled, pool = _probe_case(teacher)
    signals = TrainedProbe(pool, inputs)(distilled)
    student_features = _by_hand_features(distilled, pool, val, PROBE_STEPS)
    recalibrated = extract_features(recompute_batchnorm(net, val), val).double()
    assert signals["val-cka"] == pytest.approx(linear_cka(student_features, recalibrated), rel=1e-6)
    stored = linear_cka(student_features, extract_features(net, val).double())
    assert abs(signals["val-cka"] - stored) > 1e-3  # the stored statistics give another number


def test_the_probe_length_is_an_option_keyed_only_when_set(teacher: Path) -> None:
    """`probe_steps` sets how long each probe pretrains (a set of one minibatch: one step an
    epoch); at its default it leaves the settings a store keys runs by as they were."""
    with pytest.raises(UsageError, match="at least one step"):
        OuterConfig(steps=1, probe_steps=0)
    assert "probe_steps" not in flat_settings(OuterConfig(steps=1))
    assert flat_settings(OuterConfig(steps=1, probe_steps=50))["probe_steps"] == 50
    net, val, inputs, distilled, pool = _probe_case(teacher)
    short = TrainedProbe(pool, inputs, steps=3)(distilled)
    assert short != TrainedProbe(pool, inputs)(distilled)
    recalibrated = extract_features(recompute_batchnorm(net, val), val).double()
    assert short["val-cka"] == pytest.approx(linear_cka(_by_hand_features(distilled, pool, val, 3), recalibrated),
                                             rel=1e-6)
