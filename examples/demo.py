"""The embedded demo: teacher → distill → reconstruct → pretrain → eval, every step an `ssdd` command.

On the embedded benchmark `digits-nuisance` (real digits drawn at random size and position), the
pipeline runs for SSDD, KRR-ST and the `random` selection at the same budget, beside the
reference lines (random init; "full": the same pretraining on every training image with its
teacher target; the teacher), and ends with a comparison table (few-shot linear and k-NN probes,
the full probes and `align`). Each command runs in this process, exactly as `ssdd ...` would
from a shell; the full row, which no command makes, is the library's `train.full.pretrain_full`
(what `ssdd compare` runs for its full row). Every backbone is probed with BatchNorm statistics
recomputed on the target's training images (`ssdd eval --batchnorm target`, the default).

Everything runs with the preset's settings (the teacher's 60 epochs took 2.1 minutes on 2 CPU
cores with bf16 units, 3.7 in float32 on the same cores restricted to AVX2); `ssdd compare -c
examples/compare-benchmark.toml` gives the full comparison of docs/results.md, over 3 seeds and
two architectures.

    python examples/demo.py [--out demo-out] [--device cpu] [--precision auto]
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.cli.main import app
from ssdd_cli.data import load_source, source_preset
from ssdd_cli.kit.precision import resolve_precision
from ssdd_cli.models import create_backbone, load_backbone
from ssdd_cli.teacher import load_teacher
from ssdd_cli.train.evaluate import evaluate, prepare
from ssdd_cli.train.full import full_config, pretrain_full
from ssdd_cli.train.linear import LinearProbeConfig

SOURCE = "digits-nuisance"
METHODS = {"random": "random selection", "krr-st": "KRR-ST", "ssdd": "SSDD (ours)"}
# (label, protocol, shots, seeds)
PROTOCOLS = [("linear 5-shot", "linear", 5, 3), ("k-NN 1-shot", "knn", 1, 3), ("k-NN", "knn", None, 1),
             ("linear", "linear", None, 1), ("align CKA", "align", None, 1)]
console = Console()


def ssdd(*args: str) -> None:
    """Run `ssdd ARGS` (in this process) and stop the demo if it fails."""
    console.print(f"[bold cyan]$ ssdd {shlex.join(args)}[/]")
    code = app(list(args), standalone_mode=False)
    if code:
        raise SystemExit(code)


def results_table(rows: dict[str, list[str]]) -> Table:
    """The demo's table: a row per backbone, a column per probe (`PROTOCOLS`)."""
    table = Table(title=f"{SOURCE}, budget from the preset; ConvNet pretrained on each artifact")
    table.add_column("backbone", no_wrap=True)
    for label, *_ in PROTOCOLS:
        table.add_column(label, justify="right", no_wrap=True)
    for name, cells in rows.items():
        table.add_row(name, *cells)
    return table


def show(table: Table, out: Console) -> None:
    """Print `table` at the width it needs: a log redirected to a file (80 columns) keeps every
    number on one line instead of folding it."""
    needed = out.measure(table, options=out.options.update_width(10_000)).maximum
    width, out.width = out.width, max(out.width, needed)  # print's own width= is capped by the console's
    try:
        out.print(table, crop=False)
    finally:
        out.width = width


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16 (teacher, distill, pretrain)")
    parser.add_argument("--teacher-epochs", help="default: the preset's")
    parser.add_argument("--steps", help="outer steps (default: the preset's)")
    parser.add_argument("--pretrain-epochs", help="default: the preset's")
    parser.add_argument("--full-steps", type=int, help="SGD steps of the full row, run in whole epochs "
                        "(default: the preset's full_steps)")
    parser.add_argument("--probe-epochs", type=int, default=100, help="epochs of the linear probes")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the few-shot probes")
    args = parser.parse_args(argv)
    out, run = args.out, ["--device", args.device, "--precision", args.precision]  # where and how to compute

    def given(flag: str, value: str | None) -> list[str]:
        return [flag, value] if value is not None else []

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    teacher = out / "teacher.safetensors"
    if not teacher.exists():
        ssdd("teacher", "--source", SOURCE, "-o", str(teacher), *given("--epochs", args.teacher_epochs), *run)
    for method in METHODS:
        artifact = out / f"{method}.ssdd"
        steps = given("--steps", args.steps) if method != "random" else []
        ssdd("distill", "--source", SOURCE, "--method", method, "--teacher", str(teacher),
             "-o", str(artifact), *steps, *run)
        ssdd("info", str(artifact))
        ssdd("pretrain", str(artifact), "-o", str(out / f"{method}-convnet.safetensors"),
             *given("--epochs", args.pretrain_epochs), *run)
    ssdd("reconstruct", str(out / "ssdd.ssdd"), "--out", str(out / "images"))
    preset = source_preset(SOURCE)
    source = load_source(SOURCE)
    full_recipe = full_config(preset, len(source.source), arch="convnet", steps=args.full_steps)
    console.print(f"[bold cyan]full row: a ConvNet on every training image, {full_recipe.epochs} epochs[/]")
    with progress_callback() as callback:
        full = pretrain_full(source, teacher, full_recipe,
                             device=torch.device(args.device), callback=callback,
                             precision=resolve_precision(args.precision, torch.device(args.device)),
                             output=out / "full-convnet.safetensors")
    console.print(f"full: {full.images} images, final loss {full.final_loss:.4g}; "
                  f"drift of {full.drift.summary()}", highlight=False)

    console.rule(f"evaluation on {SOURCE}'s test split (final models, means over seeds)")
    target = load_source(SOURCE)
    teacher_net = load_teacher(teacher)[0]
    torch.manual_seed(0)
    backbones = {"random init (lower line)": create_backbone("convnet", target.channels, target.resolution,
                                                             widths=(64, 128))}
    backbones.update({label: load_backbone(out / f"{method}-convnet.safetensors")[0]
                      for method, label in METHODS.items()})
    backbones["full (every training image)"] = load_backbone(out / "full-convnet.safetensors")[0]
    backbones["teacher (upper line)"] = teacher_net
    probe = LinearProbeConfig(epochs=args.probe_epochs)
    rows: dict[str, list[str]] = {}
    for name, net in backbones.items():
        cells = []
        probed = prepare(net, target, teacher=teacher_net)  # one BatchNorm pass and feature extraction
        for _, protocol, shots, seeds in PROTOCOLS:
            seeds = min(seeds, args.seeds)
            report = evaluate(probed, target, protocol, seeds=seeds, shots=shots,
                              config=probe if protocol == "linear" else None)
            metric = report.metrics[0]
            spread = f" ± {metric.std:.3f}" if seeds > 1 else ""
            cells.append(f"{metric.mean:.3f}{spread}")
        rows[name] = cells
    show(results_table(rows), console)
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; artifacts and images in {out}/")


if __name__ == "__main__":
    main()
