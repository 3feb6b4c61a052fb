"""The paper presets' teacher recipe (solo-learn's CIFAR Barlow Twins) and the finite-features
guard: it trains stably from its first step on a small CIFAR-100 tree in the official format,
and a teacher whose features turn NaN is refused with the last good checkpoint kept."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ssdd_cli.cli.main import app
from ssdd_cli.data import ImageSet, load_source, normalize
from ssdd_cli.errors import DivergedError
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.lars import LARS
from ssdd_cli.kit.schedules import warmup_cosine
from ssdd_cli.models import extract_features
from ssdd_cli.presets import get_preset
from ssdd_cli.teacher import load_teacher
from ssdd_cli.teacher.trainer import STAGE, TeacherConfig, build_teacher, make_optimizer, train_teacher
from tests.data.fake_cifar import make_cifar100


@pytest.fixture(scope="module")
def cifar100_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 500-image CIFAR-100 train split (450 train + 50 val) in the official pickle format."""
    root = tmp_path_factory.mktemp("cifar")
    make_cifar100(root, n_train=500, n_test=10)
    return root


@pytest.fixture(scope="module")
def cifar100(cifar100_root: Path) -> ImageSet:
    return load_source("cifar100", data_root=cifar100_root)


def test_paper_preset_is_solo_learns_cifar_recipe() -> None:
    cfg = TeacherConfig.from_preset(get_preset("cifar100").teacher)
    assert (cfg.arch, cfg.arch_kwargs, cfg.epochs, cfg.batch_size) == ("resnet18", {}, 1000, 256)
    assert (cfg.optimizer, cfg.lr, cfg.lr_batch, cfg.momentum, cfg.weight_decay) == ("lars", 0.3, 256, 0.9, 1e-4)
    assert (cfg.lars_eta, cfg.lars_clip, cfg.scale_loss) == (0.02, True, 0.1)
    assert (cfg.warmup_epochs, cfg.warmup_start_lr) == (10, 3e-5)
    assert (cfg.projector_hidden, cfg.projector_out, cfg.projector_bias) == (2048, 2048, True)
    assert cfg.augment.blur_p == (0.0, 0.0) and cfg.augment.solarize_p == (0.0, 0.2)
    assert cfg.peak_lr(256) == 0.3 and cfg.peak_lr(128) == pytest.approx(0.15)  # linear scaling
    backbone, projector = build_teacher(cfg, 3, 32)
    opt = make_optimizer(cfg, [*backbone.parameters(), *projector.parameters()])
    assert isinstance(opt, LARS) and opt.defaults["exclude_bias_n_norm"]


def test_warm_up_starts_at_solo_learns_start_lr() -> None:
    schedule = warmup_cosine(10, start=0.1)
    assert schedule(0, 100) == pytest.approx(0.1) and schedule(9, 100) == pytest.approx(1.0)
    assert schedule(5, 100) == pytest.approx(0.1 + 0.9 * 5 / 9)
    assert schedule(10, 100) == pytest.approx(1.0) and schedule(100, 100) == pytest.approx(0.0)


def test_paper_recipe_is_stable_from_its_first_step(cifar100: ImageSet) -> None:
    # The preset's recipe at its peak rate from the very first step (no warm-up), on a narrow
    # ResNet-18 so the test is quick: LARS moves each adapted weight by at most eta·‖w‖ per step,
    # so over 3 steps with momentum 0.9 by at most eta·(1 + 1.9 + 2.71) ≈ 11%.
    cfg = TeacherConfig.from_preset(get_preset("cifar100").teacher, epochs=3)
    cfg = dataclasses.replace(cfg, warmup_epochs=0, arch_kwargs={"width": 16})
    before, _ = build_teacher(cfg, 3, 32)
    result = train_teacher(cifar100.source, cifar100.mean, cifar100.std, cfg)
    feats = extract_features(result.backbone, normalize(cifar100.source, cifar100.mean, cifar100.std))
    assert torch.isfinite(feats).all()
    assert all(torch.isfinite(torch.tensor(v)) for v in result.losses)
    for (name, w), w0 in zip(result.backbone.named_parameters(), before.parameters(), strict=True):
        assert w.abs().max() < 10, name
        if w.ndim > 1:
            assert float((w.detach() - w0.detach()).norm() / w0.detach().norm()) <= 0.02 * 5.61 + 1e-3, name


@pytest.mark.slow
def test_paper_preset_teacher_command_on_a_small_cifar100_tree(cifar100_root: Path, tmp_path: Path) -> None:
    # The reproduction: `ssdd teacher --source cifar100 --epochs 1` on a 500-image tree.
    out = tmp_path / "teacher.safetensors"
    result = CliRunner().invoke(app, ["teacher", "--source", "cifar100", "--epochs", "2", "-o", str(out),
                                      "--data-root", str(cifar100_root), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    backbone, _ = load_teacher(out)
    data = load_source("cifar100", data_root=cifar100_root)
    assert torch.isfinite(extract_features(backbone, normalize(data.source, data.mean, data.std))).all()
    assert max(float(p.abs().max()) for p in backbone.parameters()) < 10


def test_nan_features_stop_training_and_keep_the_last_good_checkpoint(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_config: TeacherConfig) -> None:
    import ssdd_cli.teacher.trainer as trainer

    calls = {"n": 0}
    real = trainer.extract_features

    def nan_in_epoch_two(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        feats = real(*args, **kwargs)  # type: ignore[arg-type]
        return feats * float("nan") if calls["n"] == 2 else feats

    monkeypatch.setattr(trainer, "extract_features", nan_in_epoch_two)
    images = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ckpt = tmp_path / "t.ckpt"
    with pytest.raises(DivergedError) as err:
        train_teacher(images, (0.5,), (0.25,), tiny_config, checkpoint_path=ckpt)
    message = str(err.value)
    assert "NaN or infinite in epoch 2" in message and str(ckpt) in message and "epoch 1" in message
    assert err.value.option == "lr"
    _, info = Checkpointer(ckpt, STAGE, {**flat_settings(tiny_config), "data": tensor_sha256(images)}).load()
    assert info["epoch"] == 1  # epoch 2 never overwrote it
