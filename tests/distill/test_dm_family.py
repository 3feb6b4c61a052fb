"""The DM family as methods: defaults by IPC, budgets, initialisation, steps that reduce the loss,
resuming, and runs that need no teacher."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssdd_cli.budget import ImageShape
from ssdd_cli.bundle import load_bundle
from ssdd_cli.distill.distillation import Distillation
from ssdd_cli.distill.engine import OuterConfig, OuterLoop
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.labelled import LabelledSet
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.objectives import Objective
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.run import DistillRequest, checkpoint_path, run_distill
from ssdd_cli.errors import BudgetError, UsageError
from ssdd_cli.presets import Preset, get_preset
from ssdd_cli.progress import ProgressEvent, silent

FAMILY = ["dm", "datadam", "iid", "dsdm", "idm"]
DIGITS = ImageShape(1, 16, 16)
CLASSES, PER_CLASS = 3, 24
MEAN, STD = (0.4,), (0.3,)
# Small enough for the default suite: narrow matching nets, small batches, one brief pool network.
TINY: dict[str, Any] = {"width": 16, "batch_size": 12}
POOL: dict[str, Any] = {"pool_size": 1, "pool_epochs": 1}


def preset(classes: int = CLASSES) -> Preset:
    return replace(get_preset("digits"), classes=classes)


def options(method: str, **extra: Any) -> dict[str, Any]:
    return {**TINY, **(POOL if method in ("iid", "dsdm") else {}), **extra}


def labelled_images() -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of 16×16 images: a bright square at a class-specific place, plus noise."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(CLASSES * PER_CLASS, 1, 16, 16, generator=g) * 0.3
    y = torch.arange(CLASSES).repeat_interleave(PER_CLASS)
    for i, c in enumerate(y.tolist()):
        x[i, 0, 2 + 4 * c:7 + 4 * c, 3:9] += 0.7
    return (x - MEAN[0]) / STD[0], y


def inputs(seed: int) -> DistillInputs:
    x, y = labelled_images()
    return DistillInputs(x, None, torch.Generator().manual_seed(seed), y, mean=MEAN, std=STD)


def frozen_loss(method: str, config: Any, distilled: DistilledModule) -> float:
    """The method's loss of one step, with every draw (networks, batches, augmentations, pools)
    fixed by a seed, so two sets are compared under the same draws."""
    objective = get_method(method).optimization(config, inputs(seed=123))
    assert objective is not None
    objective.objective.prepare(distilled, silent)
    with torch.no_grad():
        return sum(float(loss) for loss in objective.objective.losses(distilled))


@pytest.mark.parametrize("method", FAMILY)
def test_a_few_steps_reduce_the_loss(method: str, one_thread: None) -> None:
    m = get_method(method)
    # One small lr for all: the papers' rates are tuned to their networks and data, not to this
    # toy set (DataDAM's lr 1 on its 100× loss overshoots a 16-wide network here).
    config = m.configure(preset(), 12, 0, steps=8, lr=0.1, **options(method))  # IPC 4
    run = Distillation.create(m, config, inputs(seed=0))
    start = copy.deepcopy(run.distilled)
    assert run.loop is not None
    run.loop.objective.prepare(run.distilled, silent)
    run.loop.run()
    before, after = frozen_loss(method, config, start), frozen_loss(method, config, run.distilled)
    # IID's centralisation term (most of its loss here) falls slowly: a few percent in 8 steps.
    assert after < 0.97 * before, (before, after)


@pytest.mark.parametrize("method", FAMILY)
def test_the_family_uses_sgd_with_momentum_at_a_constant_lr(method: str) -> None:
    config = get_method(method).configure(get_preset("cifar10"), 100, 0)  # IPC 10
    outer: OuterConfig = config.outer
    assert (outer.optimizer, outer.momentum, outer.weight_decay, outer.schedule) == ("sgd", 0.5, 0.0, "constant")
    paper = {"dm": (20_000, 1.0), "datadam": (8_000, 1.0), "iid": (20_000, 1.0), "dsdm": (10_000, 0.1),
             "idm": (20_000, 0.2)}
    assert (outer.steps, outer.lr) == paper[method]
    assert config.match.real_batch == 256 and config.classes == 10


def test_defaults_that_depend_on_ipc() -> None:
    cifar10 = get_preset("cifar10")
    dsdm = get_method("dsdm")
    assert dsdm.configure(cifar10, 10, 0).outer.lr == pytest.approx(0.01)  # 0.1·IPC/10·(32/32)²
    assert dsdm.configure(preset(10), 100, 0).outer.lr == pytest.approx(0.025)  # 16 px: ×(16/32)²
    assert dsdm.configure(cifar10, 500, 0).outer.lr == pytest.approx(0.5)
    assert dsdm.configure(cifar10, 500, 0, lr=0.3).outer.lr == 0.3  # a given lr stays
    assert dsdm.configure(cifar10, 100, 0).history_after == 2000  # smooth_iter of 10,000 steps
    assert dsdm.configure(cifar10, 100, 0, steps=50).history_after == 10
    iid = get_method("iid")
    assert iid.configure(cifar10, 100, 0).cc_weight == 0.05 and iid.configure(cifar10, 500, 0).cc_weight == 0.003
    assert get_method("datadam").configure(cifar10, 1000, 0).outer.lr == 10.0  # IPC 100 > 50
    assert get_method("datadam").configure(get_preset("tinyimagenet"), 200, 0).task_balance == 0.02
    assert get_method("dm").configure(cifar10, 1000, 0).outer.lr == 10.0
    idm = get_method("idm")
    assert idm.configure(cifar10, 100, 0).ce_weight == 0.5 and idm.configure(cifar10, 500, 0).ce_weight == 0.1
    assert idm.configure(get_preset("cifar100"), 1000, 0).ce_weight == 0.1
    one = idm.configure(cifar10, 10, 0)
    assert (one.ce_weight, one.match.real_batch, one.queue.push_every) == (0.5, 5000, 5)
    assert idm.configure(cifar10, 10, 0, batch_size=64).match.real_batch == 64


@pytest.mark.parametrize("method", ["iid", "dsdm"])
def test_one_image_per_class_is_refused_by_a_covariance_method(method: str) -> None:
    extra = {"factor": 1} if method == "dsdm" else {}
    with pytest.raises(BudgetError, match=rf"{method} matches a covariance, which needs at least 2 synthetic "
                                          r"images per class, but N = 10 buys 1; use N ≥ 20") as e:
        get_method(method).configure(get_preset("cifar10"), 10, 0, **extra)
    assert e.value.option == "budget"


def test_dsdm_at_one_image_per_class_decodes_four() -> None:
    m = get_method("dsdm")
    config = m.configure(get_preset("cifar10"), 10, 0)
    plan = m.plan(config, ImageShape(3, 32, 32), 0)
    assert (plan.per_class, plan.m, plan.used) == (1, 10, 30_720)  # 10 images of 3,072 floats


def test_labels_counted_buy_fewer_images() -> None:
    config = get_method("dm").configure(preset(10), 100, 0, count_targets=True)
    plan = get_method("dm").plan(config, DIGITS, 0)
    assert (plan.per_class, plan.components) == (9, {"images": 90 * 256, "labels": 90})


def test_initialisations() -> None:
    x, y = labelled_images()
    real_rows = {tuple(r.flatten().tolist()) for r in x}
    dm = get_method("dm")
    config = dm.configure(preset(), 12, 0)
    plan = dm.plan(config, DIGITS, 0)
    s = dm.init(config, plan, inputs(0))
    assert isinstance(s, LabelledSet) and s.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for img, c in zip(s.x, s.labels, strict=True):  # random real images of their own class
        assert tuple(img.flatten().tolist()) in real_rows
        assert int(y[[tuple(r.flatten().tolist()) for r in x].index(tuple(img.flatten().tolist()))]) == int(c)
    dsdm = get_method("dsdm")
    config = dsdm.configure(preset(), 6, 0)  # IPC 2: the class's first 8 images, resized into 2×2 tiles
    d = dsdm.init(config, dsdm.plan(config, DIGITS, 0), inputs(0))
    assert isinstance(d, LabelledSet) and d.pixel is not None and d.factor == 2
    first = x[y == 1][:8] * STD[0] + MEAN[0]
    tile_01 = F.interpolate(first[2:4], size=(8, 8), mode="nearest").clamp(0, 1)  # tile t = 1 from images 2, 3
    assert torch.allclose(d.x[2:4, :, :8, 8:], tile_01, atol=1e-6)
    assert torch.allclose(d.stored(), (d.x - MEAN[0]) / STD[0])


def test_pixel_space_sets_are_clamped_before_each_step() -> None:
    s = LabelledSet(torch.full((2, 1, 4, 4), 1.7), classes=2, pixel=(MEAN, STD))
    s.project_()
    assert float(s.x.detach().max()) == 1.0
    assert torch.allclose(s.class_images(0), torch.full((1, 1, 4, 4), (1.0 - MEAN[0]) / STD[0]))


def test_sgd_outer_loop_keeps_a_constant_lr() -> None:
    s = LabelledSet(torch.zeros(2, 1, 4, 4), classes=2)

    class Pull(Objective):
        def losses(self, distilled: DistilledModule) -> Any:
            assert isinstance(distilled, LabelledSet)
            yield (distilled.x - 1).pow(2).sum()

    loop = OuterLoop(s, Pull(), OuterConfig(steps=5, lr=0.1, weight_decay=0.0, optimizer="sgd", momentum=0.5,
                                            schedule="constant"), torch.Generator())
    loop.run()
    assert isinstance(loop.optimizer, torch.optim.SGD)
    assert loop.optimizer.param_groups[0]["lr"] == 0.1 and loop.optimizer.param_groups[0]["momentum"] == 0.5
    with pytest.raises(UsageError, match="unknown outer optimiser 'lbfgs'") as e:
        OuterConfig(steps=1, optimizer="lbfgs")
    assert e.value.option == "optimizer"


def _request(out: Path, method: str, resume: bool = False, **extra: Any) -> DistillRequest:
    settings = {**options(method), "width": 8, "batch_size": 8, "steps": 5, "checkpoint_every": 1, **extra}
    return DistillRequest(source="digits", output=out, method=method, budget=20, options=settings, seed=3,
                          device=torch.device("cpu"), resume=resume)


@pytest.mark.parametrize("method", ["dsdm", "idm"])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path: Path, method: str, one_thread: None) -> None:
    whole = run_distill(_request(tmp_path / "whole.ssdd", method))

    def kill_at_3(event: ProgressEvent) -> None:
        if event.stage == "distill" and event.step == 3:
            raise KeyboardInterrupt

    out = tmp_path / "part.ssdd"
    with pytest.raises(KeyboardInterrupt):
        run_distill(_request(out, method), kill_at_3)
    assert checkpoint_path(out).exists()
    resumed = run_distill(_request(out, method, resume=True))
    assert torch.equal(load_bundle(whole.path).tensors["images"], load_bundle(resumed.path).tensors["images"])
    assert whole.losses == resumed.losses


def test_a_dm_run_needs_no_teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SSDD_CACHE", str(cache))
    result = run_distill(DistillRequest(source="digits", output=tmp_path / "dm.ssdd", method="dm", budget=20,
                                        options={"steps": 2, "width": 8, "batch_size": 8}))
    man = result.manifest
    assert man.teacher is None and man.raw is not None and man.raw.labels and man.raw.factor == 1
    assert not (cache / "teachers").exists()  # no teacher was trained or cached
    labels = load_bundle(result.path).tensors["labels"]
    assert labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert man.distill is not None and man.distill.settings["outer.optimizer"] == "sgd"
    assert [step for step, _ in man.distill.held_out] == [0, 2]  # the held-out signal, start and end


def test_an_unlabelled_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 255, (40, 16, 16, 1), dtype=np.uint8))
    with pytest.raises(UsageError, match="dm distills class by class, but source npz:.* has no labels") as e:
        run_distill(DistillRequest(source=f"npz:{path}", output=tmp_path / "o.ssdd", method="dm", budget=10))
    assert e.value.option == "method"


def test_cutmix_pastes_a_box_of_another_image_and_reports_the_rest() -> None:
    from ssdd_cli.distill.objectives.networks import cutmix

    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 8, 8).clone()
    y = torch.arange(4)
    mixed, y_b, ratio = cutmix(x, y, torch.Generator().manual_seed(1))
    pasted = (mixed != x).float().mean(dim=(1, 2, 3))  # every image gets the same box
    # Where an image was paired with itself nothing changes; elsewhere the box holds its partner's value.
    changed = y_b != y
    assert torch.allclose(pasted[changed], torch.full_like(pasted[changed], 1 - ratio))
    assert all(float(mixed[i].max()) in (float(i), float(y_b[i])) for i in range(4))


def test_idm_queue_pushes_drops_and_meters() -> None:
    from ssdd_cli.distill.objectives.classes import ClassSampler
    from ssdd_cli.distill.objectives.networks import TrainConfig
    from ssdd_cli.distill.objectives.queue import NetworkQueue, QueueConfig

    x, y = labelled_images()
    config = QueueConfig(initial=3, capacity=5, push_every=2, match_nets=1, train_nets=2, train_steps=3,
                         meter_reset=4, train=TrainConfig(batch_size=10))
    queue = NetworkQueue(config, ClassSampler(x, y, CLASSES), width=8, generator=torch.Generator().manual_seed(0))
    sizes, first = [], queue.members[0]
    for step in range(8):
        chosen = queue.begin(step)
        assert len(chosen) == 1 and not any(p.requires_grad for p in chosen[0].model.parameters())
        sizes.append(len(queue.members))
        if step == 3:  # steps 0–2 trained 2 nets × 3 SGD steps × 10 images each, none dropped yet
            assert sum(m.seen for m in queue.members) == 3 * 2 * 3 * 10
        queue.train()
    assert sizes == [4, 4, 5, 5, 5, 5, 5, 5]  # a push every 2 steps, at most 5 kept
    assert first not in queue.members  # the oldest went first
    assert sum(m.seen for m in queue.members) <= 4 * 2 * 3 * 10  # meters reset at step 4: steps 4–7 only
    assert all(0 <= m.accuracy <= 100 for m in queue.members)


def test_the_held_out_signal_is_dm_loss_on_validation_images() -> None:
    from ssdd_cli.distill.objectives.matching import HeldOut

    x, y = labelled_images()
    first = torch.cat([x[y == c][:2] for c in range(CLASSES)])  # 2 validation images per class
    held = HeldOut(first, torch.arange(CLASSES).repeat_interleave(2), CLASSES, width=8)
    same = LabelledSet(first.clone(), CLASSES)  # the synthetic set is the validation set itself
    assert held.loss(same) == pytest.approx(0.0, abs=1e-8)
    other = LabelledSet(torch.cat([x[y == c][2:4] for c in range(CLASSES)]), CLASSES)
    assert (held.loss(other) or 0.0) > 0
