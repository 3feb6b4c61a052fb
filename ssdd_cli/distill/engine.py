"""The outer loop of SSDD Algorithm 1 (lines 7–20), shared by `ssdd` and `krr-st`.

Per step: sample a pool model f (eval mode), build X̃_s and Ỹ_s once, take a real batch and its
cached teacher targets, compute the KRR outer loss (eq. 3) with the support features from a
single forward of X̃_s, step AdamW (linear lr decay) on every distilled tensor, then give the
sampled model its one inner step on the (detached) X̃_s. Φ_t needs no graph: the outer gradient
reaches the distilled tensors only through Φ_s and Ỹ_s, and the pool's weights are frozen during
the outer backward so no weight gradients are computed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.checkpoint import load_checkpoint, save_checkpoint
from ssdd_cli.distill.augment import Augmentation
from ssdd_cli.distill.krr import krr_outer_loss, with_bias_column
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.pool import ModelPool
from ssdd_cli.distill.real import RealSampler
from ssdd_cli.errors import SSDDError
from ssdd_cli.progress import Callback, ProgressEvent, silent

CHECKPOINT_KIND = "distill-checkpoint"


class DivergedError(SSDDError):
    """The outer loss became NaN/Inf; the last good checkpoint is kept."""


@dataclass(frozen=True)
class OuterConfig:
    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.01  # torch's AdamW default; the papers give only "AdamW, lr 1e-3"
    ridge: float = 1e-6
    checkpoint_every: int = 50


class OuterLoop:
    def __init__(self, distilled: DistilledModule, augmentation: Augmentation, pool: ModelPool,
                 real: RealSampler, config: OuterConfig, generator: torch.Generator) -> None:
        self.distilled = distilled
        self.augmentation = augmentation
        self.pool = pool
        self.real = real
        self.config = config
        self.generator = generator
        self.optimizer = torch.optim.AdamW(distilled.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.step = 0
        self.losses: list[float] = []

    def lr_at(self, step: int) -> float:
        """Linear decay from lr to 0 over the run."""
        return self.config.lr * (1 - step / max(1, self.config.steps))

    def support(self) -> tuple[Tensor, Tensor]:
        """X̃_s (m·(A+1), c, h, w) and Ỹ_s (m·(A+1), d_y), with graphs to the distilled tensors."""
        return self.augmentation.expand(self.distilled.images()), self.distilled.targets()

    def outer_step(self) -> float:
        j = self.pool.sample()
        f = self.pool.features(j)
        x_s, y_s = self.support()
        x_t, y_t = self.real.sample(self.generator)
        f.requires_grad_(False)
        try:
            with torch.no_grad():
                phi_t = with_bias_column(f(x_t))
            phi_s = with_bias_column(f(x_s))
            loss = krr_outer_loss(phi_t, y_t, phi_s, y_s, self.config.ridge)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise DivergedError(f"the outer loss became {value} at step {self.step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            f.requires_grad_(True)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.optimizer.step()
        self.pool.step(j, x_s.detach(), y_s.detach())
        self.step += 1
        self.losses.append(value)
        return value

    def state(self) -> dict[str, Any]:
        return {"distilled": self.distilled.state_dict(), "optimizer": self.optimizer.state_dict(),
                "pool": self.pool.state(), "generator": self.generator.get_state(),
                "losses": list(self.losses)}

    def load_state(self, state: dict[str, Any], step: int) -> None:
        self.distilled.load_state_dict(state["distilled"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.pool.load_state(state["pool"])
        self.generator.set_state(state["generator"])  # after the pool: rebuilding it draws seeds
        self.losses = [float(v) for v in state["losses"]]
        self.step = step

    def save(self, path: Path, info: dict[str, Any]) -> None:
        save_checkpoint(path, CHECKPOINT_KIND, self.state(), {**info, "step": self.step})

    def resume(self, path: Path) -> dict[str, Any]:
        state, info = load_checkpoint(path, CHECKPOINT_KIND)
        self.load_state(state, int(info["step"]))
        return info

    def run(self, callback: Callback = silent, checkpoint: Path | None = None,
            info: dict[str, Any] | None = None) -> list[float]:
        """Run to `config.steps`, checkpointing every `checkpoint_every` steps and at the end.

        On a NaN/Inf loss, stop without updating and raise `DivergedError`; the checkpoint on
        disk is the last good state.
        """
        info = info or {}
        start, t0 = self.step, time.perf_counter()
        total = self.config.steps
        while self.step < total:
            try:
                loss = self.outer_step()
            except DivergedError as e:
                where = f"; the last good checkpoint is {checkpoint}" if checkpoint else ""
                raise DivergedError(f"{e}{where}; resume with a lower --lr.") from None
            rate = (self.step - start) / max(1e-9, time.perf_counter() - t0)
            callback(ProgressEvent("distill", self.step, total, {"loss": loss, "steps/s": rate}))
            due = self.step % self.config.checkpoint_every == 0 or self.step == total
            if checkpoint is not None and due:
                self.save(checkpoint, info)
        return self.losses
