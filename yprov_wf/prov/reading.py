"""Reading yprov-wf's own PROV-JSON back into records, with the standard ``json`` module (fast enough
for hundreds of bundles; ``prov`` is used for validation, not here)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from yprov_wf.prov import vocabulary as v
from yprov_wf.recording.records import AgentRecord, DataRecord, ParamRecord, TaskRecord, WorkflowRecord
from yprov_wf.recording.run_records import (
    ArtifactRecord,
    CommandRecord,
    DatasetRecord,
    ModelRecord,
    ModelVersionRecord,
    RunRecord,
    SeriesSummary,
    SourceRecord,
)

_TIMES = {"prov:startTime", "prov:endTime"}
_INTS = {"xsd:int", "xsd:long", "xsd:integer", "xsd:short", "xsd:byte"}


def literal(value: Any) -> Any:
    """A PROV-JSON attribute value as a Python value (datetimes become unix seconds)."""
    if isinstance(value, list):
        return [literal(x) for x in value]
    if not isinstance(value, dict):
        return value
    text, kind = value.get("$"), value.get("type", "")
    if kind in _INTS:
        return int(text)
    if kind in ("xsd:double", "xsd:float", "xsd:decimal"):
        return float(text)
    if kind == "xsd:boolean":
        return text in ("true", "1")
    if kind == "xsd:dateTime":
        return _time(text)
    return text


def path_of(attrs: dict[str, Any]) -> str | None:
    """The path an entity was recorded at (``ywf:path``; files written before it existed: ``prov:location``)."""
    found = attrs.get("ywf:path")
    if found is None:
        old = attrs.get("prov:location")
        found = old if isinstance(old, str) and not old.startswith("file:") else None
    return found


def _time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class _Bundle:
    """Index of one bundle's records: attributes by id and the used / generated relations."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        for kind in ("entity", "activity"):
            for ident, attrs in body.get(kind, {}).items():
                merged = self.records.setdefault(ident, {})
                for part in attrs if isinstance(attrs, list) else [attrs]:  # an id described twice
                    merged.update((k, _time(x) if k in _TIMES else literal(x)) for k, x in part.items())
        self.used: dict[str, list[str]] = defaultdict(list)
        self.generated: dict[str, list[str]] = defaultdict(list)
        self.started_by: dict[str, str] = {}
        self.revision_of: dict[str, str] = {}
        self.times: dict[tuple[str, str], float] = {}  # (activity, entity) → time of the use or generation
        for kind, index in (("used", self.used), ("wasGeneratedBy", self.generated)):
            for rel in _relations(body, kind):
                if "prov:activity" not in rel:
                    continue
                index[rel["prov:activity"]].append(rel["prov:entity"])
                when = literal(rel.get("prov:time"))
                if when is not None:
                    self.times[(rel["prov:activity"], rel["prov:entity"])] = _time(when) if isinstance(when, str) else when
        for rel in _relations(body, "wasStartedBy"):
            if "prov:starter" in rel:
                self.started_by[rel["prov:activity"]] = rel["prov:starter"]
        for rel in _relations(body, "wasDerivedFrom"):
            self.revision_of[rel["prov:generatedEntity"]] = rel["prov:usedEntity"]

    def of_type(self, ids: list[str], type_name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(i, self.records[i]) for i in ids if i in self.records and _is_a(self.records[i], type_name)]


def _is_a(attrs: dict[str, Any], type_name: str) -> bool:
    t = attrs.get("prov:type")
    return f"{v.YWF_PREFIX}:{type_name}" in (t if isinstance(t, list) else [t])


def _relations(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    out = []
    for rel in body.get(kind, {}).values():
        out.extend(rel if isinstance(rel, list) else [rel])
    return out


def agents_of(scope: dict[str, Any]) -> list[AgentRecord]:
    """The agents yprov-wf recorded in a PROV-JSON scope (a document's top level or a bundle), in order."""
    out = []
    for attrs in scope.get("agent", {}).values():
        a: dict[str, Any] = {}
        for part in attrs if isinstance(attrs, list) else [attrs]:
            a.update((k, literal(x)) for k, x in part.items())
        role = a.get("ywf:agentRole")
        if not isinstance(role, str):
            continue  # someone else's agent
        if role == "person":
            out.append(AgentRecord(role, str(a.get("ywf:userName", ""))))
        else:
            version, instance = a.get("ywf:softwareVersion"), a.get("ywf:launcherId")
            out.append(AgentRecord(role, str(a.get("ywf:softwareName", "")), None if version is None else str(version),
                                   None if instance is None else str(instance)))
    return out


def load_json(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a PROV-JSON document")
    return doc


def read_task_file(path: Path) -> TaskRecord:
    """The task record (task, params, files, runs with their records) from ``tasks/<id>.json``."""
    doc = load_json(path)
    bundles = doc.get("bundle", {})
    if len(bundles) != 1:
        raise ValueError(f"{path}: expected exactly one bundle, found {len(bundles)}")
    body = next(iter(bundles.values()))
    namespace = body.get("prefix", doc.get("prefix", {})).get(v.USER_PREFIX, "")
    b = _Bundle(body)
    task_ids = [i for i, a in b.records.items() if _is_a(a, v.TASK_RUN)]
    if len(task_ids) != 1:
        raise ValueError(f"{path}: expected one {v.TASK_RUN} activity, found {len(task_ids)}")
    tid = task_ids[0]
    a = b.records[tid]
    known = {"prov:type", "prov:startTime", "prov:endTime", "ywf:name", "ywf:status", "ywf:attempt",
             "ywf:host", "ywf:pid", "ywf:error", "ywf:workflow", "ywf:workflowRun"}
    starter = b.started_by.get(tid, "")
    parent = starter.partition("/")[2] if starter.startswith(f"{v.USER_PREFIX}:task/") else None
    task = TaskRecord(
        task_id=path.stem, name=a.get("ywf:name", ""), workflow_id=a.get("ywf:workflowRun") or
        starter.rpartition("/")[2], parent_task=parent,
        workflow_name=a.get("ywf:workflow", ""), namespace=namespace, started=a.get("prov:startTime", 0.0),
        attempt=a.get("ywf:attempt", 1), host=a.get("ywf:host", ""), pid=a.get("ywf:pid", 0),
        status=a.get("ywf:status", ""), ended=a.get("prov:endTime"), error=a.get("ywf:error"),
        params=_params(b, tid), inputs=_files(b, tid, b.used[tid]), outputs=_files(b, tid, b.generated[tid]),
        attributes={k.partition(":")[2]: x for k, x in a.items() if k not in known and k.startswith("ywf:")},
        agents=agents_of(body),
    )
    runs = [i for i, s in b.started_by.items() if s == tid]
    task.runs = [_run(b, rid) for rid, _ in b.of_type(runs, v.ML_RUN)]
    task.runs.sort(key=lambda r: r.started)
    return task


def _params(b: _Bundle, activity: str) -> list[ParamRecord]:
    return [ParamRecord(a["ywf:key"], a.get("prov:value"), a.get("ywf:valueType", ""))
            for _, a in b.of_type(b.used[activity], v.PARAMETER)]


def _files(b: _Bundle, activity: str, ids: list[str]) -> list[DataRecord]:
    """The task's files and values, with their entity ids (one generation each) and times."""
    user = f"{v.USER_PREFIX}:"
    return [DataRecord(path_of(a), a.get("ywf:sha256", ""), a.get("ywf:size", 0), a.get("ywf:name"),
                       a.get("ywf:description"), entity=i[len(user):] if i.startswith(user) else i,
                       time=b.times.get((activity, i)), kind=a.get("ywf:fileKind"))
            for i in ids if i in b.records and (_is_a(a := b.records[i], v.DATA_FILE) or _is_a(a, v.DATA_VALUE))]


def _run(b: _Bundle, rid: str) -> RunRecord:
    a = b.records[rid]
    run = RunRecord(
        run_id=rid.rpartition("/")[2], experiment=a.get("ywf:experiment", ""), started=a.get("prov:startTime", 0.0),
        rank=a.get("ywf:rank", 0), world_size=a.get("ywf:worldSize", 1),
        collect_all_processes=a.get("ywf:collectAllProcesses", False), device=a.get("ywf:device"),
        status=a.get("ywf:status", ""),
        ended=a.get("prov:endTime"), error=a.get("ywf:error"), params=_params(b, rid),
    )
    out, inp = b.generated[rid], b.used[rid]
    for _, s in b.of_type(out, v.METRIC_SERIES):
        run.series.append(SeriesSummary(
            key=s["ywf:key"], context=s.get("ywf:context"), count=s.get("ywf:count", 0),
            non_finite=s.get("ywf:nonFiniteCount", 0), first=s.get("ywf:first"), last=s.get("ywf:last"),
            minimum=s.get("ywf:min"), maximum=s.get("ywf:max"), first_step=s.get("ywf:firstStep"),
            last_step=s.get("ywf:lastStep"), first_time=s.get("ywf:firstTime"), last_time=s.get("ywf:lastTime"),
        ))
        if run.metrics_file is None and path_of(s) is not None:
            run.metrics_file = DataRecord(path_of(s), s.get("ywf:sha256", ""), 0)
    for _, m in b.of_type(out, v.MODEL_VERSION):
        run.model_versions.append(ModelVersionRecord(
            model_name=m["ywf:modelName"], version=m["ywf:version"], path=path_of(m) or "",
            sha256=m.get("ywf:sha256", ""), size=m.get("ywf:size", 0), context=m.get("ywf:context"),
            step=m.get("ywf:step"),
        ))
    run.model_versions.sort(key=lambda m: (m.model_name, m.version))
    for _, m in b.of_type(out, v.MODEL):
        run.models.append(ModelRecord(label=m["ywf:label"], path=path_of(m) or "",
                                      sha256=m.get("ywf:sha256", ""), size=m.get("ywf:size", 0), time=0.0))
    for is_input, ids in ((False, out), (True, inp)):
        for _, x in b.of_type(ids, v.ARTIFACT):
            run.artifacts.append(ArtifactRecord(
                name=x["ywf:name"], path=path_of(x) or "", sha256=x.get("ywf:sha256", ""),
                size=x.get("ywf:size", 0), source=x.get("ywf:source", ""), is_input=is_input,
                context=x.get("ywf:context"), step=x.get("ywf:step"),
            ))
    for _, d in b.of_type(inp, v.DATASET):
        run.datasets.append(DatasetRecord(label=d["ywf:label"], kind=d.get("ywf:kind", ""),
                                          samples=d.get("ywf:samples"), attributes={}, context=d.get("ywf:context"),
                                          path=path_of(d), sha256=d.get("ywf:sha256")))
    for _, x in b.of_type(inp, v.SOURCE_CODE):
        run.sources.append(SourceRecord(
            name=x["ywf:name"], path=path_of(x) or "", sha256=x.get("ywf:sha256", ""),
            size=x.get("ywf:size", 0), files=x.get("ywf:files", 0), source=x.get("ywf:source", ""),
            git_commit=x.get("ywf:gitCommit"), git_branch=x.get("ywf:gitBranch"), git_remote=x.get("ywf:gitRemote"),
            git_dirty=x.get("ywf:gitDirty"), git_diff=x.get("ywf:gitDiff"), git_diff_sha256=x.get("ywf:gitDiffSha256"),
        ))
    if "ywf:argv" in a:
        run.command = CommandRecord(argv=json.loads(a["ywf:argv"]), cwd=a.get("ywf:workingDirectory", ""),
                                    executable=a.get("ywf:pythonExecutable", ""))
    return run


def read_workflow_file(path: Path) -> WorkflowRecord:
    """The workflow record from ``workflow.json`` (tasks are read from their own files)."""
    doc = load_json(path)
    b = _Bundle(doc)
    found = [(i, a) for i, a in b.records.items() if _is_a(a, v.WORKFLOW_RUN)]
    if len(found) != 1:
        raise ValueError(f"{path}: expected one {v.WORKFLOW_RUN} activity, found {len(found)}")
    wid, a = found[0]
    known = {"prov:type", "prov:startTime", "prov:endTime", "ywf:name", "ywf:engine", "ywf:status", "ywf:error"}
    return WorkflowRecord(
        workflow_id=wid.rpartition("/")[2], name=a.get("ywf:name", ""),
        namespace=doc.get("prefix", {}).get(v.USER_PREFIX, ""), started=a.get("prov:startTime", 0.0),
        engine=a.get("ywf:engine", ""), status=a.get("ywf:status", ""), ended=a.get("prov:endTime"),
        error=a.get("ywf:error"), params=_params(b, wid),
        environment={k.partition(":")[2]: x for k, x in a.items() if k not in known and k.startswith("ywf:")},
        agents=agents_of(doc),
    )
