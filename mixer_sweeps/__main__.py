"""``python -m mixer_sweeps`` and the ``sweeps`` command.

Kept apart from ``mixer_sweeps.cli`` so that a Ctrl-C while the command line is still importing
ends the process with one line and exit code 130, like a Ctrl-C at any later moment.
"""

import sys

from mixer_sweeps._exit import EXIT_INTERRUPTED


def main() -> None:
    try:
        from mixer_sweeps.cli import main as run_cli
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    run_cli()


if __name__ == "__main__":
    main()
