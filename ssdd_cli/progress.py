"""Progress events: the library reports, `cli/` renders (no printing inside the library)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    """One report from a long job.

    stage: what is running ("teacher", "pool-init", "distill", "approx", "pretrain", ...).
    step / total: units done and planned in this stage (epochs or steps).
    metrics: numbers worth showing (loss, steps/s, ...).
    message: a free-form notice ("no cached teacher: training one"), shown once.
    label: what the stage is working on now, shown beside its bar (e.g. the step of a
        comparison: "pretrain ssdd N=20 convnet seed 0").
    """

    stage: str
    step: int = 0
    total: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    label: str | None = None


Callback = Callable[[ProgressEvent], None]


def silent(_: ProgressEvent) -> None:
    """A callback that ignores every event."""
