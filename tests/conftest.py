"""Shared test setup: small thread counts (CI has 2 cores) and a Typer runner."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep teacher/data caches of tests out of the user's home."""
    root = tmp_path_factory.getbasetemp() / "ssdd-cache"
    monkeypatch.setenv("SSDD_CACHE", str(root / "cache"))
    monkeypatch.setenv("SSDD_DATA", str(root / "data"))
