"""Data-parallel training over torchrun's ranks: DistributedDataParallel with BatchNorm over the
global batch, so K processes compute what one process computes on the whole batch.

BatchNorm in training mode normalises with its batch's statistics; per-rank statistics would
change the maths with the number of processes. On CUDA, torch's `SyncBatchNorm` computes them
over all ranks. It refuses CPU tensors, so on the CPU (gloo) `GlobalBatchNorm` does the same with
two differentiable all-reduces (the batch's mean, then its biased variance): slower than NCCL's
fused kernels, but CPU process groups serve tests and small machines.

Each rank's loss must be its *share times K* of the global batch's loss (DDP averages the
weights' gradients over the K ranks); the callers (teacher, pretraining) arrange that.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssdd_cli.kit.distributed import all_reduce, all_reduce_sum, is_distributed


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (any input (B, C, ...)) whose training-mode statistics cover every rank's batch.

    y = (x − μ) / √(σ² + eps) · γ + β with μ, σ² the per-channel mean and biased variance over
    all ranks' rows (and positions); the running variance is updated with the unbiased one, as
    `nn.BatchNorm2d` does. Gradients flow through μ and σ² to every rank's rows.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {input.dim()}-d")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0, *range(2, x.ndim)]
        shape = [1, -1] + [1] * (x.ndim - 2)
        x32 = x.float()
        count = all_reduce(torch.tensor([float(x.numel() // x.shape[1])], device=x.device))
        n = float(count)
        mean = all_reduce_sum(x32.sum(dims)) / n
        centred = x32 - mean.view(shape)
        var = all_reduce_sum(centred.pow(2).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
        y = centred / torch.sqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm layer of `module` synchronised over the ranks: torch's `SyncBatchNorm` on
    CUDA, `GlobalBatchNorm` elsewhere (same parameters and buffers, so state dicts still load)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
        return out.to(next(iter(module.state_dict().values()), torch.empty(0)).device)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` with synchronised BatchNorm, wrapped in DistributedDataParallel; `module` itself
    in a single process."""
    if not is_distributed():
        return module
    module = convert_sync_batchnorm(module, device)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)
