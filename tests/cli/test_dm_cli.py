"""The DM family through the command line: distill → info → reconstruct → pretrain → eval on
digits at tiny settings, its budget, and its refusals as one line each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli.main import app
from ssdd_cli.models import load_backbone

runner = CliRunner()
TINY = ["--steps", "2", "--width", "16", "--batch-size", "16", "--device", "cpu"]
POOL = ["--pool-size", "1", "--pool-epochs", "1"]


def one_line_error(output: str, *needles: str) -> None:
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1, output
    flat = " ".join(output.split())
    for needle in needles:
        assert needle in flat, output


@pytest.mark.parametrize("method", ["dm", "datadam", "iid", "dsdm", "idm"])
def test_distill_info_reconstruct_pretrain_eval(tmp_path: Path, method: str, one_thread: None) -> None:
    art = tmp_path / f"{method}.ssdd"
    extra = POOL if method in ("iid", "dsdm") else []
    result = runner.invoke(app, ["distill", "--source", "digits", "--method", method, "--budget", "20",
                                 "-o", str(art), "--precision", "bf16", *TINY, *extra])
    assert result.exit_code == 0, result.output
    assert "m = 20 images, 5,120 of 5,120 floats" in result.output and "no cached teacher" not in result.output
    bundle = load_bundle(art)
    man = bundle.manifest
    factor = 2 if method in ("dsdm", "idm") else 1
    assert man.teacher is None and man.raw is not None and (man.raw.labels, man.raw.factor) == (True, factor)
    # The family's networks run in float32 whatever --precision asks, and the artifact says so.
    assert man.distill is not None and man.distill.settings["precision"] == "fp32"
    assert bundle.tensors["images"].shape == (20, 1, 16, 16) and bundle.tensors["labels"].shape == (20,)

    info = runner.invoke(app, ["info", str(art)])
    assert info.exit_code == 0 and method in info.output and "labels" in info.output

    rec = runner.invoke(app, ["reconstruct", str(art), "--out", str(tmp_path / "rec")])
    assert rec.exit_code == 0, rec.output
    assert len(list((tmp_path / "rec").glob("image_*.png"))) == 20
    tiles = sorted(p.name for p in (tmp_path / "rec" / "views").glob("*")) if factor > 1 else []
    assert tiles == (["tile-0-0", "tile-0-1", "tile-1-0", "tile-1-1"] if factor > 1 else [])

    backbone = tmp_path / f"{method}.safetensors"
    pre = runner.invoke(app, ["pretrain", str(art), "--epochs", "2", "--device", "cpu", "-o", str(backbone)])
    assert pre.exit_code == 0, pre.output
    assert f"on {20 * factor**2} images" in " ".join(pre.output.split())
    _, meta = load_backbone(backbone)
    recipe = json.loads(meta["ssdd.pretrain_config"])
    assert (recipe["lr"], recipe["weight_decay"], recipe["schedule"], recipe["augment"]) == (0.01, 5e-4, "step", "dsa")
    assert meta["ssdd.artifact_method"] == method

    ev = runner.invoke(app, ["eval", str(backbone), "--target", "digits", "--protocol", "linear",
                             "--linear-epochs", "2", "--device", "cpu"])
    assert ev.exit_code == 0, ev.output and "accuracy" in ev.output


def test_budget_shows_images_per_class() -> None:
    result = runner.invoke(app, ["budget", "--method", "dm", "--source", "digits", "--budget", "100"])
    assert result.exit_code == 0, result.output
    assert "m = 100" in result.output and "(10 per class)" in result.output and "raw-images" in result.output
    doc = json.loads(runner.invoke(app, ["budget", "--method", "dsdm", "--source", "cifar100", "--budget", "1000",
                                         "--count-targets", "--json"]).output)
    # 1,000·3,072 floats over 100 classes of 3,073-float images: IPC ⌊3,072,000 / 307,300⌋ = 9.
    assert (doc["per_class"], doc["m"], doc["components"]) == (9, 900, {"images": 900 * 3072, "labels": 900})


@pytest.mark.parametrize("command", ["budget", "distill"])
def test_one_image_per_class_with_a_covariance_method_is_one_line(tmp_path: Path, command: str) -> None:
    args = ["--source", "digits", "--method", "iid", "--budget", "10"]
    if command == "distill":
        args += ["-o", str(tmp_path / "x.ssdd")]
    result = runner.invoke(app, [command, *args])
    assert result.exit_code != 0
    one_line_error(result.output, "--budget: iid matches a covariance, which needs at least 2 synthetic images "
                                  "per class, but N = 10 buys 1; use N ≥ 20.")
    assert not (tmp_path / "x.ssdd").exists()


def test_an_unlabelled_source_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 255, (40, 16, 16, 1), dtype=np.uint8))
    result = runner.invoke(app, ["distill", "--source", f"npz:{path}", "--method", "dsdm", "--budget", "10",
                                 "-o", str(tmp_path / "x.ssdd")])
    assert result.exit_code != 0
    one_line_error(result.output, "--method: dsdm distills class by class, but source", "has no labels")


@pytest.mark.parametrize("option", [["--chunk", "8"], ["--pool-full-batch"]])
def test_the_krr_scale_options_are_refused_in_one_line(tmp_path: Path, option: list[str]) -> None:
    result = runner.invoke(app, ["distill", "--source", "digits", "--method", "dm", "--budget", "20",
                                 "-o", str(tmp_path / "x.ssdd"), *option, *TINY])
    assert result.exit_code == 2
    name = option[0].removeprefix("--").replace("-", "_")
    one_line_error(result.output, f"{option[0]}: method 'dm' has no setting '{name}'")
    assert not (tmp_path / "x.ssdd").exists()
