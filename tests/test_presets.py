"""The SSDD paper's larger settings (A.6) as presets: their budget arithmetic by hand, and
`--preset` choosing a source's preset in teacher, distill, pretrain and budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ssdd_cli.budget import ImageShape
from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli.main import app
from ssdd_cli.data import source_preset
from ssdd_cli.distill.methods import get_method
from ssdd_cli.models import create_backbone, load_backbone
from ssdd_cli.presets import get_preset
from ssdd_cli.teacher import load_teacher

runner = CliRunner()


def test_imagenette_budget_by_hand() -> None:
    # N = 10 at 3x128x128: 491,520 floats. U = V = 320, bases 3x16x16 (scale 8): B^x = 245,760;
    # B^y = 320·512 = 163,840; Q_a (h = 16, A = 3) = 3·(320·16 + 16 + 16·320 + 320) = 31,728;
    # left 50,192 → m = ⌊50,192 / 640⌋ = 78.
    preset = get_preset("imagenette")
    assert (preset.resolution, preset.distill.scale, preset.distill.hidden, preset.budgets.default) == (128, 8, 16, 10)
    config = get_method("ssdd").defaults(preset, 10, 512)
    report = get_method("ssdd").plan(config, ImageShape(3, 128, 128), 512)
    assert report.components == {"B^x": 245_760, "C^x": 78 * 320, "B^y": 163_840, "C^y": 78 * 320,
                                 "Q_a": 31_728}
    assert (report.m, report.allowed, report.used) == (78, 491_520, 491_248)


def test_imagenet_1k_budget_by_hand() -> None:
    # N = 100 at 3x224x224: 15,052,800 floats. U = V = 2N = 200, bases 3x16x16 (scale 14):
    # B^x = 153,600; B^y = 102,400; Q_a = 3·(200·16 + 16 + 16·200 + 200) = 19,848;
    # left 14,776,952 → m = ⌊14,776,952 / 400⌋ = 36,942.
    preset = get_preset("imagenet-1k")
    assert (preset.resolution, preset.distill.scale, preset.budgets.default) == (224, 14, 100)
    report = get_method("ssdd").plan(get_method("ssdd").defaults(preset, 100, 512), ImageShape(3, 224, 224), 512)
    assert (report.m, report.allowed) == (36_942, 15_052_800)
    assert report.components["Q_a"] == 19_848 and report.used == 15_052_648


def test_a6_presets_use_the_papers_convnet_depths_and_an_imagenet_stem_teacher() -> None:
    for name, depth in (("imagenette", 5), ("imagenet-1k", 6)):
        preset = get_preset(name)
        net = create_backbone(preset.distill.inner_arch, 3, preset.resolution, **preset.distill.inner_kwargs)
        assert len(net.config["widths"]) == depth
        assert preset.teacher.arch_kwargs == {"stem": "imagenet"}
        assert preset.method("krr-st").steps == 160_000


def test_budget_command_takes_a_preset() -> None:
    result = runner.invoke(app, ["budget", "--source", "imagefolder:/anywhere", "--preset", "imagenette", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["N"], doc["m"], doc["allowed"]) == (10, 78, 491_520)
    bad = runner.invoke(app, ["budget", "--source", "cifar100", "--preset", "imagenet-22k"])
    assert bad.exit_code == 2 and "'imagenet-22k' is not one of" in bad.output and "imagenette" in bad.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageNette-like tree: train/ and val/ with two class folders of small JPEGs."""
    root = tmp_path_factory.mktemp("nette")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3)):
        for cls in ("n01440764", "n02102040"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i}.JPEG")
    return root


def test_imagefolder_with_the_imagenette_preset_end_to_end(folder: Path, tmp_path: Path) -> None:
    source = f"imagefolder:{folder}"
    assert source_preset(source).name == "tinyimagenet"
    teacher = tmp_path / "teacher.safetensors"
    result = runner.invoke(app, ["teacher", "--source", source, "--preset", "imagenette", "--epochs", "1",
                                 "-o", str(teacher), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    net, _ = load_teacher(teacher)
    assert net.image_size == 128 and net.config["stem"] == "imagenet"
    artifact = tmp_path / "r.ssdd"
    result = runner.invoke(app, ["distill", "--source", source, "--preset", "imagenette", "--method", "random",
                                 "--budget", "2", "--teacher", str(teacher), "-o", str(artifact)])
    assert result.exit_code == 0, result.output
    man = load_bundle(artifact).manifest
    assert (man.source.height, man.source.preset, man.m) == (128, "imagenette", 2)
    backbone = tmp_path / "b.safetensors"
    result = runner.invoke(app, ["pretrain", str(artifact), "-o", str(backbone), "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    net, _ = load_backbone(backbone)  # the artifact's preset: a 5-block ConvNet at 128 px
    assert net.image_size == 128 and len(net.config["widths"]) == 5


@pytest.mark.parametrize("name", ["digits", "digits-nuisance", "shapes", "cifar100", "tinyimagenet",
                                  "imagenette"])
def test_declared_teacher_feature_dim_is_the_built_backbones(name: str) -> None:
    preset = get_preset(name)
    net = create_backbone(preset.teacher.arch, preset.channels, min(preset.resolution, 64),
                          **preset.teacher.arch_kwargs)
    assert net.feature_dim == preset.teacher.feature_dim


@pytest.mark.parametrize("name", sorted(n for n in ("digits", "digits-nuisance", "shapes", "cifar10", "cifar100",
                                                     "tinyimagenet", "imagenette", "fashion-mnist", "mnist")))
def test_the_full_row_costs_about_an_artifacts_pretraining(name: str) -> None:
    """An artifact of at most 256 images pretrains for `epochs` SGD steps (one minibatch an
    epoch); the full row takes that many steps over the whole source, rounded up to an epoch."""
    from ssdd_cli.train.diagnostics import sgd_steps
    from ssdd_cli.train.full import full_config

    preset = get_preset(name)
    artifact_steps = preset.pretrain.epochs
    assert preset.pretrain.full_steps == artifact_steps
    for images in (1_438, 5_752, 50_000, 60_000, 100_000):
        config = full_config(preset, images, arch="convnet")
        per_epoch = sgd_steps(images, config.batch_size, 1)
        assert artifact_steps <= per_epoch * config.epochs < artifact_steps + per_epoch


def test_the_full_row_epochs_on_the_official_sets() -> None:
    from ssdd_cli.train.full import full_config

    # Fashion-MNIST's 54,000 training images: 211 minibatches an epoch, 5 epochs (1,055 steps);
    # CIFAR's 45,000: 176, 6 epochs (1,056), where 50 epochs were 8,800 steps.
    assert full_config(get_preset("fashion-mnist"), 54_000, arch="convnet").epochs == 5
    assert full_config(get_preset("cifar100"), 45_000, arch="convnet").epochs == 6
    assert full_config(get_preset("cifar100"), 50_000, arch="convnet", steps=2_000).epochs == 11


def _schedule(preset: str, method: str) -> tuple[int, float]:
    """The (outer steps, lr) a KRR method takes by default on a preset."""
    from ssdd_cli.distill.methods.krr_st import krr_defaults

    outer = krr_defaults(get_preset(preset), method)[1]
    return outer.steps, outer.lr


def test_fashion_mnists_ssdd_schedule_is_the_one_chosen_on_held_out_images() -> None:
    """Issue 33 (docs/results.md): SSDD at lr 1e-2 over 2,000 steps on Fashion-MNIST; KRR-ST and
    the unscreened MNIST keep the preset's 500 steps at 1e-3."""
    assert _schedule("fashion-mnist", "ssdd") == (2000, 1e-2)
    assert _schedule("fashion-mnist", "krr-st") == (500, 1e-3)
    assert _schedule("mnist", "ssdd") == (500, 1e-3)


def test_the_digits_presets_take_fashions_ssdd_schedule_chosen_on_held_out_images() -> None:
    """Issue 33 (docs/results.md, digits-nuisance at N = 20): SSDD at lr 1e-2 over 2,000 steps on
    both digits presets; KRR-ST keeps their 300 steps at 1e-3."""
    for preset in ("digits", "digits-nuisance"):
        assert _schedule(preset, "ssdd") == (2000, 1e-2)
        assert _schedule(preset, "krr-st") == (300, 1e-3)


def test_fashion_mnist_at_one_image_per_class_takes_bases_of_rank_10() -> None:
    """Issue 33 (docs/results.md): at N = 10 Fashion-MNIST's SSDD bases are U = V = 10, so its
    7,840 floats hold m = 215 images instead of the paper rule's 20; N = 100 and MNIST keep the
    rule (U = V = 2N capped at the bases' 196 and the teacher's 128 dimensions)."""
    from ssdd_cli.budget import ImageShape, ssdd_budget

    def bases(preset: str, N: int) -> tuple[int, int]:
        p = get_preset(preset)
        row = p.budgets.row(N, p.base_dim, 128)
        return row.U, row.V

    assert bases("fashion-mnist", 10) == (10, 10)
    assert bases("fashion-mnist", 100) == (196, 128)
    assert bases("mnist", 10) == (20, 20)
    p = get_preset("fashion-mnist")
    report = ssdd_budget(10, 10, 10, ImageShape(1, 28, 28), scale=p.distill.scale, feature_dim=128,
                         hidden=p.distill.hidden, A=3)
    assert report.m == 215
