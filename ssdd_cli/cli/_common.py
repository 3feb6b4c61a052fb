"""Shared CLI pieces: the consoles, the output settings, and the one user-error boundary.

Exit codes: 0 success; 1 a problem with data or files (`SSDDError.exit_code`); 2 a bad option,
whether Typer refuses it while parsing (a value outside its choices or range, a path that must
exist) or the library does (`UsageError`, `BudgetError`); 130 an interrupt, including one while
the command is still importing. Every error is one line on stderr, `error: ` then the sentence,
prefixed with the command's flag when the error concerns one; never a traceback. Typer's own
parse errors keep Typer's message, on one line, with the command's `--help` named after it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup, TyperOption

from ssdd_cli.errors import SSDDError

# Off a terminal (a log file, a pipe, CI) lines are never wrapped: a summary stays one line and a
# table takes its natural width, up to this many columns (or $COLUMNS when set).
LOG_WIDTH = 240


def _console(stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else LOG_WIDTH
    return Console(stderr=stderr, soft_wrap=True, width=width)


console = _console(stderr=False)
err_console = _console(stderr=True)

LOG_FORMATS = ("text", "json")


@dataclass
class Output:
    """How this run talks on stderr, set by a long command from `--quiet` and `--log-format`.

    quiet: no progress and no notices; errors and the result (stdout) still print.
    log_format: "text" (bars on a terminal, plain lines off one) or "json" (one JSON object per
        line on stderr: progress, notices and errors, for clusters and log collectors).
    """

    quiet: bool = False
    log_format: str = "text"


OUTPUT = Output()


def set_output(quiet: bool = False, log_format: str = "text") -> None:
    """Choose how this run reports on stderr (see `Output`)."""
    OUTPUT.quiet, OUTPUT.log_format = quiet, log_format


def emit_json(event: str, **fields: Any) -> None:
    """One JSON object on stderr: {"event": event, **fields}."""
    sys.stderr.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stderr.flush()


def mirrors_to_stdout() -> bool:
    """Whether progress and notices are also written, as plain lines, to stdout: when stdout is
    redirected (`ssdd distill ... > log`) while stderr is a terminal (which shows the bars), so
    the log holds the run's progress too. With both redirected, stderr alone carries them."""
    return (not OUTPUT.quiet and OUTPUT.log_format == "text" and err_console.is_terminal
            and not console.is_terminal)


def notice(text: str) -> None:
    """A one-off notice on stderr (silent with --quiet); mirrored to a redirected stdout."""
    if OUTPUT.quiet:
        return
    if OUTPUT.log_format == "json":
        emit_json("notice", message=text)
        return
    err_console.print(escape(text), highlight=False, soft_wrap=True)
    if mirrors_to_stdout():
        console.print(escape(text), highlight=False, soft_wrap=True)
        console.file.flush()


def error_line(message: str, exit_code: int, flag: str | None = None) -> None:
    """The one line of a user error on stderr."""
    if OUTPUT.log_format == "json":
        emit_json("error", message=message, option=flag, exit_code=exit_code)
        return
    prefix = f"{flag}: " if flag else ""
    err_console.print(f"[bold red]error:[/] {escape(prefix + message)}", highlight=False, soft_wrap=True)


class UserErrorGroup(TyperGroup):
    """The error boundary (module docstring): turns every `SSDDError`, every Typer parse error
    and every interrupt into one line on stderr and its exit code."""

    def main(self, args: Any = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        set_output()  # each run starts plain; a long command sets --quiet / --log-format
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            error_line("aborted.", 1)
            sys.exit(1)
        except typer.TyperException as e:  # the base of Typer's parse errors
            if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help
                error_line(_click_message(e), e.exit_code)
            sys.exit(e.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        # Parsing the root's options: Typer would turn an interrupt here into a silent 130.
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt:
            error_line("interrupted.", 130)
            raise typer.Exit(130) from None

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except SSDDError as e:
            error_line(str(e), e.exit_code, _flag(self, ctx, e.option))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            error_line(_interrupted(self, ctx), 130)
            raise typer.Exit(130) from None


def _click_message(e: Any) -> str:
    """Typer's message, on one line, with the command's --help named after it."""
    text = " ".join(str(e.format_message()).split()).replace("Value error, ", "")
    ctx = getattr(e, "ctx", None)
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        if text.endswith("?"):  # "No such command 'distil'. Did you mean 'distill'?"
            return f"{text} See '{ctx.command_path} --help'."
        return f"{text.rstrip('.')}; see '{ctx.command_path} --help'."
    return text


def _command(group: TyperGroup, ctx: typer.Context) -> Any:
    name = ctx.invoked_subcommand
    return group.get_command(ctx, name) if name is not None else None


def _flag(group: TyperGroup, ctx: typer.Context, option: str | None) -> str | None:
    """The invoked command's flag for the parameter named `option` (e.g. "--pool-size")."""
    command = _command(group, ctx) if option is not None else None
    for param in command.params if command is not None else []:
        if param.name == option and isinstance(param, TyperOption):
            return max(param.opts, key=len)
    return None


def _interrupted(group: TyperGroup, ctx: typer.Context) -> str:
    """What to do after an interrupt: resume where the command can, else just rerun."""
    command = _command(group, ctx)
    if command is not None and any(p.name == "resume" for p in command.params):
        return "interrupted; rerun the same command with --resume to continue from its last checkpoint."
    return "interrupted."
