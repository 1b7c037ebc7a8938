"""The summary of ``sweeps retrain``, and the "Retrained" section of a study's report.

``retrain/summary.csv`` has one row per configuration: its params, the seeds that finished, test
accuracy (mean, ± 95% CI by Student's t, std), best val accuracy (mean), the search's value for
contrast, epochs and parameter count, and, when ``--epochs`` changed what the configurations
trained, the search's epochs (``search epochs``): the protocol differs, and every title says so.
``runs.csv`` has one row per seed run; ``summary.md`` the same as a page. The study's report reads
``summary.csv`` back, so it shows the last retrain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from mixer_sweeps.report._render import Report, to_markdown
from mixer_sweeps.report._tables import CI, Table
from mixer_sweeps.results import ci95, short_names
from mixer_sweeps.retrain import (
    RETRAIN_DIR,
    RetrainPlan,
    RunOutcome,
    config_number,
    format_epochs_range,
)
from mixer_sweeps.training import atomic_write_text

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
RUNS_CSV = "runs.csv"
SEARCH = "search "
"""Prefix of the column holding the search's value (``search val_acc``)."""
VAL_CI = f"best val acc {CI}"
"""With ``--front``: the CI of the best val acc over the seeds, beside its mean."""
_METRICS = ("seeds", "failed", "test acc", CI, "std", "best val acc", VAL_CI, "epochs", "params")
SEARCH_EPOCHS = f"{SEARCH}epochs"
"""The column of the epochs the search trained, there only when the retrain's differ."""
_COUNTS = ("epochs", SEARCH_EPOCHS)
"""Shown like parameter values (``30``, not ``30.0000``)."""
QUOTE = (
    "The search's value is the best of many trials, each scored on the validation split that"
    " chose it, so it is optimistic; the retrained test accuracy, over seeds the search never"
    " used, is the number to quote."
)
OTHER_PROTOCOL = (
    "These runs trained another number of epochs than the search (`--epochs`): their numbers are"
    " not comparable with the search's, nor the number to quote for the configurations as"
    " searched."
)


def protocol(epochs: list[int], search: list[int]) -> str:
    """``3 epochs (search: 12)``: a retrain's epochs beside the search's."""
    plural = "s" * (epochs != [1])
    return f"{format_epochs_range(epochs)} epoch{plural} (search: {format_epochs_range(search)})"


def retrain_folder_entry(name: str) -> Literal["file", "folder"] | None:
    """What ``name`` is in a ``retrain/`` folder: a summary file, a configuration's runs
    (``trial-<n>``, ``spec``), or None (nothing of a retrain's)."""
    if name in (SUMMARY_CSV, SUMMARY_MD, RUNS_CSV):
        return "file"
    if name == "spec" or config_number(name) is not None:
        return "folder"
    return None


def runs_frame(outcomes: Sequence[RunOutcome]) -> pd.DataFrame:
    """One row per run: config, seed, state, test_acc, best_val_acc, best_epoch, epochs, ..."""
    return pd.DataFrame(
        [
            {
                "config": o.config,
                "seed": o.seed,
                "state": o.state,
                "test_acc": o.test_acc,
                "best_val_acc": o.best_val_acc,
                "best_epoch": o.best_epoch,
                "epochs": o.epochs,
                "num_params": o.num_params,
                "seconds": o.seconds,
                "reason": o.reason,
            }
            for o in outcomes
        ]
    )


def summary_table(plan: RetrainPlan, outcomes: Sequence[RunOutcome]) -> Table:
    """Per configuration: params, seeds, test acc mean ± 95% CI, best val acc, search value."""
    runs = runs_frame(outcomes)
    paths = list(dict.fromkeys(p for c in plan.configurations for p in c.params))
    names = short_names(paths)
    rows = []
    for config in plan.configurations:
        mine = runs[(runs["config"] == config.id) & (runs["state"] == "completed")]
        row: dict[str, object] = {"config": config.id}
        row.update({names[p]: config.params.get(p) for p in paths})
        row["seeds"] = len(mine)
        failed = int(((runs["config"] == config.id) & (runs["state"] != "completed")).sum())
        if failed:
            row["failed"] = failed
        row["test acc"] = mine["test_acc"].mean()
        row[CI] = ci95(mine["test_acc"])
        row["std"] = mine["test_acc"].std()
        row["best val acc"] = mine["best_val_acc"].mean()
        if plan.front:
            row[VAL_CI] = ci95(mine["best_val_acc"])
            row.update({m: v for m, v in config.costs.items() if m != "params"})
        if plan.metric is not None:
            row[f"{SEARCH}{plan.metric}"] = config.search_value
        row["epochs"] = mine["epochs"].mean()
        if plan.other_protocol:
            row[SEARCH_EPOCHS] = config.search_epochs
        row["params"] = mine["num_params"].max()
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("config")
    if "params" in frame:
        frame["params"] = frame["params"].astype("Int64")
    costs = tuple(dict.fromkeys(m for c in plan.configurations for m in c.costs if m != "params"))
    title = "Retrained: test accuracy over fresh seeds"
    if plan.front:
        title = "Retrained front: each configuration over fresh seeds"
    if plan.other_protocol:
        assert plan.epochs is not None
        title += f", {protocol([plan.epochs], list(plan.search_epochs))}"
    return Table(
        "retrained",
        title,
        frame,
        _note(plan),
        params=(*names.values(), *_COUNTS, *costs),
    )


def _note(plan: RetrainPlan) -> str:
    seeds = f"{len(plan.seeds)} fresh seeds ({plan.seeds[0]}–{plan.seeds[-1]})"
    what = (
        f"The {len(plan.configurations)} best of {plan.distinct} distinct complete configurations"
        f" by {plan.metric} ({plan.direction.name.lower()}), each"
        if plan.direction is not None
        else f"The run spec {plan.source}"
    )
    if plan.front:
        aims = ", ".join(str(o) for o in plan.objectives)
        what = (
            f"The {len(plan.configurations)} configurations of the front ({aims}) among"
            f" {plan.distinct} distinct complete ones, each"
        )
    note = (
        f"{what} trained again with {seeds}; test acc: mean, {CI} (Student's t) and std over"
        " the seeds, each run tested once with its best-validation weights."
    )
    if plan.front:
        note += (
            f" best val acc: mean and {CI} over the seeds; the costs (params, ...) are the"
            " configuration's own, the same for every seed."
        )
    if plan.other_protocol:
        return f"{note} {OTHER_PROTOCOL}"
    return note + (f" {QUOTE}" if plan.direction is not None else "")


def write_summary(plan: RetrainPlan, outcomes: Sequence[RunOutcome]) -> tuple[Table, list[Path]]:
    """``summary.csv``, ``summary.md`` and ``runs.csv`` in ``plan.root``."""
    table = summary_table(plan, outcomes)
    lines = [
        f"from {plan.source}; runs in {plan.root}/<config>/seed-<s>/",
        f"seeds {', '.join(map(str, plan.seeds))} (the search used"
        f" {', '.join(map(str, plan.search_seeds))})",
        "epochs: "
        + (f"{plan.epochs} (--epochs)" if plan.epochs is not None else "as in the spec")
        + (f", {plan.epochs_warning()}" if plan.other_protocol else "")
        + "; early stopping off unless the spec sets optim.early_stopping_patience",
    ]
    report = Report(title=retrain_title(plan), summary=lines, tables=[table])
    written = []
    for name, text in (
        (SUMMARY_CSV, table.frame.to_csv()),
        (RUNS_CSV, runs_frame(outcomes).to_csv(index=False)),
        (SUMMARY_MD, to_markdown(report)),
    ):
        atomic_write_text(plan.root / name, text)
        written.append(plan.root / name)
    return table, written


def retrain_title(plan: RetrainPlan) -> str:
    """``Retrained: <name>``, and the epochs beside the search's when they differ."""
    if not plan.other_protocol:
        return f"Retrained: {plan.name}"
    assert plan.epochs is not None
    return f"Retrained: {plan.name}, {protocol([plan.epochs], list(plan.search_epochs))}"


def retrained_tables(study_dir: Path) -> list[Table]:
    """The "Retrained" table of a study's report, from the last ``sweeps retrain``; none
    without one."""
    path = Path(study_dir) / RETRAIN_DIR / SUMMARY_CSV
    if not path.is_file():
        return []
    frame = pd.read_csv(path, index_col="config")
    if "params" in frame:  # a failed configuration's empty cell would make it float
        frame["params"] = frame["params"].astype("Int64")
    params = tuple(c for c in frame.columns if c not in _METRICS and not c.startswith(SEARCH))
    seeds = frame["seeds"].max() if "seeds" in frame and len(frame) else 0
    note = (
        f"The best configurations of the search trained again with {seeds} fresh seeds"
        f" (`sweeps retrain`, {RETRAIN_DIR}/{SUMMARY_CSV}); test acc: mean, {CI} (Student's t)"
        " and std over the seeds, each run tested once with its best-validation weights."
    )
    title = "Retrained: the number to quote"
    if VAL_CI in frame:
        note = note.replace("The best configurations of the search", "The front's configurations")
        note += f" best val acc: mean and {CI} over the seeds; the costs are the configuration's."
        title = "Retrained front: the numbers to quote"
    if SEARCH_EPOCHS in frame and frame[SEARCH_EPOCHS].notna().any():
        ran = [round(e) for e in frame["epochs"].dropna()] or [0]
        shown_protocol = protocol(ran, [int(e) for e in frame[SEARCH_EPOCHS].dropna()])
        title = f"Retrained, {shown_protocol}: not comparable with the search"
        note += f" {OTHER_PROTOCOL}"
    else:
        note += f" {QUOTE}"
    shown = (*params, *(c for c in _COUNTS if c in frame))
    return [Table("retrained", title, frame, note, params=shown)]
