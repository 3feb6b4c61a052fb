"""The DM family's shared outer loss: class-by-class distribution matching with Siamese DSA.

Per outer step t (DM's `main_DM.py`, IDC/DSDM's `condense`):

    term.begin(t)                               the step's networks (random / pool / queue)
    for each class c:
        X_c ← B real images of c                 (`ClassSampler`, without replacement)
        S_c ← the decoded synthetic images of c  (`LabelledSet.class_images`)
        ω ← one augmentation draw;  X̃_c, S̃_c = A_ω(X_c), A_ω(S_c)   (Siamese: the same ω)
        ℓ_c ← term.class_loss(c, X̃_c, S̃_c)
    one optimiser step on Σ_c ℓ_c (DM, DataDAM, IID), or one step after each ℓ_c (DSDM, IDM)
    term.after_step(t)                          DSDM's prototype EMA, IDM's network training

What differs between methods is the `MatchTerm`: its networks and its pure loss. The
augmentation parameters come from a generator private to the objective (seeded from the run's),
so the augmentations are reproducible and do not shift the other draws of the run.

Under torchrun every rank runs this loop whole on the same draws (one generator stream), so the
objective is not `sharded`: the engine averages the identical gradients. Networks trained during
the run (pretrained pools, IDM's queue) are broadcast from rank 0 after their training, so GPU
kernels that are not bitwise deterministic cannot make the ranks' networks drift apart.

The held-out signal (`HeldOut`) is the family's common core on validation data: DM's loss
between each class's validation images and its decoded synthetic images under one fixed random
DC ConvNet (private seed), without augmentation, averaged over the classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.distill import dsa
from ssdd_cli.distill.labelled import LabelledSet
from ssdd_cli.distill.objectives.base import Objective
from ssdd_cli.distill.objectives.classes import ClassSampler
from ssdd_cli.distill.objectives.networks import random_matcher
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.errors import UsageError
from ssdd_cli.kit.seeding import draw_seed
from ssdd_cli.progress import Callback, silent


@dataclass(frozen=True)
class MatchingConfig:
    """The shared loop of the DM family.

    real_batch: real images per class and step (B; the papers: 256). A class with fewer images
        gives all of them.
    dsa: the Siamese augmentation strategy ("none" to switch it off); dsa_mode: "dsa" (one op
        group per draw, DC) or "idc" (colour, one other group and cutout, IDC/DSDM).
    per_class_step: one optimiser step per class (DSDM, IDM) instead of one on the class sum.
    syn_max: at most this many decoded synthetic images per class and step, drawn at random
        (IDC/DSDM's `batch_syn_max` = 256); None: all.
    """

    real_batch: int = 256
    dsa: str = dsa.DSA_STRATEGY
    dsa_mode: str = "dsa"
    per_class_step: bool = False
    syn_max: int | None = None

    def __post_init__(self) -> None:
        if self.real_batch < 2:
            raise UsageError(f"the real batch per class must hold at least 2 images, got {self.real_batch}.",
                             option="batch_size")
        if self.dsa != "none":
            dsa.parse_strategy(self.dsa)
        dsa.check_mode(self.dsa_mode)
        if self.syn_max is not None and self.syn_max < 1:
            raise UsageError(f"the synthetic batch cap must be positive, got {self.syn_max}.",
                             option="syn_max")


class MatchTerm:
    """What one DM-family method matches, with the networks it matches through.

    `class_loss` receives the augmented real batch X̃_c (B, c, h, w, no gradient) and synthetic
    batch S̃_c (K, c, h, w, with a graph to the distilled images) and returns a scalar. Real-side
    forward passes should run without gradients.
    """

    def prepare(self, callback: Callback) -> None:
        """Before the first step of a fresh run: e.g. train a pool of networks."""

    def begin(self, step: int) -> None:
        """Choose the networks of outer step `step` (0-based)."""

    def class_loss(self, c: int, real: Tensor, syn: Tensor) -> Tensor:
        raise NotImplementedError

    def after_step(self, step: int, distilled: LabelledSet, augment: Augmenter) -> None:
        """After the optimiser step(s) of outer step `step`."""

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore `state()`."""


class Augmenter:
    """Draws Siamese augmentations from its own generator."""

    def __init__(self, strategy: str, mode: str, generator: torch.Generator) -> None:
        self.strategy, self.mode, self.generator = strategy, mode, generator

    def draw(self, size: tuple[int, int]) -> dsa.Augmentation:
        """One draw, shared by every image it is applied to (empty for strategy "none")."""
        if self.strategy == "none":
            return ()
        return dsa.sample(self.strategy, self.mode, size, self.generator, shared=True)


HELD_OUT_SEED = 0  # the fixed random network of the held-out signal


class HeldOut:
    """Σ_c ‖μ f(V_c) − μ f(S_c)‖² / C over the classes c with validation images V_c, f a fixed
    random DC ConvNet: how far the synthetic set is from held-out data of its classes."""

    def __init__(self, images: Tensor, labels: Tensor, classes: int, width: int, batch: int = 512) -> None:
        c, r = images.shape[1], images.shape[2]
        self.net = random_matcher(c, r, width, torch.Generator().manual_seed(HELD_OUT_SEED), images.device)
        with torch.no_grad():
            feats = torch.cat([self.net.features(x) for x in images.split(batch)])
        labels = labels.to(images.device)
        self.present = [k for k in range(classes) if bool((labels == k).any())]
        self.means = {k: feats[labels == k].mean(dim=0) for k in self.present}

    @torch.no_grad()
    def loss(self, distilled: LabelledSet) -> float | None:
        if not self.present:
            return None
        total = 0.0
        for k in self.present:
            syn = self.net.features(distilled.class_images(k)).mean(dim=0)
            total += float((self.means[k] - syn).pow(2).sum())
        return total / len(self.present)


class MatchingObjective(Objective):
    """The loop above over a `LabelledSet`, for any `MatchTerm`."""

    def __init__(self, config: MatchingConfig, term: MatchTerm, sampler: ClassSampler,
                 generator: torch.Generator, held_out: HeldOut | None = None) -> None:
        self.config, self.term, self.sampler, self.generator = config, term, sampler, generator
        self.held_out = held_out
        private = torch.Generator().manual_seed(draw_seed(generator))
        self.augment = Augmenter(config.dsa, config.dsa_mode, private)
        self.step = 0

    def prepare(self, distilled: DistilledModule, callback: Callback = silent) -> None:
        self.term.prepare(callback)

    def losses(self, distilled: DistilledModule) -> Iterator[Tensor]:
        assert isinstance(distilled, LabelledSet)
        distilled.project_()
        self.term.begin(self.step)
        total: Tensor | None = None
        for c in range(distilled.classes):
            real = self.sampler.sample(c, self.config.real_batch, self.generator)
            syn = distilled.class_images(c)
            cap = self.config.syn_max
            if cap is not None and syn.shape[0] > cap:
                syn = syn[torch.randperm(syn.shape[0], generator=self.generator)[:cap].to(syn.device)]
            omega = self.augment.draw((real.shape[2], real.shape[3]))
            loss = self.term.class_loss(c, dsa.apply(omega, real), dsa.apply(omega, syn))
            if self.config.per_class_step:
                yield loss
            else:
                total = loss if total is None else total + loss
        if total is not None:
            yield total

    def after_step(self, distilled: DistilledModule) -> None:
        assert isinstance(distilled, LabelledSet)
        self.term.after_step(self.step, distilled, self.augment)
        self.step += 1

    def held_out_loss(self, distilled: DistilledModule) -> float | None:
        assert isinstance(distilled, LabelledSet)
        return self.held_out.loss(distilled) if self.held_out is not None else None

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "augment": self.augment.generator.get_state(), "term": self.term.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.augment.generator.set_state(state["augment"])
        self.term.load_state(state["term"])
