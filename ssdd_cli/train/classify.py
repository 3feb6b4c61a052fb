"""`classify`: the supervised metric of dataset distillation, on a labelled set.

A fresh network is trained with cross-entropy on labelled images (a labelled artifact: the DM
family's sets, or the real images a selection keeps with their labels; or a source's whole
training split), and its own predictions are scored on the target's test split: the number the
DC, DSA, DM, IDM, DataDAM and DSDM papers report. Their evaluation (DC's `evaluate_synset`, as
run by DSA and DM): a ConvNet of width 128 at every block with instance norm and a linear
classifier on the flattened last map (depth 3 at 28 and 32 px), SGD lr 0.01, momentum 0.9,
weight decay 5e-4, minibatches of 256, 1,000 epochs (DC's own code: 300) with the lr ×0.1 at
half, DSA (`color_crop_cutout_flip_scale_rotate`, parameters per image) on every minibatch, the
final network; the papers average several fresh networks, here one per seed (mean ± std).

The network's training is `train.pretrain.fit`, the loop every pretraining shares.
"""

from __future__ import annotations

import dataclasses
import json
import time

import torch
from torch import Tensor

from ssdd_cli.data import ImageSet, normalize
from ssdd_cli.errors import DataError, UsageError
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.train.evaluate import EvalReport, MetricSummary
from ssdd_cli.train.linear import accuracy
from ssdd_cli.train.pretrain import fit
from ssdd_cli.train.protocols.classify import ClassifyConfig

PROTOCOL = "classify"


def check_labelled(labels: Tensor | None, what: str, target: ImageSet) -> Tensor:
    """The labels, or a one-sentence DataError when there are none (or the target has none)."""
    if labels is None:
        raise DataError(f"{what} has no class labels, so the classify protocol cannot train on it; "
                        "classify a labelled artifact (the DM family's, or a random or kmeans selection "
                        "of a labelled source).")
    if target.test_labels is None:
        raise DataError(f"target {target.name} has no labels, so classify cannot score it; "
                        "use a labelled target.")
    if labels.numel() and int(labels.max()) >= (target.classes or 0):
        raise DataError(f"{what} has labels up to {int(labels.max())}, but target {target.name} has "
                        f"{target.classes} classes; classify it on the source it was distilled from.")
    return labels


def classify(
    images: Tensor,
    labels: Tensor | None,
    target: ImageSet,
    *,
    what: str = "the set",
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    config: ClassifyConfig | None = None,
    seeds: int = 1,
    first_seed: int = 0,
    device: torch.device | str = "cpu",
    precision: Precision = FP32,
    callback: Callback = silent,
) -> EvalReport:
    """Train one fresh network per seed on (images, labels) and score it on `target`'s test split.

    images: (m, c, r, r) normalised with (mean, std) (an artifact's images: its source's
        normalisation; default the target's); labels: (m,) int64 class indices.
    what: how errors name the set ("artifact f.ssdd"). precision: of the network's passes.
    Returns an EvalReport with one metric, "accuracy" (of the network's own head).
    """
    config = config or ClassifyConfig()
    y = check_labelled(labels, what, target)
    if seeds < 1:
        raise UsageError(f"evaluation needs at least one seed, got {seeds}.", option="seeds")
    if tuple(images.shape[1:]) != (target.channels, target.resolution, target.resolution):
        raise UsageError(f"{what} holds {tuple(images.shape[1:])} images but target {target.name} is "
                         f"{target.channels}×{target.resolution}×{target.resolution}; classify it on "
                         "its own source.")
    mean = target.mean if mean is None else mean
    std = target.std if std is None else std
    dev = torch.device(device)
    test = normalize(target.test, mean, std)
    start = time.perf_counter()
    values = []
    seed_list = tuple(range(first_seed, first_seed + seeds))
    for i, seed in enumerate(seed_list):
        stage = f"classify (network {i + 1} of {seeds})"

        def progress(event: ProgressEvent, stage: str = stage) -> None:
            callback(dataclasses.replace(event, stage=stage))

        network, _ = fit(images, None, y, config.training(target.resolution, seed),
                         in_channels=target.channels, image_size=target.resolution, device=dev,
                         callback=progress, num_classes=target.classes, precision=precision)
        with torch.no_grad():
            logits = torch.cat([precision.run(network, x.to(dev)) for x in test.split(512)])
        assert target.test_labels is not None  # check_labelled
        values.append(accuracy(logits.argmax(dim=1).cpu(), target.test_labels))
    settings = json.loads(json.dumps({**dataclasses.asdict(config), "precision": precision.name}))
    return EvalReport(PROTOCOL, target.name, None, seed_list, (MetricSummary.of("accuracy", values),),
                      time.perf_counter() - start, settings)
