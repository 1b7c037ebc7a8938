"""The ``sweeps`` command line: one module per command, each parsing its options, calling one
public function of the package and rendering what it returns.

Modules: ``_app`` (the Typer group, one line per command), ``_options`` (option types shared by
commands: ``--results``, ``--storage``, ``--json``; a study loaded or one clear error),
``_checks`` (checks of options and the machine, ending in one line and exit code 2) and
``_write`` (files written for the user, never half); the commands ``_train``, ``_run``,
``_launch``, ``_validate``, ``_schema``, ``_sync``, ``_report``, ``_plan``, ``_status``,
``_best``, ``_retrain`` and ``_dashboard``.

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._app": [
            "app",
            "main",
        ],
    },
)
