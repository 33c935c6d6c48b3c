"""Workflow Run RO-Crate export (Provenance Run Crate profile 0.5): one zip holding a workflow run's PROV
files, metric files, model versions, artifacts and source copies with their sha256, described with the
profile's terms. Mapping (documented in docs/crate.md):

    workflow run   CreateAction (instrument → the ComputationalWorkflow), OrganizeAction of the engine
    task attempt   CreateAction (instrument → the step's SoftwareApplication) + ControlAction (→ HowToStep)
    ML run         CreateAction in its task's ControlAction; object: params, datasets, sources, inputs;
                   result: metric file and series, model versions (isBasedOn the previous), models, artifacts

The crate's JSON is built from the read-back records (``yprov_wf.readback``); the zip is written to a
temporary file and linked into place, so the target is either absent or complete.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from yprov_wf.layout import find_workflow_dirs, sha256_file
from yprov_wf.readback import MLRun, TaskRun, WorkflowRun, load
from yprov_wf.recording.records import COMPLETED, RUNNING, DataRecord

CRATE_VERSION = "https://w3id.org/ro/crate/1.1"
PROFILES = {
    "Process Run Crate": "https://w3id.org/ro/wfrun/process/0.5",
    "Workflow Run Crate": "https://w3id.org/ro/wfrun/workflow/0.5",
    "Provenance Run Crate": "https://w3id.org/ro/wfrun/provenance/0.5",
    "Workflow RO-Crate": "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
}
CONTEXT = [f"{CRATE_VERSION}/context", "https://w3id.org/ro/terms/workflow-run/context"]
PROV_JSON = "https://www.w3.org/Submission/2013/SUBM-prov-json-20130424/"
METADATA = "ro-crate-metadata.json"
_STATUS = {COMPLETED: "CompletedActionStatus", RUNNING: "ActiveActionStatus"}


@dataclass(frozen=True)
class CrateSummary:
    """What ``write_crate`` wrote: the zip, how many files it holds and how many entities describe them."""

    path: Path
    files: int
    entities: int


def write_crate(run_dir: str | Path, target: str | Path) -> CrateSummary:
    """Write the Workflow Run RO-Crate of the one workflow run at or under ``run_dir`` to ``target`` (.zip).

    FileExistsError if ``target`` exists; ValueError if ``run_dir`` holds no or several workflow runs or a
    recorded file is missing. Nothing is left at ``target`` on failure."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"crate target {str(target)!r} already exists; remove it or choose another name")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder of the crate target {str(target.parent)!r} does not exist")
    source = Path(run_dir)
    if not source.exists():
        raise FileNotFoundError(f"provenance folder {str(run_dir)!r} does not exist")
    roots = find_workflow_dirs(source)
    if len(roots) != 1:
        raise ValueError(f"{run_dir} holds {len(roots)} workflow runs; give the folder of one of them"
                         + (f" (e.g. {roots[0]})" if roots else ""))
    (wf,) = load(roots[0])
    graph, files = _Builder(wf).build()
    _write_zip(target, graph, files)
    return CrateSummary(target, len(files), len(graph["@graph"]))


class _Builder:
    """Builds the crate's JSON-LD graph and the list of files (crate path → source file) for one run."""

    def __init__(self, wf: WorkflowRun) -> None:
        self.wf = wf
        self.root = wf.root.resolve()
        self.entities: dict[str, dict[str, Any]] = {}
        self.files: dict[str, Path] = {}

    # -- graph ---------------------------------------------------------------------------------------
    def build(self) -> tuple[dict[str, Any], dict[str, Path]]:
        wf = self.wf
        wf_id = f"#workflow/{_frag(wf.name)}"
        action_id = f"#run/{_frag(wf.id)}"
        engine_id = f"#engine/{_frag(wf.record.engine or 'python')}"
        steps, tools = self._steps(wf)
        self.add({"@id": wf_id, "@type": ["SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
                  "name": wf.name, "programmingLanguage": _ref("#python"),
                  "step": [_ref(s) for s in steps.values()], "hasPart": [_ref(t) for t in tools.values()]})
        self.add({"@id": "#python", "@type": "ComputerLanguage", "name": "Python",
                  "url": _ref("https://www.python.org/")})
        from yprov_wf import __version__

        self.add({"@id": engine_id, "@type": "SoftwareApplication", "name": f"{wf.record.engine or 'python'} "
                  f"(recorded by yprov-wf {__version__})", "softwareVersion": __version__})
        controls, produced = [], set()
        for task in wf.tasks:
            controls.append(self._task(task, steps[task.name], tools[task.name]))
            produced.update(f.sha256 for f in task.outputs)
        inputs = [self._data(f) for t in wf.tasks for f in t.inputs if f.sha256 not in produced]
        outputs = [self._data(f) for t in wf.tasks for f in t.outputs]
        params = [self._param(f"{action_id}/param", wf_id, p.key, p.value) for p in wf.record.params]
        prov_file = self._file("workflow.json", {"name": "PROV-JSON of the workflow run",
                                                 "encodingFormat": "application/json",
                                                 "conformsTo": _ref(PROV_JSON), "about": _ref(action_id)},
                               required=wf.record.status != RUNNING)
        self.add(_action(action_id, "CreateAction", f"Run of workflow {wf.name}", wf.record, wf_id,
                         _unique(params + inputs), _unique(outputs),
                         subjectOf=[_ref(prov_file)] if prov_file else None))
        self.add({"@id": f"#organize/{_frag(wf.id)}", "@type": "OrganizeAction",
                  "name": f"Orchestration of workflow run {wf.id}", "instrument": _ref(engine_id),
                  "object": [_ref(c) for c in controls], "result": _ref(action_id),
                  **_times(wf.record.started, wf.record.ended)})
        self._artifacts_left()
        metadata = {"@id": METADATA, "@type": "CreativeWork", "about": _ref("./"),
                    "conformsTo": [_ref(CRATE_VERSION), _ref(PROFILES["Workflow RO-Crate"])]}
        for name, uri in PROFILES.items():
            self.add({"@id": uri, "@type": "CreativeWork", "name": name, "version": uri.rsplit("/", 1)[1]})
        root = {"@id": "./", "@type": "Dataset", "name": f"Provenance of workflow run {wf.name} {wf.id}",
                "description": "W3C PROV provenance (workflow → task → ML run) recorded by yprov-wf, "
                               "packaged as a Workflow Run RO-Crate (Provenance Run Crate profile).",
                "datePublished": _iso(datetime.now(timezone.utc).timestamp()),
                "conformsTo": [_ref(PROFILES[n]) for n in ("Process Run Crate", "Workflow Run Crate",
                                                          "Provenance Run Crate")],
                "mainEntity": _ref(wf_id), "mentions": [_ref(action_id)],
                "hasPart": [_ref(i) for i, e in self.entities.items() if _is_data(e)]}
        graph = {"@context": CONTEXT, "@graph": [metadata, root, *self.entities.values()]}
        return graph, self.files

    def _steps(self, wf: WorkflowRun) -> tuple[dict[str, str], dict[str, str]]:
        steps, tools = {}, {}
        for task in wf.tasks:
            if task.name in steps:
                continue
            n = len(steps) + 1
            steps[task.name], tools[task.name] = f"#step/{_frag(task.name)}", f"#tool/{_frag(task.name)}"
            self.add({"@id": tools[task.name], "@type": "SoftwareApplication", "name": task.name})
            self.add({"@id": steps[task.name], "@type": "HowToStep", "name": task.name, "position": str(n),
                      "workExample": _ref(tools[task.name])})
        return steps, tools

    def _task(self, task: TaskRun, step: str, tool: str) -> str:
        action_id = f"#task/{_frag(task.id)}"
        params = [self._param(f"{action_id}/param", tool, p.key, p.value) for p in task.record.params]
        bundle = self._file(f"tasks/{task.id}.json", {
            "name": f"PROV-JSON bundle of task {task.name}", "encodingFormat": "application/json",
            "conformsTo": _ref(PROV_JSON), "about": _ref(action_id)}, required=task.status != RUNNING)
        name = f"{task.name}" + (f" (attempt {task.record.attempt})" if task.record.attempt > 1 else "")
        self.add(_action(action_id, "CreateAction", name, task.record, tool,
                         _unique(params + [self._data(f) for f in task.inputs]),
                         _unique([self._data(f) for f in task.outputs]),
                         subjectOf=[_ref(bundle)] if bundle else None))
        runs = [self._ml_run(run, tool) for run in task.runs]
        control = f"#control/{_frag(task.id)}"
        self.add({"@id": control, "@type": "ControlAction", "name": f"Orchestration of {name}",
                  "instrument": _ref(step), "object": [_ref(action_id), *(_ref(r) for r in runs)]})
        return control

    def _ml_run(self, run: MLRun, tool: str) -> str:
        rec = run.record
        action_id = f"#mlrun/{_frag(run.id)}"
        app = f"#experiment/{_frag(rec.experiment)}"
        if app not in self.entities:
            self.add({"@id": app, "@type": "SoftwareApplication", "name": f"{rec.experiment} (ML experiment)",
                      "isPartOf": _ref(tool)})
            self.entities[tool].setdefault("hasPart", []).append(_ref(app))
        obj = [self._param(f"{action_id}/param", app, p.key, p.value) for p in rec.params]
        for d in rec.datasets:
            props = {"name": d.label, "description": f"{d.kind} dataset"
                     + (f", {d.samples} samples" if d.samples is not None else "")
                     + (f", context {d.context}" if d.context else "")}
            if d.sha256:
                props["sha256"] = d.sha256
            obj.append(self.add({"@id": f"{action_id}/dataset/{_frag(d.label)}", "@type": "CreativeWork",
                                 **props}))
        for s in rec.sources:
            props = {"name": f"source code {s.name}", "codeRepository": s.git_remote, "version": s.git_commit,
                     "description": _git_text(s)}
            obj.append(self._location(s.path, ["SoftwareSourceCode"], props))
            if s.git_diff:
                self._location(s.git_diff, [], {"name": f"uncommitted changes of {s.name}",
                                                "encodingFormat": "text/x-diff", "about": _ref(obj[-1])})
        if rec.command is not None:
            obj.append(self.add({"@id": f"{action_id}/command", "@type": "PropertyValue", "name": "command",
                                 "value": json.dumps(rec.command.argv), "description":
                                 f"working directory {rec.command.cwd}; Python {rec.command.executable}"}))
        result = []
        if rec.metrics_file is not None:
            result.append(self._location(rec.metrics_file.path, [], {
                "name": f"metric series of ML run {run.id}", "encodingFormat": "application/vnd.apache.parquet",
                "about": _ref(action_id)}))
        for s in rec.series:
            ident = f"{action_id}/metric/{_frag(s.context or '-')}/{_frag(s.key)}"
            result.append(self.add({"@id": ident, "@type": "PropertyValue", "name": s.key,
                                    "value": s.last, "minValue": s.minimum, "maxValue": s.maximum,
                                    "description": f"{s.count} points"
                                    + (f", context {s.context}" if s.context else "")
                                    + (f", steps {s.first_step}–{s.last_step}" if s.count else "")}))
        previous: dict[str, str] = {}
        for mv in sorted(rec.model_versions, key=lambda m: (m.model_name, m.version)):
            ident = self._location(mv.path, [], {"name": f"{mv.model_name} v{mv.version}",
                                                 "version": str(mv.version), "isBasedOn": _ref(previous.get(
                                                     mv.model_name))})
            previous[mv.model_name] = ident
            result.append(ident)
        for m in rec.models:
            result.append(self._location(m.path, [], {"name": f"model {m.label}"}))
        for a in rec.artifacts:
            ident = self._location(a.path, [], {"name": a.name})
            (obj if a.is_input else result).append(ident)
        self.add(_action(action_id, "CreateAction", f"ML run {rec.experiment} ({run.id})", rec, app,
                         _unique(obj), _unique(result)))
        return action_id

    # -- entities ------------------------------------------------------------------------------------
    def add(self, entity: dict[str, Any]) -> str:
        entity = {k: v for k, v in entity.items() if v is not None and v != [] and v != {"@id": None}}
        ident = entity["@id"]
        if ident in self.entities:
            self.entities[ident].update(entity)
        else:
            self.entities[ident] = entity
        return ident

    def _param(self, prefix: str, owner: str, key: str, value: Any) -> str:
        formal = f"{owner}/param/{_frag(key)}"
        if formal not in self.entities:
            self.add({"@id": formal, "@type": "FormalParameter", "name": key,
                      "additionalType": _param_type(value)})
            self.entities[owner].setdefault("input", []).append(_ref(formal))
        return self.add({"@id": f"{prefix}/{_frag(key)}", "@type": "PropertyValue", "name": key,
                         "value": value, "exampleOfWork": _ref(formal)})

    def _data(self, f: DataRecord) -> str:
        """A task's input/output: a value, a file of the run folder, or an outside file copied under data/."""
        if f.path is None:
            return self.add({"@id": f"#value/{f.sha256}", "@type": "PropertyValue", "name": f.name or "value",
                             "value": f.description or "", "sha256": f.sha256})
        p = Path(f.path)
        if not p.is_absolute():
            return self._location(f.path, [], {})
        if p.is_file() and sha256_file(p) == f.sha256:
            crate_path = f"data/{f.sha256[:16]}/{p.name}"
            self.files[crate_path] = p
            return self.add({"@id": crate_path, "@type": "File", "name": f.name or p.name, "sha256": f.sha256,
                             "contentSize": str(f.size), "description": f"copied from {p}"})
        return self.add({"@id": f"#file/{f.sha256}", "@type": "CreativeWork", "name": f.name or p.name,
                         "sha256": f.sha256, "description": f"{p} (no longer present with this content; not "
                                                            "included in the crate)"})

    def _location(self, relative: str, extra_types: list[str], props: dict[str, Any]) -> str:
        """A file or folder of the run folder, included with its digest (folders: every file inside)."""
        path = self._inside(relative)
        if path.is_dir():
            ident = path.relative_to(self.root).as_posix() + "/"
            parts = [self._file(f.relative_to(self.root).as_posix(), {}, required=True)
                     for f in sorted(path.rglob("*")) if f.is_file() and not f.is_symlink()]
            return self.add({"@id": ident, "@type": ["Dataset", *extra_types], **props,
                             "hasPart": [_ref(p) for p in parts]})
        return self._file(relative, {**props, "@type": ["File", *extra_types]}, required=True)

    def _file(self, relative: str, props: dict[str, Any], *, required: bool) -> str | None:
        path = self._inside(relative, required=required)
        if path is None:
            return None
        relative = path.relative_to(self.root).as_posix()  # normalised: no '..' or './' in zip names
        self.files[relative] = path
        types = props.pop("@type", "File")
        return self.add({"@id": relative, "@type": types, **props, "sha256": sha256_file(path),
                         "contentSize": str(path.stat().st_size)})

    def _inside(self, relative: str, *, required: bool = True) -> Any:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"recorded location {relative!r} escapes the workflow run folder {self.root}")
        if not path.exists():
            if not required:
                return None
            raise ValueError(f"recorded file {relative!r} is missing from {self.root}; "
                             "check the folder with `yprov-wf validate`")
        return path

    def _artifacts_left(self) -> None:
        """Files under artifacts/ and metrics/ that no record names (e.g. a crashed run's) go in as plain files."""
        for folder in ("artifacts", "metrics"):
            base = self.root / folder
            if base.is_dir():
                for f in sorted(base.rglob("*")):
                    rel = f.relative_to(self.root).as_posix()
                    if f.is_file() and not f.is_symlink() and rel not in self.files:
                        self._file(rel, {}, required=True)


def _action(ident: str, kind: str, name: str, rec: Any, instrument: str, obj: list[str], result: list[str],
            **extra: Any) -> dict[str, Any]:
    status = _STATUS.get(rec.status, "FailedActionStatus")
    return {"@id": ident, "@type": kind, "name": name, "instrument": _ref(instrument),
            **_times(rec.started, rec.ended), "actionStatus": _ref(f"http://schema.org/{status}"),
            "error": rec.error, "object": [_ref(o) for o in obj], "result": [_ref(r) for r in result], **extra}


def _write_zip(target: Path, graph: dict[str, Any], files: dict[str, Path]) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(METADATA, json.dumps(graph, indent=1, ensure_ascii=False))
            for arcname, path in sorted(files.items()):
                z.write(path, arcname)
        os.link(tmp, target)  # fails if the target appeared meanwhile: never overwrite
    finally:
        tmp.unlink(missing_ok=True)


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _is_data(entity: dict[str, Any]) -> bool:
    types = entity["@type"] if isinstance(entity["@type"], list) else [entity["@type"]]
    return ("File" in types or "Dataset" in types) and not entity["@id"].startswith("#")


def _ref(ident: str | None) -> dict[str, Any] | None:
    return None if ident is None else {"@id": ident}


def _frag(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="-._~")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def _times(started: float | None, ended: float | None) -> dict[str, str]:
    out = {}
    if started:
        out["startTime"] = _iso(started)
    if ended:
        out["endTime"] = _iso(ended)
    return out


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    return "Text"


def _git_text(s: Any) -> str | None:
    if not s.git_commit:
        return None
    return (f"git commit {s.git_commit}" + (f" on branch {s.git_branch}" if s.git_branch else "")
            + (" with uncommitted changes" if s.git_dirty else ""))
