"""What the steps of one comparison share: one precision decision a run, and a data hash that
follows the source side's statistics."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ssdd_cli.compare import spec_from_mapping
from ssdd_cli.compare.steps import StepContext
from ssdd_cli.kit.precision import FP32


def test_the_precision_is_resolved_once_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def resolve(spec: str, device: object, say: object = None) -> object:
        calls.append(spec)
        return FP32

    monkeypatch.setattr("ssdd_cli.compare.steps.context.resolve_precision", resolve)
    ctx = StepContext(spec_from_mapping({"source": "digits", "budgets": [10], "methods": ["random"]}))
    assert ctx.precision is ctx.precision is FP32
    assert len(calls) == 1


def test_the_data_hash_follows_the_normalisation_statistics() -> None:
    ctx = StepContext(spec_from_mapping({"source": "digits", "budgets": [10], "methods": ["random"]}))
    before = ctx.data_sha256("digits")
    key = next(iter(ctx._data))
    data = ctx._data[key]
    ctx._data[key], ctx._hashes = replace(data, mean=tuple(m + 0.01 for m in data.mean)), {}
    assert ctx.data_sha256("digits") != before
