"""`classify`: the supervised metric, registered with its config; it trains on a labelled set,
so it runs through `train.classify.classify`, never on a backbone's `EvalContext`."""

from __future__ import annotations

from dataclasses import dataclass

from ssdd_cli.errors import UsageError
from ssdd_cli.models.convnet import NORMS, default_depth
from ssdd_cli.train.protocols.base import LABELLED_SET, EvalContext, ProtocolResult, register_protocol
from ssdd_cli.train.recipe import PretrainConfig


@dataclass(frozen=True)
class ClassifyConfig:
    """The DM family's evaluation (`train.classify`): DC's ConvNet of `width` with `norm` ("in":
    instance norm), SGD `lr` 0.01, momentum 0.9, weight decay 5e-4, minibatches of 256, `epochs`
    1,000 (DSA, DM and after; DC's code runs 300) with the lr ×0.1 at half, `augment` "dsa" (the
    papers) or "none"."""

    epochs: int = 1000
    width: int = 128
    norm: str = "in"
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: str = "dsa"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise UsageError(f"unknown ConvNet norm {self.norm!r}; choose one of: {', '.join(NORMS)}.",
                             option="norm")

    def training(self, resolution: int, seed: int) -> PretrainConfig:
        """The network's recipe at this resolution (DC's ConvNet depth: 3 at 28 and 32 px)."""
        widths = (self.width,) * default_depth(resolution)
        return PretrainConfig(arch="convnet", arch_kwargs={"widths": widths, "norm": self.norm},
                              epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              momentum=self.momentum, weight_decay=self.weight_decay, seed=seed,
                              schedule="step", augment=self.augment)


@register_protocol("classify", config=ClassifyConfig, uses_shots=False, input=LABELLED_SET)
def classify_protocol(ctx: EvalContext, config: ClassifyConfig, seed: int) -> list[ProtocolResult]:
    """Fresh networks trained with cross-entropy on a labelled set, scored on the test split."""
    raise UsageError("classify trains fresh networks on a labelled artifact, not on a backbone; give it "
                     "an artifact (`ssdd eval ARTIFACT --protocol classify`).")
