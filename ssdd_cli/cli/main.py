"""The `ssdd` Typer app: one module per command, each imported only when its command runs.

`COMMANDS` names every command's module and its one-line help, so `ssdd --help`, `--version`
and shell completion of command names import no command module, and `ssdd budget` imports only
its own (tests/cli/test_fast_start.py checks that neither torch nor torchvision is loaded; the
same test checks each one-line help against its command's docstring).
"""

from __future__ import annotations

import importlib
import os
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from ssdd_cli import __version__
from ssdd_cli.cli._common import UserErrorGroup, console
from ssdd_cli.kit.allocator import tune_allocator

# name -> (module under ssdd_cli.cli, the first line of its command's docstring), in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "teacher": ("teacher", "Train the self-supervised (Barlow Twins) teacher on a source."),
    "import-teacher": ("import_teacher", "Import a teacher trained elsewhere; its weights are mapped and "
                       "checked, never unpickled."),
    "distill": ("distill", "Distill a source into a .ssdd artifact within a budget of N images."),
    "reconstruct": ("reconstruct", "Write an artifact's distilled images as paged PNG grids, and its "
                    "targets."),
    "pretrain": ("pretrain", "Pretrain a fresh backbone on an artifact."),
    "eval": ("eval", "Evaluate a backbone on a target dataset with one or more protocols."),
    "compare": ("compare", "Run or reuse (by content hash) every teacher, distill, pretrain and eval of a "
                "comparison."),
    "bench": ("bench", "Time the outer step at CIFAR-100 shape on random tensors: s/step, GFLOP/s, peak "
              "memory."),
    "budget": ("budget", "Print floats per component and the largest m that fits the budget."),
    "info": ("info", "Show an artifact's manifest and budget (reads the header only)."),
    "datasets": ("datasets", "List the known data sources and whether each is available here."),
    "models": ("models", "List the backbones (architectures) and their options."),
}


class LazyGroup(UserErrorGroup):
    """A group whose commands are placeholders (name and help) until one is resolved to run,
    show its help or complete its options; then its module is imported and the real command
    takes the placeholder's place."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, (_, help_text) in COMMANDS.items():
            self.commands[name] = TyperCommand(name=name, help=help_text, callback=None)
        self._loaded: set[str] = set()

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and command is not None:
            command = self.load(name)
        return name, command, rest

    def load(self, name: str) -> Any:
        """The real command `name` (importing its module once)."""
        if name not in self._loaded:
            module = importlib.import_module(f"ssdd_cli.cli.{COMMANDS[name][0]}")
            holder = typer.Typer(add_completion=False)
            module.register(holder)
            command = typer.main.get_command(holder)
            command.name = name
            self.commands[name] = command
            self._loaded.add(name)
        return self.commands[name]


app = typer.Typer(
    name="ssdd",
    cls=LazyGroup,
    help="Self-supervised dataset distillation: compress an unlabeled image set into a .ssdd artifact.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"ssdd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Self-supervised dataset distillation."""
    # glibc's malloc keeps freed memory for reuse (kit.allocator: a process-wide setting the
    # command line owns; the library leaves it to its caller). Torch-free, so before any import.
    tune_allocator()
    # Under torchrun (`torchrun --nproc_per_node K -m ssdd_cli ...`) join the group; rank 0 alone
    # prints results (errors print on every rank, so a failure on any rank is seen).
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torch only then: `ssdd --help` stays fast
        from ssdd_cli.kit import distributed

        if distributed.init_from_environment() and not distributed.is_main():
            console.quiet = True


if __name__ == "__main__":
    app()
