"""A study's saved W&B workspace view, built as an object without touching the network.

:func:`build_workspace` is a pure function of a :class:`StudyView`: what it returns can be read
back (panels, their keys, the run filter) in tests that have no server. Saving it is
:func:`~mixer_sweeps.tracking.save_study_view`'s job. wandb_workspaces is imported only when a
view is built: importing this module is free.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import wandb_workspaces.workspaces as ws

VIEW_FILE = "wandb/view.json"
"""Under a study's results folder: the saved view's address, kept so that it is made once."""


@dataclass(frozen=True)
class StudyView:
    """What a study's view shows: the study's trial runs in its W&B project.

    ``params`` are the searched parameters as dotted spec paths (``optim.lr``), which are also
    their W&B config keys, since a trial's config is its resolved spec; ``log_params`` are those
    searched on a log scale. ``metric`` is the study's per-epoch metric (``val_acc``); each trial
    run's summary holds its best as ``best_<metric>``. ``runs`` is how many trial runs the
    panels should show at least. ``entity`` None is the API key's default entity, resolved when
    the view is saved.
    """

    study: str
    project: str
    entity: str | None = None
    params: tuple[str, ...] = ()
    log_params: frozenset[str] = field(default_factory=frozenset)
    metric: str = "val_acc"
    direction: str = "maximize"
    runs: int = 10

    @property
    def objective(self) -> str:
        """The trial runs' summary key of the study's objective."""
        return f"best_{self.metric}"

    @property
    def name(self) -> str:
        return f"{self.study} (study)"

    def to_json(self) -> str:
        data = asdict(self)
        data["params"] = list(self.params)
        data["log_params"] = sorted(self.log_params)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> StudyView:
        data = json.loads(text)
        data["params"] = tuple(data["params"])
        data["log_params"] = frozenset(data["log_params"])
        return cls(**data)


def config_column(path: str) -> str:
    """The runs-table column of a config key given as a dotted path: W&B keeps each top-level
    config key's value under ``value`` (``model.embed_dim`` is ``config:model.value.embed_dim``)."""
    top, _, rest = path.partition(".")
    return f"config:{top}.value" + (f".{rest}" if rest else "")


def build_workspace(view: StudyView, entity: str) -> ws.Workspace:
    """The study's saved view as a wandb_workspaces ``Workspace`` (not saved).

    The runset keeps the study's trial runs only (``group`` = the study, ``job_type`` =
    ``trial``), best objective first; they are filtered on their group rather than grouped by
    it, so that each trial keeps its own curve, line and table row. One open section holds a
    parallel-coordinates panel (the searched params, then the objective), a parameter-importance
    panel on the objective, the ``val_acc`` curves against ``epoch`` (and the study's metric's,
    when it is another) and a run comparer; the runs table pins each run's name, state, params,
    objective, test accuracy and size.
    """
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    objective = view.objective
    coordinates = [
        wr.ParallelCoordinatesPlotColumn(
            metric=wr.Config(p), log=True if p in view.log_params else None
        )
        for p in view.params
    ]
    coordinates.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(objective)))
    curves = [wr.LinePlot(title="val_acc per epoch", x="epoch", y=["val_acc"])]
    if view.metric != "val_acc":
        curves.append(wr.LinePlot(title=f"{view.metric} per epoch", x="epoch", y=[view.metric]))
    panels: list[Any] = [
        wr.ParallelCoordinatesPlot(
            title=f"{view.study}: searched params and {objective}", columns=coordinates
        ),
        wr.ParameterImportancePlot(with_respect_to=objective),
        *curves,
        wr.RunComparer(diff_only="split"),
    ]
    columns = [
        "run:displayName",
        "summary:state",
        *(config_column(p) for p in view.params),
        f"summary:{objective}",
        *(["summary:best_val_acc"] if objective != "best_val_acc" else []),
        "summary:test_acc",
        "summary:num_params",
    ]
    return ws.Workspace(
        entity=entity,
        project=view.project,
        name=view.name,
        sections=[
            ws.Section(
                name=f"Study {view.study}",
                panels=panels,
                is_open=True,
                panel_settings=ws.SectionPanelSettings(x_axis="epoch"),
            )
        ],
        settings=ws.WorkspaceSettings(x_axis="epoch", max_runs=max(10, view.runs)),
        runset_settings=ws.RunsetSettings(
            filters=[ws.Metric("Group") == view.study, ws.Metric("JobType") == "trial"],
            order=[ws.Ordering(ws.Summary(objective), ascending=view.direction == "minimize")],
            pinned_columns=columns,
        ),
    )


def saved_view(study_dir: Path) -> dict[str, Any] | None:
    """The study's view as recorded when it was saved (``url``, ``entity``, ``project``), or
    None when none was."""
    try:
        data = json.loads((Path(study_dir) / VIEW_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
