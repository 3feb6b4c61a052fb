"""The movement figures against a hand-moved toy set, and their place in the loop's record."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import Tensor

from ssdd_cli.distill.movement import IMAGES, movement, relative_movement, snapshot
from ssdd_cli.distill.param import RawSet
from ssdd_cli.kit.checkpoint import Checkpointer
from ssdd_cli.progress import ProgressEvent
from tests.distill.conftest import make_loop


def test_a_hand_moved_raw_set_reports_its_relative_displacement() -> None:
    # x: four pixels of 1 (norm 2), one moved by +1 → ‖Δ‖ = 1, ratio 0.5.
    # y: (3, 4) → norm 5; moved to (3, 4) + (0, −2) → ‖Δ‖ = 2, ratio 0.4.
    s = RawSet(torch.ones(1, 1, 2, 2), torch.tensor([[3.0, 4.0]]))
    start = snapshot(s)
    with torch.no_grad():
        s.x[0, 0, 0, 0] += 1.0
        s.y[0, 1] -= 2.0
    moved = movement(s, start)
    assert moved == pytest.approx({"x": 0.5, "y": 0.4, IMAGES: 0.5})


def test_a_tensor_that_started_at_zero_reports_its_absolute_movement() -> None:
    moved = relative_movement({"a": torch.tensor([3.0, 4.0])}, {"a": torch.zeros(2)})
    assert moved == {"a": 5.0}


def test_a_snapshot_does_not_follow_the_set() -> None:
    s = RawSet(torch.ones(1, 1, 2, 2), torch.ones(1, 2))
    start = snapshot(s)
    with torch.no_grad():
        s.x.mul_(3.0)
    assert torch.equal(start["x"], torch.ones(1, 1, 2, 2))
    assert movement(s, start)["x"] == pytest.approx(2.0)


def test_the_loop_records_movement_with_the_held_out_signal_and_shows_it(  # type: ignore[no-untyped-def]
        source: Tensor, teacher, tmp_path) -> None:
    loop = make_loop(source, teacher, steps=4)
    events: list[ProgressEvent] = []
    loop.start(Checkpointer(tmp_path / "c.ckpt", "distill", {"test": 1}), resume=False)
    loop.run(callback=events.append)
    steps = [s for s, _ in loop.movement]
    assert steps[-1] == 4 and steps == sorted(steps)
    names = {n for n, _ in loop.distilled.named_parameters()} | {IMAGES}
    last = loop.movement[-1][1]
    assert set(last) == names and all(v > 0 and math.isfinite(v) for v in last.values())
    assert events[-1].metrics["moved"] == last[IMAGES]


def test_movement_survives_a_resume(source: Tensor, teacher, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ckpt = Checkpointer(tmp_path / "c.ckpt", "distill", {"test": 1})
    first = make_loop(source, teacher, steps=4)
    first.start(ckpt, resume=False)
    start = {k: v.clone() for k, v in first.start_state.items()}  # type: ignore[union-attr]
    first.config = replace(first.config, steps=2, checkpoint_every=1)  # an interrupted run
    first.run(checkpoint=ckpt)
    second = make_loop(source, teacher, steps=4)
    second.start(ckpt, resume=True)
    assert second.start_state is not None and second.step == 2
    assert all(torch.equal(second.start_state[k], v) for k, v in start.items())
    assert second.movement == first.movement
