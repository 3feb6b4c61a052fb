"""The Python API at the package top (`import ssdd_cli as ssdd`; docs/python-api.md).

    ssdd.train_teacher("digits", "teacher.safetensors")          # the teacher (a Backbone)
    art = ssdd.distill("digits", "digits.ssdd", steps=300)      # an Artifact; options as keywords
    data = art.dataset()                                         # a torch Dataset of (image, target)
    net = ssdd.pretrain(art, "convnet.safetensors", epochs=50)   # a Backbone (an nn.Module)
    report = ssdd.evaluate(net, "digits", protocol="knn")        # an EvalReport
    weights = ssdd.export_state_dict(net)                        # plain {name: tensor}

Every keyword left out (or None) takes the source's preset value, as on the command line; the
functions do what the commands do (`ssdd distill`, `ssdd pretrain`, `ssdd eval`), without the
terminal: progress goes to `callback` (a `ProgressEvent` handler; silent by default), errors are
`ssdd_cli.errors.SSDDError`s with one-sentence messages. `evaluate` never trains a teacher.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssdd_cli.artifact import DistilledSet, materialize
from ssdd_cli.bundle import Bundle, Manifest, load_bundle
from ssdd_cli.data import load_source, source_preset
from ssdd_cli.device import resolve_device
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.errors import UsageError
from ssdd_cli.io import check_writable, sha256_file
from ssdd_cli.kit.precision import Precision, resolve_precision
from ssdd_cli.models import Backbone, load_backbone
from ssdd_cli.models.export import backbone_spec, export_state_dict
from ssdd_cli.progress import Callback, silent
from ssdd_cli.teacher import TeacherConfig, load_teacher, save_teacher
from ssdd_cli.teacher import train_teacher as train_teacher_on
from ssdd_cli.teacher.targets import DEFAULT_TARGETS
from ssdd_cli.train.batchnorm import DEFAULT_BATCHNORM
from ssdd_cli.train.diagnostics import Drift
from ssdd_cli.train.evaluate import EvalReport
from ssdd_cli.train.evaluate import evaluate as evaluate_on
from ssdd_cli.train.recipe import PretrainConfig
from ssdd_cli.train.recorded import pretrain_bundle

PathLike = str | os.PathLike[str]

__all__ = ["Artifact", "ArtifactDataset", "PretrainResult", "backbone_spec", "distill", "evaluate",
           "export_state_dict", "load_artifact", "pretrain", "pretrain_artifact", "train_teacher"]


@dataclass(frozen=True)
class Artifact:
    """A `.ssdd` artifact: its manifest and tensors (`bundle`), where it was read from (`path`)."""

    bundle: Bundle
    path: Path | None = None

    @property
    def manifest(self) -> Manifest:
        return self.bundle.manifest

    @property
    def m(self) -> int:
        """The number of stored images."""
        return self.bundle.manifest.m

    def materialize(self, device: torch.device | str = "cpu") -> DistilledSet:
        """Every (augmented) image with its target or label (SSDD Algorithm 2)."""
        return materialize(self.bundle, device)

    def dataset(self, device: torch.device | str = "cpu") -> ArtifactDataset:
        """The artifact's training pairs as a `torch.utils.data.Dataset`."""
        return ArtifactDataset(self, device)

    def __repr__(self) -> str:
        man = self.manifest
        return f"Artifact({man.method}, m={self.m}, source={man.source.name!r}, path={self.path})"


class ArtifactDataset(Dataset[tuple[Tensor, Tensor]]):
    """The (image, target) pairs an artifact trains a backbone on: every view of every image.

    image: (c, h, w), normalised with the source's `mean` and `std` (as the backbones take it);
    target: the regression target (d_y,) float32 of a self-supervised artifact, or the class
    label (an int64 scalar) of a labelled one (the DM family). `views` names the view of each
    block of m consecutive items (view-major, as `materialize` orders them).
    """

    def __init__(self, artifact: Artifact | Bundle, device: torch.device | str = "cpu") -> None:
        bundle = artifact.bundle if isinstance(artifact, Artifact) else artifact
        ds = materialize(bundle, device)
        self.images = ds.images
        targets = ds.targets if ds.targets is not None else ds.labels
        assert targets is not None  # an artifact stores targets or labels (format v1)
        self.targets: Tensor = targets
        self.labelled = ds.targets is None
        self.mean, self.std, self.views = ds.mean, ds.std, ds.views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.targets[index]


def load_artifact(path: PathLike) -> Artifact:
    """Read and check a `.ssdd` file."""
    return Artifact(load_bundle(path), Path(path))


def train_teacher(source: str, output: PathLike, *, arch: str | None = None, epochs: int | None = None,
            batch_size: int | None = None, lr: float | None = None, preset: str | None = None, seed: int = 0,
            device: str = "auto", data_root: PathLike | None = None, download: bool = False,
            callback: Callback = silent) -> Backbone:
    """Train the self-supervised (Barlow Twins) teacher of `source` and save it to `output`
    (`ssdd teacher`); returns the teacher backbone."""
    check_writable(output)
    chosen = source_preset(source, preset)
    config = TeacherConfig.from_preset(chosen.teacher, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                                       seed=seed)
    root = Path(data_root) if data_root is not None else None
    images = load_source(source, data_root=root, download=download, resolution=chosen.resolution)
    result = train_teacher_on(images.source, images.mean, images.std, config, device=resolve_device(device),
                           callback=callback)
    save_teacher(output, result, source=source, mean=images.mean, std=images.std)
    return result.backbone.eval()


def distill(source: str, output: PathLike, *, method: str = "ssdd", budget: int | None = None,
            teacher: PathLike | None = None, preset: str | None = None, seed: int = 0, device: str = "auto",
            data_root: PathLike | None = None, download: bool = False, resume: bool = False,
            target_scaling: str = DEFAULT_TARGETS, callback: Callback = silent, **options: Any) -> Artifact:
    """Distill `source` into the artifact `output` (`ssdd distill`).

    budget: N in images. teacher: a teacher file (None: the source's cached teacher, trained
    first if absent). options: the method's settings by their option names, e.g. steps=300,
    U=64, V=64, lr=1e-3, pool_size=4 (`ssdd distill --help` lists them; an unknown one is refused).
    target_scaling: "standardized" teacher features as targets (the default) or "raw" ones.
    """
    req = DistillRequest(source=source, output=Path(output), method=method, budget=budget, options=options,
                         seed=seed, device=resolve_device(device),
                         data_root=Path(data_root) if data_root is not None else None,
                         teacher=Path(teacher) if teacher is not None else None, resume=resume, preset=preset,
                         download=download, target_scaling=target_scaling)
    result = run_distill(req, callback)
    return load_artifact(result.path)


@dataclass(frozen=True)
class PretrainResult:
    """A pretrained backbone, its final loss, the recipe it was trained with and its metadata."""

    backbone: Backbone
    final_loss: float
    config: PretrainConfig
    preset: str
    metadata: dict[str, str]
    drift: Drift


def pretrain_artifact(artifact: Artifact, *, arch: str = "convnet", epochs: int | None = None,
                      batch_size: int | None = None, lr: float | None = None,
                      weight_decay: float | None = None, decay_norm_bias: bool | None = None,
                      preset: str | None = None, seed: int = 0,
                      device: torch.device | str = "cpu", callback: Callback = silent,
                      checkpoint_path: PathLike | None = None, resume: bool = False,
                      precision: str | Precision = "auto", output: PathLike | None = None) -> PretrainResult:
    """`pretrain` with the whole result: the backbone, its loss, recipe and metadata, and the
    backbone file written to `output` when given (rank 0 under torchrun). precision: of the
    network passes, auto, fp32 or bf16 (`kit.precision`), or one resolved already."""
    man = artifact.manifest
    src, budget = man.source, man.budget.images
    if src.height != src.width:
        raise UsageError(f"the artifact holds {src.height}×{src.width} images but backbones take square "
                         "images; distill a square source.", option="artifact")
    raw = man.raw
    labelled = raw is not None and raw.labels and raw.target_dim is None
    chosen = source_preset(src.name, preset if preset is not None else src.preset)
    config = PretrainConfig.from_preset(chosen, budget=budget, arch=arch, epochs=epochs,
                                        batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
                                        decay_norm_bias=decay_norm_bias, labelled=labelled)
    dev = torch.device(device)
    done = pretrain_bundle(artifact.bundle, config,
                           artifact_sha256=sha256_file(artifact.path) if artifact.path is not None else "",
                           device=dev, callback=callback,
                           checkpoint_path=Path(checkpoint_path) if checkpoint_path else None, resume=resume,
                           precision=precision if isinstance(precision, Precision)
                           else resolve_precision(precision, dev),
                           output=Path(output) if output is not None else None)
    return PretrainResult(done.backbone, done.final_loss, config, chosen.name, done.metadata, done.drift)


def pretrain(artifact: Artifact | PathLike, output: PathLike | None = None, *, arch: str = "convnet",
             epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
             weight_decay: float | None = None, decay_norm_bias: bool | None = None,
             preset: str | None = None, seed: int = 0,
             device: str = "auto", precision: str = "auto", callback: Callback = silent) -> Backbone:
    """Pretrain a fresh `arch` backbone on an artifact (`ssdd pretrain`); save it to `output`
    (a backbone file, with its provenance) when given. Returns the backbone (eval mode)."""
    if output is not None:
        check_writable(output)
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    result = pretrain_artifact(art, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                               weight_decay=weight_decay, decay_norm_bias=decay_norm_bias, preset=preset,
                               seed=seed, device=resolve_device(device), callback=callback,
                               precision=precision, output=output)
    return result.backbone.eval()


def evaluate(backbone: Backbone | PathLike, target: str, *, protocol: str = "linear", seeds: int = 1,
             shots: int | None = None, teacher: Backbone | PathLike | None = None,
             resolution: int | None = None, config: Any = None, device: str = "auto",
             data_root: PathLike | None = None, download: bool = False, batchnorm: str = DEFAULT_BATCHNORM,
             callback: Callback = silent) -> EvalReport:
    """Score a backbone (or a backbone file) on the source `target` with one protocol (`ssdd eval`).

    protocol: linear, finetune, knn or align. teacher: the network (or file) align compares
    with; never trained here. resolution: the target's size (default: the backbone's). config:
    the protocol's settings, e.g. `LinearProbeConfig(epochs=50)` (default: its defaults).
    batchnorm: "target" (statistics recomputed on the target's training images, the same rule for
    every backbone) or "stored" (`train.batchnorm`).
    """
    dev = resolve_device(device)
    net = backbone if isinstance(backbone, Backbone) else load_backbone(backbone, map_location=dev)[0]
    ref = teacher if isinstance(teacher, Backbone) or teacher is None else \
        load_teacher(teacher, map_location=dev)[0]
    root = Path(data_root) if data_root is not None else None
    data = load_source(target, data_root=root, download=download, resolution=resolution or net.image_size)
    return evaluate_on(net.to(dev), data, protocol, seeds=seeds, shots=shots, device=dev,
                       teacher=ref.to(dev) if ref is not None else None, callback=callback, config=config,
                       batchnorm=batchnorm)
