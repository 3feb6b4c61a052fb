"""`ssdd reconstruct`: every image in paged grids with titled rows, initial beside distilled, a
note when display clamps values, and a folder emptied only of the command's own earlier outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from ssdd_cli.artifact import write_reconstruction
from ssdd_cli.artifact.reconstruct import OUTPUTS, out_of_range
from ssdd_cli.bundle import Bundle, load_bundle, save_bundle
from ssdd_cli.cli.main import app
from ssdd_cli.errors import OutputError, UsageError

GOLDEN = Path(__file__).resolve().parents[2] / "formats" / "golden"
runner = CliRunner()


@pytest.fixture
def bundle() -> Bundle:
    return load_bundle(GOLDEN / "v1-ssdd.ssdd")  # m = 5 digits, rotations: 4 rows


def test_every_image_in_pages_with_a_row_per_view(tmp_path: Path, bundle: Bundle) -> None:
    result = write_reconstruction(bundle, tmp_path, per_page=2)
    assert [p.name for p in result.pages] == ["grid_001.png", "grid_002.png", "grid_003.png"]
    assert len(list(tmp_path.glob("image_*.png"))) == 5 and result.views == 15
    listed = json.loads((tmp_path / OUTPUTS).read_text())["files"]
    assert "grid_003.png" in listed and "views/rot90/image_0004.png" in listed
    full, last = (Image.open(p) for p in (result.pages[0], result.pages[2]))
    assert full.height == last.height and last.width < full.width  # the last page holds one image


def test_initial_beside_distilled_and_a_mismatch_refused(tmp_path: Path, bundle: Bundle) -> None:
    alone = write_reconstruction(bundle, tmp_path / "a", views=False).pages[0]
    both = write_reconstruction(bundle, tmp_path / "b", views=False, initial=bundle).pages[0]
    assert Image.open(both).width > 1.8 * (Image.open(alone).width - 60)
    with pytest.raises(UsageError) as refused:
        write_reconstruction(bundle, tmp_path / "c", initial=load_bundle(GOLDEN / "v1-raw.ssdd"))
    assert refused.value.option == "initial" and not (tmp_path / "c").exists()


def test_a_rerun_removes_its_own_outputs_and_nothing_else(tmp_path: Path, bundle: Bundle) -> None:
    write_reconstruction(bundle, tmp_path, per_page=2)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "views" / "rot90" / "mine.png").write_bytes(b"mine")
    again = write_reconstruction(bundle, tmp_path, views=False, per_page=5)
    assert again.removed == 5 + 15 + 3 + 1  # images, views, pages, targets
    assert sorted(p.name for p in tmp_path.glob("grid_*.png")) == ["grid_001.png"]
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "views" / "rot90" / "mine.png").exists()
    assert not (tmp_path / "views" / "rot180").exists()  # emptied of ours, so removed
    assert json.loads((tmp_path / OUTPUTS).read_text())["files"] == [
        *(f"image_{i:04d}.png" for i in range(5)), "grid_001.png", "targets.safetensors", OUTPUTS]


def test_a_file_it_did_not_write_is_never_overwritten(tmp_path: Path, bundle: Bundle) -> None:
    (tmp_path / "grid_001.png").write_bytes(b"a user's picture")
    with pytest.raises(OutputError) as refused:
        write_reconstruction(bundle, tmp_path)
    assert "did not write" in str(refused.value) and refused.value.option == "out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid_001.png"]


def test_clamping_for_display_is_noted(tmp_path: Path, bundle: Bundle) -> None:
    tensors = dict(bundle.tensors)
    tensors["image.coeffs"] = tensors["image.coeffs"] * 50  # far outside the displayable range
    loud = tmp_path / "loud.ssdd"
    save_bundle(loud, bundle.manifest, tensors)
    result = runner.invoke(app, ["reconstruct", str(loud), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "of the pixel values lie outside [0, 1]" in " ".join(result.stderr.split())
    assert "clamped in the PNGs" in " ".join(result.stderr.split())
    import torch

    fraction, lo, hi = out_of_range(torch.tensor([[[[-1.0, 0.5], [0.5, 3.0]]]]), (0.0,), (1.0,))
    assert (fraction, lo, hi) == (0.5, -1.0, 3.0)


def test_reconstruct_command_pages_and_initial(tmp_path: Path) -> None:
    golden = str(GOLDEN / "v1-ssdd.ssdd")
    result = runner.invoke(app, ["reconstruct", golden, "--out", str(tmp_path), "--per-page", "2",
                                 "--initial", golden])
    assert result.exit_code == 0, result.output
    assert "3 grid page(s)" in result.stdout and (tmp_path / "grid_003.png").is_file()
    again = runner.invoke(app, ["reconstruct", golden, "--out", str(tmp_path)])
    assert again.exit_code == 0 and "removed the" in again.stderr and not (tmp_path / "grid_003.png").exists()
