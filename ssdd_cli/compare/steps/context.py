"""What the steps of one comparison share (`StepContext`: the spec, the device, loaded data and
the backbone last prepared for probing) and the helpers every kind of step uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ssdd_cli.compare.spec import CompareSpec, MethodEntry
from ssdd_cli.data import ImageSet, load_source, source_preset
from ssdd_cli.errors import SSDDError
from ssdd_cli.kit.checkpoint import tensor_sha256
from ssdd_cli.kit.precision import Precision, resolve_precision
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.train.evaluate import Probed

Outputs = dict[str, str]  # output name → file name in the step's folder


@dataclass
class StepContext:
    """What steps share within one comparison: the spec, the device, and loaded data.
    download: fetch a missing source that can be fetched (CIFAR), as `load_source` does."""

    spec: CompareSpec
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    data_root: Path | None = None
    callback: Callback = silent
    download: bool = False
    _data: dict[tuple[str, int], ImageSet] = field(default_factory=dict, repr=False)
    # The last backbone prepared for probing, keyed by (backbone, target): the plan runs a
    # backbone's evaluations one after the other, so they share its BatchNorm recalibration and
    # features. One at a time: a flat ConvNet's features of 70,000 images take 650 MB.
    _probed: tuple[tuple[str, str], Probed] | None = field(default=None, repr=False)
    _hashes: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)
    _precision: Precision | None = field(default=None, repr=False)

    def forget_probed(self) -> None:
        """Let the last prepared backbone and its features go (before a step of another kind)."""
        self._probed = None

    def data(self, spec: str, resolution: int | None = None) -> ImageSet:
        """A source loaded once (at `resolution`, default its preset's)."""
        key = (spec, resolution or source_preset(spec).resolution)
        if key not in self._data:
            self._data[key] = load_source(spec, data_root=self.data_root, resolution=key[1],
                                          download=self.download)
        return self._data[key]

    def data_sha256(self, spec: str, resolution: int | None = None) -> str:
        """A hash of every split and label of a loaded source (its content, not its name) and of
        its normalisation statistics (which images the source side takes shows there)."""
        key = (spec, resolution or source_preset(spec).resolution)
        if key not in self._hashes:
            d = self.data(*key)
            labels = [t for t in (d.train_labels, d.val_labels, d.test_labels) if t is not None]
            stats = torch.tensor([*d.mean, *d.std], dtype=torch.float64)
            self._hashes[key] = tensor_sha256(d.train, d.val, d.test, *labels, stats)
        return self._hashes[key]

    def target(self, name: str) -> ImageSet:
        """A target as the probes see it: its test split scored, or its val split (spec.split)."""
        data = self.data(name, self.resolution)
        return data.validation() if self.spec.split == "val" else data

    @property
    def precision(self) -> Precision:
        """The training passes' precision, resolved on this device (spec.precision) once a run."""
        if self._precision is None:
            say = lambda m: self.callback(ProgressEvent("fastpath", message=m))  # noqa: E731
            self._precision = resolve_precision(self.spec.precision, self.device, say=say)
        return self._precision

    @property
    def resolution(self) -> int:
        """The side of the source's images: every backbone of the comparison takes it."""
        return self.data(self.spec.source).resolution


def in_entry(entry: MethodEntry, build: Any, *args: Any) -> Any:
    """`build(*args)`, with a user error reworded to name the method entry it concerns."""
    try:
        return build(*args)
    except SSDDError as e:
        raise type(e)(f"method entry {entry.name!r}: {e}", option=e.option) from None


def file_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (its header only)."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
