"""Shared test setup: small thread counts (CI has 2 cores; `SSDD_TEST_THREADS` overrides, e.g. 1
when other jobs share the cores) and isolated caches."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

torch.set_num_threads(int(os.environ.get("SSDD_TEST_THREADS", min(2, os.cpu_count() or 1))))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for small training runs: a second only adds barrier waits when the
    two cores are shared with other jobs (measured 3–25× slower teacher epochs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep teacher/data caches of tests out of the user's home; network passes in NCHW unless a
    test asks otherwise (no fast-path measurement, the same layout on every machine)."""
    root = tmp_path_factory.getbasetemp() / "ssdd-cache"
    monkeypatch.setenv("SSDD_CACHE", str(root / "cache"))
    monkeypatch.setenv("SSDD_DATA", str(root / "data"))
    monkeypatch.setenv("SSDD_MEMORY_FORMAT", "nchw")
