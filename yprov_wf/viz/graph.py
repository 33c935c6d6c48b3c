"""The provenance graph as DOT and SVG, built from the records with the ``graphviz`` package and drawn
by Graphviz's ``dot`` (run by that package with an argument list, never a shell string).

Drawn in the PROV style: activities are blue boxes, entities yellow ellipses; arrows point from the
effect to its cause (used: activity → entity; wasGeneratedBy: entity → activity). Each task bundle is a
cluster inside the workflow. Levels:

- ``workflow``: the workflow, its tasks (one cluster each, holding the task's runs), the files they
  used and generated, and which task informed which.
- ``task`` (the default): also, per run, one node for its params and one for its metric series, and
  its model versions (each a revision of the previous), models, artifacts and datasets.
- ``run``: as ``task``, with each param and each metric series a node of its own.

A metric series is always one node, never one per point, so a 100-task workflow stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yprov_wf.prov import dataflow
from yprov_wf.recording.records import COMPLETED, FAILED, RUNNING, TaskRecord, WorkflowRecord
from yprov_wf.recording.run_records import RunRecord
from yprov_wf.viz.runs import series_name

LEVELS = ("workflow", "task", "run")
INSTALL_HINT = "install Graphviz to get SVG: apt-get install graphviz (or conda install graphviz, brew install graphviz)"
_ACTIVITY = {"shape": "box", "style": "filled,rounded", "fillcolor": "#9fb1fc", "color": "#0000ff"}
_ENTITY = {"shape": "ellipse", "style": "filled", "fillcolor": "#fffc87", "color": "#808080"}
_STATUS_COLOR = {COMPLETED: "#9fb1fc", FAILED: "#f4a3a3", RUNNING: "#ffd59a"}
_MAX_LINES = 8
COMPACT_TASKS = 20


class DotNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not installed (the DOT source can still be written)."""


class GraphRenderError(RuntimeError):
    """``dot`` ran but failed to lay the graph out (the DOT source can still be written)."""


def build_graph(workflow: WorkflowRecord | None, tasks: Sequence[TaskRecord], level: str = "task") -> Any:
    """A ``graphviz.Digraph`` of a workflow run (or, with ``workflow=None``, of task bundles alone).

    Beyond ``COMPACT_TASKS`` tasks the edges lose their labels and the tasks their wasStartedBy edge to
    the workflow (the enclosing workflow cluster says it), which keeps large graphs legible and quick.
    """
    import graphviz

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    compact = len(tasks) > COMPACT_TASKS
    dg = graphviz.Digraph("provenance", graph_attr={
        "rankdir": "RL", "newrank": "true",  # newrank: dot 2.43 fails ("trouble in init_rank") on nested clusters
        "fontname": "DejaVu Sans", "fontsize": "11", "nodesep": "0.15", "ranksep": "0.35"},
        node_attr={"fontname": "DejaVu Sans", "fontsize": "10"},
        edge_attr={"fontname": "DejaVu Sans", "fontsize": "8", "color": "#555555"})
    if compact:
        dg.attr(label=_escape(f"{len(tasks)} tasks: edge labels left out (solid: used / wasGeneratedBy, "
                              "dashed: wasInformedBy, orange: wasRevisionOf)"), labelloc="b")
    g = _Canvas(dg, labels=not compact)
    files: dict[str, str] = {}
    wid = f"workflow:{workflow.workflow_id}" if workflow is not None else None
    with dg.subgraph(name="cluster_workflow") as outer:
        w = _Canvas(outer, labels=not compact)
        if workflow is not None:
            outer.attr(label=_escape(f"workflow run {workflow.name}: collection of {len(tasks)} task bundle"
                                   f"{'' if len(tasks) == 1 else 's'}"),
                       style="rounded", color="#0000ff", fontsize="11")
            w.node(wid, _label(f"workflow {workflow.name}", workflow.workflow_id,
                               _status(workflow.status, workflow.started, workflow.ended)),
                   **{**_ACTIVITY, "fillcolor": _STATUS_COLOR.get(workflow.status, "#dddddd"), "penwidth": "2"})
            if level != "workflow" and workflow.params:
                _params_node(w, f"{wid}:params", wid, [(p.key, p.value) for p in workflow.params])
        else:
            outer.attr(label="task bundles", style="invis")
        for task in tasks:
            tid = f"task:{task.task_id}"
            with outer.subgraph(name=_node_id(f"cluster_{task.task_id}", "cluster_")) as sub:
                sub.attr(label=_escape(f"bundle {task.name}"), style="dashed", color="#888888", fontsize="10")
                _task(_Canvas(sub, labels=not compact), task, tid, level)
            if wid is not None and not compact:
                w.edge(tid, wid, label="wasStartedBy")
    flow = dataflow.resolve(tasks)  # one node per generation; a use joins the generation it read
    for task in tasks:
        tid = f"task:{task.task_id}"
        for i, f in enumerate(task.outputs):
            g.edge(_file(g, files, dataflow.output_entity(task, i), f), tid, label="wasGeneratedBy")
    for task in tasks:
        tid = f"task:{task.task_id}"
        for i, f in enumerate(task.inputs):
            gen = flow.get((task.task_id, i))
            g.edge(tid, _file(g, files, gen.entity if gen else dataflow.input_entity(task, i), f), label="used")
        for upstream in sorted(dataflow.informants(task, flow)):
            g.edge(f"task:{task.task_id}", f"task:{upstream}", label="wasInformedBy", style="dashed")
    return dg


class _Canvas:
    """A graph or cluster whose node names are hashed: user text reaches DOT only inside labels."""

    def __init__(self, graph: Any, labels: bool = True) -> None:
        self.graph = graph
        self.labels = labels

    def node(self, name: str, label: Any, **attrs: str) -> None:
        self.graph.node(_node_id(name), label, **attrs)

    def edge(self, tail: str, head: str, **attrs: str) -> None:
        if not self.labels:
            attrs.pop("label", None)
        self.graph.edge(_node_id(tail), _node_id(head), **attrs)


def _node_id(name: str, prefix: str = "n") -> str:
    import hashlib

    return prefix + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _task(c: Any, task: TaskRecord, tid: str, level: str) -> None:
    attempt = f"attempt {task.attempt}" if task.attempt > 1 else ""
    c.node(tid, _label(f"task {task.name}", attempt, _status(task.status, task.started, task.ended)),
           **{**_ACTIVITY, "fillcolor": _STATUS_COLOR.get(task.status, "#dddddd")})
    if level != "workflow" and task.params:
        _params_node(c, f"{tid}:params", tid, [(p.key, p.value) for p in task.params])
    for run in task.runs:
        _run(c, run, tid, level)


def _run(c: Any, run: RunRecord, tid: str, level: str) -> None:
    rid = f"run:{run.run_id}"
    extra = [] if level != "workflow" else [f"{len(run.series)} series, {len(run.params)} params"]
    c.node(rid, _label(f"run {run.experiment}", run.run_id, _status(run.status, run.started, run.ended), *extra),
           **{**_ACTIVITY, "fillcolor": _STATUS_COLOR.get(run.status, "#dddddd")})
    c.edge(rid, tid, label="wasStartedBy")
    if level == "workflow":
        return
    if level == "run":
        for p in run.params:
            c.node(f"{rid}:param:{p.key}", _label(f"{p.key} = {p.value}"), **_entity(fillcolor="#fff3c4"))
            c.edge(rid, f"{rid}:param:{p.key}", label="used")
        for s in run.series:
            sid = f"{rid}:metric:{series_name(s.key, s.context)}"
            c.node(sid, _label(series_name(s.key, s.context), f"{s.count} points, last {_num(s.last)}"), **_entity())
            c.edge(sid, rid, label="wasGeneratedBy")
    else:
        if run.params:
            _params_node(c, f"{rid}:params", rid, [(p.key, p.value) for p in run.params])
        if run.series:
            lines = [f"{series_name(s.key, s.context)}: {s.count} pts, last {_num(s.last)}" for s in run.series]
            c.node(f"{rid}:metrics", _label(f"{len(run.series)} metric series", *_clip(lines)),
                   **_entity(shape="note"))
            c.edge(f"{rid}:metrics", rid, label="wasGeneratedBy")
    previous: dict[str, str] = {}
    for mv in run.model_versions:
        mid = f"{rid}:model:{mv.model_name}:{mv.version}"
        c.node(mid, _label(f"{mv.model_name} v{mv.version}", f"step {mv.step}" if mv.step is not None else ""),
               **_entity(shape="box3d"))
        c.edge(mid, rid, label="wasGeneratedBy")
        if mv.model_name in previous:
            c.edge(mid, previous[mv.model_name], label="wasRevisionOf", color="#aa5500")
        previous[mv.model_name] = mid
    for m in run.models:
        c.node(f"{rid}:model:{m.label}", _label(f"model {m.label}"), **_entity(shape="box3d"))
        c.edge(f"{rid}:model:{m.label}", rid, label="wasGeneratedBy")
    for a in run.artifacts:
        aid = f"{rid}:artifact:{a.name}"
        c.node(aid, _label(f"artifact {a.name}"), **_entity())
        c.edge(rid, aid, label="used") if a.is_input else c.edge(aid, rid, label="wasGeneratedBy")
    for d in run.datasets:
        did = f"{rid}:dataset:{d.label}"
        c.node(did, _label(f"dataset {d.label}", f"{d.samples} samples" if d.samples is not None else ""),
               **_entity(shape="cylinder"))
        c.edge(rid, did, label="used")


def _entity(**attrs: str) -> dict[str, str]:
    return {**_ENTITY, **attrs}


def _params_node(c: Any, nid: str, owner: str, params: list[tuple[str, Any]]) -> None:
    c.node(nid, _label(f"{len(params)} param{'s' if len(params) != 1 else ''}", *_clip([f"{k} = {v}" for k, v in params])),
           **_entity(shape="note", fillcolor="#fff3c4"))
    c.edge(owner, nid, label="used")


def _file(g: Any, files: dict[str, str], entity: str, f: Any) -> str:
    fid = files.get(entity)
    if fid is None:
        fid = files[entity] = f"file:{entity}"
        name = f.name or (Path(f.path).name if f.path else "value")
        g.node(fid, _label(name, f"sha256 {f.sha256[:12]}…"), **_entity())
    return fid


def _clip(lines: list[str]) -> list[str]:
    return lines if len(lines) <= _MAX_LINES else [*lines[:_MAX_LINES - 1], f"… {len(lines) - _MAX_LINES + 1} more"]


def _status(status: str, started: float | None, ended: float | None) -> str:
    if started and ended:
        return f"{status}, {ended - started:.1f}s"
    return status


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _escape(text: str) -> Any:
    """A label part with Graphviz's escapes (backslash) and HTML-like labels (<…>) disabled."""
    import graphviz

    return graphviz.nohtml(text.replace("\\", "\\\\"))


def _label(*parts: str) -> Any:
    import graphviz

    return graphviz.nohtml("\\n".join(p[:120].replace("\\", "\\\\") for p in parts if p))


def render_svg(graph: Any, timeout: float | None = None) -> str:
    """The graph drawn by ``dot`` as SVG text; DotNotFoundError when Graphviz is not installed,
    GraphRenderError when ``dot`` fails."""
    import graphviz

    try:
        return graph.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as exc:
        raise DotNotFoundError(f"Graphviz's dot program was not found; {INSTALL_HINT}") from exc
    except graphviz.CalledProcessError as exc:
        err = exc.stderr or ""
        detail = (err.decode("utf-8", "replace") if isinstance(err, bytes) else err).strip().splitlines()
        raise GraphRenderError(f"dot could not draw the graph (exit {exc.returncode}): "
                               f"{detail[0] if detail else 'no message'}") from exc


def write_graph(graph: Any, dot_path: Path, svg: bool = True) -> tuple[Path, Path | None]:
    """Write the DOT source to ``dot_path`` and, with ``svg``, the drawing next to it (``.svg``).

    Returns the files written; DotNotFoundError or GraphRenderError (after the DOT is written) when
    ``dot`` is missing or fails.
    """
    from yprov_wf.layout import atomic_write

    atomic_write(dot_path, graph.source.encode("utf-8"))
    if not svg:
        return dot_path, None
    svg_path = dot_path.with_suffix(".svg")
    atomic_write(svg_path, render_svg(graph).encode("utf-8"))
    return dot_path, svg_path


def workflow_graph(root: Path, level: str = "task") -> Any:
    """The graph of the one workflow run at ``root`` (a run folder, or a folder holding exactly one)."""
    from yprov_wf.recording.summary import load_workflow_runs

    runs = load_workflow_runs(root)
    if not runs:
        raise ValueError(f"no workflow run found under {root}")
    if len(runs) > 1:
        raise ValueError(f"{len(runs)} workflow runs found under {root}; give the folder of one of them")
    wf, tasks, _ = runs[0]
    return build_graph(wf, tasks, level)
