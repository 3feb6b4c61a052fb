"""`ssdd datasets` end to end through Typer's runner."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ssdd_cli.cli.main import app
from tests.data.fake_cifar import make_cifar10

runner = CliRunner()


def _row(output: str, name: str) -> str:
    """The first table line of source `name` (cells may wrap onto later lines)."""
    return next(line for line in output.splitlines() if line.startswith(f"│ {name} "))


def test_datasets_lists_sources_and_availability(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    result = runner.invoke(app, ["datasets", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "yes" in _row(result.output, "digits")
    assert "yes" in _row(result.output, "shapes")
    assert "yes" in _row(result.output, "cifar10")
    assert "no" in _row(result.output, "cifar100")
    assert "1×16×16" in _row(result.output, "digits")
    assert "3×32×32" in _row(result.output, "shapes")
    for name in ("imagefolder:PATH", "npz:PATH"):
        assert name in result.output


def test_datasets_empty_root_has_no_cifar(tmp_path: Path) -> None:
    result = runner.invoke(app, ["datasets", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no" in _row(result.output, "cifar100") and "no" in _row(result.output, "cifar10")


def test_datasets_reports_the_counts_the_idx_files_hold(tmp_path: Path) -> None:
    from tests.data.test_mnist import make_idx

    make_idx(tmp_path / "mnist", n_train=30, n_test=7)
    result = runner.invoke(app, ["datasets", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    row = _row(result.output, "mnist")
    assert "yes" in row and "27 / 3 / 7" in row and "54,000" not in row
