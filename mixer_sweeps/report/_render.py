"""A report as Markdown, LaTeX, a self-contained HTML page and rich tables in the terminal.

Numbers are formatted once (:func:`display_frame`), then pandas writes each format:
``DataFrame.to_markdown``, ``DataFrame.to_latex`` and ``DataFrame.to_html``.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mixer_sweeps.report._plots import Plot
from mixer_sweeps.report._tables import Table
from mixer_sweeps.results import format_cell


@dataclass
class Report:
    title: str
    summary: list[str]
    tables: list[Table]
    plots: list[Plot] = field(default_factory=list)
    spec: str | None = None
    """The best trial's resolved run spec (YAML)."""
    data_file: str | None = None
    """The CSV written beside the report, if any."""
    data_label: str = "Every trial"
    """What a row of ``data_file`` is, for the line that links it."""


def display_frame(table: Table) -> pd.DataFrame:
    """The table as strings, its index as the first column.

    Each cell is written by :func:`~mixer_sweeps.results.format_cell`: accuracies with 4
    decimals, counts with thousands separators (``138,506``), parameter values with 4 digits; a
    pivot's first header names both of its factors (``rows \\ columns``).
    """
    frame = table.frame
    first = str(frame.index.name or "")
    if frame.columns.name:
        first += f" \\ {frame.columns.name}"
    shown = {first: [format_cell(v, "value") for v in frame.index]}
    for column in frame.columns:
        kind = "value" if column in table.params else "metric"
        shown[format_cell(column, "value")] = [format_cell(v, kind) for v in frame[column]]
    return pd.DataFrame(shown)


def to_markdown(report: Report) -> str:
    lines = [f"# {report.title}", "", *(f"- {line}" for line in report.summary), ""]
    if report.data_file:
        lines += [f"{report.data_label}: [{report.data_file}]({report.data_file}).", ""]
    for table in report.tables:
        shown = display_frame(table)
        lines += [f"## {table.title}", ""]
        align = ("left",) + ("right",) * (len(shown.columns) - 1)
        lines += [shown.to_markdown(index=False, disable_numparse=True, colalign=align), ""]
        if table.note:
            lines += [f"*{table.note}*", ""]
    if report.plots:
        lines += ["## Plots", ""]
        for plot in report.plots:
            lines += [f"![{plot.title}]({plot.path.name})", ""]
            lines += [f"*{plot.caption}*", ""] if plot.caption else []
    if report.spec:
        lines += ["## Best trial's run spec", "", "```yaml", report.spec.rstrip(), "```", ""]
    return "\n".join(lines)


_LATEX_SPECIALS = {c: "\\" + c for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}
_CODE = re.compile(r"`([^`]+)`")
_LATEX_SYMBOLS = {"±": r"$\pm$", "×": r"$\times$", "–": "--", "−": "-"}


def _latex_text(text: str) -> str:
    """``text`` escaped for LaTeX, its code spans (`` `x` ``) in typewriter type."""
    escaped = "".join(_LATEX_SPECIALS.get(c, c) for c in text)
    return _CODE.sub(r"\\texttt{\1}", escaped)


def to_latex(report: Report) -> str:
    """One ``table`` float per table, one ``figure`` float per plot (its PNG file beside the
    ``.tex``); needs ``\\usepackage{booktabs,graphicx}``."""
    parts = [
        f"% {report.title}: tables and plots from `sweeps report`;"
        " needs \\usepackage{booktabs,graphicx}"
    ]
    for table in report.tables:
        shown = display_frame(table)
        caption = table.title + (f". {table.note}" if table.note else "")
        latex = shown.to_latex(
            escape=True,
            index=False,
            column_format="l" + "r" * (len(shown.columns) - 1),
            caption=(_latex_text(caption), _latex_text(table.title)),
            label=f"tab:{table.key}",
            position="htbp",
        )
        parts.append(latex)
    for plot in report.plots:
        caption = plot.title + (f". {plot.caption}" if plot.caption else "")
        parts.append(
            "\\begin{figure}[htbp]\n\\centering\n"
            f"\\includegraphics[width=\\linewidth]{{{plot.path.name}}}\n"
            f"\\caption[{_latex_text(plot.title)}]{{{_latex_text(caption)}}}\n"
            f"\\label{{fig:{plot.path.stem}}}\n\\end{{figure}}\n"
        )
    text = "\n".join(parts)
    for symbol, latex in _LATEX_SYMBOLS.items():
        text = text.replace(symbol, latex)
    return text


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
li, p { overflow-wrap: anywhere; }
code { font-size: 0.9em; background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; }
div.table { overflow-x: auto; max-width: 100%; margin: 0.5rem 0; }
table.data { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.data th, table.data td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #ddd;
                               text-align: right; }
table.data td { white-space: nowrap; }
table.data thead th { border-bottom: 2px solid #999; }
table.data td:first-child, table.data th:first-child { text-align: left; }
table.data td:first-child { font-weight: 600; }
p.note { color: #555; font-size: 0.9rem; margin-top: 0; }
figure { margin: 1rem 0 2rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee;
             box-sizing: border-box; }
figcaption { color: #555; font-size: 0.9rem; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<ul>{% for line in summary %}<li>{{ line | code | safe }}</li>{% endfor %}</ul>
{% if data_file %}<p>{{ data_label }}: <a href="{{ data_file }}">{{ data_file }}</a>.</p>{% endif %}
{% for table in tables %}
<h2>{{ table.title | code | safe }}</h2>
<div class="table">{{ table.html | safe }}</div>
{% if table.note %}<p class="note">{{ table.note | code | safe }}</p>{% endif %}
{% endfor %}
{% if plots %}<h2>Plots</h2>{% endif %}
{% for plot in plots %}
<figure><img src="data:image/png;base64,{{ plot.data }}" alt="{{ plot.title }}">
<figcaption>{{ plot.title | code | safe }}
{%- if plot.caption %}: {{ plot.caption | code | safe }}{% endif %}</figcaption></figure>
{% endfor %}
{% if spec %}<h2>Best trial's run spec</h2><pre>{{ spec }}</pre>{% endif %}
</body>
</html>
"""


def code_spans(text: str) -> str:
    """``text`` escaped for HTML, its Markdown code spans (`` `x` ``) as ``<code>x</code>``."""
    return _CODE.sub(r"<code>\1</code>", html.escape(str(text)))


def to_html(report: Report) -> str:
    """A page that needs no other file: the plots are embedded as data URIs."""
    import jinja2

    environment = jinja2.Environment(autoescape=True)
    environment.filters["code"] = code_spans
    template = environment.from_string(_HTML)
    tables = [
        {
            "title": t.title,
            "note": t.note,
            "html": display_frame(t).to_html(index=False, border=0, classes="data", escape=True),
        }
        for t in report.tables
    ]
    plots = [
        {
            "title": p.title,
            "caption": p.caption,
            "data": base64.b64encode(Path(p.path).read_bytes()).decode("ascii"),
        }
        for p in report.plots
    ]
    return template.render(
        title=report.title,
        summary=report.summary,
        data_file=report.data_file,
        data_label=report.data_label,
        tables=tables,
        plots=plots,
        spec=report.spec,
    )


def print_report(report: Report, console: Any) -> None:
    """The report's summary and tables as rich tables."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    console.print(report.title, style="bold", markup=False, highlight=False)
    for line in report.summary:
        console.print(f"  {line}", markup=False, highlight=False)
    for table in report.tables:
        shown = display_frame(table)
        rich_table = RichTable(
            title=escape(table.title),
            title_justify="left",
            caption=escape(table.note) or None,  # says what a ± is
            caption_justify="left",
            show_edge=False,
        )
        for i, column in enumerate(shown.columns):
            rich_table.add_column(
                escape(column),
                justify="left" if i == 0 else "right",
                style="bold" if i == 0 else "",
            )
        for row in shown.itertuples(index=False):
            rich_table.add_row(*map(escape, row))
        console.print(rich_table)
