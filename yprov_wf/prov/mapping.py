"""Pure mapping from records to PROV documents: one bundle per task, one workflow document.

    workflow ──wasStartedBy(starter)── task ──wasStartedBy(starter)── ML run
    collection ─hadMember→ bundle ─wasGeneratedBy→ task
    run ─used→ params, datasets, input artifacts, source code;  run ←wasGeneratedBy─ series, model versions, models, artifacts
    model version ─wasRevisionOf→ previous version
    task ←wasGeneratedBy─ task/<id>/output/<i> ─specializationOf→ content/<sha256>   (one entity per generation)
    task ─used→ the output it read (workflow.json: path + digest, latest generation before the use)
    workflow, task, run ─wasAssociatedWith→ person, yprov-wf, engine (not on runs), launcher
    software agent ─actedOnBehalfOf→ person
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_from_bytes

from yprov_wf.collectors.energy_fields import rollup
from yprov_wf.prov import dataflow
from yprov_wf.prov import vocabulary as v
from yprov_wf.prov.provjson import (
    IRI,
    PROV,
    PROV_BUNDLE,
    PROV_LABEL,
    PROV_LOCATION,
    PROV_TYPE,
    PROV_VALUE,
    Bundle,
    Document,
    Namespace,
    QName,
)
from yprov_wf.recording.agents import is_iri
from yprov_wf.recording.records import MISSING, AgentRecord, DataRecord, ParamRecord, TaskRecord, WorkflowRecord
from yprov_wf.values import clean_text

if TYPE_CHECKING:
    from yprov_wf.recording.run_records import RunRecord


def task_document(task: TaskRecord, root: Path | None = None) -> Document:
    """A document holding exactly one bundle: the task attempt and its nested ML runs. ``root`` (the workflow
    run folder) makes relative paths absolute ``file:`` locations; without it only ``ywf:path`` is written."""
    doc, user, ywf = _document(task.namespace, root)
    b = doc.bundle(user[v.bundle_id(task.task_id)])
    t = _task_activity(b, user, ywf, task)
    b.wasStartedBy(t, None, _starter(user, task), _time(task.started))
    agents = _agents(b, user, ywf, task.workflow_id, task.agents, t)
    _params(b, user, ywf, t, ("task", task.task_id), task.params, task.started)
    _files(b, user, ywf, t, task)
    for run in task.runs:
        r = _run(b, user, ywf, t, run)
        for a, agent in agents:
            if a.role != "engine":  # the engine ran the task; the run is the user's code in it
                b.wasAssociatedWith(r, agent)
    return doc


def workflow_document(wf: WorkflowRecord, tasks: Sequence[TaskRecord], root: Path | None = None) -> Document:
    """The workflow activity, its tasks and their data flow, and the collection of task bundles (``root``: as
    in :func:`task_document`)."""
    doc, user, ywf = _document(wf.namespace, root)
    totals = rollup([t.attributes for t in tasks], wf.started, wf.ended)  # energy, emissions, durations
    w = doc.activity(
        user[v.workflow_id(wf.workflow_id)], _time(wf.started), _time(wf.ended),
        _attrs(ywf, {"prov:type": ywf[v.WORKFLOW_RUN], "name": wf.name, "status": wf.status,
                     "engine": wf.engine, "error": wf.error, **wf.environment, **wf.attributes, **totals}),
    )
    _agents(doc, user, ywf, wf.workflow_id, wf.agents, w)
    _params(doc, user, ywf, w, ("workflow", wf.workflow_id), wf.params, wf.started)
    coll = doc.collection(user[v.collection_id(wf.workflow_id)], {PROV_TYPE: ywf[v.TASK_COLLECTION]})
    doc.wasGeneratedBy(coll, w, _time(wf.ended))
    flow = dataflow.resolve(tasks)
    content: set[str] = set()
    for task in tasks:
        t = _task_activity(doc, user, ywf, task)
        doc.wasStartedBy(t, None, _starter(user, task), _time(task.started))
        if task.status == MISSING:  # an expected rank that wrote no bundle: the activity says so
            continue
        bundle = doc.entity(user[v.bundle_id(task.task_id)],
                            _attrs(ywf, {"prov:type": PROV_BUNDLE, "path": f"tasks/{task.task_id}.json"}))
        doc.wasGeneratedBy(bundle, t, _time(task.ended))
        doc.hadMember(coll, bundle)
        _outputs(doc, user, ywf, t, task, content)
    for task in tasks:
        if task.status == MISSING:
            continue
        t = user[v.task_id(task.task_id)]
        for i, f in enumerate(task.inputs):
            g = flow.get((task.task_id, i))
            ident = g.entity if g is not None else dataflow.input_entity(task, i)
            doc.used(t, _file(doc, user, ywf, ident, f, content), _time(dataflow.use_time(task, f)))
        for producer in sorted(dataflow.informants(task, flow)):
            doc.wasInformedBy(t, user[v.task_id(producer)])
    return doc


def to_json(doc: Document) -> bytes:
    """Compact PROV-JSON bytes (UTF-8); ``python -m json.tool`` pretty-prints a file."""
    text = doc.to_json()
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate got past the checks: written as visible text
        return clean_text(text).encode("utf-8")


class _Ywf(dict):
    """The ``ywf`` names of the documents of one prefix and one folder (``root``: what relative paths are
    relative to). Attribute names recur in every element: each is made once, then ``ywf[name]`` is a dict
    lookup."""

    def __init__(self, namespace: Namespace, root: Path | None) -> None:
        super().__init__()
        self.namespace, self.root = namespace, root

    def __missing__(self, name: str) -> QName:
        qname = self[name] = self.namespace[name]
        return qname


@functools.lru_cache(maxsize=64)
def _ywf(prefix: str, root: Path | None) -> _Ywf:
    return _Ywf(Namespace(prefix, v.YWF_URI), Path(root).absolute() if root is not None else None)


def _document(namespace: str, root: Path | None) -> tuple[Document, Any, _Ywf]:
    doc = Document()
    user = doc.add_namespace(v.USER_PREFIX, namespace)
    return doc, user, _ywf(doc.add_namespace(v.YWF_PREFIX, v.YWF_URI).prefix, root)


def location_iri(path: str, root: Path | None) -> str | None:
    """The ``file:`` IRI of a recorded path (absolute, or relative to ``root``); None when it cannot be one."""
    if _POSIX and path.startswith("/") and os.path.normpath(path) == path:  # most paths: what as_uri() gives
        return "file://" + quote_from_bytes(os.fsencode(path))
    p = Path(path)
    if not p.is_absolute():
        if root is None:
            return None
        p = root / p
    return p.as_uri()


def _starter(user, task: TaskRecord):
    """Who started a task: the task that launched it (torchrun ranks…), else the workflow."""
    return user[v.task_id(task.parent_task) if task.parent_task else v.workflow_id(task.workflow_id)]


def _agents(scope: Bundle, user, ywf, workflow_id: str, agents: Sequence[AgentRecord],
            activity) -> list[tuple[AgentRecord, Any]]:
    """Declare the agents in ``scope``, associate each with ``activity``; the software agents act on behalf
    of the person (in that activity)."""
    out = []
    for a in agents:
        if a.role == "person":
            if is_iri(a.name):
                base, local = _split_iri(a.name)
                ident = scope.add_namespace(v.PERSON_PREFIX, base)[local] if local else user[v.person_id(a.name)]
            else:
                ident = user[v.person_id(a.name)]
            attrs = {"prov:type": PROV["Person"], "prov:label": None if is_iri(a.name) else a.name,
                     "agentRole": a.role, "userName": a.name}
        else:
            ident = user[v.agent_id(workflow_id, a.name, a.instance)]
            attrs = {"prov:type": PROV["SoftwareAgent"], "prov:label": f"{a.name} {a.version or ''}".strip(),
                     "agentRole": a.role, "softwareName": a.name, "softwareVersion": a.version,
                     "launcherId": a.instance}
        out.append((a, scope.agent(ident, _attrs(ywf, attrs))))
    people = [agent for a, agent in out if a.role == "person"]
    for a, agent in out:
        scope.wasAssociatedWith(activity, agent)
        if a.role != "person":
            for p in people:
                scope.actedOnBehalfOf(agent, p, activity)
    return out


def _split_iri(iri: str) -> tuple[str, str]:
    """``https://orcid.org/0000-…`` → (``https://orcid.org/``, ``0000-…``): a namespace and a local name."""
    cut = max(iri.rfind("/"), iri.rfind("#"), iri.find(":") if "/" not in iri else -1) + 1
    return iri[:cut], iri[cut:]


def _task_activity(scope: Bundle, user, ywf, task: TaskRecord):
    return scope.activity(
        user[v.task_id(task.task_id)], _time(task.started), _time(task.ended),
        _attrs(ywf, {**task.attributes, "prov:type": ywf[v.TASK_RUN], "name": task.name, "status": task.status,
                     "attempt": task.attempt, "host": task.host, "pid": task.pid, "error": task.error,
                     "workflow": task.workflow_name, "workflowRun": task.workflow_id}),
    )


def _files(scope: Bundle, user, ywf, activity, task: TaskRecord) -> None:
    """A task bundle's data: each output its own generation; each input the output it names, or its own."""
    content: set[str] = set()
    _outputs(scope, user, ywf, activity, task, content)
    for i, f in enumerate(task.inputs):
        e = _file(scope, user, ywf, dataflow.input_entity(task, i), f, content)
        scope.used(activity, e, _time(dataflow.use_time(task, f)))


def _outputs(scope: Bundle, user, ywf, activity, task: TaskRecord, content: set[str]) -> None:
    for i, f in enumerate(task.outputs):
        e = _file(scope, user, ywf, dataflow.output_entity(task, i), f, content)
        scope.wasGeneratedBy(e, activity, _time(dataflow.generation_time(task, f)))


def _file(scope: Bundle, user, ywf, local_id: str, f: DataRecord, content: set[str]):
    """The entity of one file or value (digest, size, path as attributes), declared once per scope and
    a ``prov:specializationOf`` the content entity of its bytes (shared by every copy, in any run)."""
    ident = user[local_id]
    if scope.has(ident):
        return ident
    e = scope.entity(ident, _attrs(ywf, {
        "prov:type": ywf[v.DATA_FILE if f.path is not None else v.DATA_VALUE], "path": f.path,
        "name": f.name, "description": f.description, "sha256": f.sha256 or None, "size": f.size,
        "fileKind": f.kind,
    }))
    if not f.sha256:  # a pipe, or a temporary file removed unseen: no content to be a specialization of
        return e
    cid = v.content_id(f.sha256)
    if cid not in content:
        content.add(cid)
        scope.entity(user[cid], _attrs(ywf, {"prov:type": ywf[v.CONTENT], "sha256": f.sha256, "size": f.size}))
    scope.specializationOf(e, user[cid])
    return e


def _params(scope: Bundle, user, ywf, activity, owner: tuple[str, str],
            params: Iterable[ParamRecord], when: float) -> None:
    for p in params:
        e = scope.entity(user[v.local(*owner, "param", p.key)], _attrs(ywf, {
            "prov:type": ywf[v.PARAMETER], "key": p.key, "prov:value": p.value, "valueType": p.type,
            "context": p.context,
        }))
        scope.used(activity, e, _time(when))


def _run(b: Bundle, user, ywf, task_activity, run: RunRecord) -> Any:
    cmd = run.command
    r = b.activity(
        user[v.run_id(run.run_id)], _time(run.started), _time(run.ended),
        _attrs(ywf, {"prov:type": ywf[v.ML_RUN], "experiment": run.experiment, "status": run.status,
                     "rank": run.rank, "worldSize": run.world_size, "device": run.device,
                     "collectAllProcesses": run.collect_all_processes, "error": run.error,
                     "argv": cmd.argv if cmd else None, "workingDirectory": cmd.cwd if cmd else None,
                     "pythonExecutable": cmd.executable if cmd else None}),
    )
    b.wasStartedBy(r, None, task_activity, _time(run.started))
    _params(b, user, ywf, r, ("run", run.run_id), run.params, run.started)
    mf = run.metrics_file
    for s in run.series:
        e = b.entity(user[v.local("run", run.run_id, "metric", s.context or "-", s.key)], _attrs(ywf, {
            "prov:type": ywf[v.METRIC_SERIES], "key": s.key, "context": s.context, "count": s.count,
            "nonFiniteCount": s.non_finite, "first": s.first, "last": s.last, "min": s.minimum,
            "max": s.maximum, "firstStep": s.first_step, "lastStep": s.last_step,
            "firstTime": _time(s.first_time), "lastTime": _time(s.last_time), "metricSource": s.source,
            "path": mf.path if mf else None, "sha256": mf.sha256 if mf else None,
        }))
        b.wasGeneratedBy(e, r, _time(s.last_time))
    versions: dict[str, Any] = {}
    for mv in run.model_versions:
        e = b.entity(user[v.local("run", run.run_id, "model", mv.model_name, str(mv.version))], _attrs(ywf, {
            "prov:type": ywf[v.MODEL_VERSION], "modelName": mv.model_name, "version": mv.version,
            "context": mv.context, "step": mv.step, "path": mv.path, "sha256": mv.sha256,
            "size": mv.size,
        }))
        b.wasGeneratedBy(e, r, _time(mv.time))
        previous = versions.get(mv.model_name)
        if previous is not None:
            b.wasRevisionOf(e, previous)
        versions[mv.model_name] = e
        versions[f"{mv.model_name}/{mv.version}"] = e
    seen: set[str] = set()
    for m in run.models:
        e = b.entity(user[_unique(seen, v.local("run", run.run_id, "model", m.label))], _attrs(ywf, {
            "prov:type": ywf[v.MODEL], "label": m.label, "path": m.path, "sha256": m.sha256,
            "size": m.size, **m.summary,
        }))
        b.wasGeneratedBy(e, r, _time(m.time))
        if m.revision_of in versions:
            b.wasRevisionOf(e, versions[m.revision_of])
    for a in run.artifacts:
        e = b.entity(user[_unique(seen, v.local("run", run.run_id, "artifact", a.name))], _attrs(ywf, {
            "prov:type": ywf[v.ARTIFACT], "name": a.name, "source": a.source, "context": a.context,
            "step": a.step, "path": a.path, "sha256": a.sha256, "size": a.size,
        }))
        if a.is_input:
            b.used(r, e, _time(a.time))
        else:
            b.wasGeneratedBy(e, r, _time(a.time))
    for d in run.datasets:
        e = b.entity(user[_unique(seen, v.local("run", run.run_id, "dataset", d.label))], _attrs(ywf, {
            "prov:type": ywf[v.DATASET], "label": d.label, "kind": d.kind, "samples": d.samples,
            "context": d.context, "path": d.path, "sha256": d.sha256, **d.attributes,
        }))
        b.used(r, e, _time(d.time))
    for src in run.sources:
        e = b.entity(user[v.local("run", run.run_id, "source", src.name)], _attrs(ywf, {
            "prov:type": ywf[v.SOURCE_CODE], "name": src.name, "source": src.source, "files": src.files,
            "path": src.path, "sha256": src.sha256, "size": src.size, "gitCommit": src.git_commit,
            "gitBranch": src.git_branch, "gitRemote": src.git_remote, "gitDirty": src.git_dirty,
            "gitDiff": src.git_diff, "gitDiffSha256": src.git_diff_sha256,
        }))
        b.used(r, e, _time(src.time))
    return r


def _unique(seen: set[str], local: str) -> str:
    """``local``, or ``local-2``, ``local-3``… when a run logged the same label more than once."""
    candidate, n = local, 1
    while candidate in seen:
        n += 1
        candidate = f"{local}-{n}"
    seen.add(candidate)
    return candidate


_POSIX = os.name == "posix"
_PROV_ATTRS = {"prov:type": PROV_TYPE, "prov:value": PROV_VALUE, "prov:label": PROV_LABEL}
_READY = (str, int, bool, datetime)  # written as they are (a bool is an int)


def _attrs(ywf: _Ywf, items: dict[str, Any]) -> dict[Any, Any]:
    """PROV attributes from plain values: drops None and non-finite floats, JSON-encodes containers. A
    ``path`` is written twice: as it was recorded (``ywf:path``) and as a ``file:`` IRI (``prov:location``,
    whose PROV-O range is prov:Location, so never a literal)."""
    out: dict[Any, Any] = {}
    for name, value in items.items():
        if value is None:
            continue
        if type(value) not in _READY:
            if isinstance(value, float):
                if not math.isfinite(value):
                    continue
            elif isinstance(value, (list, dict)):
                value = json.dumps(value, sort_keys=True, default=str)
            elif not isinstance(value, _READY):
                value = _plain(value)  # whatever got into a record (a path, a numpy number) always maps
                if value is None:
                    continue
        out[_PROV_ATTRS.get(name) or ywf[name]] = value
        if name == "path":
            iri = location_iri(value, ywf.root)
            if iri is not None:
                out[PROV_LOCATION] = IRI(iri)
    return out


def _plain(value: Any) -> str | int | float | None:
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    return str(value)


def _time(t: float | None) -> datetime | None:
    """The time of unix seconds ``t``; None (left out) for a value that is no time, rather than a
    failed bundle (the calls check times; this guards what came back from a journal)."""
    if t is None:
        return None
    try:
        return datetime.fromtimestamp(t, timezone.utc)
    except (ValueError, OverflowError, OSError, TypeError):
        return None
