"""The KRR outer loss of SSDD and KRR-ST (SSDD Algorithm 1 lines 7–19) with its model pool.

Per outer step: sample a pool model f (eval mode), take the support set (X̃_s, Ỹ_s) once, a real
batch and its teacher targets, and yield the KRR outer loss (eq. 3). X̃_s goes through f once, in
one graph while M ≤ `chunk`, else chunk by chunk without a graph and once more, chunk by chunk,
in the backward; the closed form is solved on the cheaper side of the kernel (`distill.support`).
Φ_t needs no graph: the outer gradient reaches the distilled tensors only through Φ_s and Ỹ_s,
and the pool's weights are frozen while the engine backpropagates, so no weight gradients are
computed. The network passes run in the run's precision (`kit.precision`); the features are
float32 before the kernel. After the engine's optimiser step, the sampled model takes its one
inner step on the support set as updated by that step (KRR-ST's code trains on the new x_syn).

The held-out signal: eq. 3 on a fixed batch of validation images (never test images) and their
teacher targets, with one fixed, freshly initialised network of the pool's architecture, per
held-out image. It moves only with the distilled set, so a user sees whether the set still
improves (the outer loss itself mixes in the pool models' own training).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.krr import squared_error, with_bias_column
from ssdd_cli.distill.objectives.base import Objective
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.pool import ModelPool, PoolConfig
from ssdd_cli.distill.real import CACHED_VIEWS, RealSampler, check_real_aug
from ssdd_cli.distill.support import FeatureMap, support_prediction
from ssdd_cli.errors import UsageError
from ssdd_cli.kit.checkpoint import KEYED_WHEN_SET
from ssdd_cli.kit.seeding import build_seeded
from ssdd_cli.models import Backbone, create_backbone
from ssdd_cli.models.folding import fold_batchnorm
from ssdd_cli.progress import Callback

HELD_OUT_SEED = 0  # the fixed fresh network of the held-out signal


@dataclass(frozen=True)
class KRRConfig:
    """The real side and the pool of the KRR outer loss.

    real_aug: "none" | "flip" (cached teacher targets) | "crop-flip" (teacher per batch).
    real_bank: with crop-flip, K views per source image whose teacher targets are computed once,
        each step taking one of its image's K views (`distill.real`: a departure for speed, the
        teacher pass out of the loop); 0: the teacher on every batch (KRR-ST's code).
    batch_size: real images per outer step (KRR-ST's code: 1,024). ridge: λ = ridge·tr(K).
    chunk: support rows per network pass. While M ≤ chunk the support set goes through the
        network in one graph (exactly as before, and fastest); beyond, the outer step runs in
        chunks with the same gradient (`distill.support`) and the pool's inner step accumulates
        its gradient over chunks (`distill.pool`). 512 rows of the 128-256-512 ConvNet at 32 px
        hold about 1.3 GB of graph, so N = 100 (M = 456) runs unchunked and every budget of the
        paper fits a 24 GB device.
    """

    real_aug: str = "none"
    batch_size: int = 1024
    ridge: float = 1e-6
    chunk: int = 512
    pool: PoolConfig = field(default_factory=PoolConfig)
    real_bank: int = field(default=0, metadata=KEYED_WHEN_SET)

    def __post_init__(self) -> None:
        check_real_aug(self.real_aug)
        if self.real_bank < 0:
            raise UsageError(f"a bank needs a whole number of views per image, got {self.real_bank}.",
                             option="real_bank")
        if self.real_bank and self.real_aug != "crop-flip":
            raise UsageError(f"a bank holds crop-flip views, but the real side is {self.real_aug!r}, "
                             "whose targets are cached already; drop the bank or use crop-flip.",
                             option="real_bank")
        if self.batch_size < 1:
            raise UsageError(f"the real batch size must be at least 1, got {self.batch_size}.",
                             option="batch_size")
        if not self.ridge > 0:
            raise UsageError(f"the ridge must be positive, got {self.ridge}.", option="ridge")
        if self.chunk < 1:
            raise UsageError(f"a chunk needs at least one support row, got {self.chunk}.", option="chunk")


class KRRObjective(Objective):
    """½‖g(X̄_t) − Φ_t Φ_sᵀ (Φ_sΦ_sᵀ + λI)⁻¹ Ỹ_s‖² with f drawn from a pool of inner models.

    Under torchrun each rank takes its share of the real batch (`RealSampler`); the loss, a sum
    over the batch's rows, is then the sum of the ranks' losses (`sharded`). The support side
    (Φ_s, the solve) and the pool's inner step are computed whole on every rank.
    """

    sharded = True

    def __init__(self, config: KRRConfig, inputs: DistillInputs) -> None:
        self.config = config
        self.generator = inputs.generator
        self.precision = inputs.precision
        c, r = inputs.shape.channels, inputs.shape.height
        teacher = inputs.require_teacher()
        self.pool = ModelPool(config.pool, c, r, teacher.d_y, inputs.device, inputs.generator,
                              chunk=config.chunk, precision=inputs.precision)
        self.precision = self.pool.precision  # the held-out network is of the pool's architecture
        cached = {view: teacher.features(view)
                  for view in dict.fromkeys(("identity", *CACHED_VIEWS[config.real_aug]))}
        self.real = RealSampler(inputs.images, config.real_aug, config.batch_size, cached, teacher,
                                black=inputs.black, bank=config.real_bank,
                                bank_seed=inputs.generator.initial_seed())
        self._sampled: int | None = None
        self._held_out = self._held_out_batch(inputs) if inputs.held_out is not None else None

    def _held_out_batch(self, inputs: DistillInputs) -> tuple[Backbone, Tensor, Tensor]:
        """The fixed network and (Φ_t, g(X̄_t)) of the held-out batch (computed once).

        The network's seed is private (HELD_OUT_SEED), so the run's generator is untouched.
        """
        assert inputs.held_out is not None
        x_t = inputs.held_out[: self.config.batch_size]
        pool, (c, r) = self.config.pool, (inputs.shape.channels, inputs.shape.height)
        net = build_seeded(lambda: create_backbone(pool.arch, c, r, **pool.arch_kwargs),
                           torch.Generator().manual_seed(HELD_OUT_SEED)).to(inputs.device).eval()
        net = self.precision.module(net)
        with torch.no_grad():
            return net, self._feature_map(net)(x_t), inputs.require_teacher()(x_t)

    def _feature_map(self, f: Backbone) -> FeatureMap:
        """φ(x) = [f(x), 1] in float32, the network pass in the run's precision."""
        return lambda x: with_bias_column(self.precision.run(f.features, x))

    def prepare(self, distilled: DistilledModule, callback: Callback) -> None:
        """Algorithm 1 lines 4–6: each pool model trained z ~ U{1..Z} steps on the initial set
        (after the real side's bank, when it has one)."""
        with torch.no_grad():
            x_s, y_s = distilled.support()
        self.real.build_bank(callback)
        self.pool.initialize(x_s, y_s, callback)

    def losses(self, distilled: DistilledModule) -> Iterator[Tensor]:
        j = self.pool.sample()
        # The sampled model in eval mode with BatchNorm folded into its convolutions: the same
        # function, one pass fewer over the real batch's activations (`models.folding`); a copy
        # without gradients, folded anew each step since the model trains between its visits.
        f = fold_batchnorm(self.pool.features(j))
        x_s, y_s = distilled.support()
        x_t, y_t = self.real.sample(self.generator)
        phi = self._feature_map(f)
        with torch.no_grad():
            phi_t = phi(x_t)
        pred = support_prediction(phi_t, phi, x_s, y_s, ridge=self.config.ridge, chunk=self.config.chunk)
        yield squared_error(y_t, pred)
        self._sampled = j

    def after_step(self, distilled: DistilledModule) -> None:
        """Algorithm 1 lines 13–19: the sampled model's inner step on the updated support set."""
        assert self._sampled is not None
        with torch.no_grad():
            x_s, y_s = distilled.support()
        self.pool.step(self._sampled, x_s, y_s)
        self._sampled = None

    def held_out_loss(self, distilled: DistilledModule) -> float | None:
        """Eq. 3 on the fixed held-out batch with the fixed fresh network, per held-out image."""
        if self._held_out is None:
            return None
        net, phi_t, y_t = self._held_out
        with torch.no_grad():
            x_s, y_s = distilled.support()
            pred = support_prediction(phi_t, self._feature_map(net), x_s, y_s, ridge=self.config.ridge,
                                      chunk=self.config.chunk)
        return float(squared_error(y_t, pred)) / phi_t.shape[0]

    def state(self) -> dict[str, Any]:
        return {"pool": self.pool.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.pool.load_state(state["pool"])
