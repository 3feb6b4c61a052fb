"""`ssdd import-teacher`: tiny checkpoints in each layout give the features of the model they came
from; missing or extra weights, and pickled objects, are refused in one sentence."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from typer.testing import CliRunner

from ssdd_cli.cli.main import app
from ssdd_cli.teacher import load_teacher
from ssdd_cli.teacher.imports import TeacherImportError, import_teacher, read_checkpoint
from tests.data.fake_cifar import make_cifar100

runner = CliRunner()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cifar")
    make_cifar100(folder, n_train=40, n_test=10)
    return folder


def cifar_resnet(depth: int = 18, seed: int = 0) -> nn.Module:
    """A torchvision ResNet built as solo-learn and KRR-ST build their CIFAR teachers: conv1 3x3
    stride 1 padding 2, no max-pool, no fc; its BatchNorm statistics moved off their init."""
    torch.manual_seed(seed)
    layers = [2, 2, 2, 2] if depth == 18 else [1, 1, 1, 1]
    model = torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, layers)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32))
    return model.eval()


def _import(tmp_path: Path, root: Path, checkpoint: Path, *args: str) -> tuple[int, str, Path]:
    out = tmp_path / "teacher.safetensors"
    result = runner.invoke(app, ["import-teacher", str(checkpoint), "--source", "cifar100", "-o", str(out),
                                 "--data-root", str(root), *args])
    return result.exit_code, result.output, out


def _same_features(out: Path, reference: nn.Module) -> None:
    teacher, meta = load_teacher(out)  # a valid teacher file: kind, sha256
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(teacher(x), reference(x), atol=1e-5)
    assert meta["ssdd.source"] == "cifar100" and meta["ssdd.ssl"] == "barlow_twins"


def test_solo_learn_checkpoint(tmp_path: Path, root: Path) -> None:
    model = cifar_resnet()
    state = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    state.update({"projector.0.weight": torch.randn(16, 512), "projector.0.bias": torch.randn(16),
                  "classifier.weight": torch.randn(100, 512), "classifier.bias": torch.randn(100)})
    ckpt = {"epoch": 999, "global_step": 195_000, "pytorch-lightning_version": "2.0.7", "state_dict": state,
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.3, "params": [0, 1]}]}],
            "lr_schedulers": [{"base_lrs": [0.3], "last_epoch": 195_000}], "loops": {}, "callbacks": {}}
    path = tmp_path / "barlow.ckpt"
    torch.save(ckpt, path)
    code, output, out = _import(tmp_path, root, path)
    assert code == 0, output
    assert "solo-learn" in output
    _same_features(out, model)
    origin = json.loads(load_teacher(out)[1]["ssdd.origin"])
    assert origin["layout"] == "solo-learn" and origin["dropped"] == {"projector": 2, "classifier": 2}
    assert origin["epoch"] == 999 and origin["arch_options"] == {"width": 64, "stem": "cifar"}
    assert len(origin["sha256"]) == 64 and origin["file"] == "barlow.ckpt"


@pytest.mark.parametrize("depth", [18, 10])
def test_krr_st_teacher_checkpoint(tmp_path: Path, root: Path, depth: int) -> None:
    # KRR-ST's teacher_ckpt/*.pt: torch.save(torchvision resnet with fc = Identity .state_dict()).
    model = cifar_resnet(depth)
    path = tmp_path / "barlow_twins_resnet18_cifar100.pt"
    torch.save(model.state_dict(), path)
    code, output, out = _import(tmp_path, root, path, "--arch", f"resnet{depth}")
    assert code == 0, output
    _same_features(out, model)
    assert json.loads(load_teacher(out)[1]["ssdd.origin"])["dropped"] == {}


def test_torchvision_state_dict_with_its_imagenet_stem_and_head(tmp_path: Path, root: Path) -> None:
    torch.manual_seed(1)
    model = torchvision.models.resnet18(num_classes=10).eval()
    path = tmp_path / "tv.pth"
    torch.save(collections.OrderedDict(model.state_dict()), path)
    code, output, out = _import(tmp_path, root, path)
    assert code == 0, output
    model.fc = nn.Identity()
    _same_features(out, model)
    origin = json.loads(load_teacher(out)[1]["ssdd.origin"])
    assert origin["dropped"] == {"fc": 2} and origin["arch_options"]["stem"] == "imagenet"


def test_missing_or_extra_weights_are_refused_in_one_sentence(tmp_path: Path, root: Path) -> None:
    state = cifar_resnet().state_dict()
    missing = {k: v for k, v in state.items() if not k.startswith("layer4.1.bn2")}
    torch.save(missing, tmp_path / "missing.pt")
    code, output, _ = _import(tmp_path, root, tmp_path / "missing.pt")
    assert code == 1 and "lacks" in output and "stages.3.1.bn2" in output and "Traceback" not in output
    extra = {**state, "layer5.0.conv1.weight": torch.zeros(1)}
    torch.save(extra, tmp_path / "extra.pt")
    code, output, _ = _import(tmp_path, root, tmp_path / "extra.pt")
    assert code == 1 and "does not use" in output and "stages.4.0.conv1.weight" in output
    # A resnet18 checkpoint is not a resnet10: the second block of every stage is extra.
    code, output, _ = _import(tmp_path, root, tmp_path / "missing.pt", "--arch", "resnet10")
    assert code == 1 and "resnet10" in output
    with pytest.raises(TeacherImportError) as err:
        import_teacher(read_checkpoint(tmp_path / "missing.pt"), "resnet18", 3, 32)
    assert str(err.value).count("; ") == 1 and str(err.value).endswith(".")


class Payload:
    """Anything but tensors and plain containers: torch.load(weights_only=True) refuses it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled!",))


def test_arbitrary_pickles_are_never_loaded(tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Payload()}, path)
    code, output, out = _import(tmp_path, root, path)
    assert code == 1 and "does not unpickle" in output and not out.exists()
    assert "unpickled!" not in capsys.readouterr().out
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    code, output, _ = _import(tmp_path, root, tmp_path / "junk.pt")
    assert code == 1 and "not a readable PyTorch checkpoint" in output
