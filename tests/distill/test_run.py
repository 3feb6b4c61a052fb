"""`ssdd distill` / `ssdd reconstruct` end to end on digits with tiny settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli.main import app
from ssdd_cli.distill.distillation import Distillation, trained_probe
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.methods.base import replace_path
from ssdd_cli.distill.probe import PROBE_STEPS
from ssdd_cli.distill.run import DistillRequest, checkpoint_path, run_distill
from ssdd_cli.presets import get_preset
from ssdd_cli.progress import ProgressEvent
from tests.distill.helpers import write_tiny_teacher

runner = CliRunner()
KRR = ["--budget", "10", "--steps", "4", "--batch-size", "64", "--pool-size", "2", "--pool-steps", "3",
       "--device", "cpu"]
TINY = [*KRR, "--U", "8", "--V", "8"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_teacher(tmp_path_factory.mktemp("t") / "teacher.safetensors")


def test_distill_info_reconstruct_digits(tmp_path: Path, teacher: Path) -> None:
    out = tmp_path / "d.ssdd"
    result = runner.invoke(app, ["distill", "--source", "digits", "--teacher", str(teacher), "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert "m = " in result.output and "outer loss" in result.output
    bundle = load_bundle(out)
    man = bundle.manifest
    assert man.method == "ssdd" and man.teacher is not None and man.teacher.feature_dim == 64
    assert man.budget.floats_used <= man.budget.floats_allowed
    assert man.budget.floats_used == sum(t.numel() for t in bundle.tensors.values())
    assert not checkpoint_path(out).exists()
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0 and "Q_a" in info.output
    rec = runner.invoke(app, ["reconstruct", str(out), "--out", str(tmp_path / "imgs")])
    assert rec.exit_code == 0, rec.output
    pngs = sorted((tmp_path / "imgs").glob("image_*.png"))
    assert len(pngs) == man.m
    assert len(list((tmp_path / "imgs" / "views" / "rot90").glob("*.png"))) == man.m
    assert (tmp_path / "imgs" / "grid_001.png").stat().st_size > 0
    from safetensors.torch import load_file

    targets = load_file(str(tmp_path / "imgs" / "targets.safetensors"))
    assert targets["targets"].shape == (4 * man.m, 64)


def test_krr_st_method(tmp_path: Path, teacher: Path) -> None:
    out = tmp_path / "k.ssdd"
    result = runner.invoke(app, ["distill", "--source", "digits", "--method", "krr-st", "--teacher", str(teacher),
                                 "-o", str(out), *KRR])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert bundle.manifest.raw is not None and bundle.tensors["images"].shape == (10, 1, 16, 16)
    rec = runner.invoke(app, ["reconstruct", str(out), "--out", str(tmp_path / "k")])
    assert rec.exit_code == 0 and len(list((tmp_path / "k").glob("image_*.png"))) == 10


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--budget", "1", "--U", "64", "--V", "64"], "more than N = 1 allows"),
        (["--method", "nope"], "Invalid value for '--method': 'nope' is not one of"),
        (["--real-aug", "sideways"], "Invalid value for '--real-aug': 'sideways' is not one of"),
        (["--aug", "mixup"], "Invalid value for '--aug': 'mixup' is not one of 'crop', 'jigsaw'"),
        (["--method", "random", "--U", "8"], "--U: method 'random' has no setting 'U'"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, teacher: Path, args: list[str], fragment: str) -> None:
    result = runner.invoke(app, ["distill", "--source", "digits", "--teacher", str(teacher),
                                 "-o", str(tmp_path / "x.ssdd"), "--steps", "1", *args])
    assert result.exit_code != 0 and fragment in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.ssdd").exists()


def test_unwritable_output_and_wrong_teacher(tmp_path: Path, teacher: Path) -> None:
    result = runner.invoke(app, ["distill", "--source", "digits", "--teacher", str(teacher),
                                 "-o", str(tmp_path / "no" / "x.ssdd")])
    assert result.exit_code == 2 and "does not exist" in result.output  # refused while parsing
    rgb = write_tiny_teacher(tmp_path / "rgb.safetensors", in_channels=3, image_size=32)
    result = runner.invoke(app, ["distill", "--source", "digits", "--teacher", str(rgb), "-o",
                                 str(tmp_path / "x.ssdd"), *TINY])
    assert result.exit_code != 0 and "--teacher: " in result.output
    assert "use a teacher trained on this source" in result.output


def _request(out: Path, teacher: Path, resume: bool = False, **options: object) -> DistillRequest:
    settings = {"U": 8, "V": 8, "hidden": 2, "approx_steps": 50, "steps": 9, "pool_size": 2,
                "pool_steps": 3, "real_aug": "flip", "batch_size": 64, "checkpoint_every": 2, **options}
    return DistillRequest(source="digits", output=out, method="ssdd", budget=10, options=settings, seed=7,
                          device=torch.device("cpu"), teacher=teacher, resume=resume)


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path: Path, teacher: Path) -> None:
    whole = run_distill(_request(tmp_path / "whole.ssdd", teacher))

    def kill_at_5(event: ProgressEvent) -> None:
        if event.stage == "distill" and event.step == 5:
            raise KeyboardInterrupt

    out = tmp_path / "part.ssdd"
    with pytest.raises(KeyboardInterrupt):
        run_distill(_request(out, teacher), kill_at_5)
    assert checkpoint_path(out).exists() and not out.exists()
    resumed = run_distill(_request(out, teacher, resume=True))
    a, b = load_bundle(whole.path), load_bundle(resumed.path)
    assert a.tensors.keys() == b.tensors.keys()
    for name in a.tensors:
        assert torch.equal(a.tensors[name], b.tensors[name]), name
    assert whole.losses == resumed.losses


@pytest.mark.parametrize("method", ["random", "kmeans"])
def test_selection_baselines_store_real_images(tmp_path: Path, teacher: Path, method: str) -> None:
    from ssdd_cli.data import device_tensor, load_source

    out = tmp_path / f"{method}.ssdd"
    result = runner.invoke(app, ["distill", "--source", "digits", "--method", method, "--teacher", str(teacher),
                                 "--budget", "12", "-o", str(out)])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert bundle.manifest.distill is not None and bundle.manifest.distill.steps == 0
    images = bundle.tensors["images"]
    assert images.shape == (12, 1, 16, 16)
    data = load_source("digits")
    real = device_tensor(data.source, data.mean, data.std, "cpu").flatten(1)
    dist = torch.cdist(images.flatten(1), real, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    assert float(dist.max()) < 1e-4  # every stored image is a real training image
    assert len({tuple(r.tolist()) for r in images.flatten(1)}) == 12  # all distinct


def test_distill_cifar100_official_tree_and_missing_data(tmp_path: Path) -> None:
    from tests.data.fake_cifar import make_cifar100

    root = tmp_path / "data"
    make_cifar100(root, n_train=300, n_test=10)
    teacher = write_tiny_teacher(tmp_path / "t.safetensors", in_channels=3, image_size=32, width=32)
    out = tmp_path / "c100.ssdd"
    # The paper's N = 100 preset (U = V = 200) without augmentations keeps the step cheap:
    # 307,200 − 200·768 − 200·256 = 102,400 floats buy m = 256 images.
    args = ["distill", "--source", "cifar100", "--budget", "100", "--aug", "none", "--teacher", str(teacher),
            "-o", str(out), "--steps", "1", "--batch-size", "32", "--pool-size", "1", "--pool-steps", "1",
            "--device", "cpu"]
    result = runner.invoke(app, [*args, "--data-root", str(root)])
    assert result.exit_code == 0, result.output
    man = load_bundle(out).manifest
    assert man.source.name == "cifar100" and man.source.height == 32 and man.parameterization is not None
    assert (man.parameterization.U, man.parameterization.V, man.m) == (200, 200, 256)
    assert man.budget.floats_allowed == 307_200 and man.budget.floats_used <= 307_200
    missing = runner.invoke(app, [*args, "--data-root", str(tmp_path / "empty")])
    assert missing.exit_code == 1 and "cifar100 not found" in missing.output and "Traceback" not in missing.output


def test_the_source_side_is_the_train_split_with_val_held_out(tmp_path: Path, teacher: Path) -> None:
    # Validation images are held out of the source side (issue 33): the most a selection can take
    # is the train split.
    from ssdd_cli.data import load_source

    data = load_source("digits")
    n = len(data.source)
    assert n == len(data.train) and len(data.val) > 0
    out = tmp_path / "all.ssdd"
    result = runner.invoke(app, ["distill", "--source", "digits", "--method", "random", "--teacher", str(teacher),
                                 "--budget", str(n), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_bundle(out).tensors["images"].shape[0] == n
    more = runner.invoke(app, ["distill", "--source", "digits", "--method", "random", "--teacher", str(teacher),
                               "--budget", str(n + 1), "-o", str(tmp_path / "more.ssdd")])
    assert more.exit_code != 0 and f"has only {n} training images" in more.output


def test_budget_larger_than_the_source_is_refused(tmp_path: Path, teacher: Path) -> None:
    result = runner.invoke(app, ["distill", "--source", "digits", "--method", "random", "--teacher", str(teacher),
                                 "--budget", "5000", "-o", str(tmp_path / "x.ssdd")])
    assert result.exit_code != 0 and "--budget: the budget buys m = " in result.output


def test_unknown_source_and_corrupt_teacher_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["distill", "--source", "nope", "-o", str(tmp_path / "x.ssdd")])
    assert result.exit_code == 2 and "--source: unknown source" in result.output and "digits" in result.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(range(200)) * 3)
    result = runner.invoke(app, ["distill", "--source", "digits", "--teacher", str(bad), "-o",
                                 str(tmp_path / "x.ssdd")])
    assert result.exit_code == 1 and "Traceback" not in result.output and "safetensors" in result.output


def test_a_plan_with_fewer_images_than_n_is_noted(tmp_path: Path, teacher: Path) -> None:
    # N = 10 (2,560 floats), U = V = 16 with the 64-d tiny teacher: B^x 16·64 + B^y 16·64 + Q_a
    # 3·(16·2 + 2 + 2·16 + 16) = 2,294 fixed, 32 a image, so m = 266 // 32 = 8 < 10.
    notes: list[str] = []

    def collect(event: ProgressEvent) -> None:
        if event.message:
            notes.append(event.message)

    result = run_distill(_request(tmp_path / "d.ssdd", teacher, U=16, V=16, steps=1), collect)
    assert load_bundle(result.path).tensors["image.coeffs"].shape[0] == 8
    assert any(n.startswith("note: the bases leave room for only m = 8 images") for n in notes), notes


def _notes() -> tuple[list[str], Callable[[ProgressEvent], None]]:
    notes: list[str] = []

    def collect(event: ProgressEvent) -> None:
        if event.message:
            notes.append(event.message)

    return notes, collect


def _linear_inputs(n_val: int, with_teacher: bool = True) -> DistillInputs:
    """60 random 16-px images, a linear 12-d teacher and `n_val` validation images."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 1, 16, 16, generator=g)
    w = torch.randn(256, 12, generator=g) / 16
    targets = TeacherTargets(lambda images: images.flatten(1) @ w, x, 12) if with_teacher else None
    return DistillInputs(x, targets, g, held_out=torch.randn(n_val, 1, 16, 16, generator=g))


def test_the_probe_off_for_want_of_validation_images_is_noted() -> None:
    method = get_method("krr-st")
    config = method.configure(get_preset("digits"), 10, 12, steps=2, pool_size=1, probe_every=1)
    notes, collect = _notes()
    run = Distillation.create(method, config, _linear_inputs(3), collect)
    assert run.loop is not None and run.loop.probe is None
    assert notes == ["note: the trained-network probe is off: the source has 3 validation images and the probe "
                     "needs at least 4."]
    notes.clear()
    run = Distillation.create(method, config, _linear_inputs(4), collect)
    assert run.loop is not None and run.loop.probe is not None and notes == []
    quiet = method.configure(get_preset("digits"), 10, 12, steps=2, pool_size=1)  # probe_every 0: nothing to say
    Distillation.create(method, quiet, _linear_inputs(3), collect)
    assert notes == []


def test_the_probe_off_for_want_of_a_teacher_or_a_pool_is_noted() -> None:
    method = get_method("krr-st")
    config = method.configure(get_preset("digits"), 10, 12, steps=2, pool_size=1, probe_every=1)
    notes, collect = _notes()
    assert trained_probe(method, config, _linear_inputs(8, with_teacher=False), PROBE_STEPS, collect) is None
    assert notes == ["note: the trained-network probe is off: the run has no teacher to compare its "
                     "features with."]
    notes.clear()
    dm = get_method("dm")
    labelled = replace(_linear_inputs(8, with_teacher=False), labels=torch.arange(60) % 3)
    dm_config = replace_path(dm.configure(replace(get_preset("digits"), classes=3), 9, 0, steps=2, width=8),
                             "outer.probe_every", 1)  # only the Python API can ask dm for the probe
    run = Distillation.create(dm, dm_config, labelled, collect)
    assert run.loop is not None and run.loop.probe is None
    assert notes == ["note: the trained-network probe is off: method dm trains no pool of networks to "
                     "probe with."]


def test_a_run_on_a_source_with_few_validation_images_notes_the_probe_is_off(tmp_path: Path,
                                                                               teacher: Path) -> None:
    import numpy as np

    archive = tmp_path / "few.npz"
    rng = np.random.default_rng(0)
    np.savez(archive, x=rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), y=np.arange(20) % 2)
    notes, collect = _notes()
    run_distill(DistillRequest(source=f"npz:{archive}", preset="digits", output=tmp_path / "f.ssdd",
                               method="krr-st", budget=6, teacher=teacher,
                               options={"steps": 1, "batch_size": 8, "pool_size": 1, "pool_steps": 1,
                                        "probe_every": 1}), collect)
    assert any(n.startswith("note: the trained-network probe is off: the source has 2 validation images")
               for n in notes), notes


def test_the_learning_rate_of_each_tensor_kind_reaches_the_artifact(tmp_path: Path, teacher: Path) -> None:
    out = tmp_path / "k.ssdd"
    result = runner.invoke(app, ["distill", "--source", "digits", "--method", "krr-st", "--teacher", str(teacher),
                                 "--budget", "10", "--steps", "2", "--batch-size", "64", "--pool-size", "1",
                                 "--pool-steps", "1", "--lr-images", "0.05", "--lr-targets", "0.002",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    settings = load_bundle(out).manifest.distill.settings  # type: ignore[union-attr]
    assert settings["outer.lr_images"] == 0.05 and settings["outer.lr_targets"] == 0.002
    bad = runner.invoke(app, ["distill", "--source", "digits", "--method", "krr-st", "--teacher", str(teacher),
                              "--lr-images", "-1", "-o", str(tmp_path / "bad.ssdd")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
