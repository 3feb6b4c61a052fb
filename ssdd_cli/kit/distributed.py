"""torch.distributed under torchrun, and collectives that are no-ops in a single process.

`torchrun --nproc_per_node K -m ssdd_cli ...` starts K copies of the command and describes the
group in each one's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT);
`init_from_environment` joins it: gloo for CPU tensors, NCCL for CUDA tensors where CUDA exists.
Without torchrun (or with one process) every helper here does nothing, so library code calls
them unconditionally.

Conventions of the callers: every rank holds the whole data and draws the same random numbers
(same seed, same generator), so they agree on every batch; each takes its contiguous share of a
batch (`shard`); rank 0 alone writes files and reports progress.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


def init_from_environment() -> bool:
    """Join the process group torchrun describes, once; False when there is none (one process)."""
    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    atexit.register(shutdown)
    return True


def shutdown() -> None:
    """Leave the process group (at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether this process is one of several in a process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its machine (its GPU), from torchrun's LOCAL_RANK."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0: the process that writes files and reports progress."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard(batch: Tensor) -> Tensor:
    """This rank's contiguous share of a batch (rows split as evenly as `tensor_split` does)."""
    return batch.tensor_split(world_size())[rank()] if is_distributed() else batch


def all_reduce(tensor: Tensor, op: str = "sum") -> Tensor:
    """`tensor` summed ("sum") or averaged ("mean") over the ranks, in place; returned."""
    if is_distributed():
        dist.all_reduce(tensor, dist.ReduceOp.SUM)
        if op == "mean":
            tensor.div_(world_size())
    return tensor


def all_reduce_grads(params: Iterable[nn.Parameter], op: str = "sum") -> None:
    """Every parameter's gradient summed or averaged over the ranks (one collective)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    all_reduce(flat, op)
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy rank `src`'s parameters and buffers to every rank (guards against drift between
    ranks that repeat the same computation, e.g. GPU kernels that are not bitwise deterministic)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src)


class _AllGather(torch.autograd.Function):
    """cat over ranks along dim 0; the backward sums the incoming gradients over the ranks and
    keeps this rank's rows. Every rank computes the same loss of the gathered batch, so summing
    makes DistributedDataParallel's average of the weights' gradients the gradient of that one
    loss (as solo-learn's and lightly's gather layers)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, dist.ReduceOp.SUM)
        return grad[rank() * ctx.rows:(rank() + 1) * ctx.rows]


def all_gather(x: Tensor) -> Tensor:
    """The ranks' x (B_r, ...) concatenated in rank order (B, ...), with gradients through the
    gather (see `_AllGather`); every rank's B_r must be equal. x itself in a single process."""
    if not is_distributed():
        return x
    out = _AllGather.apply(x)
    assert isinstance(out, Tensor)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Σ over ranks, differentiable: the backward sums the gradients over the ranks too."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out, dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, dist.ReduceOp.SUM)
        return grad


def all_reduce_sum(x: Tensor) -> Tensor:
    """Σ_ranks x, with gradients (for statistics of the global batch, e.g. BatchNorm's)."""
    if not is_distributed():
        return x
    out = _AllReduceSum.apply(x)
    assert isinstance(out, Tensor)
    return out
