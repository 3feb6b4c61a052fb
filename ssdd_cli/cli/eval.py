"""`ssdd eval`: Evaluate a backbone on a target dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.table import Table

from ssdd_cli.bundle import read_manifest
from ssdd_cli.cli._common import console
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.data import load_source, source_preset
from ssdd_cli.device import resolve_device
from ssdd_cli.errors import SSDDError, UsageError
from ssdd_cli.io import atomic_write_bytes, check_writable
from ssdd_cli.models import Backbone, load_backbone
from ssdd_cli.progress import Callback
from ssdd_cli.teacher import get_or_train_teacher, load_teacher
from ssdd_cli.train.evaluate import EvalReport, evaluate
from ssdd_cli.train.linear import LinearProbeConfig
from ssdd_cli.train.pretrain import PretrainConfig, build_backbone
from ssdd_cli.train.protocols import FinetuneConfig, get_protocol, list_protocols


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def command(
        backbone: Annotated[str, typer.Argument(help="A backbone file, `random` (an untrained "
                            "--arch, initialised with seed 0: the lower reference) or `teacher` "
                            "(the target's cached teacher or --teacher: the upper reference).")],
        target: Annotated[str, typer.Option(help="Target source to evaluate on.")],
        protocol: Annotated[str, typer.Option(help=", ".join(list_protocols()))] = "linear",
        shots: Annotated[int | None, typer.Option(help="Few-shot: k labelled images per class.")] = None,
        seeds: Annotated[int, typer.Option(help="Runs to average (mean ± std).")] = 1,
        arch: Annotated[str, typer.Option(help="Architecture of `random`.")] = "convnet",
        teacher: Annotated[Path | None, typer.Option(help="Teacher file (default: cached).")] = None,
        resolution: Annotated[int | None, typer.Option(
            help="Load the target at this size (default: the backbone's).")] = None,
        linear_epochs: Annotated[int, typer.Option(help="Epochs of the linear head.")] = 100,
        standardize: Annotated[bool, typer.Option(help="Linear: standardise the features first "
                               "(a departure; the papers probe raw features).")] = False,
        finetune_steps: Annotated[int, typer.Option(help="SGD steps of fine-tuning.")] = 100,
        data_root: Annotated[Path | None, typer.Option(help="Folder of real sources.")] = None,
        download: Annotated[bool, typer.Option(help="Download CIFAR if missing.")] = False,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
        json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
    ) -> None:
        """Evaluate a backbone on a target dataset (linear, finetune, knn or align)."""
        spec = get_protocol(protocol)
        if json_out is not None:
            check_writable(json_out)  # fail now, not after the evaluation
        dev = resolve_device(device)
        configs = {"linear": LinearProbeConfig(epochs=linear_epochs, standardize=standardize),
                   "finetune": FinetuneConfig(steps=finetune_steps)}
        with progress_callback() as callback:
            net, meta = _backbone(backbone, arch, target, teacher, data_root, dev, callback)
            size = resolution or (net.image_size if net is not None else None)
            size = size or source_preset(target).resolution
            data = load_source(target, data_root=data_root, download=download, resolution=size)
            if net is None:  # `random`: built for the target's shape
                net = build_backbone(PretrainConfig.from_preset(source_preset(target), arch=arch),
                                     in_channels=data.channels, image_size=data.resolution,
                                     device=dev)
            ref = None
            if spec.needs_teacher:
                ref = net if backbone == "teacher" else _teacher(
                    teacher, meta.get("ssdd.source", target), data_root, dev, callback)
            report = evaluate(net, data, protocol, seeds=seeds, shots=shots, device=dev,
                              teacher=ref, callback=callback, config=configs.get(protocol))
        console.print(_table(report, backbone))
        if json_out is not None:
            doc = {"backbone": backbone, "arch": getattr(net, "arch", arch), **report.to_dict()}
            atomic_write_bytes(json_out, (json.dumps(doc, indent=2) + "\n").encode())


def _backbone(name: str, arch: str, target: str, teacher: Path | None, data_root: Path | None,
              device: torch.device, callback: Callback) -> tuple[Backbone | None, dict[str, str]]:
    """The network to evaluate and its metadata; (None, {}) for `random` (built later)."""
    if name == "random":
        return None, {}
    if name == "teacher":
        if teacher is not None:
            return load_teacher(teacher, map_location=device)
        net, meta, _ = get_or_train_teacher(target, data_root=data_root, device=device,
                                            callback=callback)
        return net, meta
    if Path(name).is_file():
        try:
            read_manifest(name)
        except SSDDError:
            pass  # not an artifact: load_backbone says what it is
        else:
            raise UsageError(f"{name} is a .ssdd artifact, not a backbone; pretrain one with "
                             f"`ssdd pretrain {name} -o backbone.safetensors` and evaluate that.",
                             option="backbone")
    return load_backbone(name, map_location=device)


def _teacher(path: Path | None, source: str, data_root: Path | None, device: torch.device,
             callback: Callback) -> Backbone:
    """`--teacher PATH`, else the cached teacher of the backbone's source (or the target)."""
    if path is not None:
        return load_teacher(path, map_location=device)[0]
    return get_or_train_teacher(source, data_root=data_root, device=device, callback=callback)[0]


def _table(report: EvalReport, backbone: str) -> Table:
    shots = f" ({report.shots}-shot)" if report.shots else ""
    table = Table(title=f"{backbone} on {report.target}",
                  caption=f"{len(report.seeds)} seed(s), {report.seconds:.1f} s",
                  caption_justify="left")
    for column in ("protocol", "metric", "mean ± std", "per seed"):
        table.add_column(column)
    for m in report.metrics:
        table.add_row(report.protocol + shots, m.name, f"{m.mean:.4f} ± {m.std:.4f}",
                      ", ".join(f"{v:.4f}" for v in m.values))
    return table
