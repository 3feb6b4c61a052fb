"""torchrun's maths on CPU: two gloo processes (spawned here) compute what one process computes.

Each task runs once in two ranks of a gloo group and once in this process (no group), on the
same data; the results must agree to float rounding: the Barlow Twins loss on the gathered
batch, one teacher training step (DDP, BatchNorm over the global batch, sharded views), one
pretraining step (targets; labels under the DM family's protocol, with DSA drawn for the whole
minibatch), one distillation step (sharded real batch, all-reduced gradients) and IDM's steps
(not sharded: every rank computes the whole loss, its queue networks broadcast from rank 0).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as tmp
from torch import Tensor

from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.distillation import Distillation
from ssdd_cli.distill.engine import OuterConfig, OuterLoop
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.methods.ssdd import init_parameterization
from ssdd_cli.distill.objectives.krr import KRRConfig, KRRObjective
from ssdd_cli.distill.pool import PoolConfig
from ssdd_cli.kit import distributed
from ssdd_cli.presets import get_preset
from ssdd_cli.progress import silent
from ssdd_cli.teacher.loss import barlow_twins_loss
from ssdd_cli.teacher.trainer import TeacherConfig, train_teacher
from ssdd_cli.train.pretrain import pretrain
from ssdd_cli.train.recipe import PretrainConfig

WORLD = 2


def teacher_loss() -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(0)
    z1, z2 = (torch.randn(8, 6, generator=g).requires_grad_(True) for _ in range(2))
    loss = barlow_twins_loss(distributed.all_gather(distributed.shard(z1)),
                             distributed.all_gather(distributed.shard(z2)))
    loss.backward()
    assert z1.grad is not None
    # The gather's backward sums over the ranks (each holds the same loss), so a rank's rows
    # carry K times ∂L/∂z, which DDP's average over K turns back into ∂L/∂θ.
    return {"loss": loss.detach(), "grad": distributed.shard(z1.grad) / distributed.world_size()}


def teacher_step() -> dict[str, Tensor]:
    config = TeacherConfig(arch="resnet10", arch_kwargs={"width": 4}, epochs=1, batch_size=8, lr=0.05,
                           warmup_epochs=1, projector_hidden=16, projector_out=16, optimizer="sgd")
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # two steps of 8
    result = train_teacher(images, (0.5,), (0.25,), config)
    return {"loss": torch.tensor(result.final_loss), **result.backbone.state_dict(),
            **{f"projector.{k}": v for k, v in result.projector.state_dict().items()}}


def pretrain_step() -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(2)
    images, targets = torch.randn(12, 1, 16, 16, generator=g), torch.randn(12, 5, generator=g)
    config = PretrainConfig(arch="convnet", arch_kwargs={"widths": (4, 8)}, epochs=1, batch_size=8)
    backbone, loss = pretrain(images, targets, None, config, in_channels=1, image_size=16,
                              device=torch.device("cpu"))  # minibatches of 8 and 4 rows
    return {"loss": torch.tensor(loss), **backbone.state_dict()}


def pretrain_labelled_step() -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(4)
    images, labels = torch.randn(12, 1, 16, 16, generator=g), torch.arange(12) % 3
    config = PretrainConfig(arch="convnet", arch_kwargs={"widths": (4, 8)}, epochs=1, batch_size=8, lr=0.01,
                            schedule="step", augment="dsa")
    backbone, loss = pretrain(images, None, labels, config, in_channels=1, image_size=16,
                              device=torch.device("cpu"), num_classes=3)
    return {"loss": torch.tensor(loss), **backbone.state_dict()}


def idm_steps() -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(30, 1, 16, 16, generator=g), torch.arange(30) % 3
    preset = dataclasses.replace(get_preset("digits"), classes=3)
    method = get_method("idm")
    config = method.configure(preset, 6, 0, steps=2, width=8, batch_size=6)
    run = Distillation.create(method, config, DistillInputs(x, None, g, y))
    assert run.loop is not None
    run.loop.objective.prepare(run.distilled, silent)
    losses = [run.loop.outer_step() for _ in range(2)]
    return {"loss": torch.stack(losses), **run.distilled.state_dict(),
            **{f"objective.{k}": v for k, v in _tensors(run.loop.objective.state())}}


def _tensors(tree: object, prefix: str = "") -> list[tuple[str, Tensor]]:
    """The tensors of a nested state (dicts and lists), by dotted path."""
    if isinstance(tree, Tensor):
        return [(prefix, tree)]
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    return [t for k, v in items for t in _tensors(v, f"{prefix}.{k}" if prefix else str(k))]


def distill_step() -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(3)
    source = torch.nn.functional.avg_pool2d(torch.randn(120, 1, 20, 20, generator=g), 5, stride=1)[..., :16, :16]
    w = torch.randn(256, 6, generator=g) / 16
    inputs = DistillInputs(source, TeacherTargets(lambda x: torch.tanh(x.flatten(1) @ w), source, 6), g)
    param = init_parameterization(inputs, m=5, U=8, V=4, scale=2, augmentation=get_augmentation("rotate"))
    pool = PoolConfig(size=2, max_steps=3, arch_kwargs={"widths": (4, 8)})
    objective = KRRObjective(KRRConfig(real_aug="crop-flip", batch_size=30, chunk=8, pool=pool), inputs)
    objective.prepare(param, lambda e: None)
    loop = OuterLoop(param, objective, OuterConfig(steps=4, lr=1e-2), g)
    loss = loop.outer_step()
    pool_state = {f"pool.{k}": v for k, v in objective.pool.models[0].state_dict().items()}
    return {"loss": loss, **param.state_dict(), **pool_state}


TASKS: dict[str, Callable[[], dict[str, Tensor]]] = {
    "teacher_loss": teacher_loss, "teacher_step": teacher_step, "pretrain_step": pretrain_step,
    "pretrain_labelled_step": pretrain_labelled_step, "distill_step": distill_step, "idm_steps": idm_steps}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    assert distributed.init_from_environment() and distributed.world_size() == WORLD
    try:
        torch.save({task: fn() for task, fn in TASKS.items()}, Path(out) / f"{rank}.pt")
    finally:
        distributed.shutdown()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, Tensor]]]:
    """Every task's result on each of two gloo ranks: one pair of processes (their start-up,
    mostly importing torch, is most of this test's time)."""
    out = tmp_path_factory.mktemp("ranks")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp.start_processes(_worker, args=(port, str(out)), nprocs=WORLD, start_method="spawn")
    return [torch.load(out / f"{r}.pt") for r in range(WORLD)]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("task", list(TASKS))
def test_two_gloo_processes_compute_the_single_process_result(
        task: str, ranks: list[dict[str, dict[str, Tensor]]]) -> None:
    results = [r[task] for r in ranks]
    single = TASKS[task]()
    if task == "teacher_loss":  # each rank returns its own rows of the gradient
        torch.testing.assert_close(torch.cat([r["grad"] for r in results]), single["grad"])
        results = [{"loss": r["loss"]} for r in results]
        single = {"loss": single["loss"]}
    for r in results:
        assert r.keys() == single.keys()
        for name, value in single.items():
            # Float rounding only: sums in another order (all-reduce, BatchNorm's statistics in two
            # passes); the teacher's 16-wide Barlow Twins loss amplifies it most (about 3e-5).
            torch.testing.assert_close(r[name].double(), value.double(), rtol=1e-4, atol=2e-4, msg=name)
    if task != "teacher_loss":
        # The ranks hold the same state bit for bit (same updates from all-reduced gradients).
        for name in results[0]:
            assert torch.equal(results[0][name], results[1][name]), name


def test_helpers_are_identities_in_one_process() -> None:
    x = torch.arange(6.0).reshape(3, 2)
    assert not distributed.is_distributed() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.shard(x) is x and distributed.all_gather(x) is x
    assert torch.equal(distributed.all_reduce(x.clone(), "mean"), x)
    assert dataclasses.is_dataclass(TeacherConfig)  # the module imports cleanly without a group
