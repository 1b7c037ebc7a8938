"""Optuna's chatter kept off a display that the study draws itself."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import optuna


@contextlib.contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's per-trial log lines and its ``ExperimentalWarning`` (heartbeats, QMC, plots)
    would garble the display; both are off in the block."""
    # SQLAlchemy (Optuna's SQL storage) logs with tracebacks errors that it then raises anyway.
    logging.getLogger("sqlalchemy").addHandler(logging.NullHandler())
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
