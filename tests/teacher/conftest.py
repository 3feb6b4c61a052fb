"""Teacher tests run their tiny networks on one thread.

At these sizes a second intra-op thread buys nothing, and on a loaded 2-core machine the two
threads' barriers wait on each other (the resume test took 80 s instead of 2 s).
"""

from __future__ import annotations

import pytest

from ssdd_cli.teacher.augment import AugmentConfig
from ssdd_cli.teacher.trainer import TeacherConfig


@pytest.fixture(autouse=True)
def _teacher_tests_run_on_one_thread(one_thread: None) -> None:
    """Every teacher test trains a little: see `one_thread` in tests/conftest.py."""


@pytest.fixture
def tiny_config() -> TeacherConfig:
    """A teacher small enough for a test: width-4 ResNet-10, 32-wide projector, 3 epochs."""
    return TeacherConfig(
        arch="resnet10", arch_kwargs={"width": 4}, epochs=3, batch_size=16, optimizer="sgd", lr=0.05,
        lr_batch=None, scale_loss=1.0, warmup_epochs=1, warmup_start_lr=None, projector_hidden=32,
        projector_out=32, projector_bias=False, augment=AugmentConfig(), seed=0,
    )
