"""The KRR outer loss of SSDD and KRR-ST (SSDD Algorithm 1 lines 7–19) with its model pool.

Per outer step: sample a pool model f (eval mode), take the support set (X̃_s, Ỹ_s) once, a real
batch and its teacher targets, and yield the KRR outer loss (eq. 3) from a single forward of X̃_s.
Φ_t needs no graph: the outer gradient reaches the distilled tensors only through Φ_s and Ỹ_s,
and the pool's weights are frozen while the engine backpropagates, so no weight gradients are
computed. After the engine's optimiser step, the sampled model takes its one inner step on the
(detached) support set of that step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.krr import krr_outer_loss, with_bias_column
from ssdd_cli.distill.objectives.base import Objective
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.pool import ModelPool, PoolConfig
from ssdd_cli.distill.real import CACHED_VIEWS, RealSampler, check_real_aug
from ssdd_cli.errors import UsageError
from ssdd_cli.progress import Callback


@dataclass(frozen=True)
class KRRConfig:
    """The real side and the pool of the KRR outer loss.

    real_aug: "none" | "flip" (cached teacher targets) | "crop-flip" (teacher per batch).
    batch_size: real images per outer step (KRR-ST's code: 1,024). ridge: λ = ridge·tr(K).
    """

    real_aug: str = "none"
    batch_size: int = 1024
    ridge: float = 1e-6
    pool: PoolConfig = field(default_factory=PoolConfig)

    def __post_init__(self) -> None:
        check_real_aug(self.real_aug)
        if self.batch_size < 1:
            raise UsageError(f"the real batch size must be at least 1, got {self.batch_size}.",
                             option="batch_size")
        if not self.ridge > 0:
            raise UsageError(f"the ridge must be positive, got {self.ridge}.", option="ridge")


class KRRObjective(Objective):
    """½‖g(X̄_t) − Φ_t Φ_sᵀ (Φ_sΦ_sᵀ + λI)⁻¹ Ỹ_s‖² with f drawn from a pool of inner models."""

    def __init__(self, config: KRRConfig, inputs: DistillInputs) -> None:
        self.config = config
        self.generator = inputs.generator
        c, r = inputs.shape.channels, inputs.shape.height
        teacher = inputs.require_teacher()
        self.pool = ModelPool(config.pool, c, r, teacher.d_y, inputs.device, inputs.generator)
        cached = {view: teacher.features(view)
                  for view in dict.fromkeys(("identity", *CACHED_VIEWS[config.real_aug]))}
        self.real = RealSampler(inputs.images, config.real_aug, config.batch_size, cached, teacher)
        self._inner: tuple[int, Tensor, Tensor] | None = None

    def prepare(self, distilled: DistilledModule, callback: Callback) -> None:
        """Algorithm 1 lines 4–6: each pool model trained z ~ U{1..Z} steps on the initial set."""
        with torch.no_grad():
            x_s, y_s = distilled.support()
        self.pool.initialize(x_s, y_s, callback)

    def losses(self, distilled: DistilledModule) -> Iterator[Tensor]:
        j = self.pool.sample()
        f = self.pool.features(j)
        x_s, y_s = distilled.support()
        x_t, y_t = self.real.sample(self.generator)
        f.requires_grad_(False)
        try:
            with torch.no_grad():
                phi_t = with_bias_column(f(x_t))
            phi_s = with_bias_column(f(x_s))
            yield krr_outer_loss(phi_t, y_t, phi_s, y_s, self.config.ridge)
        finally:
            f.requires_grad_(True)
        self._inner = (j, x_s.detach(), y_s.detach())

    def after_step(self, distilled: DistilledModule) -> None:
        """Algorithm 1 lines 13–19 on the support set of the step just taken."""
        assert self._inner is not None
        j, x_s, y_s = self._inner
        self._inner = None
        self.pool.step(j, x_s, y_s)

    def state(self) -> dict[str, Any]:
        return {"pool": self.pool.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.pool.load_state(state["pool"])
