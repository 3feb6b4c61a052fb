"""The SSDD paper's ablations as options: initialisation (Table 4), parameterisation without
augmentation (Table 3), targets of the augmented views (Table 11). Each yields a valid artifact
whose stored floats are what the budget charged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssdd_cli.artifact import materialize
from ssdd_cli.budget import ImageShape, ssdd_budget
from ssdd_cli.bundle import load_bundle
from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.methods.ssdd import init_parameterization
from ssdd_cli.distill.param import downsample
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.errors import UsageError
from ssdd_cli.presets import get_preset
from tests.distill.conftest import D_Y
from tests.distill.helpers import write_tiny_teacher

CIFAR = ImageShape(3, 32, 32)
TINY = {"U": 8, "V": 8, "steps": 2, "batch_size": 32, "pool_size": 1, "pool_steps": 1, "approx_steps": 5}


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_teacher(tmp_path_factory.mktemp("t") / "teacher.safetensors")


def _distill(tmp_path: Path, teacher: Path, **options: object) -> Path:
    out = tmp_path / "a.ssdd"
    run_distill(DistillRequest(source="digits", output=out, budget=10, teacher=teacher,
                               options={**TINY, **options}))
    return out


def test_targets_budgets_by_hand_at_cifar100_n100() -> None:
    # 307,200 floats; B^x + B^y = 153,600 + 102,400 = 256,000 leave 51,200.
    def plan(targets: str) -> tuple[int, dict[str, int]]:
        r = ssdd_budget(100, 200, 200, CIFAR, hidden=4, A=3, targets=targets)
        assert r.used <= r.allowed
        return r.m, {k: v for k, v in r.components.items() if k not in ("B^x", "B^y")}

    # approx: Q_a = 5,412 → m = ⌊45,788 / 400⌋ = 114 (DESIGN.md §7).
    assert plan("approx") == (114, {"C^x": 22_800, "C^y": 22_800, "Q_a": 5_412})
    # same: nothing more is stored → m = 51,200 / 400 = 128.
    assert plan("same") == (128, {"C^x": 25_600, "C^y": 25_600})
    # bias: b_a = 3·200 = 600 → m = ⌊50,600 / 400⌋ = 126.
    assert plan("bias") == (126, {"C^x": 25_200, "C^y": 25_200, "b_a": 600})
    # ideal: C^y_a costs 3·200 per image too → m = ⌊51,200 / 1,000⌋ = 51, C^y_a = 3·51·200.
    assert plan("ideal") == (51, {"C^x": 10_200, "C^y": 10_200, "C^y_a": 30_600})


def test_parameterisation_without_augmentation_is_table_3s_row() -> None:
    # "+ Parameterization" (Table 3) = Table 12's "No augmentation": bases and coefficients at
    # Table 5's U = V = 200, no views, no Q_a: m = 51,200 / 400 = 128.
    config = get_method("ssdd").configure(get_preset("cifar100"), 100, 512, aug="none")
    assert (config.U, config.V, config.augmentation.A) == (200, 200, 0)
    report = get_method("ssdd").plan(config, CIFAR, 512)
    assert report.m == 128 and report.components["Q_a"] == 0


@pytest.mark.parametrize("targets", ["approx", "same", "bias", "ideal"])
def test_each_targets_option_gives_a_valid_artifact_with_its_floats(
        tmp_path: Path, teacher_file: Path, targets: str) -> None:
    bundle = load_bundle(_distill(tmp_path, teacher_file, targets=targets))
    man = bundle.manifest
    stored = sum(t.numel() for t in bundle.tensors.values())
    assert man.budget.floats_used == stored <= man.budget.floats_allowed
    assert man.aug_targets == targets and man.augmentations is not None
    assert (man.approx is not None) == (targets == "approx")
    m, A = man.m, len(man.views)
    data = materialize(bundle)
    assert data.targets is not None and data.targets.shape == (m * (A + 1), 64)
    t = bundle.tensors
    y_s = t["repr.coeffs"] @ t["repr.bases"]
    views = data.targets.reshape(A + 1, m, 64)
    assert torch.allclose(views[0], y_s, atol=1e-5)
    if targets == "same":
        assert all(torch.allclose(views[a], y_s, atol=1e-5) for a in range(1, A + 1))
    if targets == "bias":
        assert t["repr.aug_shift"].shape == (A, 8)
        for a in range(A):
            expected = (t["repr.coeffs"] + t["repr.aug_shift"][a]) @ t["repr.bases"]
            assert torch.allclose(views[a + 1], expected, atol=1e-5)
    if targets == "ideal":
        assert t["repr.aug_coeffs"].shape == (A, m, 8)
        assert man.budget.components["C^y_a"] == A * m * 8
        assert torch.allclose(views[1], t["repr.aug_coeffs"][0] @ t["repr.bases"], atol=1e-5)


@pytest.mark.parametrize("init", ["pca", "real", "random"])
def test_each_init_option_gives_a_valid_artifact_with_its_floats(
        tmp_path: Path, teacher_file: Path, init: str) -> None:
    bundle = load_bundle(_distill(tmp_path, teacher_file, init=init))
    assert bundle.manifest.budget.floats_used == sum(t.numel() for t in bundle.tensors.values())
    assert bundle.manifest.distill is not None and bundle.manifest.distill.settings["init"] == init
    assert materialize(bundle).images.shape[0] == bundle.manifest.m * 4


def _inputs(source: torch.Tensor, teacher: object) -> DistillInputs:
    return DistillInputs(source, TeacherTargets(teacher, source, D_Y), torch.Generator().manual_seed(0))  # type: ignore[arg-type]


def test_real_init_takes_bases_from_source_images_and_gaussian_coefficients(source, teacher) -> None:  # type: ignore[no-untyped-def]
    inputs = _inputs(source, teacher)
    p = init_parameterization(inputs, m=20, U=16, V=8, scale=2, augmentation=get_augmentation("rotate"),
                              init="real")
    low = downsample(source, 2).flatten(1)
    # Every image basis is a downsampled source image, every representation basis a teacher feature.
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.cdist(p.image_bases.detach().flatten(1), low, compute_mode=exact).min(dim=1).values.max() < 1e-5
    feats = inputs.teacher.features()
    assert torch.cdist(p.repr_bases.detach(), feats, compute_mode=exact).min(dim=1).values.max() < 1e-5
    coeffs = torch.cat([p.image_coeffs.flatten(), p.repr_coeffs.flatten(), p.aug_coeffs.flatten()]).detach()
    assert abs(float(coeffs.mean())) < 0.15 and abs(float(coeffs.std()) - 1.0) < 0.15


def test_random_init_draws_everything_from_a_standard_gaussian(source, teacher) -> None:  # type: ignore[no-untyped-def]
    p = init_parameterization(_inputs(source, teacher), m=20, U=16, V=8, scale=2,
                              augmentation=get_augmentation("rotate"), init="random")
    for tensor in (p.image_bases, p.repr_bases, p.image_coeffs, p.repr_coeffs, p.aug_coeffs):
        values = tensor.detach().flatten()
        assert abs(float(values.mean())) < 0.3 and abs(float(values.std()) - 1.0) < 0.3
    again = init_parameterization(_inputs(source, teacher), m=20, U=16, V=8, scale=2,
                                  augmentation=get_augmentation("rotate"), init="random")
    assert torch.equal(again.image_bases, p.image_bases)  # reproducible from the generator


def test_options_that_cannot_work_are_refused_naming_them() -> None:
    ssdd, cifar = get_method("ssdd"), get_preset("cifar100")
    with pytest.raises(UsageError) as err:
        ssdd.configure(cifar, 100, 512, aug="none", targets="bias")
    assert err.value.option == "targets"
    with pytest.raises(UsageError) as err:
        ssdd.configure(cifar, 100, 512, init="zeros")
    assert err.value.option == "init" and "pca, real, random" in str(err.value)
    with pytest.raises(UsageError) as err:
        ssdd.configure(cifar, 100, 512, targets="exact")
    assert err.value.option == "targets"


@pytest.mark.parametrize("kind", ["nearest", "centroid"])
def test_kmeans_targets_are_the_nearest_images_features_or_the_centroids(
        tmp_path: Path, teacher_file: Path, kind: str) -> None:
    from ssdd_cli.data import device_tensor, load_source
    from ssdd_cli.teacher import load_teacher

    out = tmp_path / "k.ssdd"
    run_distill(DistillRequest(source="digits", output=out, method="kmeans", budget=6, teacher=teacher_file,
                               options={"kmeans_targets": kind}, target_scaling="raw"))
    t = load_bundle(out).tensors
    net, _ = load_teacher(teacher_file)
    with torch.no_grad():
        own = net(t["images"])
    assert torch.allclose(own, t["targets"], atol=1e-4) == (kind == "nearest")
    if kind == "centroid":  # a centroid is the mean of its cluster's features, not a stored image's
        data = load_source("digits")
        with torch.no_grad():
            feats = net(device_tensor(data.source, data.mean, data.std, "cpu"))
        gap = torch.cdist(t["targets"], feats).min(dim=1).values
        assert float(gap.max()) > 1e-3
