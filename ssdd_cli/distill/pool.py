"""The model pool (KRR-ST §3.2, SSDD Algorithm 1 lines 4–6 and 13–19).

L inner networks ĝ_θ = h_W ∘ f_ω, each with a step counter z. At start each is trained
z ~ U{1..Z} full-batch steps on (X̃_s, Ỹ_s) by the inner loss (eq. 2). After every outer step
the sampled model takes one more step while z < Z; at z = Z it is re-initialised **and its
counter reset to 0** (Algorithm 1 line 18).

`reset="legacy"` reproduces KRR-ST's public code (`model_pool.py`) instead, for users who want
its published numbers: the counter is never reset, so after its first cycle every visit
re-initialises the model and never trains it (the outer loss then mostly sees untrained
ConvNets), and the initial steps are drawn from {1..Z−1} (`np.random.randint(1, Z)`).

Large support sets. A full-batch step over all M rows of X̃_s holds the graph of M network
passes (about 24 GB at N = 1000). When M exceeds the chunk, the step accumulates its gradient
over chunks of X̃_s instead, so memory follows the chunk. The loss and the weights' gradient are
those of the full batch except through BatchNorm, which in training mode normalises each chunk
with that chunk's statistics ("ghost batches"): a documented departure from the papers'
full-batch statistics, `PoolConfig.full_batch` keeps the exact step. The running statistics
(which the outer loss uses, in eval mode) keep the weight 1 − momentum on their past exactly as
one full-batch update does: each of the k chunks updates them with momentum 1 − (1 − momentum)^(1/k).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ssdd_cli.errors import UsageError
from ssdd_cli.kit.distributed import broadcast_module
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.kit.seeding import build_seeded
from ssdd_cli.models import Backbone, create_backbone
from ssdd_cli.progress import Callback, ProgressEvent, silent

RESETS = ("paper", "legacy")


@dataclass(frozen=True)
class PoolConfig:
    """L models trained up to Z full-batch SGD steps; `reset` "paper" (Algorithm 1) or "legacy"
    (KRR-ST's code). full_batch: never chunk the inner step (exact BatchNorm statistics over all
    M rows; memory grows with M). See the module docstring for both."""

    size: int = 10  # L
    max_steps: int = 1000  # Z
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3
    arch: str = "convnet"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    reset: str = "paper"
    full_batch: bool = False

    def __post_init__(self) -> None:
        if self.reset not in RESETS:
            raise UsageError(f"unknown pool reset {self.reset!r}; choose one of: {', '.join(RESETS)}.",
                             option="pool_reset")
        if self.size < 1:
            raise UsageError(f"the pool needs at least one model, got {self.size}.", option="pool_size")
        if self.max_steps < 1:
            raise UsageError(f"pool models need at least one inner step before a reset (Z ≥ 1), "
                             f"got {self.max_steps}.", option="pool_steps")


class InnerModel(nn.Module):
    """ĝ_θ = h_W ∘ f_ω: a backbone and a linear head d_h → d_y."""

    def __init__(self, backbone: Backbone, d_y: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, d_y)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone.features(x))


def inner_loss(pred: Tensor, target: Tensor, entries: int | None = None) -> Tensor:
    """Eq. 2 divided by d_y: the mean over all M·d_y entries of (ĝ(X̃_s) − Ỹ_s)².

    pred, target: (n, d_y). entries: the number of entries of the whole batch when (pred,
    target) is one chunk of it (the chunks' losses then sum to the batch's); default n·d_y.

    The constant 1/d_y leaves the minimiser unchanged but sets the step size: the papers' full-batch
    SGD at lr 0.1 is stable with the element mean (torch's `mse_loss`), while with eq. 2's literal
    per-row sum it diverged to NaN within three steps on every configuration we tried (d_h = 4096,
    d_y = 64, digits).
    """
    sq = (pred - target).pow(2)
    return sq.mean() if entries is None else sq.sum() / entries


@contextmanager
def split_batchnorm_momentum(model: nn.Module, chunks: int) -> Iterator[None]:
    """Within the block, BatchNorm momentum m becomes 1 − (1 − m)^(1/chunks), so `chunks` updates
    of the running statistics keep the weight (1 − m) on their past, as one update does."""
    norms = [mod for mod in model.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)
             and mod.momentum is not None]
    saved = [mod.momentum for mod in norms]
    for mod, m in zip(norms, saved, strict=True):
        assert m is not None
        mod.momentum = 1 - (1 - m) ** (1 / chunks)
    try:
        yield
    finally:
        for mod, m in zip(norms, saved, strict=True):
            mod.momentum = m


class ModelPool:
    """The L inner models. chunk: rows of X̃_s per pass of the inner step when it is chunked;
    precision: of the models' passes."""

    def __init__(self, config: PoolConfig, in_channels: int, image_size: int, d_y: int,
                 device: torch.device, generator: torch.Generator, *, chunk: int = 512,
                 precision: Precision = FP32) -> None:
        self.config = config
        self.chunk = chunk
        with torch.random.fork_rng(devices=[]):  # a throwaway network: the global RNG stays as it was
            probe = create_backbone(config.arch, in_channels, image_size, **config.arch_kwargs)
        self.precision = precision.suited(probe)
        self._shape = (in_channels, image_size, d_y)
        self.device = device
        self.generator = generator
        self.models: list[InnerModel] = []
        self.optimizers: list[torch.optim.SGD] = []
        self.steps: list[int] = []

    def _fresh(self) -> tuple[InnerModel, torch.optim.SGD]:
        c, size, d_y = self._shape
        cfg = self.config
        model = build_seeded(
            lambda: InnerModel(create_backbone(cfg.arch, c, size, **cfg.arch_kwargs), d_y), self.generator
        ).to(self.device)
        model = self.precision.module(model)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
        return model, opt

    def build(self) -> None:
        """Create L fresh models with zero counters (their weights are then trained or loaded)."""
        pairs = [self._fresh() for _ in range(self.config.size)]
        self.models = [p[0] for p in pairs]
        self.optimizers = [p[1] for p in pairs]
        self.steps = [0] * self.config.size

    def initialize(self, x: Tensor, y: Tensor, callback: Callback = silent) -> None:
        """Algorithm 1 lines 4–6: model l trained z_l ~ U{1..Z} full-batch steps on (x, y)."""
        self.build()
        top = self.config.max_steps + 1 if self.config.reset == "paper" else max(2, self.config.max_steps)
        targets = torch.randint(1, top, (self.config.size,), generator=self.generator)
        total, done = int(targets.sum()), 0
        for j, z in enumerate(targets.tolist()):
            for _ in range(z):
                self._sgd_step(j, x, y)
                done += 1
                callback(ProgressEvent("pool init", done, total))
            broadcast_module(self.models[j])

    def sample(self) -> int:
        return int(torch.randint(0, self.config.size, (1,), generator=self.generator))

    def features(self, j: int) -> Backbone:
        """f_ω of model j, in eval mode (the outer loss uses fixed BatchNorm statistics)."""
        backbone = self.models[j].backbone
        backbone.eval()
        return backbone

    def step(self, j: int, x: Tensor, y: Tensor) -> None:
        """Algorithm 1 lines 13–19: one inner step while z_j < Z, else re-initialise, z_j ← 0
        (with the legacy reset, z_j stays at Z: module docstring)."""
        if self.steps[j] < self.config.max_steps:
            self._sgd_step(j, x, y)
            # Under torchrun every rank takes this same step; rank 0's result is copied to all so
            # that GPU kernels which are not bitwise deterministic cannot make the pools drift.
            broadcast_module(self.models[j])
        else:
            self.models[j], self.optimizers[j] = self._fresh()
            if self.config.reset == "paper":
                self.steps[j] = 0

    def _sgd_step(self, j: int, x: Tensor, y: Tensor) -> None:
        """One SGD step on the inner loss over (x, y), in chunks when x has more than `chunk` rows
        (module docstring) unless the config asks for the full batch."""
        model, opt = self.models[j], self.optimizers[j]
        model.train()
        opt.zero_grad(set_to_none=True)
        chunks = 1 if self.config.full_batch else math.ceil(x.shape[0] / self.chunk)
        if chunks == 1:
            inner_loss(self.precision.run(model, x), y).backward()
        else:
            with split_batchnorm_momentum(model, chunks):
                for xc, yc in zip(x.split(self.chunk), y.split(self.chunk), strict=True):
                    inner_loss(self.precision.run(model, xc), yc, entries=y.numel()).backward()
        opt.step()
        self.steps[j] += 1

    def state(self) -> dict[str, Any]:
        return {"models": [m.state_dict() for m in self.models],
                "optimizers": [o.state_dict() for o in self.optimizers],
                "steps": list(self.steps)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.build()
        for j, model in enumerate(self.models):
            model.load_state_dict(state["models"][j])
            self.optimizers[j].load_state_dict(state["optimizers"][j])
        self.steps = [int(s) for s in state["steps"]]
