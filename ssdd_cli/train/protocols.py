"""Evaluation protocols and their registry: `linear`, `finetune`, `knn`, `align`.

A protocol is a function `(ctx: EvalContext, seed: int) -> list[ProtocolResult]`, registered
with `@register_protocol(name)`. It trains on the target's train split only, never looks at the
test split until the final model scores it once, and may tune only on the val split. Every
backbone sees the target's images normalised with the target's own mean/std (the usual transfer
convention; KRR-ST normalises each target with its statistics).

`shots=k` (few-shot) restricts the labelled train set to k images per class, drawn with the
seed; it applies to `linear`, `knn` and `finetune`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdd_cli.data import ImageSet, normalize
from ssdd_cli.data.augment import random_crop_flip
from ssdd_cli.errors import UsageError
from ssdd_cli.models import Backbone, extract_features
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.train._rng import cpu_generator, seeded
from ssdd_cli.train.cka import linear_cka
from ssdd_cli.train.knn import knn_predict
from ssdd_cli.train.linear import LinearProbe, LinearProbeConfig, accuracy
from ssdd_cli.train.pretrain import TrainingDiverged
from ssdd_cli.train.regression import DEFAULT_RIDGES, LinearMap, mean_squared_error


@dataclass(frozen=True)
class FinetuneConfig:
    """KRR-ST's fine-tuning (§4.1): the whole network plus a new linear head, SGD lr 0.01,
    momentum 0.9, weight decay 5e-4, cosine decay over `steps`, minibatches of 256, random crop
    (zero padding) and horizontal flip. KRR-ST runs 10,000 (CIFAR) or 5,000 steps; the default
    here is small enough for a CPU. `padding` None means resolution // 8 (KRR-ST's 4 px at 32 px).
    """

    steps: int = 100
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    padding: int | None = None
    flip: bool = True


@dataclass(frozen=True)
class KNNConfig:
    """k-NN on cosine similarity: k = 20 neighbours voting with weight exp(s / 0.07)
    (Wu et al., 2018; DINO's evaluation); `temperature=None` is a plain majority vote."""

    k: int = 20
    temperature: float | None = 0.07


@dataclass(frozen=True)
class AlignConfig:
    """`align`: the ridge grid of the feature map (chosen on val) and at most `max_fit` train
    images to fit it (a fixed random subset beyond that, to bound the d×d solve)."""

    ridges: tuple[float, ...] = DEFAULT_RIDGES
    max_fit: int = 10_000


@dataclass(frozen=True)
class EvalConfig:
    """Every protocol's recipe, passed by value."""

    linear: LinearProbeConfig = field(default_factory=LinearProbeConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    knn: KNNConfig = field(default_factory=KNNConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    feature_batch_size: int = 512


@dataclass(frozen=True)
class ProtocolResult:
    """One number a protocol reports for one seed, e.g. ("linear", "accuracy", 0.91)."""

    protocol: str
    metric: str
    value: float


@dataclass
class EvalContext:
    """What a protocol sees: the backbone, the target, the options, and a feature cache.

    Features of a split are computed once (frozen backbone, eval mode) and shared by all seeds.
    """

    backbone: Backbone
    target: ImageSet
    device: torch.device
    config: EvalConfig = field(default_factory=EvalConfig)
    shots: int | None = None
    teacher: Backbone | None = None
    callback: Callback = silent
    _cache: dict[tuple[str, str], Tensor] = field(default_factory=dict, repr=False)

    def images(self, split: str) -> Tensor:
        """Raw images (n, c, r, r) in [0, 1] of "train", "val" or "test"."""
        images: Tensor = getattr(self.target, split)
        return images

    def labels(self, split: str) -> Tensor:
        """Labels (n,) int64 of a split (protocols that need labels are refused earlier)."""
        labels: Tensor | None = getattr(self.target, f"{split}_labels")
        assert labels is not None
        return labels

    def features(self, split: str, *, teacher: bool = False) -> Tensor:
        """Features (n, d) on the device of the backbone (or the teacher) for a whole split."""
        key = ("teacher" if teacher else "backbone", split)
        if key not in self._cache:
            net = self.teacher if teacher else self.backbone
            assert net is not None
            self._cache[key] = _split_features(net, self.images(split), self.target,
                                               self.device, self.config.feature_batch_size)
        return self._cache[key]

    def train_indices(self, seed: int) -> Tensor:
        """Indices (n',) of the labelled train images used: all, or `shots` per class."""
        labels = self.labels("train")
        if self.shots is None:
            return torch.arange(labels.numel())
        return few_shot_indices(labels, self.shots, cpu_generator(seed))

    @property
    def num_classes(self) -> int:
        if self.target.classes is not None:
            return int(self.target.classes)
        return int(self.labels("train").max()) + 1


def few_shot_indices(labels: Tensor, shots: int, generator: torch.Generator) -> Tensor:
    """`shots` indices per class of labels (n,), drawn without replacement; sorted (k·C,)."""
    picked = []
    for c in torch.unique(labels).tolist():
        members = (labels == c).nonzero().flatten()
        if members.numel() < shots:
            raise UsageError(
                f"--shots {shots} asks for more images than class {c} has in the train split "
                f"({members.numel()}); choose --shots {members.numel()} or fewer."
            )
        picked.append(members[torch.randperm(members.numel(), generator=generator)[:shots]])
    return torch.cat(picked).sort().values


def _split_features(net: Backbone, images: Tensor, target: ImageSet, device: torch.device,
                    batch_size: int) -> Tensor:
    """Features (n, d) of raw images (n, c, r, r), normalised a chunk at a time."""
    chunk = max(batch_size, 4096)
    parts = [extract_features(net, normalize(images[i:i + chunk], target.mean, target.std),
                              batch_size=batch_size, device=device)
             for i in range(0, images.shape[0], chunk)]
    if not parts:
        return torch.zeros(0, net.feature_dim, device=device)
    return torch.cat(parts)


# ---------------------------------------------------------------------------- the registry

ProtocolFn = Callable[[EvalContext, int], list[ProtocolResult]]


@dataclass(frozen=True)
class Protocol:
    """A registered protocol and what it needs: labels, a teacher, whether `shots` applies."""

    name: str
    run: ProtocolFn
    needs_labels: bool
    needs_teacher: bool
    uses_shots: bool
    summary: str


_PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(
    name: str, *, needs_labels: bool = True, needs_teacher: bool = False, uses_shots: bool = True
) -> Callable[[ProtocolFn], ProtocolFn]:
    """Register `fn(ctx, seed) -> list[ProtocolResult]` under `name` (a name once only)."""

    def decorate(fn: ProtocolFn) -> ProtocolFn:
        if name in _PROTOCOLS:
            raise ValueError(f"protocol {name!r} is already registered")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _PROTOCOLS[name] = Protocol(name, fn, needs_labels, needs_teacher, uses_shots, summary)
        return fn

    return decorate


def list_protocols() -> list[str]:
    """The registered protocol names, sorted."""
    return sorted(_PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The protocol registered as `name`; UsageError listing the valid names otherwise."""
    try:
        return _PROTOCOLS[name]
    except KeyError:
        raise UsageError(f"unknown protocol {name!r}; choose one of: "
                         f"{', '.join(list_protocols())}.") from None


# ---------------------------------------------------------------------------- the protocols


@register_protocol("linear")
def linear_protocol(ctx: EvalContext, seed: int) -> list[ProtocolResult]:
    """Linear evaluation: frozen features, a linear classifier (SSDD paper, Appendix A.1)."""
    idx = ctx.train_indices(seed)
    train = ctx.features("train")[idx.to(ctx.device)]
    probe = LinearProbe(ctx.config.linear).fit(
        train, ctx.labels("train")[idx], ctx.num_classes, generator=cpu_generator(seed),
        callback=ctx.callback, stage=f"linear (seed {seed})",
    )
    acc = accuracy(probe.predict(ctx.features("test")), ctx.labels("test"))
    return [ProtocolResult("linear", "accuracy", acc)]


@register_protocol("knn")
def knn_protocol(ctx: EvalContext, seed: int) -> list[ProtocolResult]:
    """k-nearest neighbours on frozen features (cosine similarity, weighted vote)."""
    idx = ctx.train_indices(seed)
    cfg = ctx.config.knn
    pred = knn_predict(ctx.features("train")[idx.to(ctx.device)], ctx.labels("train")[idx],
                       ctx.features("test"), num_classes=ctx.num_classes, k=cfg.k,
                       temperature=cfg.temperature)
    return [ProtocolResult("knn", "accuracy", accuracy(pred, ctx.labels("test")))]


@register_protocol("finetune")
def finetune_protocol(ctx: EvalContext, seed: int) -> list[ProtocolResult]:
    """Fine-tuning: the whole network and a new head, with crop and flip (KRR-ST §4.1)."""
    cfg = ctx.config.finetune
    idx = ctx.train_indices(seed)
    images, labels = ctx.images("train")[idx], ctx.labels("train")[idx]
    net = copy.deepcopy(ctx.backbone).to(ctx.device)
    with seeded(seed, ctx.device):
        head = nn.Linear(net.feature_dim, ctx.num_classes).to(ctx.device)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1))
    generator = cpu_generator(seed)
    padding = cfg.padding if cfg.padding is not None else ctx.target.resolution // 8
    n = images.shape[0]
    batch = min(cfg.batch_size, n)
    order = torch.zeros(0, dtype=torch.long)
    stage = f"finetune (seed {seed})"
    net.train()
    with seeded(seed + 1, ctx.device):  # dropout and friends
        for step in range(cfg.steps):
            if order.numel() < batch:  # a fresh epoch: reshuffle (KRR-ST's infinite loader)
                order = torch.randperm(n, generator=generator)
            pick, order = order[:batch], order[batch:]
            x = random_crop_flip(images[pick].to(ctx.device), padding=padding, flip=cfg.flip,
                                 generator=generator)
            x = normalize(x, ctx.target.mean, ctx.target.std)
            loss = F.cross_entropy(head(net.features(x)), labels[pick].to(ctx.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if not math.isfinite(float(loss.detach())):
                raise TrainingDiverged(
                    f"fine-tuning diverged at step {step + 1} (the loss is not finite); the "
                    "backbone's features may be degenerate, so compare with --protocol linear."
                )
            ctx.callback(ProgressEvent(stage, step + 1, cfg.steps, {"loss": float(loss.detach())}))
    test = _split_features(net, ctx.images("test"), ctx.target, ctx.device,
                           ctx.config.feature_batch_size)
    with torch.no_grad():
        pred = head(test).argmax(dim=1)
    return [ProtocolResult("finetune", "accuracy", accuracy(pred, ctx.labels("test")))]


@register_protocol("align", needs_labels=False, needs_teacher=True, uses_shots=False)
def align_protocol(ctx: EvalContext, seed: int) -> list[ProtocolResult]:
    """Label-free agreement with the teacher on the target's test images: linear CKA and MSE.

    CKA compares the two feature spaces directly (any widths). MSE needs one space: an affine
    least-squares map from backbone to teacher features is fitted on the train split (ridge
    picked on val, see `LinearMap`), and the MSE of mapped test features against the teacher's
    is reported, in the teacher's feature units. Deterministic: the seed changes nothing.
    """
    cfg = ctx.config.align
    cka = linear_cka(ctx.features("test"), ctx.features("test", teacher=True))
    n = ctx.images("train").shape[0]
    fit = torch.arange(n)
    if n > cfg.max_fit:  # a fixed subset, the same for every seed
        fit = torch.randperm(n, generator=cpu_generator(0))[:cfg.max_fit].sort().values
    fit = fit.to(ctx.device)
    has_val = ctx.images("val").shape[0] > 0
    mapping = LinearMap(cfg.ridges).fit(
        ctx.features("train")[fit], ctx.features("train", teacher=True)[fit],
        ctx.features("val") if has_val else None,
        ctx.features("val", teacher=True) if has_val else None,
    )
    mse = mean_squared_error(mapping.predict(ctx.features("test")),
                             ctx.features("test", teacher=True))
    return [ProtocolResult("align", "cka", cka), ProtocolResult("align", "mse", mse)]
