"""`ssdd pretrain` and `ssdd eval` end to end through Typer's CliRunner, on tiny inputs."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from ssdd_cli.cli.main import app
from ssdd_cli.models import create_backbone, load_backbone, save_backbone

runner = CliRunner()
GOLDEN = Path(__file__).resolve().parents[2] / "formats" / "golden"


def _one_line_error(result: object, *needles: str) -> None:
    out = result.output  # type: ignore[attr-defined]
    assert result.exit_code != 0, out  # type: ignore[attr-defined]
    assert "Traceback" not in out
    assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out
    for needle in needles:
        assert needle in out.replace("\n", " "), out


def test_eval_random_knn_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["eval", "random", "--target", "digits", "--protocol", "knn",
                                 "--seeds", "2", "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["backbone"] == "random" and doc["target"] == "digits" and len(doc["results"]) == 1
    result_ = doc["results"][0]
    acc = result_["metrics"]["accuracy"]
    assert set(acc) == {"mean", "std", "values"} and len(acc["values"]) == 2
    assert 0.0 <= acc["mean"] <= 1.0 and acc["std"] >= 0.0
    assert result_["protocol"] == "knn" and result_["target"] == "digits" and result_["seeds"] == [0, 1]
    # the protocol's settings travel along, with the BatchNorm rule
    assert result_["config"] == {"k": 20, "temperature": 0.07, "batchnorm": "target"}
    assert "knn" in result.output and "accuracy" in result.output


def test_eval_json_records_the_linear_probe_settings(tmp_path: Path) -> None:
    out = tmp_path / "linear.json"
    result = runner.invoke(app, ["eval", "random", "--target", "digits", "--linear-epochs", "2",
                                 "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads(out.read_text())["results"][0]["config"]
    assert config == {"epochs": 2, "batch_size": 256, "lr": 0.2, "momentum": 0.9, "weight_decay": 0.0,
                      "standardize": False, "batchnorm": "target"}


@pytest.mark.parametrize("artifact", ["v1-ssdd.ssdd", "v1-raw.ssdd"])
def test_pretrain_then_eval(tmp_path: Path, artifact: str) -> None:
    out = tmp_path / "backbone.safetensors"
    result = runner.invoke(app, ["pretrain", str(GOLDEN / artifact), "--epochs", "2",
                                 "--device", "cpu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert not out.with_name(out.name + ".ckpt").exists()
    net, meta = load_backbone(out)
    assert meta["ssdd.kind"] == "backbone" and meta["ssdd.source"] == "digits"
    assert meta["ssdd.epochs"] == "2" and float(meta["ssdd.final_loss"]) >= 0
    assert len(meta["ssdd.artifact_sha256"]) == 64 and json.loads(meta["ssdd.mean"])
    assert net.image_size == 8  # the golden artifacts are 8×8 digits
    # eval loads the target at the backbone's resolution
    result = runner.invoke(app, ["eval", str(out), "--target", "digits", "--protocol", "linear",
                                 "--shots", "2", "--linear-epochs", "5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "2-shot" in result.output


def test_pretrain_memory_format_option_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "b.safetensors"
    args = ["pretrain", str(GOLDEN / "v1-raw.ssdd"), "--epochs", "2", "--device", "cpu", "-o", str(out)]
    result = runner.invoke(app, [*args, "--memory-format", "channels_last"])
    assert result.exit_code == 0, result.output
    fresh = tmp_path / "fresh.safetensors"
    result = runner.invoke(app, [*args[:-1], str(fresh), "--memory-format", "nchw"])
    assert result.exit_code == 0, result.output
    (a, meta_a), (b, meta_b) = load_backbone(out), load_backbone(fresh)
    # the layout changes the speed, not the network (float32 summation order aside)
    assert float(meta_a["ssdd.final_loss"]) == pytest.approx(float(meta_b["ssdd.final_loss"]), rel=1e-4)
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=1e-2, atol=1e-4)
    result = runner.invoke(app, [*args, "--memory-format", "nhwc"])
    assert result.exit_code != 0 and "nhwc" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("SSDD_MEMORY_FORMAT", "nhwc")  # the environment is read by the option
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "SSDD_MEMORY_FORMAT" in result.output.replace("\n", " ")


def test_pretrain_unknown_arch(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pretrain", str(GOLDEN / "v1-ssdd.ssdd"), "--arch", "resnet99",
                                 "-o", str(tmp_path / "b.safetensors")])
    _one_line_error(result, "Invalid value for '--arch'", "'resnet99' is not one of", "'resnet18'")
    assert result.exit_code == 2 and not (tmp_path / "b.safetensors").exists()


def test_pretrain_images_that_do_not_fit_the_arch(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # every shipped backbone takes the golden 8×8 images, so break one on purpose
    # the package re-exports the function `pretrain`, so fetch the module itself
    module = importlib.import_module("ssdd_cli.train.pretrain")

    def broken(*args: object, **kwargs: object) -> object:
        net = create_backbone(*args, **kwargs)  # type: ignore[arg-type]

        def fail(_: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("Calculated padded input size per channel: (1 x 1). Kernel size: "
                               "(3 x 3). Kernel size can't be greater than actual input size")

        net.features = fail  # type: ignore[method-assign]
        return net

    monkeypatch.setattr(module, "create_backbone", broken)
    result = runner.invoke(app, ["pretrain", str(GOLDEN / "v1-ssdd.ssdd"), "--epochs", "1",
                                 "--device", "cpu", "-o", str(tmp_path / "b.safetensors")])
    _one_line_error(result, "1×8×8 images do not fit arch 'convnet'", "choose another architecture")
    assert "error: --arch: " in result.output


def test_pretrain_unwritable_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pretrain", str(GOLDEN / "v1-ssdd.ssdd"), "--epochs", "1",
                                 "--device", "cpu", "-o", str(tmp_path / "no" / "b.safetensors")])
    _one_line_error(result, "does not exist")


def test_eval_foreign_safetensors_file(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(foreign), metadata={"format": "pt"})
    result = runner.invoke(app, ["eval", str(foreign), "--target", "digits", "--device", "cpu"])
    _one_line_error(result, "not written by ssdd")


def test_eval_unavailable_target(tmp_path: Path) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    result = runner.invoke(app, ["eval", "random", "--target", "cifar10", "--data-root",
                                 str(empty), "--protocol", "knn", "--device", "cpu"])
    _one_line_error(result, "cifar10")


def test_eval_channel_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "rgb.safetensors"
    save_backbone(path, create_backbone("convnet", 3, 16, widths=[4, 8]), {})
    result = runner.invoke(app, ["eval", str(path), "--target", "digits", "--protocol", "knn",
                                 "--device", "cpu"])
    _one_line_error(result, "3-channel images", "digits")


def test_eval_unknown_protocol_and_artifact_as_backbone() -> None:
    result = runner.invoke(app, ["eval", "random", "--target", "digits", "--protocol", "svm"])
    _one_line_error(result, "'svm' is not one of", "'linear'")
    assert result.exit_code == 2
    result = runner.invoke(app, ["eval", str(GOLDEN / "v1-raw.ssdd"), "--target", "digits"])
    _one_line_error(result, "is a .ssdd artifact, not a network", "ssdd pretrain")


def test_eval_align_and_teacher_reference(tmp_path: Path) -> None:
    teacher, student = tmp_path / "teacher.safetensors", tmp_path / "student.safetensors"
    save_backbone(teacher, create_backbone("convnet", 1, 16, widths=[4, 8]), {"ssdd.kind": "teacher"})
    save_backbone(student, create_backbone("convnet", 1, 16, widths=[4, 4]), {})
    out = tmp_path / "align.json"
    result = runner.invoke(app, ["eval", str(student), "--target", "digits", "--protocol", "align",
                                 "--teacher", str(teacher), "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())["results"][0]["metrics"]
    assert 0.0 <= metrics["cka"]["mean"] <= 1.0 and metrics["mse"]["mean"] >= 0.0
    result = runner.invoke(app, ["eval", "teacher", "--teacher", str(teacher), "--target", "digits",
                                 "--protocol", "align", "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["results"][0]["metrics"]["cka"]["mean"] == pytest.approx(1.0, abs=1e-5)
    result = runner.invoke(app, ["eval", "random", "--target", "digits", "--protocol", "align",
                                 "--shots", "2", "--teacher", str(teacher)])
    _one_line_error(result, "--shots: shots do not apply")


def test_eval_finds_the_teacher_the_backbone_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A backbone pretrained on an artifact records that artifact's teacher (by sha256); eval takes
    # that very teacher from the cache, says so, and trains none.
    from ssdd_cli.teacher import default_cache_root
    from tests.distill.helpers import write_tiny_teacher

    default_cache_root().mkdir(parents=True, exist_ok=True)
    teacher = write_tiny_teacher(default_cache_root() / "some-teacher.safetensors")
    sha = load_backbone(teacher)[1]["ssdd.sha256"]
    student = tmp_path / "student.safetensors"
    save_backbone(student, create_backbone("convnet", 1, 16, widths=[4, 4]), {"ssdd.teacher_sha256": sha})
    out = tmp_path / "three.json"
    result = runner.invoke(app, ["eval", str(student), "--target", "digits", "--protocol", "linear,knn,align",
                                 "--linear-epochs", "2", "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert f"teacher: {teacher} (sha256 {sha[:12]}, the teacher the backbone's artifact was distilled with)" \
        in " ".join(result.stderr.split())
    doc = json.loads(out.read_text())
    assert [r["protocol"] for r in doc["results"]] == ["linear", "knn", "align"]
    assert doc["teacher"]["sha256"] == sha and doc["teacher"]["path"] == str(teacher)
    assert "±" not in result.stdout and "value" in result.stdout  # one seed: the value alone
    for protocol in ("linear", "knn", "align"):
        assert protocol in result.stdout
    record = out.with_name("three.json.run.jsonl")
    assert json.loads(record.read_text().splitlines()[-1])["status"] == "ok"
    # --teacher wins over the recorded one, and a different one is pointed out
    other = write_tiny_teacher(tmp_path / "other.safetensors", seed=1)
    result = runner.invoke(app, ["eval", str(student), "--target", "digits", "--protocol", "align",
                                 "--teacher", str(other), "--device", "cpu", "--seeds", "2"])
    assert result.exit_code == 0, result.output
    assert "given with --teacher; the backbone's artifact was distilled with another teacher" in \
        " ".join(result.stderr.split())
    assert "±" in result.stdout  # two seeds: mean ± std


def test_pretrain_records_the_artifacts_teacher(tmp_path: Path) -> None:
    out = tmp_path / "b.safetensors"
    result = runner.invoke(app, ["pretrain", str(GOLDEN / "v1-ssdd.ssdd"), "--epochs", "1", "--device", "cpu",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_backbone(out)[1]["ssdd.teacher_sha256"] == "0" * 64  # the golden manifest's teacher


def test_models_lists_the_backbones() -> None:
    result = runner.invoke(app, ["models", "--json", "--channels", "1", "--resolution", "16"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["models"]}
    assert {"convnet", "resnet18", "vit"} <= set(rows)
    assert rows["resnet18"]["feature_dim"] == 512 and "pool" in rows["convnet"]["options"]
    table = runner.invoke(app, ["models"])
    assert table.exit_code == 0 and "mobilenetv2" in table.stdout
