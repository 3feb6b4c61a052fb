"""The Python API at the package top: docs/python-api.md's example runs as written; the package
stays light until the API is used; datasets and exported weights are what they claim."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ssdd_cli as ssdd
from ssdd_cli.models import create_backbone
from ssdd_cli.teacher.imports import Checkpoint, import_teacher

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "formats" / "golden"


def test_the_documented_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "python-api.md").read_text(), re.S)
    assert blocks, "docs/python-api.md has no python example"
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), "docs/python-api.md", "exec"), {"__name__": "__doc_example__"})
    printed = capsys.readouterr().out
    assert "Artifact(ssdd" in printed and "knn accuracy" in printed and "5-shot linear" in printed
    assert (tmp_path / "digits.ssdd").is_file() and (tmp_path / "convnet.safetensors").is_file()


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, ssdd_cli; assert callable(ssdd_cli.__getattr__); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("artifact", "labelled"), [("v1-ssdd.ssdd", False), ("v1-raw.ssdd", False)])
def test_an_artifacts_dataset_is_its_training_pairs(artifact: str, labelled: bool) -> None:
    art = ssdd.load_artifact(GOLDEN / artifact)
    pairs = art.dataset()
    whole = art.materialize()
    assert len(pairs) == len(whole.images) >= art.m and pairs.labelled == labelled
    image, target = pairs[len(pairs) - 1]
    assert torch.equal(image, whole.images[-1]) and whole.targets is not None and torch.equal(target, whole.targets[-1])
    batch = next(iter(torch.utils.data.DataLoader(pairs, batch_size=4)))
    assert batch[0].shape[1:] == image.shape


@pytest.mark.parametrize("stem", ["cifar", "cifar-same", "imagenet"])
def test_resnet_weights_export_under_torchvisions_names(stem: str) -> None:
    import torchvision
    from torch import nn

    torch.manual_seed(0)
    net = create_backbone("resnet18", 3, 32, width=64, stem=stem).eval()
    weights = ssdd.export_state_dict(net)
    assert "conv1.weight" in weights and "layer4.1.bn2.running_var" in weights
    tv = torchvision.models.resnet18()
    if stem != "imagenet":
        tv.conv1 = nn.Conv2d(3, 64, 3, 1, 2 if stem == "cifar" else 1, bias=False)
        tv.maxpool = nn.Identity()  # type: ignore[assignment]
    missing, unexpected = tv.load_state_dict(weights, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    tv.fc = nn.Identity()  # type: ignore[assignment]
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(tv.eval()(x), net(x), atol=1e-5)
    # and back: the torchvision layout imports onto our ResNet unchanged
    back = import_teacher(Checkpoint("torchvision", weights, {}), "resnet18", 3, 32, stem=stem)
    assert torch.allclose(back(x), net(x), atol=1e-5)


def test_other_backbones_export_their_own_names() -> None:
    net = create_backbone("convnet", 1, 16, widths=[4, 8])
    spec = ssdd.backbone_spec(net)
    again = create_backbone(spec["arch"], spec["in_channels"], spec["image_size"], **spec["config"])
    again.load_state_dict(ssdd.export_state_dict(net))
    assert spec["names"] == "ssdd" and spec["feature_dim"] == net.feature_dim


def test_api_errors_are_one_sentence_and_name_the_keyword(tmp_path: Path) -> None:
    from ssdd_cli.errors import SSDDError

    with pytest.raises(SSDDError) as refused:
        ssdd.evaluate(create_backbone("convnet", 1, 16, widths=[4, 4]), "digits", protocol="align", device="cpu")
    assert refused.value.option == "teacher"
    with pytest.raises(SSDDError) as bad:
        ssdd.distill("digits", tmp_path / "x.ssdd", method="random", U=8, device="cpu")
    assert bad.value.option == "U" and "has no setting 'U'" in str(bad.value)
    assert list(tmp_path.iterdir()) == []
