"""The searcher of ``sweeps run`` on the simulated clock: its real Optuna sampler and pruner.

The sampler and pruner are the objects ``sweeps run``'s workers build from a study file's
settings (:func:`~mixer_sweeps.study.make_sampler`, :func:`~mixer_sweeps.study.make_pruner`),
driven through Optuna's ask/tell on an in-memory study. As in a real run, each worker keeps a
sampler of its own, seeded from its first trial's number, and a trial asks the search space for
its params with the same suggest calls; a trial whose configuration an earlier trial finished
takes that outcome without training, and one that an earlier trial is training waits for it
(``skip_duplicates``). Pruning is judged on the first seed's reports, the other replicate seeds
train only once it has finished unpruned, and a trial's value is the mean of its seeds' best
val accuracies: the objective's rules.

With several objectives (a cost such as ``params`` besides val accuracy) the study has their
directions, each trial gets the user attr ``costs`` before its first report and is told its
values in the objectives' order, as ``sweeps run`` does. Optuna's ``Trial.report`` and
``should_prune`` refuse multi-objective studies, so the driver stores the intermediate value
through the study's storage and asks the pruner itself: what a worker does.

Twins cost no epochs, only the sampler's time, and TPE's grows with every trial: a sampler that
asks for nothing but twins, as many times in a row as the grid has points, has stopped searching
(a real study would spend the rest of its ``n_trials`` on them), and the replay ends there.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from mixer_sweeps.replay._clock import Job, Reuse, Wait
from mixer_sweeps.replay._policies import Policy
from mixer_sweeps.replay._table import Curves
from mixer_sweeps.results import TrialRecord
from mixer_sweeps.study import make_pruner, make_sampler, stream_seed


class OptunaDriver:
    """Asks an in-memory Optuna study for trials of ``policy`` and tells it how they ended.

    Args:
        seed: the replay's sampler seed (the study file's ``sampler.seed``).
        seed_order: ``[config, k]``: the recorded seed (index) of each configuration's k-th
            replicate in this replay.
        max_trials: most trials to ask for, twins included (a study's ``n_trials``).
        max_repeats: a sampler that asks for configurations already finished or in training
            this many times in a row has stopped searching (a real study would spend the rest of
            its ``n_trials`` on free repeats): the replay ends there [default: the grid's size].
    """

    def __init__(
        self,
        curves: Curves,
        policy: Policy,
        *,
        seed: int,
        seed_order: np.ndarray,
        max_trials: int,
        max_repeats: int | None = None,
    ) -> None:
        if policy.replicates > len(curves.seeds):
            raise ValueError(
                f"policy {policy.name} trains {policy.replicates} replicates but {curves.source}"
                f" recorded {len(curves.seeds)} seeds"
            )
        confirm = policy.confirm
        if confirm is not None and confirm.seeds > len(curves.seeds):
            raise ValueError(
                f"policy {policy.name} confirms with {confirm.seeds} seeds but {curves.source}"
                f" recorded {len(curves.seeds)} seeds"
            )
        self.curves = curves
        self.policy = policy
        self.settings = policy.sampler.model_copy(update={"seed": seed})
        self.seed_order = seed_order
        self.max_trials = max_trials
        self.max_repeats = len(curves.configs) if max_repeats is None else max_repeats
        self.repeats = 0
        """Trials in a row that trained nothing (twins of finished or running trials)."""
        self.storage = optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(
            storage=self.storage,
            # Named: Hyperband puts a trial in its bracket by a hash of the study's name.
            study_name=f"replay-{seed}",
            directions=[direction for _, direction in policy.objectives],
            sampler=self._sampler(seed),
            pruner=_pruner(policy, curves),
        )
        self.study_id = self.storage.get_study_id_from_name(self.study.study_name)
        self.costs = _costs(curves, policy) if policy.multi else None
        self.prune = policy.pruner.type != "none"
        self.samplers: dict[int, optuna.samplers.BaseSampler] = {}
        self.asked = 0
        self.finished: dict[int, TrialRecord] = {}
        """Per configuration, its first finished trial."""
        self.running: dict[int, int] = {}
        """Per configuration, the earliest trial training it now."""
        self.best_value: float | None = None
        """The best value of the COMPLETE trials so far."""

    def _sampler(self, seed: int | None) -> optuna.samplers.BaseSampler:
        if not self.policy.multi:
            return make_sampler(self.settings, self.curves.space, seed=seed)
        # TPE ranks pruned trials by the learning metric, whose direction it must be told.
        learning = self.policy.objectives[0][1]
        return make_sampler(
            self.settings, self.curves.space, seed=seed, learning_direction=learning
        )

    def ask(self, worker: int) -> Job | Reuse | Wait | None:
        if self.asked >= self.max_trials or self.repeats >= self.max_repeats:
            return None
        if self.policy.skip_duplicates and len(self.finished) == len(self.curves.configs):
            return None  # every configuration is known: all that is left is free repeats
        sampler = self.samplers.get(worker)
        if sampler is None:
            # A worker process's sampler from its first trial on: its own seed stream (grid and
            # QMC samplers keep the study's seed, which make_sampler gives them whatever seed).
            sampler = self._sampler(stream_seed(self.settings.seed, first_trial=self.asked))
            self.samplers[worker] = sampler
        self.study.sampler = sampler
        trial = self.study.ask()
        self.asked += 1
        params = self.curves.space.suggest(trial)
        config = self.curves.index(params)
        if self.costs is not None:
            trial.set_user_attr("costs", self.costs[config])
        if self.policy.skip_duplicates:
            twin = self.finished.get(config)
            if twin is not None:
                self.repeats += 1
                return Reuse(self._reuse(trial, twin), config)
            running = self.running.get(config)
            if running is not None:
                self.repeats += 1
                return Wait(trial.number, running, config, trial)
        self.repeats = 0
        self.running.setdefault(config, trial.number)
        seeds = tuple(int(s) for s in self.seed_order[config, : self.policy.replicates])
        return Job(trial.number, config, seeds, self.curves.epochs, handle=trial)

    def report(self, job: Job, epoch: int, value: float) -> bool:
        trial: optuna.Trial = job.handle
        if self.costs is None:
            trial.report(value, step=epoch)
            stop = self.prune and trial.should_prune()
        else:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(
                self.study_id, trial.number
            )
            self.storage.set_trial_intermediate_value(trial_id, epoch, value)
            stop = self.prune and self.study.pruner.prune(
                self.study, self.storage.get_trial(trial_id)
            )
        if stop:
            return True
        if epoch == job.epochs:
            self._confirm(job)
        return False

    def _confirm(self, job: Job) -> None:
        """A first seed that ended near the best so far trains the confirming seeds too."""
        confirm = self.policy.confirm
        if confirm is None:
            return
        first = max(job.reported)
        if self.best_value is None or first >= self.best_value - confirm.within:
            job.seeds = tuple(int(s) for s in self.seed_order[job.config, : confirm.seeds])

    def finish(self, job: Job, pruned: bool, best: tuple[float, ...]) -> TrialRecord:
        trial: optuna.Trial = job.handle
        value = None if pruned else statistics.fmean(best)
        if pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, self._values(job.config, value))
            if self.best_value is None or value > self.best_value:
                self.best_value = value
        record = TrialRecord(
            number=trial.number,
            state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
            params=dict(trial.params),
            value=value,
            best=best,
            seeds=tuple(self.curves.seeds[s] for s in job.seeds[: len(best)]),
            epochs=(job.epoch,) if pruned else (job.epochs,) * len(job.seeds),
            intermediate=dict(enumerate(job.reported, start=1)),
        )
        if self.running.get(job.config) == job.number:
            del self.running[job.config]
        self.finished.setdefault(job.config, record)
        return record

    def _values(self, config: int, value: float) -> float | list[float]:
        """What the study is told: the learning value, then each cost, in objectives order."""
        if self.costs is None:
            return value
        costs = self.costs[config]
        return [value, *(float(costs[metric]) for metric, _ in self.policy.objectives[1:])]

    def take(self, wait: Wait, twin: TrialRecord) -> TrialRecord:
        return self._reuse(wait.handle, twin)

    def _reuse(self, trial: optuna.Trial, twin: TrialRecord) -> TrialRecord:
        if twin.state == TrialState.COMPLETE:
            config = self.curves.index(dict(trial.params))
            self.study.tell(trial, self._values(config, twin.value))
        else:
            self.study.tell(trial, state=TrialState.PRUNED)
        return TrialRecord(
            number=trial.number,
            state=twin.state,
            params=dict(trial.params),
            value=twin.value,
            duplicate_of=twin.number,
        )


def _costs(curves: Curves, policy: Policy) -> list[dict[str, int]]:
    """Per configuration, the user attr ``costs`` a worker records before the first epoch."""
    wanted = [metric for metric, _ in policy.objectives[1:]]
    unknown = [m for m in wanted if m != "params"]
    if unknown or not curves.num_params or None in curves.num_params:
        raise ValueError(
            f"{curves.source} records no {(unknown or ['params'])[0]} for every configuration;"
            " a replay's costs come from the table's num_params column"
        )
    return [{"params": int(n)} for n in curves.num_params]


def _pruner(policy: Policy, curves: Curves) -> optuna.pruners.BasePruner:
    """``sweeps run``'s pruner; the front pruner reads the costs and directions of the study
    section the policy was validated as."""
    if not policy.multi:
        return make_pruner(policy.pruner, max_epochs=curves.epochs)
    return make_pruner(policy.pruner, max_epochs=curves.epochs, study=policy.study)


def quiet() -> Any:
    """Optuna's log lines and experimental warnings off (the same as a study's display)."""
    from mixer_sweeps.study import optuna_quiet

    return optuna_quiet()
