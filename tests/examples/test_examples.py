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
                         "--full-steps", "1", "--probe-epochs", "2", "--seeds", "1"])
    printed = capsys.readouterr().out
    assert "$ ssdd distill --source digits-nuisance --method ssdd" in printed and "demo finished" in printed
    for row in ("random init (lower line)", "random selection", "KRR-ST", "SSDD (ours)", "full (every training",
                "teacher (upper line)"):
        assert row in printed
    assert load_bundle(out / "ssdd.ssdd").manifest.distill.steps == 2  # type: ignore[union-attr]
    assert (out / "images" / "grid_001.png").is_file() and (out / "random-convnet.safetensors").is_file()


def test_the_demo_table_keeps_every_number_on_one_line_off_a_terminal() -> None:
    import io

    from rich.console import Console

    demo = script("demo")
    cells = ["0.256 ± 0.010", "0.411 ± 0.021", "0.734", "0.871", "0.523"]
    rows = {name: cells for name in ("random init (lower line)", "random selection", "KRR-ST", "SSDD (ours)",
                                     "full (every training image)", "teacher (upper line)")}
    stream = io.StringIO()
    demo.show(demo.results_table(rows), Console(file=stream, width=80, force_terminal=False))
    lines = stream.getvalue().splitlines()
    for name in rows:
        line = next(line for line in lines if name in line)  # each row on one line, whole
        assert all(cell in line for cell in cells)
