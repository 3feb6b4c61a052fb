"""The allocator's tuning: the command line applies it, a library call never does, the user's
malloc settings win, and the positive path calls mallopt with the documented parameters."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ssdd_cli as ssdd
from ssdd_cli.cli.main import app
from ssdd_cli.kit import allocator, fastpath
from ssdd_cli.kit.fastpath import FastPath
from ssdd_cli.kit.precision import resolve_precision

# glibc's malloc.h: M_TRIM_THRESHOLD -1, M_TOP_PAD -2, M_MMAP_THRESHOLD -3 (its 32 MiB maximum).
DOCUMENTED = [(-1, 2**31 - 1), (-2, 256 << 20), (-3, 32 << 20)]


class FakeLibc:
    """A C library whose mallopt records its calls and refuses the parameters in `refuse`."""

    def __init__(self, refuse: tuple[int, ...] = ()) -> None:
        self.calls: list[tuple[int, int]] = []
        self.refuse = refuse

    def mallopt(self, param: ctypes.c_int, value: ctypes.c_int) -> int:
        self.calls.append((param.value, value.value))
        return 0 if param.value in self.refuse else 1


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    """A fresh process's allocator state, on Linux, with no malloc setting of the user's, and a
    fake C library in place of the real one (nothing of this process's malloc changes)."""
    fake = FakeLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: fake)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(allocator, "_TUNED", [])
    for name in ("SSDD_MALLOC", "GLIBC_TUNABLES", *[k for k in os.environ if k.startswith("MALLOC_")]):
        monkeypatch.delenv(name, raising=False)
    return fake


def test_the_positive_path_calls_mallopt_with_the_documented_parameters(libc: FakeLibc) -> None:
    applied = allocator.tune_allocator()
    assert libc.calls == DOCUMENTED
    assert applied == {"M_TRIM_THRESHOLD": 2**31 - 1, "M_TOP_PAD": 256 << 20, "M_MMAP_THRESHOLD": 32 << 20}
    assert allocator.tune_allocator() == applied and len(libc.calls) == 3  # once per process


def test_a_refused_setting_leaves_the_others_tried_and_reported(libc: FakeLibc) -> None:
    libc.refuse = (-2,)
    applied = allocator.tune_allocator()
    assert libc.calls == DOCUMENTED  # the call after the refused one is still made
    assert applied == {"M_TRIM_THRESHOLD": 2**31 - 1, "M_MMAP_THRESHOLD": 32 << 20}


@pytest.mark.parametrize(("name", "value"), [
    ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072"),
    ("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2:glibc.malloc.arena_max=2"),
    ("MALLOC_ARENA_MAX", "2"), ("SSDD_MALLOC", "default"),
])
def test_the_users_malloc_settings_win(libc: FakeLibc, monkeypatch: pytest.MonkeyPatch, name: str,
                                       value: str) -> None:
    monkeypatch.setenv(name, value)
    assert allocator.tune_allocator() == {} and libc.calls == []


def test_other_glibc_tunables_do_not_count_as_malloc_settings(libc: FakeLibc,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2")
    assert allocator.tune_allocator() and libc.calls == DOCUMENTED


def test_library_calls_leave_the_allocator_alone(libc: FakeLibc, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("SSDD_CACHE", str(tmp_path))
    monkeypatch.setattr(fastpath, "_TUNED", [], raising=False)  # the state of the code before the fix
    monkeypatch.setattr(fastpath, "measure", lambda d, p, t: FastPath(False, t[0], "measured"))
    cpu = torch.device("cpu")
    resolve_precision("fp32", cpu)
    resolve_precision("fp32", cpu, "auto")
    fastpath.decide(cpu, "bf16", "auto")
    assert libc.calls == []


def test_the_command_line_tunes_the_allocator(libc: FakeLibc) -> None:
    result = CliRunner().invoke(app, ["budget", "--source", "digits", "--budget", "10"])
    assert result.exit_code == 0, result.output
    assert libc.calls == DOCUMENTED


def test_the_python_api_tunes_it_when_asked(libc: FakeLibc) -> None:
    assert ssdd.tune_allocator is allocator.tune_allocator
    assert "tune_allocator" in ssdd.__all__
    assert ssdd.tune_allocator() and libc.calls == DOCUMENTED
