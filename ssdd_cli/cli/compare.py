"""`ssdd compare`: run or reuse every step of a methods × archs × seeds × protocols grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown
from rich.table import Table

from ssdd_cli.cli._common import console, error_line, set_output
from ssdd_cli.cli._options import DataRoot, Device, Download, LogFormat, Quiet, complete_sources
from ssdd_cli.cli._overall import overall_progress
from ssdd_cli.cli._record import run_record
from ssdd_cli.compare import (
    Plan,
    apply_setting,
    build_plan,
    load_config_file,
    merge,
    run_compare,
    spec_from_mapping,
    write_plots,
    write_results,
)
from ssdd_cli.compare.plan import KINDS
from ssdd_cli.compare.steps import full_length
from ssdd_cli.data import source_preset, source_status
from ssdd_cli.device import resolve_device
from ssdd_cli.errors import SSDDError, UsageError

Opt = typer.Option


def options_mapping(source: str | None = None, budgets: list[int] | None = None, methods: str | None = None,
                    archs: str | None = None, seeds: int | None = None, protocols: str | None = None,
                    targets: str | None = None, references: bool | None = None) -> dict[str, Any]:
    """The comparison's options as the mapping a file would hold (None: not given)."""

    def items(text: str | None) -> list[str] | None:
        return None if text is None else [t.strip() for t in text.split(",") if t.strip()]

    return {"source": source, "budgets": budgets or None, "methods": items(methods),
            "archs": items(archs), "seeds": seeds, "protocols": items(protocols), "targets": items(targets),
            "references": references}


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def command(
        output: Annotated[Path, Opt("--output", "-o", file_okay=False,
                                    help="Results folder (steps, results.json/.md, plots/).")],
        config: Annotated[Path | None, Opt("--config", "-c", exists=True, dir_okay=False,
                                           help="A .toml or .yaml comparison file; the options below "
                                           "override it.")] = None,
        source: Annotated[str | None, Opt(help="Source to distill (see `ssdd datasets`).",
                                          autocompletion=complete_sources)] = None,
        budgets: Annotated[list[int] | None, Opt("--budget", min=1, help="N in images; repeat for "
                                                 "several.")] = None,
        methods: Annotated[str | None, Opt(help="Method entries, comma-separated "
                                           "(default: ssdd,krr-st,random,kmeans).")] = None,
        archs: Annotated[str | None, Opt(help="Backbones to pretrain, comma-separated "
                                         "(default: convnet).")] = None,
        seeds: Annotated[int | None, Opt(min=1, help="Seeds 0..n-1, each through the whole chain "
                                         "(default: 3).")] = None,
        protocols: Annotated[str | None, Opt(help="Protocols, comma-separated; name@Kshot for few-shot "
                                             "(default: linear).")] = None,
        targets: Annotated[str | None, Opt(help="Targets to evaluate on (default: the source).")] = None,
        references: Annotated[bool | None, Opt("--references/--no-references",
                                               help="Random-init and teacher lines (default: on).")] = None,
        settings: Annotated[list[str] | None, Opt("--set", help="key.path=value, e.g. "
                                                  "methods.ssdd.steps=300, pretrain.epochs=50, "
                                                  "eval.linear.epochs=50.")] = None,
        device: Device = "auto",
        data_root: DataRoot = None,
        download: Download = False,
        dry_run: Annotated[bool, Opt(help="Print the plan and stop.")] = False,
        quiet: Quiet = False,
        log_format: LogFormat = "text",
    ) -> None:
        """Run or reuse (by content hash) every teacher, distill, pretrain and eval of a comparison,
        then write results.json, results.md and plots. A rerun reuses every finished step."""
        set_output(quiet, log_format)
        raw = merge(load_config_file(config) if config is not None else {},
                    options_mapping(source, budgets, methods, archs, seeds, protocols, targets, references))
        for assignment in settings or []:
            raw = apply_setting(raw, assignment)
        if raw.get("source") is None:
            raise UsageError("a comparison needs a source; give one, or a file that names one.",
                             option="source")
        plan = build_plan(spec_from_mapping(raw))
        if dry_run:
            console.print(_plan_table(plan, data_root))
            return
        dev = resolve_device(device)
        try:
            with run_record(output / "compare", "compare", raw, device=str(dev), append=True) as record, \
                    overall_progress("compare", record) as callback:
                run = run_compare(plan, output, device=dev, data_root=data_root, callback=callback,
                                  download=download)
                json_path, md_path = write_results(run)
                plots = write_plots(run)
        except KeyboardInterrupt:
            error_line("interrupted; rerun the same command: finished steps are reused and an "
                       "interrupted step resumes from its checkpoint.", 130)
            raise typer.Exit(130) from None
        console.print(Markdown(md_path.read_text()))
        console.print(f"{run.count('ran')} steps ran, {run.count('reused')} reused; wrote {json_path}, "
                      f"{md_path} and {len(plots)} plots in {output / 'plots'}", highlight=False)


def _plan_table(plan: Plan, data_root: Path | None) -> Table:
    spec = plan.spec
    table = Table(title=f"comparison on {spec.source}: {len(plan)} steps")
    table.add_column("setting")
    table.add_column("value")
    methods = ", ".join(e.name if e.name == e.method and not e.options else
                        f"{e.name} ({e.method}{''.join(f', {k}={v}' for k, v in e.options.items())})"
                        for e in spec.methods)
    for name, value in (("budgets", ", ".join(map(str, spec.budgets))), ("methods", methods),
                        ("archs", ", ".join(spec.archs)), ("seeds", str(spec.seeds)),
                        ("protocols", ", ".join(p.label for p in spec.protocols)),
                        ("targets", ", ".join(spec.targets)), ("references", str(spec.references)),
                        ("keep backbones", str(spec.keep_backbones)),
                        ("teacher", str(dict(spec.teacher))), ("pretrain", str(dict(spec.pretrain))),
                        ("eval", str({k: dict(v) for k, v in spec.eval.items()}))):
        table.add_row(name, value)
    if plan.count("full"):
        table.add_row("full row", _full_row(plan, data_root))
    table.add_section()
    for kind in KINDS:
        table.add_row(f"{kind} steps", str(plan.count(kind)))
    return table


def _full_row(plan: Plan, data_root: Path | None) -> str:
    """The full row's length: its SGD steps and epochs over the source's training images as
    `ssdd datasets` counts them (no image is read), or the steps asked for when it cannot."""
    spec = plan.spec
    asked = spec.full_steps or source_preset(spec.source).pretrain.full_steps
    try:
        images = int(source_status(spec.source, data_root).sizes.split("/")[0].replace(",", ""))
    except (SSDDError, ValueError):
        images = 0
    if images < 1:
        return f"about {asked:,} SGD steps (in whole epochs over the source, once it is read)"
    length = full_length(spec, images)
    return (f"{length.steps:,} SGD steps: {length.epochs:,} epochs of the {length.images:,} training "
            f"images in minibatches of {length.batch_size} (full_steps {asked:,})")
