"""`ssdd bench`: the outer step's time, GFLOP/s and peak memory per budget (or the precision probe)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.table import Table

from ssdd_cli.bench import BenchConfig, BenchReport, ProbeRow, probe_throughput, run_bench
from ssdd_cli.bench.training import TrainingBenchConfig, TrainingRow, run_training_bench
from ssdd_cli.cli._common import console
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.device import resolve_device
from ssdd_cli.errors import UsageError
from ssdd_cli.io import atomic_write_bytes
from ssdd_cli.kit.fastpath import cache_file, check_memory_format, decide
from ssdd_cli.kit.precision import bf16_matrix_units, cpu_capabilities

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def command(
        budget: Annotated[list[int] | None, Opt(help="N, repeatable (default: 100, 1000, 5000).")] = None,
        steps: Annotated[int, Opt(help="Outer steps per case (time: their median).")] = 1,
        method: Annotated[str, Opt(help="ssdd or krr-st.")] = "ssdd",
        real_aug: Annotated[list[str] | None, Opt(
            help="none (cached targets), crop-flip (recomputed) and/or bank (crop-flip views from a "
                 "bank of targets, --real-bank), repeatable (default: none and crop-flip).")] = None,
        precision: Annotated[list[str] | None, Opt(
            help="auto, fp32 or bf16, repeatable (default: auto).")] = None,
        device: Annotated[str, Opt(help="auto, cpu, cuda or mps.")] = "auto",
        preset: Annotated[str | None, Opt(help="Shapes, networks and budget rows of this preset (default: "
                                          "cifar100; with --training, digits-nuisance).")] = None,
        source_size: Annotated[int, Opt(help="Random source images.")] = 50_000,
        batch_size: Annotated[int | None, Opt(help="Real images per step (default: the preset's).")] = None,
        chunk: Annotated[int | None, Opt(help="Support rows per network pass (default 512).")] = None,
        json_file: Annotated[Path | None, Opt("--json", help="Also write the results as JSON.")] = None,
        probe: Annotated[bool, Opt(help="Measure matmul/conv throughput per precision instead.")] = False,
        training: Annotated[bool, Opt(help="Time the teacher's and pretraining's steps instead (on the "
                                      "--preset given, default digits-nuisance; one --precision): s/step, "
                                      "GFLOP/s, fraction of the probe's rate.")] = False,
        memory_format: Annotated[list[str] | None, Opt(
            help="--training: auto (this machine's measured choice), nchw or channels_last, repeatable "
                 "to time layouts side by side (default: auto).")] = None,
    ) -> None:
        """Time the outer step at CIFAR-100 shape on random tensors: s/step, GFLOP/s, peak memory."""
        dev = resolve_device(device)
        if training:
            precisions = precision or ["auto"]
            if len(precisions) > 1:  # the training cases run once, in one precision
                raise UsageError(f"ssdd bench --training times one precision a run, not {len(precisions)} "
                                 f"({', '.join(precisions)}); run it once for each.", option="precision")
            formats = tuple(check_memory_format(f) for f in memory_format or ["auto"])
            bench = TrainingBenchConfig(preset=preset or "digits-nuisance", precision=precisions[0],
                                        device=str(dev), steps=max(steps, 5), memory_formats=formats)
            with progress_callback() as callback:
                timed = run_training_bench(bench, callback)
            console.print(_training_table(timed, f"training steps · {bench.preset} · {dev}"))
            if json_file is not None:
                doc = [{**asdict(r), "gflops": r.gflops} for r in timed]
                atomic_write_bytes(json_file, json.dumps(doc, indent=2).encode())
            return
        if probe:
            units = bf16_matrix_units(dev) or dev.type != "cpu"
            if not units:
                console.print("this CPU has no bf16 matrix units: probing float32 only (bf16 would be "
                              "emulated, and --precision auto picks float32 here)")
            rows = probe_throughput(dev, bf16=units, callback=lambda what: console.print(f"probing {what}…"))
            console.print(_probe_table(rows, dev))
            for name in ("fp32", "bf16") if units else ("fp32",):
                console.print(f"measuring the memory format of {name} training steps…")
                path = decide(dev, name, "auto", remeasure=True, say=lambda _: None)
                console.print(f"{name}: chose {path.describe()} by median step time: "
                              + ", ".join(f"{k} {v:.1f} ms" for k, v in (path.timings or {}).items())
                              + f"; cached in {cache_file()}")
            return
        preset = preset or "cifar100"
        config = BenchConfig(budgets=tuple(budget or (100, 1000, 5000)), steps=steps, method=method,
                             real_augs=tuple(real_aug or ("none", "crop-flip")),
                             precisions=tuple(precision or ("auto",)), device=str(dev), preset=preset,
                             source_size=source_size, batch_size=batch_size, chunk=chunk)
        with progress_callback() as callback:
            report = run_bench(config, callback)
        console.print(_bench_table(report, f"{method} outer step · {preset} shape · {dev}"))
        for r in report.rows:
            if r.error:
                console.print(f"[red]N = {r.N}, {r.targets} targets, {r.precision}: {r.error}[/]")
        if json_file is not None:
            atomic_write_bytes(json_file, json.dumps(report.to_json(), indent=2).encode())
            console.print(f"wrote {json_file}")


def _bench_table(report: BenchReport, title: str) -> Table:
    table = Table(title=f"{title} · {report.environment['threads']} threads")
    for col in ("N", "m", "M", "solve", "chunks", "targets", "precision", "s/step", "GFLOP/s",
                "step peak GB", "process peak GB"):
        table.add_column(col, justify="left" if col in ("solve", "targets", "precision") else "right")
    for r in report.rows:
        if r.error:
            table.add_row(str(r.N), *[""] * 4, r.targets, r.precision, *["-"] * 4)
            continue
        table.add_row(str(r.N), str(r.m), str(r.M), r.form, str(r.chunks), r.targets, r.precision,
                      _num(r.seconds, ".3f"), _num(r.gflops, ".0f"), _gb(r.step_peak),
                      _gb(r.process_peak))
    return table


def _training_table(rows: list[TrainingRow], title: str) -> Table:
    table = Table(title=f"{title} · {torch.get_num_threads()} threads")
    for col in ("case", "batch", "precision", "layout", "ms/step", "GFLOP/step", "GFLOP/s", "of peak"):
        table.add_column(col, justify="left" if col in ("case", "precision", "layout") else "right")
    for r in rows:
        share = "-" if r.peak_fraction is None else f"{r.peak_fraction:.0%}"
        table.add_row(r.case, str(r.batch), r.precision, r.layout, f"{1000 * r.seconds:.1f}",
                      f"{r.gflop:.2f}", f"{r.gflops:.0f}", share)
    return table


def _probe_table(rows: list[ProbeRow], dev: torch.device) -> Table:
    caps = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in cpu_capabilities().items())
    picks = "bf16" if bf16_matrix_units(dev) else "fp32"
    table = Table(title=f"throughput probe on {dev}", caption_justify="left",
                  caption=f"CPU: {caps}; --precision auto picks {picks} on {dev}")
    for col in ("op", "dtype", "layout", "GFLOP/s"):
        table.add_column(col, justify="right" if col == "GFLOP/s" else "left")
    for p in rows:
        table.add_row(p.op, p.dtype, p.layout, f"{p.gflops:.0f}")
    return table


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _gb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e9:.2f}"
