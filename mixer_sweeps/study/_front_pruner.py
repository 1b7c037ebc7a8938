"""A pruner for a front: a trial is judged only against trials that cost no more than it.

Optuna's pruners take one objective. In a study of accuracy against parameters a median pruner
would stop every small model for being worse than the large ones, which is exactly the front's
cheap end. Here a trial's costs (parameters, FLOPs, images/s) are known before it trains, so
its epoch ``e`` can be compared with the epoch ``e`` of its peers: the trials that cost no more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps.results import TrialAttr as attr

_PEER_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class FrontPruner(optuna.pruners.BasePruner):
    """Prune a trial that is worse than most trials that cost no more than it.

    At a trial's epoch ``e`` (its latest report, the learning metric), the trial is pruned when:

    - ``e >= min_epochs``;
    - at least ``startup_trials`` trials of the study are COMPLETE;
    - its peers are the other trials (COMPLETE, PRUNED or RUNNING, so other workers' trials
      count as soon as they report) that reported epoch ``e`` and cost no more than it on every
      cost metric, read from the trials' ``costs`` user attr: no more parameters or FLOPs, no
      fewer images/s (each cost in its own direction); and there are at least
      ``startup_trials`` of them;
    - and its value at ``e`` is worse than the ``percentile`` of the peers' values at ``e``,
      counted from the worst: 50 is the median, 25 prunes only the worst quarter, 75 all but
      the best quarter.

    So a trial is never pruned for being worse than bigger (or slower) ones: the cheapest trial
    has no peers and always trains to the end. A trial without ``costs`` is never pruned, and
    a NaN value is pruned at once (as Optuna's median pruner does). The pruner keeps no state:
    everything it reads is in the storage, so workers in other processes see the same rule.

    Args:
        cost_metrics: the costs that define a peer (``params``, ``flops``, ``images_per_s``).
        directions: each cost's direction, ``minimize`` (fewer is cheaper) or ``maximize``.
        percentile: in [0, 100], see above.
        min_epochs: no trial is pruned before this epoch.
        startup_trials: complete trials before any pruning, and the fewest peers to judge by.
        learning_direction: the direction of the learning metric the trial reports.
    """

    def __init__(
        self,
        cost_metrics: Sequence[str],
        directions: Mapping[str, str],
        percentile: float = 50.0,
        min_epochs: int = 1,
        startup_trials: int = 5,
        learning_direction: str = "maximize",
    ) -> None:
        if not cost_metrics:
            raise ValueError("the front pruner needs at least one cost metric")
        if not 0 <= percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100] but got {percentile}")
        for name in (*cost_metrics, "learning"):
            direction = learning_direction if name == "learning" else directions.get(name)
            if direction not in ("maximize", "minimize"):
                raise ValueError(f"{name}: direction must be maximize or minimize")
        self.cost_metrics = tuple(cost_metrics)
        self.directions = {m: directions[m] for m in self.cost_metrics}
        self.percentile = float(percentile)
        self.min_epochs = min_epochs
        self.startup_trials = startup_trials
        self.learning_direction = learning_direction

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.min_epochs:
            return False
        value = trial.intermediate_values[step]
        if math.isnan(value):
            return True
        costs = trial.user_attrs.get(attr.COSTS)
        if not self._known(costs):
            return False
        trials = study.get_trials(deepcopy=False, states=_PEER_STATES)
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        if complete < self.startup_trials:
            return False
        peers = [
            t.intermediate_values[step]
            for t in trials
            if t.number != trial.number
            and step in t.intermediate_values
            and self.costs_no_more(t.user_attrs.get(attr.COSTS), costs)
        ]
        peers = [v for v in peers if not math.isnan(v)]
        if not peers or len(peers) < self.startup_trials:
            return False
        if self.learning_direction == "maximize":
            return value < float(np.percentile(peers, self.percentile))
        return value > float(np.percentile(peers, 100 - self.percentile))

    def costs_no_more(self, peer: object, costs: Mapping[str, float]) -> bool:
        """Whether ``peer``'s costs are no more than ``costs`` on every cost metric."""
        if not self._known(peer):
            return False
        assert isinstance(peer, Mapping)
        for metric in self.cost_metrics:
            if self.directions[metric] == "minimize":
                if peer[metric] > costs[metric]:
                    return False
            elif peer[metric] < costs[metric]:
                return False
        return True

    def _known(self, costs: object) -> bool:
        return isinstance(costs, Mapping) and all(
            isinstance(costs.get(m), int | float) for m in self.cost_metrics
        )
