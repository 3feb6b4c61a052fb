"""The training loop: the loss falls, progress is reported, and resume is exact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ssdd_cli.errors import CheckpointError, UsageError
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.schedules import warmup_cosine
from ssdd_cli.presets import get_preset
from ssdd_cli.progress import ProgressEvent
from ssdd_cli.teacher.augment import AugmentConfig
from ssdd_cli.teacher.trainer import TeacherConfig, TeacherResult, train_teacher

# A network small enough for a test: 8x8 grey images, width-4 ResNet-10, 32-wide projector.
TINY = TeacherConfig(
    arch="resnet10", arch_kwargs={"width": 4}, epochs=3, batch_size=16, optimizer="sgd", lr=0.05,
    lr_batch=None, scale_loss=1.0, warmup_epochs=1, warmup_start_lr=None, projector_hidden=32,
    projector_out=32, projector_bias=False, augment=AugmentConfig(), seed=0,
)
MEAN, STD = (0.5,), (0.25,)
NO_AUGMENT = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0,
                           grayscale_p=0.0, solarize_p=(0.0, 0.0), blur_p=(0.0, 0.0))


def _images(n: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def _state(result: TeacherResult) -> dict[str, torch.Tensor]:
    return {**result.backbone.state_dict(), **{f"p.{k}": v for k, v in result.projector.state_dict().items()}}


def test_loss_decreases_on_tiny_data() -> None:
    # Without augmentation the objective is deterministic given the batch, so a few SGD steps
    # must lower it (with augmentation the per-step noise would make the test flaky).
    cfg = dataclasses.replace(TINY, epochs=8, batch_size=32, lr=0.05, warmup_epochs=1,
                              augment=NO_AUGMENT)
    result = train_teacher(_images(32), MEAN, STD, cfg)
    assert len(result.losses) == 8
    assert result.losses[-1] < 0.8 * result.losses[0]
    assert not result.backbone.training


def test_reports_progress_per_step() -> None:
    events: list[ProgressEvent] = []
    result = train_teacher(_images(), MEAN, STD, dataclasses.replace(TINY, epochs=2),
                           callback=events.append)
    steps = [e for e in events if e.total > 0]
    assert [e.step for e in steps] == list(range(1, 7)) and steps[-1].total == 6
    assert steps[-1].metrics["epoch"] == 2.0
    assert set(steps[0].metrics) == {"epoch", "loss", "img/s"}
    assert steps[-1].metrics["loss"] == pytest.approx(result.final_loss)


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    before = torch.random.get_rng_state()
    a = train_teacher(_images(), MEAN, STD, dataclasses.replace(TINY, epochs=1))
    assert torch.equal(torch.random.get_rng_state(), before)
    b = train_teacher(_images(), MEAN, STD, dataclasses.replace(TINY, epochs=1))
    c = train_teacher(_images(), MEAN, STD, dataclasses.replace(TINY, epochs=1, seed=1))
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_interrupted_run_resumes_to_identical_weights(tmp_path: Path) -> None:
    ckpt = tmp_path / "teacher.safetensors.ckpt"
    full = train_teacher(_images(), MEAN, STD, TINY)

    def kill_after_epoch_1(event: ProgressEvent) -> None:
        if event.metrics.get("epoch") == 1.0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_teacher(_images(), MEAN, STD, TINY, callback=kill_after_epoch_1,
                      checkpoint_path=ckpt, resume=False)
    _, info = Checkpointer(ckpt, "teacher", {**flat_settings(TINY), "data": tensor_sha256(_images())}).load()
    assert info["epoch"] == 1

    events: list[ProgressEvent] = []
    resumed = train_teacher(_images(), MEAN, STD, TINY, callback=events.append,
                            checkpoint_path=ckpt, resume=True)
    assert resumed.start_epoch == 1
    assert any(e.message and "resuming" in e.message for e in events)
    assert [e.step for e in events if e.total > 0][0] == 3 + 1  # 3 steps per epoch, epoch 2
    assert resumed.losses == pytest.approx(full.losses, rel=0, abs=0)
    sf, sr = _state(full), _state(resumed)
    assert all(torch.equal(sf[k], sr[k]) for k in sf)

    # Resuming a finished run returns at once with the same weights.
    again = train_teacher(_images(), MEAN, STD, TINY, checkpoint_path=ckpt, resume=True)
    assert again.start_epoch == 3 and again.seconds == 0.0
    assert all(torch.equal(sf[k], v) for k, v in _state(again).items())


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path: Path) -> None:
    ckpt = tmp_path / "t.ckpt"
    train_teacher(_images(), MEAN, STD, dataclasses.replace(TINY, epochs=1), checkpoint_path=ckpt)
    with pytest.raises(CheckpointError, match="made with epochs = 1, but this run has 3") as err:
        train_teacher(_images(), MEAN, STD, TINY, checkpoint_path=ckpt, resume=True)
    assert err.value.option == "epochs"
    with pytest.raises(CheckpointError, match="other data"):
        train_teacher(_images() * 0.5, MEAN, STD, dataclasses.replace(TINY, epochs=1), checkpoint_path=ckpt,
                      resume=True)


def test_resume_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    result = train_teacher(_images(), MEAN, STD, dataclasses.replace(TINY, epochs=1),
                           checkpoint_path=tmp_path / "none.ckpt", resume=True)
    assert result.start_epoch == 0 and len(result.losses) == 1


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    total, warm = 100, 10
    lrs = [warmup_cosine(warm)(s, total) for s in range(total + 1)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[10:-1], lrs[11:], strict=True))


def test_from_preset_takes_overrides() -> None:
    digits = get_preset("digits").teacher
    preset = TeacherConfig.from_preset(digits)
    assert preset.arch == "resnet10" and preset.arch_kwargs == {"width": 16, "stem": "cifar-same"}
    assert (preset.optimizer, preset.projector_hidden, preset.projector_out) == ("adamw", 512, 512)
    cfg = TeacherConfig.from_preset(digits, epochs=2, lr=0.5, batch_size=64, seed=3)
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.seed) == (2, 0.5, 64, 3)
    other = TeacherConfig.from_preset(digits, arch="convnet")
    assert other.arch == "convnet" and other.arch_kwargs == {}
    paper = TeacherConfig.from_preset(get_preset("cifar100").teacher)
    assert (paper.arch, paper.optimizer, paper.projector_hidden) == ("resnet18", "lars", 2048)


@pytest.mark.parametrize("name", ["lars", "sgd", "adamw"])
def test_both_optimizers_train(name: str) -> None:
    cfg = dataclasses.replace(TINY, epochs=1, optimizer=name, lr=1e-3 if name == "adamw" else 0.05)
    assert len(train_teacher(_images(), MEAN, STD, cfg).losses) == 1


def test_unknown_optimizer_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown teacher optimizer") as err:
        dataclasses.replace(TINY, optimizer="adam")
    assert err.value.option == "optimizer"
