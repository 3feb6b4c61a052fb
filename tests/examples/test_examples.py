"""The example scripts run at toy size: the demo's whole pipeline."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from ssdd_cli.bundle import load_bundle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures("one_thread")
def test_demo_pipeline_at_toy_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    script("demo").main(["--out", str(out), "--teacher-epochs", "1", "--steps", "2", "--pretrain-epochs", "1",
                         "--full-epochs", "1", "--probe-epochs", "2", "--seeds", "1"])
    printed = capsys.readouterr().out
    assert "$ ssdd distill --source digits-nuisance --method ssdd" in printed and "demo finished" in printed
    for row in ("random init (lower line)", "random selection", "KRR-ST", "SSDD (ours)", "full (every training",
                "teacher (upper line)"):
        assert row in printed
    assert load_bundle(out / "ssdd.ssdd").manifest.distill.steps == 2  # type: ignore[union-attr]
    assert (out / "images" / "grid_001.png").is_file() and (out / "random-convnet.safetensors").is_file()
