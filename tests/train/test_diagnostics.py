"""Pretraining's drift diagnostics: the decay-only prediction, and a backbone that moves only when
its targets have a usable scale (issue 23's finding, on a toy set)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from ssdd_cli.kit.schedules import SCHEDULES, set_lr
from ssdd_cli.models import create_backbone, list_backbones
from ssdd_cli.teacher.targets import TargetScaling
from ssdd_cli.train.diagnostics import Drift, decay_ratio, sgd_steps, weight_drift
from ssdd_cli.train.pretrain import build_backbone, pretrain
from ssdd_cli.train.provenance import pretrain_drift, pretrain_metadata
from ssdd_cli.train.recipe import PretrainConfig

CPU = torch.device("cpu")


def test_decay_ratio_is_near_the_steady_state_exponential_when_decay_is_mild() -> None:
    # 1,000 steps at lr 0.1, wd 1e-3, momentum 0.9: exp(−0.1 · 1e-3 · 1000 / 0.1) = e^(−1)
    assert decay_ratio(lr=0.1, schedule="constant", epochs=1000, steps_per_epoch=1, weight_decay=1e-3,
                       momentum=0.9) == pytest.approx(math.exp(-1), rel=1e-3)
    # "step" cuts the rate ×0.1 after half the epochs: 0.1·(50 + 5)·2 steps · 1e-3 / 0.1 = 0.11; the
    # momentum buffer's build-up over the first steps, which the exponential ignores, is 0.8% here
    assert decay_ratio(lr=0.1, schedule="step", epochs=100, steps_per_epoch=2, weight_decay=1e-3,
                       momentum=0.9) == pytest.approx(math.exp(-0.11), rel=1e-2)


def _sgd_decay_only(*, lr: float, schedule: str, epochs: int, steps_per_epoch: int, weight_decay: float,
                    momentum: float) -> float:
    """What torch's SGD leaves of a weight 1 that gets a zero gradient every step, the lr set per
    epoch from the schedule as pretraining sets it."""
    w = torch.ones((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum, weight_decay=weight_decay)
    factor = SCHEDULES.get(schedule)
    for epoch in range(epochs):
        set_lr(opt, lr, factor(epoch, epochs))
        for _ in range(steps_per_epoch):
            w.grad = torch.zeros_like(w)
            opt.step()
    return w.item()


@pytest.mark.parametrize(("schedule", "weight_decay", "epochs", "steps_per_epoch"),
                         [("constant", 1e-3, 1000, 1), ("constant", 3e-3, 1000, 1), ("constant", 1e-2, 1000, 1),
                          ("step", 5e-4, 100, 7), ("cosine", 3e-3, 60, 5)])
def test_decay_ratio_is_what_sgd_with_momentum_leaves(schedule: str, weight_decay: float, epochs: int,
                                                      steps_per_epoch: int) -> None:
    recipe = {"lr": 0.1, "schedule": schedule, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
              "weight_decay": weight_decay, "momentum": 0.9}
    assert decay_ratio(**recipe) == pytest.approx(_sgd_decay_only(**recipe), rel=1e-9)


def test_decay_ratio_figures_of_the_papers_recipe() -> None:
    # 1,000 steps at lr 0.1, momentum 0.9: exp(−λ·1000) would say 0.368, 0.0498 and 4.5e-5
    ratios = [decay_ratio(lr=0.1, schedule="constant", epochs=1000, steps_per_epoch=1, weight_decay=wd,
                          momentum=0.9) for wd in (1e-3, 3e-3, 1e-2)]
    assert ratios == pytest.approx([0.3677, 0.0468, 1.56e-5], rel=2e-3)


def test_sgd_steps_count_the_merged_last_batch() -> None:
    assert sgd_steps(20, 256, 1000) == 1000
    assert sgd_steps(513, 256, 10) == 20  # the last batch of one image joins the one before
    assert sgd_steps(514, 256, 10) == 30


def test_pure_decay_is_recognised_as_no_movement() -> None:
    torch.manual_seed(0)
    start = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3))
    trained = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3))
    trained.load_state_dict({k: v * 0.368 for k, v in start.state_dict().items()})
    drift = weight_drift(trained, start, steps=1000, decay=0.368)
    assert drift.verdict_layer == "1.weight"
    assert drift.verdict.cosine == pytest.approx(1.0) and drift.verdict.norm_ratio == pytest.approx(0.368)
    assert not drift.moved and "weight decay alone" in (drift.warning() or "")


def _toy(scaled: bool) -> tuple[PretrainConfig, object]:
    """16 images whose targets have a tiny spread (std 0.002, as a small teacher's features):
    the head fits them alone unless they are standardised."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 16, 16, generator=g)
    y = 0.002 * torch.randn(16, 16, generator=g)
    if scaled:
        y = TargetScaling.fit(y).apply(y)
    config = PretrainConfig(arch="convnet", epochs=300, batch_size=256, lr=0.1, weight_decay=1e-3, seed=0,
                            arch_kwargs={"widths": [8, 32]})
    net, _ = pretrain(x, y, None, config, in_channels=1, image_size=16, device=CPU)
    return config, pretrain_drift(net, config, images=16)


def test_standardised_targets_move_the_backbone_and_raw_ones_warn() -> None:
    config, raw = _toy(scaled=False)
    _, standardised = _toy(scaled=True)
    assert raw.steps == 300 and raw.decay_ratio == pytest.approx(
        _sgd_decay_only(lr=0.1, schedule="constant", epochs=300, steps_per_epoch=1, weight_decay=1e-3, momentum=0.9))
    assert not raw.moved and raw.warning() is not None  # measured: cosine 0.996
    assert standardised.moved and standardised.warning() is None  # measured: cosine 0.888
    assert standardised.verdict.cosine < raw.verdict.cosine - 0.05
    meta = pretrain_metadata(config, final_loss=0.0, source="toy", mean=[0.5], std=[0.25],
                             artifact_sha256="", method="random", images=16, drift=raw)
    recorded = json.loads(meta["ssdd.drift"])
    assert recorded["moved"] is False and recorded["verdict_layer"] == raw.verdict_layer
    assert len(recorded["layers"]) == len(raw.layers)


@pytest.mark.parametrize("name", list_backbones())
def test_the_verdict_is_the_layer_the_features_are_read_after(name: str) -> None:
    torch.manual_seed(0)
    initial = create_backbone(name, 1, 16)
    torch.manual_seed(1)
    trained = create_backbone(name, 1, 16)
    drift = weight_drift(trained, initial, steps=1, decay=1.0)
    assert drift.verdict_layer == trained.feature_weight
    if name == "resnet10":  # registration order ends with the last stage's 1×1 shortcut
        assert drift.verdict_layer == "stages.3.0.conv2.weight"


def _unmoved(targets: str | None) -> Drift:
    start = nn.Sequential(nn.Conv2d(1, 4, 3))
    trained = nn.Sequential(nn.Conv2d(1, 4, 3))
    trained.load_state_dict({k: v * 0.5 for k, v in start.state_dict().items()})
    return weight_drift(trained, start, steps=100, decay=0.5, targets=targets)


def test_the_warning_advises_standardised_targets_only_for_raw_ones() -> None:
    raw = _unmoved("raw").warning()
    assert raw is not None and "--target-scaling standardized" in raw
    for targets in ("labels", "standardized"):  # a DM artifact's labels, or targets already standardised
        warning = _unmoved(targets).warning()
        assert warning is not None and "weight decay alone" in warning
        assert "--target-scaling" not in warning and "pretrain longer" in warning
    unknown = _unmoved(None).warning()  # a caller that does not say: the advice, conditionally
    assert unknown is not None and "if the artifact's targets are raw" in unknown


def test_pretrain_drift_carries_what_the_backbone_regressed() -> None:
    config = PretrainConfig(arch="convnet", epochs=1, batch_size=16, seed=0, arch_kwargs={"widths": [4]})
    net = build_backbone(config, in_channels=1, image_size=8, device=CPU)
    drift = pretrain_drift(net, config, images=16, targets="labels")
    assert drift.targets == "labels" and not drift.moved
    assert "--target-scaling" not in (drift.warning() or "")
    assert json.loads(json.dumps(drift.to_dict()))["targets"] == "labels"
