"""One self-contained HTML report of workflow runs: overview, provenance graph, metric plots, params,
model versions and, for several runs, their comparison. Plots are inline SVG; the page has no script
and loads nothing, so it opens from disk with no network.

System series (``cpu_usage``, ``memory_usage``, ``process_rss_mb``, ``gpu_*``, power, energy and
emissions…) are drawn over time, as in the yProv4ML paper's figure 2; other metrics over steps, one
chart per key with a line per context. Long series are thinned for drawing with M4 (see
``yprov_wf.viz.downsample``); the metric files keep every point.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from yprov_wf.recording.records import TaskRecord, WorkflowRecord
from yprov_wf.viz.compare import Comparison, compare, default_metric, summaries
from yprov_wf.viz.runs import RunView, SeriesData, WorkflowRun, load_series, load_workflows, run_views
from yprov_wf.viz.svgplot import Line, Point, line_chart, scatter_chart

SYSTEM_KEYS = re.compile(r"^(cpu|memory|disk|process|gpu|ram|swap|net|power|energy|emissions?|carbon|co2)"
                         r"([_.].*)?$", re.I)
ENERGY_ATTRIBUTE = re.compile(r"energy|emission|carbon|co2|power|kwh", re.I)
MAX_GRAPH_TASKS = 300  # beyond this the report draws the workflow-level graph only
MAX_SCATTER_PARAMS = 6

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:14px;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;border-bottom:2px solid #9fb1fc;padding-bottom:4px;margin-top:32px}
h3{font-size:16px;margin-top:24px}h4{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f0f3ff}td.num{text-align:right;font-variant-numeric:tabular-nums}
.completed{color:#1a7f37}.failed,.crashed{color:#c62828;font-weight:bold}.running,.interrupted{color:#b26a00}
.plots{display:flex;flex-wrap:wrap;gap:10px}.plots svg{border:1px solid #eee;background:#fff}
.graph{overflow:auto;max-height:900px;border:1px solid #ddd;padding:4px}.graph svg{max-width:100%;height:auto}
.best{background:#e6f4ea;font-weight:bold}.muted{color:#777}code,pre{font-family:"DejaVu Sans Mono",monospace}
pre{white-space:pre-wrap;background:#f7f7f7;padding:6px;max-height:300px;overflow:auto}
"""


def write_report(paths: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *, metric: str | None = None, mode: str | None = None,
                 graph: bool = True) -> Path:
    """Write the report of every workflow run under ``paths`` to ``output`` (an .html file)."""
    from yprov_wf.layout import atomic_write

    workflows = load_workflows(paths)
    if not workflows:
        raise ValueError(f"no workflow run found under {', '.join(map(str, paths))}")
    html = build_report(workflows, metric=metric, mode=mode, graph=graph)
    atomic_write(Path(output), html.encode("utf-8"))
    return Path(output)


def build_report(workflows: Sequence[WorkflowRun], *, metric: str | None = None, mode: str | None = None,
                 graph: bool = True) -> str:
    """The report as one HTML string. ``metric``/``mode`` choose how runs are ranked (default: a
    validation loss, else a loss, minimised; else an accuracy, maximised)."""
    if not workflows:
        raise ValueError("no workflow run to report on")
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    views = run_views(workflows)
    cmp = _comparison(views, metric, mode)
    body = [f"<h1>yprov-wf report</h1><p class=\"muted\">{len(workflows)} workflow run(s), {len(views)} ML run(s); "
            f"generated {escape(_when(time.time()))}. Plots of long series are thinned with M4 "
            "(first, last, min and max point per pixel column); the metric files keep every point.</p>"]
    if len(views) > 1:
        body.append(_comparison_section(cmp, views))
    for wf, tasks, root in workflows:
        body.append(_workflow_section(wf, tasks, root, graph))
        for view in (v for v in views if v.root == root):
            body.append(_run_section(view, cmp))
    title = escape(", ".join(dict.fromkeys(wf.name for wf, _, _ in workflows)))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>yprov-wf report: {title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f'<body>{"".join(body)}</body></html>\n')


def _comparison(views: list[RunView], metric: str | None, mode: str | None) -> Comparison:
    runs = summaries(views)
    if metric is None:
        names = list(dict.fromkeys(n for r in runs for n in r.final))
        picked = default_metric(names)
        if picked is not None:
            metric, default_mode = picked
            mode = mode or default_mode
    return compare(runs, metric, mode or "min")


# -- workflow ---------------------------------------------------------------------------------------------

def _workflow_section(wf: WorkflowRecord, tasks: list[TaskRecord], root: Path, graph: bool) -> str:
    out = [f'<section class="workflow"><h2>Workflow {escape(wf.name)} <span class="muted">{escape(wf.workflow_id)}'
           f'</span></h2><p>status <span class="{escape(wf.status)}">{escape(wf.status)}</span> · engine '
           f'{escape(wf.engine or "-")} · started {escape(_when(wf.started))} · duration '
           f'{escape(_duration(wf.started, wf.ended))} · folder <code>{escape(str(root))}</code></p>']
    if wf.error:
        out.append(f"<pre>{escape(wf.error)}</pre>")
    if wf.agents:
        out.append(_agents_table(wf, tasks))
    if wf.params:
        out.append(_kv_table("Workflow params", [(p.key, p.value) for p in wf.params]))
    out.append(_tasks_table(tasks))
    if graph:
        out.append(_graph_block(wf, tasks))
    out.append("</section>")
    return "".join(out)


def _agents_table(wf: WorkflowRecord, tasks: list[TaskRecord]) -> str:
    """Who ran the workflow and which software acted (prov:Agent): the workflow's, then the tasks' launchers."""
    rows = [[a.role, a.name, a.version or "", a.instance or "", "workflow"] for a in wf.agents]
    seen = list(wf.agents)
    for t in tasks:
        for a in t.agents:
            if a not in seen:
                seen.append(a)
                rows.append([a.role, a.name, a.version or "", a.instance or "", t.name])
    return _table("Agents", ["role", "name", "version", "id", "on"], rows)


def _tasks_table(tasks: list[TaskRecord]) -> str:
    energy = list(dict.fromkeys(k for t in tasks for k in t.attributes if ENERGY_ATTRIBUTE.search(k)))
    head = "".join(f"<th>{escape(h)}</th>" for h in ("task", "id", "attempt", "status", "started", "duration",
                                                      "ML runs", *energy, "error"))
    rows = []
    for t in tasks:
        cells = [escape(t.name), f"<code>{escape(t.task_id)}</code>", str(t.attempt),
                 f'<span class="{escape(t.status)}">{escape(t.status)}</span>', escape(_when(t.started)),
                 escape(_duration(t.started, t.ended)), str(len(t.runs))]
        row = "".join(f"<td>{c}</td>" for c in cells)
        row += "".join(f'<td class="num">{escape(_cell(t.attributes.get(k)))}</td>' for k in energy)
        row += f"<td>{escape(t.error.splitlines()[0]) if t.error else ''}</td>"
        rows.append(f"<tr>{row}</tr>")
    total = ""
    if energy:
        sums = []
        for k in energy:
            values = [t.attributes.get(k) for t in tasks]
            nums = [x for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)]
            sums.append(f'<td class="num">{escape(_cell(sum(nums)) if nums else "")}</td>')
        total = f'<tr><th colspan="7">total</th>{"".join(sums)}<td></td></tr>'
    return f"<h4>Tasks ({len(tasks)})</h4><table><tr>{head}</tr>{''.join(rows)}{total}</table>"


def _graph_block(wf: WorkflowRecord, tasks: list[TaskRecord]) -> str:
    from yprov_wf.viz.graph import DotNotFoundError, GraphRenderError, build_graph, render_svg

    level = "task" if len(tasks) <= MAX_GRAPH_TASKS else "workflow"
    try:
        g = build_graph(wf, tasks, level)
    except ImportError:
        return ('<h4>Provenance graph</h4><p class="muted">not drawn: the graphviz package is missing '
                "(pip install 'yprov-wf[viz]')</p>")
    try:
        svg = render_svg(g)
    except (DotNotFoundError, GraphRenderError) as exc:
        return (f'<h4>Provenance graph</h4><p class="muted">not drawn: {escape(str(exc))}</p>'
                f"<details><summary>DOT source</summary><pre>{escape(g.source)}</pre></details>")
    return f'<h4>Provenance graph ({level} level)</h4><div class="graph">{_inline_svg(svg)}</div>'


def _inline_svg(svg: str) -> str:
    """dot's SVG without its XML prolog, doctype and comments, ready to sit inside HTML."""
    start = svg.find("<svg")
    body = svg[start:] if start >= 0 else svg
    return re.sub(r"<!--.*?-->", "", body, flags=re.S)


# -- one run ----------------------------------------------------------------------------------------------

def _run_section(view: RunView, cmp: Comparison) -> str:
    run, task = view.run, view.task
    best = ' <span class="best">best run</span>' if cmp.best == view.label and len(cmp.runs) > 1 else ""
    out = [f'<section class="run"><h3>Run <code>{escape(run.run_id)}</code>{best}</h3>'
           f'<p>task {escape(task.name)} <code class="muted">{escape(task.task_id)}</code> · experiment '
           f'{escape(run.experiment)} · status <span class="{escape(run.status)}">{escape(run.status)}</span> · '
           f'duration {escape(_duration(run.started, run.ended))}'
           + (f" · rank {run.rank}/{run.world_size}" if run.world_size > 1 else "") + "</p>"]
    if run.error:
        out.append(f"<pre>{escape(run.error)}</pre>")
    params = view.params()
    if params:
        out.append(_kv_table("Params", list(params.items())))
    series = load_series(view)
    out.append(_metric_plots(series, run.started))
    if run.series:
        out.append(_series_table(view))
    if run.model_versions or run.models:
        rows = [(mv.model_name, f"v{mv.version}", mv.context or "", "" if mv.step is None else mv.step,
                 mv.path, mv.sha256[:12]) for mv in run.model_versions]
        rows += [(m.label, "final", "", "", m.path, m.sha256[:12]) for m in run.models]
        out.append(_table("Model versions", ("model", "version", "context", "step", "file", "sha256"), rows))
    if run.datasets:
        out.append(_table("Datasets", ("label", "kind", "samples", "context"),
                          [(d.label, d.kind, "" if d.samples is None else d.samples, d.context or "")
                           for d in run.datasets]))
    if run.artifacts:
        out.append(_table("Artifacts", ("name", "direction", "file", "sha256"),
                          [(a.name, "input" if a.is_input else "output", a.path, a.sha256[:12])
                           for a in run.artifacts]))
    out.append("</section>")
    return "".join(out)


def _metric_plots(series: list[SeriesData], started: float) -> str:
    if not series:
        return ""
    by_key: dict[str, list[SeriesData]] = {}
    system: list[SeriesData] = []
    for s in series:
        (system if SYSTEM_KEYS.match(s.key) else by_key.setdefault(s.key, [])).append(s)
    out = []
    if by_key:
        charts = [line_chart([Line(s.context or s.key, s.steps, s.values) for s in group], title=key,
                             x_label="step", width=460, height=260) for key, group in by_key.items()]
        out.append(f'<h4>Metrics by context over steps</h4><div class="plots">{"".join(charts)}</div>')
    if system:
        # figure 2 of the yProv4ML paper: system use beside training progress on one time axis
        t0 = min(started, *(float(s.times.min()) for s in series))
        charts = []
        if by_key:
            key, group = next(iter(by_key.items()))
            charts.append(line_chart([Line(s.context or s.key, s.times - t0, s.values) for s in group],
                                     title=f"{key} over time", x_label="seconds since the run started",
                                     width=460, height=220))
        charts += [line_chart([Line(s.context or s.key, s.times - t0, s.values)], title=s.name,
                              x_label="seconds since the run started", width=460, height=220) for s in system]
        out.append(f'<h4>System and energy over time</h4><div class="plots">{"".join(charts)}</div>')
    return "".join(out)


def _series_table(view: RunView) -> str:
    from yprov_wf.viz.runs import series_name

    rows = [(series_name(s.key, s.context), s.count, _cell(s.first), _cell(s.last), _cell(s.minimum),
             _cell(s.maximum), s.non_finite or "") for s in view.run.series]
    return _table("Metric series", ("series", "points", "first", "last", "min", "max", "non-finite"), rows)


# -- comparison -------------------------------------------------------------------------------------------

def _comparison_section(cmp: Comparison, views: list[RunView]) -> str:
    out = [f"<section class=\"comparison\"><h2>Comparison of {len(cmp.runs)} runs</h2>"]
    head = "<tr><th></th>" + "".join(f"<th><code>{escape(r)}</code></th>" for r in cmp.runs) + "</tr>"
    task_row = "<tr><th>task</th>" + "".join(f"<td>{escape(v.task.name)}</td>" for v in views) + "</tr>"
    if cmp.differing_params:
        rows = "".join(f"<tr><th>{escape(k)}</th>" + "".join(f"<td>{escape(_cell(x))}</td>" for x in vs) + "</tr>"
                       for k, vs in cmp.differing_params.items())
        out.append(f"<h4>Params that differ</h4><table>{head}{task_row}{rows}</table>")
    else:
        out.append('<p class="muted">Every run has the same params.</p>')
    if cmp.metrics:
        best_i = cmp.runs.index(cmp.best) if cmp.best is not None else -1
        rows = []
        for name, vs in cmp.metrics.items():
            cells = "".join(f'<td class="num{" best" if name == cmp.metric and i == best_i else ""}">'
                            f"{escape(_cell(x))}</td>" for i, x in enumerate(vs))
            rows.append(f"<tr><th>{escape(name)}</th>{cells}</tr>")
        out.append(f"<h4>Final metrics</h4><table>{head}{''.join(rows)}</table>")
    if cmp.metric is not None:
        if cmp.best is None:
            out.append(f"<p>No run has a finite {escape(cmp.metric)}.</p>")
        else:
            out.append(f'<p class="best">Best run by {escape(cmp.metric)} ({escape(cmp.mode)}): '
                       f"<code>{escape(cmp.best)}</code> with {escape(_cell(cmp.best_value))}</p>")
        charts = []
        for key, values in list(cmp.differing_params.items())[:MAX_SCATTER_PARAMS]:
            pts = [Point(r, x, y) for r, x, y in zip(cmp.runs, values, cmp.metrics[cmp.metric])
                   if x is not None and y is not None]
            if len({repr(p.x) for p in pts}) > 1:  # a param that varies among the runs that have the metric
                charts.append(scatter_chart(pts, title=f"{cmp.metric} against {key}", x_label=key,
                                            y_label=cmp.metric))
        if charts:
            out.append(f'<h4>Params against {escape(cmp.metric)}</h4><div class="plots">{"".join(charts)}</div>')
    out.append("</section>")
    return "".join(out)


# -- small HTML pieces ------------------------------------------------------------------------------------

def _kv_table(title: str, items: list[tuple[str, object]]) -> str:
    return _table(title, ("name", "value"), items)


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<h4>{escape(title)}</h4><table><tr>{head}</tr>{body}</table>"


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _when(t: float | None) -> str:
    if not t:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(start: float | None, end: float | None) -> str:
    if not start or end is None:
        return "-"
    seconds = end - start
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
