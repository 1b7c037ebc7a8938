"""The exit codes of the ``sweeps`` command, one name each."""

EXIT_OK = 0
EXIT_ERROR = 1
"""An unexpected error (its traceback in a log file), or every trial of a study failed."""
EXIT_NOTHING = 1
"""Nothing to show: ``sweeps best`` on a study with no complete trial, ``status`` with no study."""
EXIT_BAD_INPUT = 2
"""Bad input: one line naming the offending key, file or value; nothing written."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT), as a shell reports it."""
