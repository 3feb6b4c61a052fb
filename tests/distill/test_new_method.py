"""A new method is one file: a config, an objective, and a `Method` subclass, registered.

This test defines the smallest such method (pixel-mean matching of raw images) in this file alone
and distills with it through the same `run_distill` every method goes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import Tensor

from ssdd_cli.bundle import load_bundle
from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.methods import METHODS, Optimization
from ssdd_cli.distill.methods.krr_st import RawConfig, RawImageMethod
from ssdd_cli.distill.objectives import Objective
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.presets import Preset
from tests.distill.helpers import write_tiny_teacher


@dataclass(frozen=True)
class MeanMatchConfig(RawConfig):
    outer: OuterConfig = field(default_factory=lambda: OuterConfig(steps=20, lr=0.05, weight_decay=0.0))


class MeanMatch(Objective):
    """‖mean(X_s) − mean(X̄_t)‖² over a random real batch of 64."""

    def __init__(self, inputs: DistillInputs) -> None:
        self.images, self.generator = inputs.images, inputs.generator

    def losses(self, distilled: DistilledModule) -> Iterator[Tensor]:
        x_s, _ = distilled.support()
        idx = torch.randperm(self.images.shape[0], generator=self.generator)[:64]
        yield (x_s.mean(dim=0) - self.images[idx].mean(dim=0)).pow(2).sum()


class MeanMatchMethod(RawImageMethod):
    name = "mean-match"
    options = {**RawImageMethod.options, "steps": "outer.steps"}

    def defaults(self, preset: Preset, N: int, d_y: int) -> MeanMatchConfig:
        return MeanMatchConfig(N)

    def optimization(self, config: MeanMatchConfig, inputs: DistillInputs) -> Optimization:
        return Optimization(MeanMatch(inputs), config.outer)


def test_a_method_in_one_file_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METHODS._items, MeanMatchMethod.name, MeanMatchMethod())
    teacher = write_tiny_teacher(tmp_path / "t.safetensors")
    result = run_distill(DistillRequest(source="digits", output=tmp_path / "m.ssdd", method="mean-match",
                                        budget=8, options={"steps": 30}, teacher=teacher))
    assert len(result.losses) == 30 and result.losses[-1] < 0.5 * result.losses[0]
    bundle = load_bundle(result.path)
    assert bundle.manifest.method == "mean-match" and bundle.tensors["images"].shape == (8, 1, 16, 16)
    assert bundle.manifest.distill is not None and bundle.manifest.distill.settings["outer.steps"] == 30
