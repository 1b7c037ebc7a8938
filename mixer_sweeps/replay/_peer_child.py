"""The peers' side of ``sweeps replay``: Syne Tune and DEHB in their own environment.

Run by ``.venv-peers/bin/python`` (see ``scripts/setup-peers``), never imported by the package:
it needs only the standard library, numpy, pandas and the peers. Requests and answers are JSON
lines on stdin and stdout; whatever the libraries print goes to stderr.

- ``versions``: the peers installed here.
- ``dehb_init`` / ``dehb_ask`` / ``dehb_tell``: DEHB's own ask/tell interface, driven by the
  parent's simulated workers.
- ``syne``: one replay with Syne Tune's own simulator: its ``ASHA`` or ``BOHB`` baseline, or
  ``MOASHA`` on val accuracy and params (a cost every epoch of a configuration reports alike),
  ``UserBlackboxBackend`` over a ``BlackboxTabular`` of the curves, ``Tuner`` with
  ``SimulatorCallback``; answers every result the backend produced, in simulated-time order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from typing import Any

_PROTOCOL = sys.stdout


def main() -> None:
    # Libraries print progress; only our answers may reach the protocol stream.
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    dehb: _Dehb | None = None
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op == "versions":
            answer: Any = _versions()
        elif op == "dehb_init":
            dehb = _Dehb(**request)
            answer = {}
        elif op == "dehb_ask":
            answer = dehb.ask()
        elif op == "dehb_tell":
            dehb.tell(**request)
            answer = {}
        elif op == "syne":
            answer = {"rows": _syne(**request)}
        else:
            raise ValueError(f"unknown op {op!r}")
        _PROTOCOL.write(json.dumps(answer) + "\n")
        _PROTOCOL.flush()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("syne-tune", "dehb", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


class _Dehb:
    def __init__(self, params: dict[str, list[Any]], epochs: int, eta: int, seed: int) -> None:
        import ConfigSpace as CS
        from dehb import DEHB
        from loguru import logger

        logger.remove()  # DEHB logs every bracket
        space = CS.ConfigurationSpace(seed=seed)
        for name, values in params.items():
            if _numeric(values) and len(values) > 1:
                space.add(CS.OrdinalHyperparameter(name, sorted(values)))
            elif len(values) > 1:
                space.add(CS.CategoricalHyperparameter(name, values))
            else:
                space.add(CS.Constant(name, values[0]))
        self.folder = tempfile.mkdtemp(prefix="dehb-")
        self.dehb = DEHB(
            cs=space,
            min_fidelity=1,
            max_fidelity=epochs,
            eta=eta,
            n_workers=1,  # the parent's simulated workers ask and tell asynchronously
            seed=seed,
            output_path=self.folder,
            save_freq=None,
        )
        self.jobs: dict[int, dict] = {}
        self.asked = 0

    def ask(self) -> dict[str, Any]:
        job = self.dehb.ask()
        key, self.asked = self.asked, self.asked + 1
        self.jobs[key] = job
        config = {k: _plain(v) for k, v in dict(job["config"]).items()}
        return {"id": key, "config": config, "fidelity": float(job["fidelity"])}

    def tell(self, id: int, fitness: float, cost: float) -> None:
        self.dehb.tell(self.jobs.pop(id), {"fitness": fitness, "cost": cost})


def _syne(
    scheduler: str,
    params: dict[str, list[Any]],
    configs: list[list[Any]],
    val: list[list[float]],
    seconds: list[list[float]],
    workers: int,
    budget: int,
    seed: int,
    sleep: float,
    targets: list[int],
    horizon: float,
    num_params: list[int] | None = None,
) -> list[list[Any]]:
    os.environ.setdefault("SYNETUNE_FOLDER", tempfile.mkdtemp(prefix="syne-tune-"))
    import numpy as np
    import pandas as pd
    import syne_tune.config_space as sp
    from syne_tune import Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository import UserBlackboxBackend
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.optimizer.baselines import ASHA, BOHB
    from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

    for name in ("syne_tune", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    names = list(params)
    epochs = len(val[0])
    space = {name: sp.choice(values) for name, values in params.items()}
    curves = np.array(val, dtype=float)
    elapsed = np.cumsum(np.array(seconds, dtype=float), axis=1)
    columns = [curves, elapsed]
    objectives = ["val_acc", "elapsed_time"]
    if num_params is not None:
        # MOASHA maximises or minimises all its metrics alike: fewer params as more of -params.
        columns.append(np.repeat(-np.array(num_params, dtype=float)[:, None], epochs, axis=1))
        objectives.append("neg_params")
    evaluations = np.stack(columns, axis=-1)[:, None, :, :]
    blackbox = BlackboxTabular(
        hyperparameters=pd.DataFrame(configs, columns=names),
        configuration_space=space,
        fidelity_space={"epoch": sp.randint(1, epochs)},
        objectives_evaluations=evaluations,
        objectives_names=objectives,
    )
    index = {tuple(c): i for i, c in enumerate(configs)}
    rows: list[list[Any]] = []
    wanted = set(targets)
    found = []

    class Recording(UserBlackboxBackend):
        """Keeps every result the simulator delivers, also those of a trial being stopped."""

        def fetch_status_results(self, trial_ids):
            status, results = super().fetch_status_results(trial_ids)
            for trial_id, result in results:
                config = self._trial_dict[trial_id].config
                row = [
                    int(trial_id),
                    index[tuple(_plain(config[n]) for n in names)],
                    int(result["epoch"]),
                    float(result["val_acc"]),
                    float(result["st_tuner_time"]),
                ]
                rows.append(row)
                if row[2] == epochs and row[1] in wanted:
                    found.append(row)
            return status, results

    backend = Recording(blackbox=blackbox, elapsed_time_attr="elapsed_time", tuner_sleep_time=sleep)
    if scheduler == "moasha":
        # MOASHA draws its configurations and brackets from numpy's global generator.
        np.random.seed(seed)
        chosen = MOASHA(
            config_space=space,
            metrics=["val_acc", "neg_params"],
            do_minimize=False,
            time_attr="epoch",
            max_t=epochs,
            grace_period=1,
            reduction_factor=3,
            random_seed=seed,
        )
    else:
        kind = {"asha": ASHA, "bohb": BOHB}[scheduler]
        chosen = kind(
            config_space=space,
            metric="val_acc",
            do_minimize=False,
            time_attr="epoch",
            max_t=epochs,
            random_seed=seed,
        )

    def stop(status: Any) -> bool:
        # Epochs spent, not Syne Tune's count of results the tuner saw: a trial being
        # stopped still trains (and reports) until the stop reaches its worker.
        return len(rows) >= budget or (bool(found) and len(rows) > horizon)

    tuner = Tuner(
        trial_backend=backend,
        scheduler=chosen,
        stop_criterion=stop,
        n_workers=workers,
        sleep_time=0,
        callbacks=[SimulatorCallback()],
        save_tuner=False,
        print_update_interval=1e9,
        results_update_interval=1e9,
        tuner_name="sweeps-replay",
    )
    tuner.run()
    return sorted(rows, key=lambda r: r[4])


if __name__ == "__main__":
    main()
