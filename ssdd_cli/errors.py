"""The user-error hierarchy.

Every error a user can cause (missing data, impossible budget, corrupt file, bad option) is an
`SSDDError`. Its message is one sentence, in the library's own words, saying what went wrong and
what to do. An error about a setting names it in `option`, as the keyword the Python API takes
(`"lr"`, `"pool_size"`); the command line turns that into its flag. No library message names a
command-line flag. Anything that is not an `SSDDError` is a bug and keeps its traceback.
"""

from __future__ import annotations


class SSDDError(Exception):
    """Base class of every user-facing error; `option` names the setting concerned, if any."""

    exit_code: int = 1

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class UsageError(SSDDError):
    """An option or argument that cannot work (unknown name, impossible value)."""

    exit_code = 2


class BudgetError(SSDDError):
    """A configuration that does not fit the storage budget: a bad combination of options, so it
    exits 2 like any bad option (`ssdd budget` and `ssdd distill` alike)."""

    exit_code = 2


class DataError(SSDDError):
    """A data source that is missing, malformed or unsafe."""


class OutputError(SSDDError):
    """An output path that cannot be written."""


class CheckpointError(SSDDError):
    """A checkpoint that cannot be read, or that belongs to another run."""


class DivergedError(SSDDError):
    """A training loss became NaN or infinite; the last good checkpoint (if any) is kept."""


def check_whole(value: object, what: str, *, minimum: int = 1, option: str | None = None) -> None:
    """A `UsageError` naming `what` unless `value` is an int (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = {0: "a non-negative", 1: "a positive"}.get(minimum, f"an (at least {minimum})")
        raise UsageError(f"{what} must be {kind} integer, got {value!r}.", option=option)
