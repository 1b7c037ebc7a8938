"""Exact replay of searches on recorded curves: ``sweeps replay``.

With one torch thread on CPU a configuration's curve is deterministic, and a trial pruned at
epoch ``e`` has trained exactly the first ``e`` epochs of its full curve. A table of full curves
therefore lets any search policy, and any peer library's scheduler, be replayed exactly and
cheaply, hundreds of times.

Modules, bottom up: ``_table`` (recorded curves in memory, from a table), ``_source`` (the same
from a finished grid study), ``_policies`` (the study-file settings a replay searches with),
``_clock`` (simulated asynchronous workers and the event queue), ``_optuna`` (``sweeps run``'s own
sampler and pruner on that clock), ``_peers`` (other libraries' schedulers, run from their own
environment), ``_metrics`` (epochs to a near-best configuration, regret of the named winner),
``_front`` (hypervolume of the front found, for several objectives), ``_run`` (many replays, in
parallel), ``_plot`` (regret or hypervolume against epochs).

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._table": [
            "NEAR_BEST",
            "Curves",
            "TableError",
            "read_table",
            "table_fields",
            "write_table",
        ],
        "._source": [
            "load_source",
            "read_study",
        ],
        "._policies": [
            "FRONT_POLICIES",
            "POLICIES",
            "Policy",
            "PolicyError",
            "named_policy",
        ],
        "._clock": [
            "Driver",
            "Finished",
            "Job",
            "Reuse",
            "Trace",
            "Wait",
            "simulate",
        ],
        "._front": [
            "FrontOutcome",
            "FrontScale",
            "FrontSummary",
            "ObjectivesError",
            "WITHIN",
            "hypervolume",
            "measure_front",
            "parse_objectives",
            "reached_share",
            "reference_of",
        ],
        "._optuna": [
            "OptunaDriver",
        ],
        "._metrics": [
            "BUDGETS",
            "Outcome",
            "Spread",
            "Summary",
            "WinnerRule",
            "best_named",
            "curve_x",
            "measure",
            "quantile",
        ],
        "._run": [
            "ReplayTask",
            "budget_epochs",
            "replay_once",
            "run_replays",
            "seed_order",
        ],
        "._peers": [
            "PEERS",
            "PeerError",
            "installed_peers",
            "peer_python",
            "peer_versions",
            "run_peer",
        ],
        "._plot": [
            "plot_hypervolume",
            "plot_regret",
        ],
    },
)
