"""Errors that end a command with a one-line message instead of a traceback.

The CLI turns a :class:`TsweepError` into ``error: <message>`` on stderr and its exit code.
Everything else is a bug and keeps its traceback.
"""


class TsweepError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message, one line."""

    exit_code = 1


class UsageError(TsweepError):
    """Bad input (config, flags, model repository): nothing was started or written."""

    exit_code = 2


class ServerError(TsweepError):
    """The Triton server could not be started, reached or controlled."""

    exit_code = 3


class StorageError(TsweepError):
    """A file could not be written mid-run (disk full, file system gone read-only)."""

    exit_code = 4


class Interrupted(TsweepError):
    """The user stopped the run (Ctrl-C); finished measurements are kept."""

    exit_code = 130
