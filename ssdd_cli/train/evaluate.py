"""Run one protocol over several seeds and summarise it: `evaluate(...) -> EvalReport`."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ssdd_cli.data import ImageSet, normalize
from ssdd_cli.errors import DataError, UsageError
from ssdd_cli.models import Backbone
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.train.batchnorm import BATCHNORM_RULES, DEFAULT_BATCHNORM, has_batchnorm, recompute_batchnorm
from ssdd_cli.train.protocols import BACKBONE, EvalContext, ProtocolResult, get_protocol


@dataclass(frozen=True)
class MetricSummary:
    """One metric over seeds: the per-seed values, their mean and (population) std.

    The std is numpy's default (ddof = 0), as in the distillation papers' "mean ± std over
    three runs"; one seed gives std 0.
    """

    name: str
    values: tuple[float, ...]
    mean: float
    std: float

    @classmethod
    def of(cls, name: str, values: list[float]) -> MetricSummary:
        return cls(name, tuple(values), statistics.fmean(values), statistics.pstdev(values))


@dataclass(frozen=True)
class EvalReport:
    """The result of `evaluate`: protocol, target, shots, seeds, one summary per metric, and the
    protocol's settings (its config, as a JSON-ready dict), so a result says how it was measured."""

    protocol: str
    target: str
    shots: int | None
    seeds: tuple[int, ...]
    metrics: tuple[MetricSummary, ...]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: {"protocol", "config", "target", "shots", "seeds", "seconds",
        "metrics": {name: {"mean", "std", "values"}}}."""
        return {
            "protocol": self.protocol,
            "config": self.config,
            "target": self.target,
            "shots": self.shots,
            "seeds": list(self.seeds),
            "seconds": self.seconds,
            "metrics": {m.name: {"mean": m.mean, "std": m.std, "values": list(m.values)}
                        for m in self.metrics},
        }


@dataclass
class Probed:
    """A backbone made ready to probe one target, shared by every `evaluate` call on it: the
    backbone and teacher under the BatchNorm rule (`prepare`), and the features of each split
    computed so far (so `linear`, `knn` and `align` on one backbone extract them once)."""

    backbone: Backbone
    teacher: Backbone | None
    target: ImageSet
    batchnorm: str
    features: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)


def prepare(backbone: Backbone, target: ImageSet, *, device: torch.device | str = "cpu",
            teacher: Backbone | None = None, batchnorm: str = DEFAULT_BATCHNORM) -> Probed:
    """`backbone` (and `teacher`) ready to probe `target` under the BatchNorm rule `batchnorm`
    (see `evaluate`); refuses, in one sentence, an unknown rule or a network whose input shape
    differs from the target's."""
    if batchnorm not in BATCHNORM_RULES:
        raise UsageError(f"unknown BatchNorm rule {batchnorm!r}; choose one of: "
                         f"{', '.join(BATCHNORM_RULES)}.", option="batchnorm")
    check_input_shape(backbone, target, "backbone")
    if teacher is not None:
        check_input_shape(teacher, target, "teacher")
    if batchnorm == "target":
        images = normalize(target.train, target.mean, target.std)
        given = backbone
        if has_batchnorm(backbone):
            backbone = recompute_batchnorm(backbone, images, device=device)
        if teacher is given:
            teacher = backbone
        elif teacher is not None and has_batchnorm(teacher):
            teacher = recompute_batchnorm(teacher, images, device=device)
    return Probed(backbone, teacher, target, batchnorm)


def evaluate(
    backbone: Backbone | Probed,
    target: ImageSet,
    protocol: str,
    *,
    seeds: int = 1,
    shots: int | None = None,
    fraction: float | None = None,
    device: torch.device | str = "cpu",
    teacher: Backbone | None = None,
    callback: Callback = silent,
    config: Any = None,
    first_seed: int = 0,
    batchnorm: str = DEFAULT_BATCHNORM,
) -> EvalReport:
    """Score `backbone` on `target` with `protocol` for seeds first_seed … first_seed+seeds−1.

    backbone (and teacher): modules with `features(x) -> (B, d)` for images (B, c, r, r) of
    the target's shape. The backbone is never modified (fine-tuning works on a copy). Or a
    `Probed` from `prepare(backbone, target, ...)`, to run several protocols on one backbone
    with one BatchNorm recalibration and one feature extraction (its teacher and rule apply).
    config: the protocol's own config (e.g. `LinearProbeConfig(epochs=50)`); None: its defaults.
    shots / fraction: train the probe on k labelled images per class, or on a stratified fraction
        in (0, 1] of the labelled train images (limited labels, e.g. 0.01), drawn with each seed.
    batchnorm: "target" (default) probes a copy of the backbone whose BatchNorm statistics are
        recomputed on the target's training images, the same rule for every backbone (a random
        initialisation included; `train.batchnorm`), and so for the teacher `align` compares
        with; "stored" probes the statistics each network carries.
    Refuses, with a one-sentence user error: an unknown protocol, a backbone or teacher whose
    input shape differs from the target's, a labelled protocol on an unlabelled target, `align`
    without a teacher, and `shots` where it does not apply or exceeds a class.
    """
    spec = get_protocol(protocol)
    if spec.input != BACKBONE:
        raise UsageError(f"the {protocol} protocol trains fresh networks on a labelled set, not on a "
                         "backbone; run it with train.classify.classify (ssdd eval ARTIFACT --protocol "
                         f"{protocol}).", option="protocol")
    if config is None:
        config = spec.config()
    elif not isinstance(config, spec.config):
        raise TypeError(f"protocol {protocol!r} takes a {spec.config.__name__}, "
                        f"not a {type(config).__name__}")
    if seeds < 1:
        raise UsageError(f"evaluation needs at least one seed, got {seeds}.", option="seeds")
    if shots is not None and shots < 1:
        raise UsageError(f"few-shot evaluation needs at least one shot per class, got {shots}.",
                         option="shots")
    if shots is not None and not spec.uses_shots:
        raise UsageError(f"shots do not apply to the {protocol} protocol; drop them.", option="shots")
    if fraction is not None and not (0 < fraction <= 1 and spec.uses_shots and shots is None):
        why = ("a fraction of the labels is in (0, 1]" if not 0 < fraction <= 1 else
               "give shots or a fraction of the labels, not both" if shots is not None else
               f"the {protocol} protocol does not train on labels")
        raise UsageError(f"cannot probe with {fraction} of the labels: {why}.", option="fraction")
    if spec.needs_labels and (target.train_labels is None or target.test_labels is None):
        raise DataError(f"target {target.name} has no labels, so the {protocol} protocol cannot "
                        "score it; use the align protocol.")
    if isinstance(backbone, Probed):
        if backbone.target.name != target.name:
            raise ValueError(f"the backbone was prepared for {backbone.target.name}, not {target.name}")
        probed = backbone
    else:
        probed = prepare(backbone, target, device=device, teacher=teacher, batchnorm=batchnorm)
    if spec.needs_teacher and probed.teacher is None:
        raise UsageError(f"the {protocol} protocol compares with a teacher; give one.", option="teacher")
    ctx = EvalContext(probed.backbone, probed.target, torch.device(device), shots, probed.teacher, callback,
                      fraction=fraction, _cache=probed.features)
    start = time.perf_counter()
    per_seed: list[list[ProtocolResult]] = []
    seed_list = tuple(range(first_seed, first_seed + seeds))
    for i, seed in enumerate(seed_list):
        per_seed.append(spec.run(ctx, config, seed))
        callback(ProgressEvent(f"eval {protocol}", i + 1, seeds))
    names = [r.metric for r in per_seed[0]]
    metrics = tuple(MetricSummary.of(name, [res[k].value for res in per_seed])
                    for k, name in enumerate(names))
    settings = {**dataclasses.asdict(config), "batchnorm": probed.batchnorm,
                **({"fraction": fraction} if fraction is not None else {})}
    settings = json.loads(json.dumps(settings, default=str))
    return EvalReport(protocol, target.name, shots, seed_list, metrics,
                      time.perf_counter() - start, settings)


def check_input_shape(net: nn.Module, target: ImageSet, what: str) -> None:
    """UsageError when `net`'s in_channels / image_size (if it declares them) differ from the
    target's channels / resolution."""
    channels = getattr(net, "in_channels", None)
    size = getattr(net, "image_size", None)
    if channels is not None and channels != target.channels:
        raise UsageError(
            f"the {what} takes {channels}-channel images but target {target.name} has "
            f"{target.channels}; evaluate on a {channels}-channel target or use a {what} trained "
            f"on {target.channels}-channel data."
        )
    if size is not None and size != target.resolution:
        raise UsageError(
            f"the {what} takes {size}×{size} images but target {target.name} is loaded at "
            f"{target.resolution}×{target.resolution}; load it at resolution {size}.", option="resolution"
        )
