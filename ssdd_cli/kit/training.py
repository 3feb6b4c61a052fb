"""What the training loops (teacher, pretraining) share: the model they step under torchrun and
a precision, their checkpoint's state, and their minibatches.

- `parallel_model`: the module in `precision` (`kit.precision`), with BatchNorm over the global
  batch and DistributedDataParallel under torchrun (`kit.parallel`), the module itself otherwise.
- `save_state` / `restore_state`: the named modules, the optimiser and any extra state (random
  generators) in one checkpoint (`kit.checkpoint.Checkpointer`, atomic), and back.
- `minibatches`: a shuffled split of range(m), drawn from the loop's generator.
- `decay_groups`: the optimiser's parameter groups, with or without weight decay on normalisation
  weights and biases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ssdd_cli.kit.checkpoint import Checkpointer
from ssdd_cli.kit.parallel import data_parallel
from ssdd_cli.kit.precision import Precision


def parallel_model(module: nn.Module, precision: Precision, device: torch.device) -> nn.Module:
    """`module` as a training loop steps it: in `precision`, data-parallel under torchrun."""
    return data_parallel(precision.module(module), device)


def save_state(checkpoint: Checkpointer, modules: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer,
               info: Mapping[str, Any], **extra: Any) -> None:
    """Write every module's state dict, the optimiser's and `extra` (e.g. generator states), with
    the progress `info` (epoch, losses)."""
    state: dict[str, Any] = {name: module.state_dict() for name, module in modules.items()}
    state.update(optimizer=optimizer.state_dict(), **extra)
    checkpoint.save(state, dict(info))


def restore_state(checkpoint: Checkpointer, modules: Mapping[str, nn.Module],
                  optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load what `save_state` wrote into `modules` and `optimizer`; returns (the extra state,
    the progress info)."""
    state, info = checkpoint.load()
    for name, module in modules.items():
        module.load_state_dict(state.pop(name))
    optimizer.load_state_dict(state.pop("optimizer"))
    return state, info


def decay_groups(params: Iterable[nn.Parameter], weight_decay: float,
                 norm_bias: bool = True) -> list[dict[str, Any]]:
    """The parameters as optimiser groups. norm_bias=True: one group, every parameter decayed
    (the papers' code: SGD's `weight_decay` over all of them). False: tensors of fewer than two
    dimensions (normalisation weights and every bias) in a second group without decay, the rule
    of timm's `param_groups_weight_decay` and nanoGPT (and of the teacher's optimisers)."""
    params = list(params)
    if norm_bias:
        return [{"params": params, "weight_decay": weight_decay}]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def minibatches(m: int, batch_size: int, generator: torch.Generator, device: torch.device,
                min_size: int = 2) -> list[Tensor]:
    """A shuffled split of range(m) into minibatches; a last batch under `min_size` joins the
    previous one (BatchNorm cannot normalise a batch of one; under torchrun every rank needs a
    share: min_size = max(2, K))."""
    order = torch.randperm(m, generator=generator).to(device)
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and chunks[-1].numel() < min_size:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Tensor]:
    """The loop's generator's and the global RNG's states (BatchNorm, dropout)."""
    state = {"generator": generator.get_state(), "cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Tensor], generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
