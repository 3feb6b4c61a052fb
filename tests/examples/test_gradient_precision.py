"""examples/validation/gradient_precision.py at toy size: digits, N = 10, one draw per state."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssdd_cli.api import train_teacher
from tests.examples.test_examples import script


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_bf16_and_fp32_gradients_agree_and_the_fp32_floor_is_one(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    teacher = tmp_path / "teacher.safetensors"
    train_teacher("digits", teacher, epochs=1, device="cpu")
    results = script("validation/gradient_precision").main(
        ["--preset", "digits", "--budget", "10", "--teacher", str(teacher), "--steps-before", "0,2",
         "--repeats", "1", "--precision", "fp32"])
    assert sorted(results) == [0, 2]
    for medians in results.values():
        assert {"image_bases", "aug_coeffs", "all"} <= set(medians)
        cosine, ratio = medians["all"]
        assert cosine > 0.9 and 0.8 < ratio < 1.25  # bf16 rounding, not another draw
    printed = capsys.readouterr().out
    assert printed.count("cos(fp32, fp32 again) = 1.0000") == 2  # the same draw, recomputed
