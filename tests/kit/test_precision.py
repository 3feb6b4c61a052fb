"""The precision rule: explicit choices, `auto` by capability, refusals naming the option."""

from __future__ import annotations

import pytest
import torch

from ssdd_cli.errors import UsageError
from ssdd_cli.kit import precision as prec
from ssdd_cli.kit.precision import FP32, Precision, resolve_precision

CPU = torch.device("cpu")


def test_explicit_choices() -> None:
    assert resolve_precision("fp32", CPU) == FP32
    assert resolve_precision("BF16", CPU, "channels_last") == Precision("bf16", "cpu", channels_last=True)
    assert resolve_precision("bf16", CPU) == Precision("bf16", "cpu")  # the tests' SSDD_MEMORY_FORMAT=nchw


@pytest.mark.parametrize(("caps", "picks"), [
    ({"amx": True, "avx512_bf16": True}, "bf16"),
    ({"amx": False, "avx512_bf16": True}, "bf16"),  # measured on this project's AMD EPYC (module docstring)
    ({"amx": False, "avx512_bf16": False}, "fp32"),
])
def test_auto_follows_the_cpu_capabilities(monkeypatch: pytest.MonkeyPatch, caps: dict[str, bool],
                                           picks: str) -> None:
    monkeypatch.setattr(prec, "hardware_capabilities", lambda: caps)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert resolve_precision("auto", CPU).name == picks
    assert resolve_precision(None, CPU).name == picks  # None: the default, auto


def test_the_rule_is_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_capabilities", lambda: {"amx": False, "avx512_bf16": True})
    monkeypatch.setitem(prec.AUTO_BF16_CPU, "avx512_bf16", False)
    assert resolve_precision("auto", CPU) == FP32


def test_refusals_name_the_option() -> None:
    with pytest.raises(UsageError, match="unknown precision") as e:
        resolve_precision("fp16", CPU)
    assert e.value.option == "precision"
    with pytest.raises(UsageError, match="not mps"):
        resolve_precision("bf16", torch.device("mps"))


def test_run_returns_float32_in_the_original_layout_of_values() -> None:
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    bf16 = Precision("bf16", "cpu", channels_last=True)
    out = bf16.run(bf16.module(conv), x)
    assert out.dtype == torch.float32 and out.shape == (2, 4, 8, 8)
    torch.testing.assert_close(out, conv(x), rtol=0.05, atol=0.05)
