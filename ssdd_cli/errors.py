"""The user-error hierarchy.

Every error a user can cause (missing data, impossible budget, corrupt file, bad option) is an
`SSDDError`. Its message is one sentence saying what went wrong and what to do; the CLI prints it
on stderr and exits non-zero without a traceback. Anything else is a bug and keeps its traceback.
"""


class SSDDError(Exception):
    """Base class of every user-facing error."""

    exit_code: int = 1


class UsageError(SSDDError):
    """An option or argument that cannot work (unknown name, impossible value)."""

    exit_code = 2


class NotImplementedYet(SSDDError):
    """A command whose implementation has not landed yet."""

    exit_code = 2


class BudgetError(SSDDError):
    """A configuration that does not fit the storage budget."""


class DataError(SSDDError):
    """A data source that is missing, malformed or unsafe."""


class OutputError(SSDDError):
    """An output path that cannot be written."""
