"""What W&B costs a trial: offline tracking against none, and the trials after a W&B outage.

All in one process, on the same trial (``specs/digits.yaml`` for a few epochs, one torch thread),
each measured ``--repeats`` times after a warm-up (median):

- **disabled** (the reference): ``tracking.wandb.mode: disabled``.
- **offline**: an offline W&B run per trial, what a machine without a key gets.
- **outage**: mode online with an API key but an unreachable server (a closed local port) and
  ``WANDB_INIT_TIMEOUT=3``. The first trial pays the time-out once and falls back to offline;
  the trials after it must go straight to offline, so they should cost what an offline trial
  costs (ratio ~1), not another time-out.

    python benchmarks/offline_tracking.py                 # 3 epochs, 3 repeats: about a minute
    python benchmarks/offline_tracking.py --epochs 10 --repeats 5

No network is used and no W&B login is read: HOME and every WANDB_* variable are replaced.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _hardware import hardware  # benchmarks/, on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "digits.yaml"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    work = Path(tempfile.mkdtemp(prefix="offline-tracking-"))
    for name in [n for n in os.environ if n.startswith("WANDB_") or n == "NETRC"]:
        del os.environ[name]
    (work / "home").mkdir()
    os.environ["HOME"] = str(work / "home")

    from mixer_sweeps.data import load_dataset
    from mixer_sweeps.spec import load_run_spec
    from mixer_sweeps.tracking import TrackingWarning, _guard, make_trackers
    from mixer_sweeps.training import Trainer

    warnings.simplefilter("ignore", TrackingWarning)
    overrides = {"optim.epochs": args.epochs, "optim.early_stopping_patience": None}
    data = load_dataset("digits", val_size=287)
    counter = iter(range(1_000_000))

    def trial(mode: str) -> float:
        spec = load_run_spec(SPEC, {**overrides, "tracking.wandb.mode": mode, "train.threads": 1})
        number = next(counter)
        started = time.perf_counter()
        trackers = make_trackers(
            spec, results_dir=work / "results", study_name="bench", trial_number=number
        )
        Trainer(spec, data=data, run_dir=work / "trials" / str(number), callbacks=trackers).fit()
        return time.perf_counter() - started

    def median_of(mode: str) -> tuple[float, list[float]]:
        runs = [trial(mode) for _ in range(args.repeats)]
        return statistics.median(runs), runs

    def fresh_wandb() -> None:
        import wandb

        wandb.teardown()
        _guard._reset_state()

    print(f"hardware: {hardware()}")
    print(
        f"trial: {SPEC.relative_to(REPO)}, {args.epochs} epochs, 1 torch thread;"
        f" median of {args.repeats} after a warm-up"
    )

    trial("disabled")  # warm-up: torch's first steps
    disabled, disabled_runs = median_of("disabled")
    trial("offline")  # warm-up: wandb's import and its service process
    offline, offline_runs = median_of("offline")

    fresh_wandb()  # wandb reads its base URL once per process
    os.environ.update(
        {
            "WANDB_API_KEY": "k" * 40,
            "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
            "WANDB_INIT_TIMEOUT": "3",
        }
    )
    first_outage = trial("online")
    after, after_runs = median_of("online")
    fresh_wandb()

    def each(runs: list[float]) -> str:
        return ", ".join(f"{r:.2f}" for r in runs)

    print(f"{'disabled (reference)':>28}: {disabled:6.2f} s  ({each(disabled_runs)})")
    print(
        f"{'offline W&B run':>28}: {offline:6.2f} s  ({each(offline_runs)})"
        f"  ratio to disabled {offline / disabled:.2f}"
    )
    print(f"{'first trial of an outage':>28}: {first_outage:6.2f} s  (pays the 3 s init limit)")
    print(
        f"{'trials after the outage':>28}: {after:6.2f} s  ({each(after_runs)})"
        f"  ratio to offline {after / offline:.2f}"
    )


if __name__ == "__main__":
    main()
