"""The embedded demo: teacher → distill (SSDD) → reconstruct → pretrain → eval on `digits`.

The same pipeline runs for the `random` selection at the same budget, beside the random-init and
teacher reference lines, and the script ends with a comparison table on protocols that separate
methods (on digits a full linear probe saturates near 99% even for random features, so few-shot
linear, k-NN and `align` stand beside it). Every step is the `ssdd` command a user would type.

    python examples/demo.py [--out demo-out] [--device auto]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from ssdd_cli.data import load_source
from ssdd_cli.models import create_backbone, load_backbone
from ssdd_cli.teacher import load_teacher
from ssdd_cli.train.evaluate import evaluate

SOURCE = "digits"
# (label, protocol, shots, seeds): few-shot and k-NN separate methods; the full probe saturates.
PROTOCOLS = [("linear 5-shot", "linear", 5, 3), ("k-NN 1-shot", "knn", 1, 3), ("k-NN", "knn", None, 1),
             ("linear", "linear", None, 1), ("align CKA", "align", None, 1)]
console = Console()


def ssdd(*args: str) -> None:
    console.print(f"[bold cyan]$ ssdd {shlex.join(args)}[/]")
    subprocess.run([sys.executable, "-m", "ssdd_cli.cli.main", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    out, dev = args.out, ["--device", args.device]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    teacher = out / "teacher.safetensors"
    if not teacher.exists():
        ssdd("teacher", "--source", SOURCE, "-o", str(teacher), *dev)
    for method in ("ssdd", "random"):
        ssdd("distill", "--source", SOURCE, "--method", method, "--teacher", str(teacher),
             "-o", str(out / f"{method}.ssdd"), *dev)
        ssdd("info", str(out / f"{method}.ssdd"))
        ssdd("pretrain", str(out / f"{method}.ssdd"), "-o", str(out / f"{method}-convnet.safetensors"), *dev)
    ssdd("reconstruct", str(out / "ssdd.ssdd"), "--out", str(out / "images"))

    console.rule("evaluation on digits' test split (final models, means over seeds)")
    target = load_source(SOURCE)
    teacher_net = load_teacher(teacher)[0]
    torch.manual_seed(0)
    backbones = {
        "random init (lower line)": create_backbone("convnet", target.channels, target.resolution,
                                                    widths=(64, 128)),
        "random selection": load_backbone(out / "random-convnet.safetensors")[0],
        "SSDD (ours)": load_backbone(out / "ssdd-convnet.safetensors")[0],
        "teacher (upper line)": teacher_net,
    }
    table = Table(title="digits, budget from the preset; ConvNet pretrained on each artifact")
    table.add_column("backbone", no_wrap=True)
    for label, *_ in PROTOCOLS:
        table.add_column(label, justify="right")
    for name, net in backbones.items():
        cells = []
        for _, protocol, shots, seeds in PROTOCOLS:
            report = evaluate(net, target, protocol, seeds=seeds, shots=shots, teacher=teacher_net)
            metric = report.metrics[0]
            spread = f" ± {metric.std:.3f}" if seeds > 1 else ""
            cells.append(f"{metric.mean:.3f}{spread}")
        table.add_row(name, *cells)
    console.print(table)
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; artifacts and images in {out}/")


if __name__ == "__main__":
    main()
